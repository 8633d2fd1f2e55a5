"""Profiles are checked before any work (one line naming the key, exit 2, no traceback), and what
a profile does depends only on its contents: a copy under another name runs the same."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

import pytest

from binsal.core.errors import BinsalError
from binsal.core.options import build, describe
from binsal.core.profile import available_profiles, load_profile, with_overrides

SHIPPED = ("smoke", "default", "full", "paper")
REPO = Path(__file__).resolve().parents[2]


def shipped_text(name: str) -> str:
    return (resources.files("binsal.core") / "profiles" / f"{name}.toml").read_text()


def write_profile(tmp_path: Path, text: str, name: str = "bad") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


# ------------------------------------------------------------------- the generic validator


@dataclass(frozen=True)
class Inner:
    size: int = field(default=4, metadata={"min": 1})


@dataclass(frozen=True)
class Sample:
    count: int = field(default=1, metadata={"min": 1})
    level: float = field(default=0.2, metadata={"gt": 0, "max": 1})
    label: str = ""
    flag: bool = False
    engine: Literal["tf", "tfkv"] = "tf"
    names: tuple[str, ...] = ()
    steps: tuple[float, ...] = field(default=(0.0,), metadata={"min": 0, "max": 100})
    limit: int | None = field(default=None, metadata={"min": 1})
    methods: Literal["profile"] | tuple[str, ...] = "profile"
    inner: Inner = Inner()


def test_build_converts_and_keeps_defaults():
    s = build(
        Sample,
        {"count": 3, "level": 1, "names": ["a", "b"], "steps": [0, 50], "methods": ["x"]},
    )
    assert s == Sample(count=3, level=1.0, names=("a", "b"), steps=(0.0, 50.0), methods=("x",))
    assert isinstance(s.level, float) and s.limit is None and s.inner == Inner()
    assert build(Sample, {"methods": "profile", "inner": {"size": 2}}).inner.size == 2
    assert build(Sample, {"limit": None}).limit is None  # None: only from Python, the default


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"count": "eight"}, "[s] count must be an integer >= 1, got 'eight'"),
        ({"count": 0}, "[s] count must be an integer >= 1, got 0"),
        ({"count": True}, "[s] count must be an integer >= 1, got True"),
        ({"count": 2.5}, "[s] count must be an integer >= 1, got 2.5"),
        ({"level": 0}, "[s] level must be a number > 0 and <= 1, got 0"),
        ({"level": 1.5}, "[s] level must be a number > 0 and <= 1, got 1.5"),
        ({"level": float("nan")}, "[s] level must be a number > 0 and <= 1, got nan"),
        ({"flag": 1}, "[s] flag must be true or false, got 1"),
        ({"engine": "torch"}, "[s] engine must be one of 'tf', 'tfkv', got 'torch'"),
        ({"names": "a"}, "[s] names must be a list of strings, got 'a'"),
        ({"steps": [0, 150]}, "[s] steps must be a list of numbers each >= 0 and <= 100"),
        ({"limit": 0}, "[s] limit must be an integer >= 1, got 0"),
        ({"methods": "all"}, "[s] methods must be 'profile' or a list of strings, got 'all'"),
        ({"inner": {"size": -1}}, "[s.inner] size must be an integer >= 1, got -1"),
        ({"inner": 3}, "[s] inner must be a table ([inner]), got 3"),
        ({"cuont": 3}, "[s] unknown key 'cuont'; known keys: count, engine, flag, label, "),
        ({"extra": {"a": 1}}, "unknown section [s.extra]; known sections: [s.inner]"),
    ],
)
def test_build_rejects_with_one_line_naming_the_key(raw, message):
    with pytest.raises(BinsalError) as err:
        build(Sample, raw, owner="profile 'x'", section="s")
    text = str(err.value)
    assert text.startswith("profile 'x': ") and message in text
    assert "\n" not in text


def test_describe():
    assert describe(int, {"min": 1}) == "an integer >= 1"
    assert describe(tuple[str, ...]) == "a list of strings"
    assert describe(Literal["a"] | tuple[str, ...]) == "'a' or a list of strings"
    assert describe(int | None, {"min": 1}) == "an integer >= 1"


# ----------------------------------------------------------------------------- profiles

BAD_PROFILES = {
    "unknown_section": ("[saliancy]\nn_images = 3\n", "unknown section [saliancy]"),
    "unknown_key": ("[data]\nn_imagez = 3\n", "[data] unknown key 'n_imagez'; known keys: "),
    "wrong_type": (
        '[saliency]\nn_images = "eight"\n',
        "[saliency] n_images must be an integer >= 1, got 'eight'",
    ),
    "out_of_range": (
        "[saliency]\nsmoothgrad_noise = 1.5\n",
        "[saliency] smoothgrad_noise must be a number > 0 and <= 1, got 1.5",
    ),
    "zero_count": ("[train]\nepochs_fp = 0\n", "[train] epochs_fp must be an integer >= 1, got 0"),
    "engine": ('[saliency]\nengine = "torch"\n', "[saliency] engine must be one of 'tf', 'tfkv'"),
    "source": ('[data]\nsource = "web"\n', "[data] source must be one of 'synthetic', 'photos'"),
    "seed": ("seed = -1\n", "seed must be an integer >= 0 and <= 4294967295, got -1"),
    "boot": ("[benchmarks]\nn_boot = 0\n", "[benchmarks] n_boot must be an integer >= 1, got 0"),
    "tfds": ("[tfds]\ndatadir = 'x'\n", "[tfds] unknown key 'datadir'; known keys: data_dir"),
    "toml": ("[data\nsize = 3\n", "is not valid TOML"),
}


@pytest.mark.parametrize("case", list(BAD_PROFILES))
def test_load_profile_rejects_bad_entries(tmp_path, case):
    text, message = BAD_PROFILES[case]
    with pytest.raises(BinsalError) as err:
        load_profile(str(write_profile(tmp_path, text)))
    assert str(err.value).startswith("profile 'bad': ") and message in str(err.value)
    assert "\n" not in str(err.value)


def test_the_tfds_section_is_kept_for_the_data_loader(tmp_path):
    text = '[data]\nsource = "tfds"\npath = "imagenette"\n[tfds]\ndata_dir = "/d"\n'
    profile = load_profile(str(write_profile(tmp_path, text, "mine")))
    assert profile.options == {"tfds": {"data_dir": "/d"}}
    assert load_profile("paper").options == {}


def test_overrides_are_checked_like_the_file():
    smoke = load_profile("smoke")
    with pytest.raises(BinsalError, match=r"^profile 'smoke': seed must be an integer >= 0"):
        with_overrides(smoke, seed=-2)
    sal = dataclasses.replace(smoke.saliency, n_images=-3)
    with pytest.raises(BinsalError, match=r"\[saliency\] n_images must be an integer >= 1, got -3"):
        with_overrides(smoke, saliency=sal)
    assert with_overrides(smoke, seed=5).seed == 5
    train = dataclasses.replace(smoke.train, replicates=0)
    with pytest.raises(BinsalError, match=r"\[train\] replicates must be an integer >= 1, got 0"):
        with_overrides(smoke, train=train)


# --------------------------------------------------------- benchmark tables (check_profile)

BAD_BENCHMARK_TABLES = {
    "unknown_table": ("[benchmarks.roarr]\nrepeats = 1\n", "unknown section [benchmarks.roarr]"),
    "unknown_key": (
        "[benchmarks.roar]\nrepeat = 1\n",
        "[benchmarks.roar] unknown key 'repeat'; known keys: ",
    ),
    "wrong_type": (
        '[benchmarks.roar]\nrepeats = "three"\n',
        "[benchmarks.roar] repeats must be an integer >= 1, got 'three'",
    ),
    "replicates_out_of_range": (
        "[benchmarks.roar]\nreplicates = -1\n",
        "[benchmarks.roar] replicates must be an integer >= 0, got -1",
    ),
    "out_of_range": (
        "[benchmarks.road]\nfractions = [0, 120]\n",
        "[benchmarks.road] fractions must be a list of numbers each >= 0 and <= 100",
    ),
    "literal": (
        '[benchmarks.roar]\nbaseline = "blur"\n',
        "[benchmarks.roar] baseline must be one of 'train_channel_mean', 'noisy_linear'",
    ),
    "unknown_method": (
        '[benchmarks.road]\nmethods = ["gradiant"]\n',
        "[benchmarks.road] methods: unknown method 'gradiant'; known methods: ",
    ),
    "unknown_model": (
        '[benchmarks.roar]\nmodels = ["vgg_pf"]\n',
        "[benchmarks.roar] models: unknown model 'vgg_pf'; known models: ",
    ),
}


def _with_tables(extra: str) -> str:
    return f'[models]\nnames = ["vgg_fp", "vgg_bnn"]\n[benchmarks]\nnames = ["all"]\n{extra}'


@pytest.mark.parametrize("case", list(BAD_BENCHMARK_TABLES))
def test_check_profile_rejects_bad_benchmark_tables(tmp_path, case):
    from binsal.benchmarks import check_profile

    extra, message = BAD_BENCHMARK_TABLES[case]
    profile = load_profile(str(write_profile(tmp_path, _with_tables(extra))))
    with pytest.raises(BinsalError) as err:
        check_profile(profile)
    assert str(err.value).startswith("profile 'bad': ") and message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profiles_pass_the_checks(name):
    from binsal.benchmarks import check_profile

    assert name in available_profiles()
    check_profile(load_profile(name))


@pytest.mark.parametrize("name", SHIPPED)
def test_a_copy_under_another_name_has_identical_effective_options(tmp_path, name):
    """The bug this guards against: options keyed by the profile's name made a copy of
    smoke.toml named my_smoke.toml run ROAR with 3,000 images and 8 epochs."""
    from binsal.benchmarks import BENCHMARKS

    original = load_profile(name)
    copy = load_profile(str(write_profile(tmp_path, shipped_text(name), f"my_{name}")))
    assert copy.name == f"my_{name}"
    assert dataclasses.replace(copy, name=name) == original
    for bench in BENCHMARKS.names():
        a, b = BENCHMARKS[bench]().opts(original), BENCHMARKS[bench]().opts(copy)
        assert type(a) is BENCHMARKS[bench].Options and a == b, bench


def test_smoke_roar_stays_small_under_any_name(tmp_path):
    from binsal.benchmarks.roar import ROAR

    copy = load_profile(str(write_profile(tmp_path, shipped_text("smoke"), "my_smoke")))
    opts = ROAR.Options.from_profile(copy, "roar")
    assert (opts.n_train, opts.epochs, opts.models) == (128, 1, ("vgg_fp",))


# --------------------------------------------------------------------- the command line

CLI_CASES = {
    "unknown_section": (BAD_PROFILES["unknown_section"][0], "[saliancy]"),
    "unknown_key": (BAD_PROFILES["unknown_key"][0], "n_imagez"),
    "wrong_type": (BAD_PROFILES["wrong_type"][0], "n_images"),
    "out_of_range": (BAD_PROFILES["out_of_range"][0], "smoothgrad_noise"),
    "benchmark_table": (BAD_BENCHMARK_TABLES["wrong_type"][0], "[benchmarks.roar] repeats"),
}


def _assert_nothing_built(tmp_path: Path) -> None:
    results, cache = tmp_path / "results", tmp_path / "cache"
    runs = [p for p in results.iterdir() if p.is_dir()] if results.exists() else []
    assert runs == [], "a run folder was created"
    assert not (cache / "tfds").exists() and not any(cache.glob("*")), "data was built"


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_cli_exits_2_with_one_line_before_any_work(tmp_path, capsys, case):
    from binsal.cli import main

    text, key = CLI_CASES[case]
    if case == "benchmark_table":
        text = _with_tables(text)
    path = write_profile(tmp_path, text)
    args = ["run", "--profile", str(path), "--results-dir", str(tmp_path / "results")]
    started = time.perf_counter()
    code = main([*args, "--cache-dir", str(tmp_path / "cache"), "--quiet"])
    assert code == 2
    assert time.perf_counter() - started < 30
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and key in lines[0], err
    assert lines[0].startswith("binsal: error: profile 'bad': ") and "Traceback" not in err
    _assert_nothing_built(tmp_path)


def test_cli_override_is_checked_like_the_file(tmp_path, capsys):
    from binsal.cli import main

    args = ["run", "--profile", "smoke", "--results-dir", str(tmp_path / "results")]
    code = main([*args, "--cache-dir", str(tmp_path / "cache"), "--quiet", "--seed", "-1"])
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    seed_rule = "seed must be an integer >= 0 and <= 4294967295"
    assert lines == [f"binsal: error: profile 'smoke': {seed_rule}, got -1"]
    code = main([*args, "--cache-dir", str(tmp_path / "cache"), "--quiet", "--n-images", "-3"])
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "binsal: error: profile 'smoke': [saliency] n_images must be an integer >= 1, got -3"
    ]
    _assert_nothing_built(tmp_path)


def test_a_real_process_exits_2_with_one_line(tmp_path):
    path = write_profile(tmp_path, BAD_PROFILES["wrong_type"][0])
    env = {
        **os.environ,
        "BINSAL_CACHE_DIR": str(tmp_path / "cache"),
        "BINSAL_HISTORY": "off",
        "PYTHONPATH": str(REPO / "src"),
    }
    cmd = [sys.executable, "-m", "binsal", "run", "--profile", str(path)]
    cmd += ["--results-dir", str(tmp_path / "results"), "--quiet"]
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert time.perf_counter() - started < 60
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        "binsal: error: profile 'bad': [saliency] n_images must be an integer >= 1, got 'eight'"
    ], proc.stderr
    _assert_nothing_built(tmp_path)
