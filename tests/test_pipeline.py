"""The smoke profile end to end: outputs, cache reuse, resume and clear CLI errors."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from binsal.core.profile import load_profile
from binsal.core.schema import RESULT_COLUMNS
from binsal.pipeline import run_suite

pytestmark = pytest.mark.slow


def quick_profile(**changes):
    """The smoke profile reduced to one cheap benchmark, for the cache/resume tests."""
    p = load_profile("smoke")
    sal = replace(p.saliency, methods=("gradient", "gradcam", "random"))
    return replace(p, benchmarks=("rank_correlation",), saliency=sal, **changes)


def test_outputs_exist_and_latest_points_at_run(smoke_run):
    run_dir, results, _ = smoke_run
    for name in ("results.csv", "manifest.json", "report.html"):
        assert (run_dir / name).is_file(), name
    assert (results / "latest").resolve() == run_dir.resolve()


def test_csv_is_tidy_with_ci_n_and_direction(smoke_run):
    run_dir, _, _ = smoke_run
    df = pd.read_csv(run_dir / "results.csv")
    assert set(RESULT_COLUMNS) <= set(df.columns)
    assert {"spearman", "kendall", "top10_overlap"} <= set(df["metric"])
    assert set(df["direction"]) <= {"higher", "lower", "none"}
    finite = df[np.isfinite(df["value"])]
    assert (finite["n"] > 0).all()
    # a single unit has no interval (NaN bounds, ci_method "none"); every other interval holds
    # its value and is not collapsed unless its values are all equal ("constant")
    single = finite["ci_method"] == "none"
    assert (finite.loc[single, "n"] == 1).all()
    assert finite.loc[single, ["ci_low", "ci_high"]].isna().all().all()
    rest = finite[~single]
    assert (rest["ci_low"] <= rest["value"] + 1e-12).all()
    assert (rest["value"] <= rest["ci_high"] + 1e-12).all()
    zero = rest[(rest["ci_high"] - rest["ci_low"] == 0) & (rest["n"] > 1)]
    on_grid = zero["params"].str.contains('"criterion"')  # arg-optimum sigma: a grid value
    assert set(zero.loc[~on_grid, "ci_method"]) <= {"constant"}
    assert set(df["ci_method"].dropna()) <= {"bootstrap", "wilson", "t", "constant", "none"}
    matched = df[(df["family"] == "FP-BNN") & (df["pair"] != "")]
    assert set(matched["pair"].dropna()) == {"vgg", "resnet"}
    assert {"gradient", "smoothgrad", "gradcam"} <= set(matched["method"])
    assert "guided_backprop" not in set(matched["method"])  # undefined through larq's sign


def test_manifest_records_versions_seeds_timings_accuracy(smoke_run):
    run_dir, _, _ = smoke_run
    m = json.loads((run_dir / "manifest.json").read_text())
    libs = m["library_versions"]
    for pkg in ("python", "tensorflow-cpu", "keras", "larq", "larq-zoo", "tf-keras-vis", "numpy"):
        assert pkg in libs
    assert m["profile"]["name"] == "smoke"
    assert m["seeds"]["profile"] == 0
    assert m["environment"]["git_commit"]
    assert m["environment"]["cpu"]
    assert {"data", "saliency maps", "benchmark rank_correlation", "report"} <= set(
        m["stage_seconds"]
    )
    rss = m["stage_peak_rss_mb"]  # the process's peak so far, at each stage's end
    assert set(rss) == set(m["stage_seconds"])
    assert max(rss.values()) == rss["report"]  # the last stage: a peak never falls
    assert 100 < rss["report"] < 64 * 1024  # MB: TensorFlow loaded, and not a unit mix-up
    assert set(m["test_accuracy"]) == {"vgg_fp", "vgg_bnn", "resnet_fp", "resnet_bnn"}
    assert all(0.0 <= a <= 1.0 for a in m["test_accuracy"].values())


def test_report_is_self_contained(smoke_run):
    run_dir, _, _ = smoke_run
    html = (run_dir / "report.html").read_text()
    assert "FP vs BNN rank correlation" in html and "Qualitative maps" in html
    assert "correct" in html or "data:image/png;base64," in html
    assert "http://" not in html and "https://" not in html


def test_second_run_reuses_model_cache(smoke_run, monkeypatch):
    """... and, with every model a cache hit, never decodes the training images (the labels
    only: ``ShapesData.x_train`` is read on first use)."""
    from binsal.datasets import synthetic

    read: list[str] = []
    real = synthetic._read_split  # noqa: SLF001 - counted, not replaced

    def counted(builder, split):
        read.append(split)
        return real(builder, split)

    monkeypatch.setattr(synthetic, "_read_split", counted)
    _, results, cache = smoke_run
    # the benchmarks that train (on a miss) run again (another n_boot: other cells) on the
    # smoke run's cached models, permuted-label models, ROAR retrainings and ladder rungs
    trains = ("rank_correlation", "data_randomization", "roar", "binarization_ladder")
    profile = replace(load_profile("smoke"), benchmarks=trains, n_boot=150)
    run2 = run_suite(profile, results_dir=results, cache_dir=cache, quiet=True)
    m = json.loads((run2 / "manifest.json").read_text())
    assert {v["cache"] for v in m["models"].values()} == {"hit"}
    assert read == ["test"]
    first = pd.read_csv(smoke_run[0] / "results.csv")
    second = pd.read_csv(run2 / "results.csv")
    assert set(second["benchmark"]) == set(trains)
    second = second[second["benchmark"] == "rank_correlation"]
    keys = ["benchmark", "model", "method", "metric"]
    merged = second.merge(first, on=keys, suffixes=("_2", "_1"))
    assert len(merged) == len(second) > 0
    np.testing.assert_allclose(merged["value_2"], merged["value_1"], rtol=1e-5, atol=1e-6)


def test_interrupted_run_resumes(smoke_run, tmp_path):
    _, results, cache = smoke_run
    run_dir = run_suite(quick_profile(), results_dir=tmp_path, cache_dir=cache, quiet=True)
    # simulate an interruption after the saliency stage: the run is not complete
    state = json.loads((run_dir / "state.json").read_text())
    (run_dir / "state.json").write_text(json.dumps({**state, "status": "running"}))
    (run_dir / "results.csv").unlink()
    maps_before = sorted(p.name for p in (run_dir / "maps").iterdir())
    resumed = run_suite(quick_profile(), results_dir=tmp_path, cache_dir=cache, quiet=True)
    assert resumed == run_dir
    assert (resumed / "results.csv").is_file()
    assert sorted(p.name for p in (run_dir / "maps").iterdir()) == maps_before


@pytest.mark.parametrize("damage", ["truncated", "random bytes"])
def test_a_truncated_part_is_recomputed_on_resume(smoke_run, tmp_path, capfd, damage):
    """A part cut short (disk full, a copy interrupted) or overwritten with garbage fails its
    checksum and is recomputed with a notice, never silently reused with half its rows."""
    _, _, cache = smoke_run
    run_dir = run_suite(quick_profile(), results_dir=tmp_path, cache_dir=cache, quiet=True)
    full = pd.read_csv(run_dir / "results.csv")
    part = run_dir / "parts" / "rank_correlation.csv"
    if damage == "truncated":
        lines = part.read_text().splitlines(keepends=True)
        part.write_text("".join(lines[: len(lines) // 2]))
    else:
        part.write_bytes(np.random.default_rng(0).bytes(5000))
    state = json.loads((run_dir / "state.json").read_text())
    (run_dir / "state.json").write_text(json.dumps({**state, "status": "running"}))
    capfd.readouterr()
    resumed = run_suite(quick_profile(), results_dir=tmp_path, cache_dir=cache, quiet=True)
    assert "benchmark rank_correlation: its saved part is incomplete; redone" in (
        capfd.readouterr().err
    )
    assert resumed == run_dir
    again = pd.read_csv(run_dir / "results.csv")
    assert len(again) == len(full) > 10
    pd.testing.assert_frame_equal(again.drop(columns="run_id"), full.drop(columns="run_id"))


def test_part_sidecar_guards_the_rows(tmp_path):
    from binsal.pipeline import read_part, write_part

    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["x", "y", "z"]})
    part = tmp_path / "b.csv"
    write_part(part, frame)
    pd.testing.assert_frame_equal(read_part(part), frame)
    part.write_text(part.read_text()[:-4])  # truncated
    assert read_part(part) is None
    write_part(part, frame)
    part.with_suffix(".json").unlink()  # a part without its sidecar is not trusted
    assert read_part(part) is None


def test_corrupt_model_cache_is_detected_and_rebuilt(smoke_run, tmp_path):
    _, _, cache = smoke_run
    entry = next((cache / "models").glob("vgg_fp-trained-*"))
    weights = entry / "weights.h5"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.warns(UserWarning, match="corrupt"):
        run_suite(
            quick_profile(models=("vgg_fp",)), results_dir=tmp_path, cache_dir=cache, quiet=True
        )
    assert weights.stat().st_size > 100


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--profile", "nope"], "known profiles: default"),
        (["--profile", "smoke", "--models", "vgg_fp,nope"], "known models:"),
        (["--profile", "smoke", "--methods", "nope"], "known methods:"),
        (["--profile", "smoke", "--benchmarks", "nope"], "known benchmarks:"),
    ],
)
def test_cli_unknown_names_exit_nonzero_with_one_line(args, expected, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "binsal", *args, "--results-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert expected in lines[0]
    assert "Traceback" not in proc.stderr


def test_replicates_train_each_seed_and_merge_rows_hierarchically(smoke_run, tmp_path):
    """Two training seeds: each model trained twice, every benchmark run on both (but one
    limited to the first), rows merged with a two-level interval over (seeds, images); a
    resumed run reuses each replicate's parts and gives the same table."""
    _, _, cache = smoke_run
    base = quick_profile()
    profile = replace(
        base,
        train=replace(base.train, replicates=2),
        benchmarks=("rank_correlation", "localization"),
        benchmark_options={"localization": {"replicates": 1}},
    )
    run_dir = run_suite(profile, results_dir=tmp_path, cache_dir=cache, quiet=True)
    table = pd.read_csv(run_dir / "results.csv")
    per_seed = pd.read_csv(run_dir / "replicates.csv")
    assert sorted(per_seed.replicate_seed.unique()) == [0, 1]
    assert set(per_seed[per_seed.replicate_seed == 1].benchmark) == {"rank_correlation"}
    rank = table[table.benchmark == "rank_correlation"]
    assert (rank.n_groups == 2).all()
    assert len(rank) == len(
        per_seed[(per_seed.replicate_seed == 0) & (per_seed.benchmark == "rank_correlation")]
    )
    assert set(rank.ci_method) <= {"hierarchical", "constant", "wilson"}
    assert "hierarchical" in set(rank.ci_method)
    loc = table[table.benchmark == "localization"]
    assert len(loc) and (loc.n_groups == 1).all()  # limited to one replicate, and says so
    one = per_seed[(per_seed.replicate_seed == 0) & (per_seed.benchmark == "rank_correlation")]
    two = per_seed[(per_seed.replicate_seed == 1) & (per_seed.benchmark == "rank_correlation")]
    assert (rank.n.to_numpy() == one.n.to_numpy() + two.n.to_numpy()).all()  # units of both
    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["seeds"]["training"] == [0, 1]
    for name, model in m["models"].items():
        accs = model["test_accuracy_seeds"]
        assert len(accs) == 2 and model["test_accuracy_min"] == min(accs), name
    # the two seeds trained different weights: their own scores differ
    s0 = per_seed[per_seed.replicate_seed == 0].value.to_numpy()
    s1 = per_seed[(per_seed.replicate_seed == 1)].value.to_numpy()
    assert not np.allclose(s0[: len(s1)], s1, equal_nan=True)
    # interrupted after the second seed's rank_correlation: resumes to the same table
    state = json.loads((run_dir / "state.json").read_text())
    (run_dir / "state.json").write_text(json.dumps({**state, "status": "running"}))
    (run_dir / "results.csv").unlink()
    (run_dir / "parts" / "seed1" / "rank_correlation.units.npz").unlink()
    resumed = run_suite(profile, results_dir=tmp_path, cache_dir=cache, quiet=True)
    assert resumed == run_dir
    again = pd.read_csv(run_dir / "results.csv")
    pd.testing.assert_frame_equal(again, table)


def test_a_second_process_never_joins_a_live_run(smoke_run, tmp_path):
    """An unfinished run folder locked by a live process is not resumed by another ``binsal
    run``: that one starts its own folder (two runs, two history records); once the holder is
    gone (even killed) the folder resumes."""
    import sqlite3

    _, _, cache = smoke_run
    first = run_suite(quick_profile(), results_dir=tmp_path, cache_dir=cache, quiet=True)
    state = json.loads((first / "state.json").read_text())
    (first / "state.json").write_text(json.dumps({**state, "status": "running"}))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1], 'a+'); "
            "fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(600)",
            str(first / ".lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        second = run_suite(quick_profile(), results_dir=tmp_path, cache_dir=cache, quiet=True)
        assert second != first
    finally:
        holder.kill()
        holder.wait()
    with sqlite3.connect(tmp_path / "history.sqlite") as db:
        runs = {r[0] for r in db.execute("SELECT run_id FROM runs")}
    assert {first.name, second.name} <= runs
    resumed = run_suite(quick_profile(), results_dir=tmp_path, cache_dir=cache, quiet=True)
    assert resumed == first


def test_a_warm_run_only_rebuilds_what_changed(smoke_run, tmp_path):
    """A second run on the same cache takes every benchmark cell and map it already has (same
    content key: options, weights, images, versions, code) and computes only what changed: here
    one method added to one benchmark's options."""
    _, _, cache = smoke_run
    profile = replace(quick_profile(), benchmarks=("rank_correlation", "localization"))
    first = run_suite(profile, results_dir=tmp_path / "a", cache_dir=cache, quiet=True)
    second = run_suite(profile, results_dir=tmp_path / "b", cache_dir=cache, quiet=True)
    stages = json.loads((second / "manifest.json").read_text())["stage_seconds"]
    assert not [s for s in stages if s.startswith("benchmark ")], stages  # all from the cache
    a = pd.read_csv(first / "results.csv").drop(columns="run_id")
    b = pd.read_csv(second / "results.csv").drop(columns="run_id")
    pd.testing.assert_frame_equal(a, b)
    assert sorted(p.name for p in (second / "maps").iterdir()) == sorted(
        p.name for p in (first / "maps").iterdir()
    )
    changed = replace(profile, benchmark_options={"localization": {"n_images": 4}})
    third = run_suite(changed, results_dir=tmp_path / "c", cache_dir=cache, quiet=True)
    stages = json.loads((third / "manifest.json").read_text())["stage_seconds"]
    assert [s for s in stages if s.startswith("benchmark ")] == ["benchmark localization"]


def test_a_failing_benchmark_never_loses_the_others_and_is_retried(
    smoke_run, tmp_path, monkeypatch
):
    """One benchmark that raises is left out with its traceback on disk and in the manifest;
    the others are scored, the CLI exits 1 naming it, and the next run resumes the same folder
    and computes only the failed one."""
    from binsal.benchmarks import BENCHMARKS
    from binsal.cli import main

    _, _, cache = smoke_run
    broken = BENCHMARKS["rank_correlation"]

    def boom(self, ctx):
        raise RuntimeError("injected failure")

    monkeypatch.setattr(broken, "run", boom)
    argv = ["run", "--profile", "smoke", "--models", "vgg_fp,vgg_bnn", "--methods", "gradient"]
    argv += ["--benchmarks", "rank_correlation,gradcam_pathologies", "--replicates", "1"]
    argv += ["--results-dir", str(tmp_path), "--cache-dir", str(cache), "--quiet"]
    assert main(argv) == 1
    (run_dir,) = (p for p in tmp_path.iterdir() if p.is_dir() and not p.is_symlink())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["failures"] == [
        {"benchmark": "rank_correlation", "seed": 0, "error": "RuntimeError: injected failure"}
    ]
    assert "injected failure" in (run_dir / "parts" / "rank_correlation.error.txt").read_text()
    table = pd.read_csv(run_dir / "results.csv")
    assert set(table["benchmark"]) == {"gradcam_pathologies"}
    assert json.loads((run_dir / "state.json").read_text())["status"] == "failed"
    monkeypatch.undo()
    assert main(argv) == 0
    stages = json.loads((run_dir / "manifest.json").read_text())["stage_seconds"]
    assert [s for s in stages if s.startswith("benchmark ")] == ["benchmark rank_correlation"]
    assert set(pd.read_csv(run_dir / "results.csv")["benchmark"]) == {
        "rank_correlation",
        "gradcam_pathologies",
    }
    assert not (run_dir / "parts" / "rank_correlation.error.txt").exists()


def test_ctrl_c_that_tensorflow_wrapped_stops_the_run_and_is_no_failure(
    smoke_run, tmp_path, monkeypatch, capsys, sigint_raises
):
    """SIGINT inside TensorFlow's tracing surfaces as a SystemError / StagingError: the run still
    stops as Ctrl-C (130, the one resume line), records no failed benchmark, and resumes."""
    import os
    import shutil
    import signal
    import time

    from binsal.benchmarks import BENCHMARKS
    from binsal.cli import main

    # the trained models without the benchmark cells other tests may have cached
    cache = tmp_path / "cache"
    shutil.copytree(smoke_run[2], cache, ignore=shutil.ignore_patterns("cells"))

    def interrupted_while_tracing(self, ctx):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except KeyboardInterrupt as exc:
            raise SystemError("returned a result with an exception set") from exc

    monkeypatch.setattr(BENCHMARKS["rank_correlation"], "run", interrupted_while_tracing)
    argv = ["run", "--profile", "smoke", "--models", "vgg_fp,vgg_bnn", "--methods", "gradient"]
    argv += ["--benchmarks", "gradcam_pathologies,rank_correlation", "--replicates", "1"]
    argv += ["--results-dir", str(tmp_path / "r"), "--cache-dir", str(cache), "--quiet"]
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (
        "binsal: interrupted; finished stages are kept and the next run resumes"
    )
    assert "FAILED" not in err and "SystemError" not in err, err
    (run_dir,) = (p for p in (tmp_path / "r").iterdir() if p.is_dir() and not p.is_symlink())
    assert not list((run_dir / "parts").glob("*.error.txt"))
    assert not (run_dir / "manifest.json").exists()
    monkeypatch.undo()
    assert main(argv) == 0  # the same folder, resumed: only the interrupted benchmark runs
    stages = json.loads((run_dir / "manifest.json").read_text())["stage_seconds"]
    assert [s for s in stages if s.startswith("benchmark ")] == ["benchmark rank_correlation"]


@pytest.mark.parametrize("where", ["results", "cache"])
def test_a_full_disk_is_one_line_and_keeps_finished_runs(
    smoke_run, tmp_path, monkeypatch, capsys, where
):
    """ENOSPC while writing results (a part) or the cache (a trained model): one line naming
    the file, exit 2; the run finished before is intact."""
    import errno

    from binsal.cli import main

    finished, results, cache = smoke_run
    before = (finished / "results.csv").read_bytes()

    def full(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    if where == "results":
        monkeypatch.setattr("binsal.pipeline.write_part", full)
        seed = "0"
    else:  # a new training seed: the model cache must take a new entry
        monkeypatch.setattr("binsal.models.training.write_entry", full)
        seed = "11"
    argv = ["run", "--profile", "smoke", "--models", "vgg_fp", "--methods", "gradient"]
    argv += ["--benchmarks", "gradcam_pathologies", "--replicates", "1", "--seed", seed]
    argv += ["--results-dir", str(results), "--cache-dir", str(cache), "--quiet", "--fresh"]
    capsys.readouterr()
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "No space left on device" in lines[0], lines
    assert "--results-dir" in lines[0]
    assert (finished / "results.csv").read_bytes() == before


def test_parts_read_back_bit_identical(tmp_path):
    """Resumed values are the values written: floats go through the CSV losslessly."""
    from binsal.pipeline import read_part, write_part

    rng = np.random.default_rng(0)
    values = np.concatenate([rng.random(500), rng.normal(size=500) * 1e-17, [np.nan, 1 / 3]])
    frame = pd.DataFrame({"value": values, "name": ["x"] * len(values)})
    part = tmp_path / "p.csv"
    write_part(part, frame)
    back = read_part(part)
    assert back is not None
    a, b = frame["value"].to_numpy(), back["value"].to_numpy()
    assert a.tobytes() == b.tobytes()


def test_two_processes_on_one_fresh_cache_both_succeed(tmp_path):
    """Two runs started at once on one empty cache: the data set build and the model training
    take turns (file locks), the second reuses what the first wrote; both finish, and their
    results agree."""
    argv = [sys.executable, "-m", "binsal", "run", "--profile", "smoke", "--models", "vgg_fp"]
    argv += ["--methods", "gradient", "--benchmarks", "gradcam_pathologies", "--replicates", "1"]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--quiet"]
    procs = [
        subprocess.Popen(
            [*argv, "--results-dir", str(tmp_path / f"r{i}")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=900) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-2000:]
    a, b = (pd.read_csv(tmp_path / f"r{i}" / "latest" / "results.csv") for i in range(2))
    pd.testing.assert_frame_equal(a.drop(columns="run_id"), b.drop(columns="run_id"))
    (entry,) = (tmp_path / "cache" / "models").glob("vgg_fp-trained-*")
    assert json.loads((entry / "meta.json").read_text())["test_accuracy"] > 0


@pytest.mark.parametrize("stage", ["==> model vgg_bnn", "==> saliency maps"])
def test_ctrl_c_stops_within_seconds_and_the_next_run_resumes(tmp_path, stage):
    """SIGINT during training or the saliency stage: exit 130 within a few seconds, one line
    saying the run resumes, no traceback or teardown noise; the next run resumes that folder."""
    import signal
    import time

    argv = [sys.executable, "-m", "binsal", "run", "--profile", "smoke", "--replicates", "1"]
    argv += ["--models", "vgg_fp,vgg_bnn", "--methods", "gradient,smoothgrad"]
    argv += ["--benchmarks", "rank_correlation", "--results-dir", str(tmp_path / "r")]
    argv += ["--cache-dir", str(tmp_path / "cache")]
    # a CI runner may start the suite with SIGINT ignored (a background job): the child gets
    # the default disposition back, so that Python turns SIGINT into KeyboardInterrupt
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith(stage):
            break
    else:
        pytest.fail(f"never reached {stage!r}: {''.join(seen)[-2000:]}")
    time.sleep(0.5)
    sent = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=120)
    lag = time.perf_counter() - sent
    assert proc.returncode == 130, rest
    assert lag < 10, f"{lag:.1f} s"
    tail = [line for line in rest.splitlines() if line.strip() and "\r" not in line]
    assert tail[-1] == "binsal: interrupted; finished stages are kept and the next run resumes"
    assert "Traceback" not in rest and "Error" not in rest, rest[-2000:]
    again = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resuming unfinished run" in again.stderr
    # stdout holds the results only; every progress line, bar and notice went to stderr
    heads = [line.split(":", 1)[0] for line in again.stdout.splitlines()]
    assert heads == ["results", "manifest", "report"], again.stdout
