"""The command line's cheap verbs load no TensorFlow."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

PROBE = """
import sys
from binsal.cli import main
code = main(["list"])
heavy = sorted(m for m in ("tensorflow", "larq", "tf_keras_vis", "keras") if m in sys.modules)
print("HEAVY=" + ",".join(heavy))
sys.exit(code)
"""


@pytest.mark.slow
def test_list_names_everything_without_importing_tensorflow():
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert "HEAVY=\n" in out, out
    from binsal.benchmarks import BENCHMARKS
    from binsal.core.profile import available_profiles
    from binsal.models.registry import MODELS
    from binsal.saliency import METHODS

    lines = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    assert lines["profiles"].strip().split(", ") == available_profiles()
    assert lines["models"].strip().split(", ") == MODELS.names()
    assert lines["methods"].strip().split(", ") == METHODS.names()
    assert lines["benchmarks"].strip().split(", ") == BENCHMARKS.names()
    assert {"smoke", "default", "paper", "full"} <= set(available_profiles())
    assert {"vgg_fp", "vgg_bnn", "quicknet"} <= set(MODELS.names())


# ---- bad input: one line on stderr, exit 2, no traceback, before any work ------------------------

SMOKE = Path(__file__).resolve().parents[1] / "src" / "binsal" / "core" / "profiles" / "smoke.toml"


def _profile(tmp: Path, *subs: tuple[str, str]) -> str:
    """The smoke profile with text replaced (each ``old`` must be in it), as a file."""
    text = SMOKE.read_text()
    for old, new in subs:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp / "bad.toml"
    path.write_text(text)
    return str(path)


def _raw(tmp: Path, data: bytes) -> str:
    path = tmp / "raw.toml"
    path.write_bytes(data)
    return str(path)


def _history(tmp: Path) -> str:
    path = tmp / "history.sqlite"
    path.write_bytes(np.random.default_rng(0).bytes(4096))  # not a database
    return str(path)


def _run_folder(tmp: Path, name: str, csv: str, manifest: str) -> str:
    folder = tmp / name
    folder.mkdir()
    (folder / "results.csv").write_text(csv)
    (folder / "manifest.json").write_text(manifest)
    return str(folder)


def _foreign(tmp: Path) -> list[str]:
    return [_run_folder(tmp, n, "x,y\n1,2\n", f'{{"run_id": "{n}"}}') for n in ("a", "b")]


def _broken_manifest(tmp: Path) -> list[str]:
    good = "benchmark,model,family,pair,method,metric,step,params,value,ci_low,ci_high,n,"
    good += "direction\nb,m,fp,,g,s,,{},1.0,0.5,1.5,8,higher\n"
    return [_run_folder(tmp, "a", good, "{broken"), _run_folder(tmp, "b", good, "{}")]


def _a_file(tmp: Path) -> str:
    path = tmp / "a_file"
    path.write_text("x")
    return str(path)


S = "--profile smoke"
# (id, arguments (a callable gets tmp_path), what the one line must say); issue 15's cases 6-17
BAD = [
    # 6. profile files
    ("toml-syntax", lambda t: ["--profile", _raw(t, b"seed = 0\n[data\n")], "not valid TOML"),
    ("toml-not-utf8", lambda t: ["--profile", _raw(t, b'description = "\xff\xfe"\n')], "UTF-8"),
    ("seed-str", lambda t: ["--profile", _profile(t, ("seed = 0", 'seed = "abc"'))], "seed"),
    (
        "n_images-str",
        lambda t: ["--profile", _profile(t, ("n_images = 8", 'n_images = "eight"'))],
        "n_images must be an integer >= 1",
    ),
    (
        "n_train-neg",
        lambda t: ["--profile", _profile(t, ("n_train = 256", "n_train = -5"))],
        "n_train must be an integer >= 1",
    ),
    (
        "image_size-8",
        lambda t: ["--profile", _profile(t, ("image_size = 32", "image_size = 8"))],
        "image_size must be an integer >= 16",
    ),
    (
        "sg-samples-0",
        lambda t: ["--profile", _profile(t, ("smoothgrad_samples = 4", "smoothgrad_samples = 0"))],
        "smoothgrad_samples must be an integer >= 1",
    ),
    (
        "n_boot-0",
        lambda t: ["--profile", _profile(t, ("n_boot = 200", "n_boot = 0"))],
        "n_boot must be an integer >= 1",
    ),
    # 7. command-line numbers
    ("cli-n-images-neg", lambda t: [*S.split(), "--n-images", "-1"], "n_images must be"),
    ("cli-n-images-str", lambda t: [*S.split(), "--n-images", "abc"], "invalid int value"),
    ("cli-seed-neg", lambda t: [*S.split(), "--seed", "-3"], "seed must be an integer >= 0"),
    ("cli-seed-big", lambda t: [*S.split(), "--seed", str(2**32)], "<= 4294967295"),
    ("cli-replicates-0", lambda t: [*S.split(), "--replicates", "0"], "--replicates"),
    ("cli-memory", lambda t: [*S.split(), "--max-batch-memory", "lots"], "lots"),
    # 8. folders that cannot hold results or the cache
    ("results-is-file", lambda t: [*S.split(), "--results-dir", _a_file(t)], "is a file"),
    (
        "results-under-file",
        lambda t: [*S.split(), "--results-dir", _a_file(t) + "/r"],
        "lies under a file",
    ),
    ("cache-is-file", lambda t: [*S.split(), "--cache-dir", _a_file(t)], "is a file"),
    (
        "cache-under-file",
        lambda t: [*S.split(), "--cache-dir", _a_file(t) + "/c"],
        "lies under a file",
    ),
    # sysfs refuses a new folder and a new file to every user, root included
    (
        "results-not-creatable",
        lambda t: [*S.split(), "--results-dir", "/sys/binsal-results"],
        "cannot be created",
    ),
    (
        "results-read-only",
        lambda t: [*S.split(), "--results-dir", "/sys/kernel"],
        "is not writable",
    ),
    ("cache-read-only", lambda t: [*S.split(), "--cache-dir", "/sys/kernel"], "is not writable"),
    # 9. corrupt history
    ("history-corrupt", lambda t: ["history", "--history", _history(t)], "not a readable SQLite"),
    (
        "compare-history-corrupt",
        lambda t: ["compare", "x", "y", "--history", _history(t)],
        "not a readable SQLite",
    ),
    # 11. folders that are not binsal runs
    ("compare-foreign-csv", lambda t: ["compare", *_foreign(t)], "no column benchmark"),
    ("compare-broken-manifest", lambda t: ["compare", *_broken_manifest(t)], "not readable JSON"),
    # 12. a data source the trained models cannot use
    (
        "folder-source-synthetic-models",
        lambda t: [
            "--profile",
            _profile(t, ("[data]", '[data]\nsource = "folder"\npath = "/tmp"')),
        ],
        "train on the synthetic data",
    ),
    # 14. values that used to be ignored
    ("cli-n-images-0", lambda t: [*S.split(), "--n-images", "0"], "n_images must be"),
    ("cli-methods-empty", lambda t: [*S.split(), "--methods", ","], "at least one"),
    ("cli-models-empty", lambda t: [*S.split(), "--models", " , "], "at least one"),
    # 15. untrained models
    (
        "epochs-neg",
        lambda t: [
            "--profile",
            _profile(t, ("epochs_fp = 2", "epochs_fp = -1"), ("epochs_bnn = 2", "epochs_bnn = -1")),
        ],
        "epochs_fp must be an integer >= 1",
    ),
    # 16. a string where a list is expected
    (
        "names-string",
        lambda t: [
            "--profile",
            _profile(
                t, ('names = ["vgg_fp", "vgg_bnn", "resnet_fp", "resnet_bnn"]', 'names = "vgg_fp"')
            ),
        ],
        "names must be a list of strings",
    ),
    # 17. unknown names, before TensorFlow and the data set
    ("unknown-profile", lambda t: ["--profile", "nope"], "known profiles: default"),
    ("unknown-model", lambda t: [*S.split(), "--models", "vgg_fp,nope"], "known models:"),
    ("unknown-method", lambda t: [*S.split(), "--methods", "nope"], "known methods:"),
    ("unknown-benchmark", lambda t: [*S.split(), "--benchmarks", "nope"], "known benchmarks:"),
    ("unknown-option", lambda t: [*S.split(), "--n-imagez", "3"], "unrecognized arguments"),
]


@pytest.mark.parametrize("args, expected", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_one_line_exit_2_within_10_s(args, expected, tmp_path):
    argv = args(tmp_path)
    if "--results-dir" not in argv and argv[0] not in ("history", "compare"):
        argv += ["--results-dir", str(tmp_path / "results")]
    if "--cache-dir" not in argv and argv[0] not in ("history", "compare"):
        argv += ["--cache-dir", str(tmp_path / "cache")]
    if argv[0] == "compare":
        argv += ["--results-dir", str(tmp_path / "results")]
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "binsal", *argv], capture_output=True, text=True, timeout=60
    )
    elapsed = time.perf_counter() - start
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert lines[0].startswith("binsal"), lines[0]
    assert expected in lines[0], lines[0]
    assert not (tmp_path / "cache" / "models").exists()  # no work was done
    assert elapsed < 10, f"{elapsed:.1f} s"


def test_version_and_help_have_no_markup():
    from binsal import __version__

    out = subprocess.run(
        [sys.executable, "-m", "binsal", "--version"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and out.stdout.strip() == f"binsal {__version__}"
    for argv in (["--help"], ["run", "--help"], ["compare", "--help"]):
        text = subprocess.run(
            [sys.executable, "-m", "binsal", *argv], capture_output=True, text=True, timeout=60
        ).stdout
        assert "``" not in text and ":func:" not in text, argv
    text = subprocess.run(
        [sys.executable, "-m", "binsal", "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    assert "16 min" in text  # what a bare `binsal run` costs
