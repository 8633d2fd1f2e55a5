"""The run as cells: the graph's order and content, cluster and device choices, CLI errors, and
the in-process executor giving the plain run's results."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from binsal.benchmarks.roar import ROAR
from binsal.cells import (
    CELL_LOG,
    InProcessExecutor,
    assign_devices,
    parse_cluster,
    plan_cells,
)
from binsal.core.errors import BinsalError
from binsal.core.profile import load_profile
from binsal.pipeline import RunPlan, resolve_profile, run_suite
from tests.conftest import QUICK_BENCHMARKS, QUICK_METHODS, warm_models


def smoke_plan(seeds: tuple[int, ...] = (0,), **changes) -> RunPlan:
    profile = resolve_profile(replace(load_profile("smoke"), **changes))
    return RunPlan(
        profile=profile,
        cache_root=Path("/nonexistent/cache"),
        run_dir=Path("/nonexistent/run"),
        env_key="e",
        seeds=seeds,
        bundle=None,
        deterministic=True,
    )


def test_graph_orders_every_cell_after_its_dependencies():
    plan = smoke_plan()
    cells = plan_cells(plan)
    seen: set[str] = set()
    for c in cells:
        assert set(c.deps) <= seen, c.name
        seen.add(c.name)
    assert len(seen) == len(cells)  # names are unique
    p = plan.profile
    kinds = [c.kind for c in cells]
    assert kinds.count("model") == len(p.models)
    assert kinds.count("maps") == len(p.models) * len(p.saliency.methods)
    assert kinds.count("benchmark") == len(p.benchmarks)
    roar = ROAR().subcells(p, list(p.models))
    assert [c.args[1] for c in cells if c.kind == "subcell"] == roar
    bench = {c.args[0]: c for c in cells if c.kind == "benchmark"}
    maps = {c.name for c in cells if c.kind == "maps"}
    assert maps <= set(bench["rank_correlation"].deps)  # a benchmark reads every map
    assert {f"roar/s0/{x}" for x in roar} <= set(bench["roar"].deps)
    assert not {f"roar/s0/{x}" for x in roar} & set(bench["localization"].deps)
    for c in cells:
        if c.kind == "maps":  # a map waits for its own model only
            assert c.deps == (f"model/s0/{c.args[0]}",)


def test_replicates_limit_benchmarks_and_bundles_need_no_training():
    options = load_profile("smoke").benchmark_options
    plan = smoke_plan(
        seeds=(0, 1),
        benchmarks=("rank_correlation", "roar"),
        benchmark_options={**options, "roar": {**options["roar"], "replicates": 1}},
    )
    cells = plan_cells(plan)
    assert {c.name for c in cells if c.kind == "benchmark"} == {
        "bench/s0/rank_correlation",
        "bench/s0/roar",  # ROAR on its first replicate only (its option replicates = 1)
        "bench/s1/rank_correlation",
    }
    assert {c.seed for c in cells if c.kind == "model"} == {0, 1}
    bundled = plan_cells(replace(plan, bundle="/some/bundle"))
    assert not [c for c in bundled if c.kind == "model"]
    assert all(c.deps == () for c in bundled if c.kind == "maps")


def test_cluster_specs():
    assert parse_cluster("local:2") == ("local", 2)
    assert parse_cluster("slurm:16") == ("slurm", 16)
    for bad in ("local", "local:0", "local:x", "k8s:2", ""):
        with pytest.raises(BinsalError, match="allowed: local:N or slurm:N"):
            parse_cluster(bad)


def test_device_assignment():
    assert assign_devices("cpu", 4, 2) == ["-1", "-1"]
    assert assign_devices("gpu", 2, 0) == ["0", "1"]  # one worker per GPU
    assert assign_devices("gpu", 4, 2) == ["0", "1"]  # at most the workers asked for
    assert assign_devices("auto", 0, 3) == ["-1", "-1", "-1"]
    assert assign_devices("auto", 1, 0) == ["0"]
    with pytest.raises(BinsalError, match="no GPU is visible"):
        assign_devices("gpu", 0, 2)
    with pytest.raises(BinsalError, match="allowed: cpu, gpu, auto"):
        assign_devices("tpu", 1, 1)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "binsal", "run", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cluster", "local:0"], "--cluster 'local:0' is not a cluster; allowed: local:N"),
        (["--cluster", "local:2", "--scheduler", "tcp://x:1"], "give one of --cluster"),
        (["--threads-per-worker", "2"], "--threads-per-worker goes with --cluster"),
        (["--scheduler-file", "/no/such/file"], "--scheduler-file /no/such/file is not a file"),
        (["--cluster", "local:1", "--threads-per-worker", "0"], "--threads-per-worker must be"),
        (["--device", "gpu"], "--device gpu: no GPU is visible"),
        (["--shard-images", "4"], "--shard-images goes with --cluster"),
        (["--cluster", "local:1", "--shard-images", "-1"], "--shard-images must be >= 0"),
        (
            ["--cluster", "local:1", "--shard-images", "6"],
            "--shard-images must be a multiple of the profile's map_block, 4",
        ),
    ],
)
def test_bad_scaling_options_are_one_line_and_exit_2(tmp_path, args, message):
    out = cli("--profile", "smoke", *args, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "results").exists()  # checked before any work


@pytest.mark.slow
def test_in_process_cells_give_the_plain_run(quick_reference, tmp_path):
    """Cells then the stages (cache filled cell by cell) equal the stages alone (the CLI's
    in-process run on the same models); a second execution of the same plan finds every cell
    in the cache."""
    reference, source = quick_reference
    p = load_profile("smoke")
    sal = replace(p.saliency, methods=QUICK_METHODS)
    profile = replace(p, benchmarks=QUICK_BENCHMARKS, saliency=sal)
    cache = warm_models(source, tmp_path / "cache")
    celled = run_suite(
        profile,
        results_dir=tmp_path / "b",
        cache_dir=cache,
        quiet=True,
        executor=InProcessExecutor(quiet=True),
    )
    a = pd.read_csv(reference / "results.csv").drop(columns="run_id")
    b = pd.read_csv(celled / "results.csv").drop(columns="run_id")
    pd.testing.assert_frame_equal(a, b)
    log = [json.loads(line) for line in (celled / CELL_LOG).read_text().splitlines()]
    status = {r["cell"]: r["status"] for r in log}
    assert {s for c, s in status.items() if c.startswith("model/")} == {"hit"}
    assert {c: s for c, s in status.items() if not c.startswith("model/") and s != "computed"} == {}
    assert len(log) == len(plan_cells(smoke_plan(benchmarks=profile.benchmarks, saliency=sal)))
    manifest = json.loads((celled / "manifest.json").read_text())
    assert manifest["execution"]["executor"] == "in-process"
    assert sum(manifest["execution"]["cells"].values()) == len(log)
    again = run_suite(
        profile,
        results_dir=tmp_path / "c",
        cache_dir=cache,
        quiet=True,
        executor=InProcessExecutor(quiet=True),
    )
    log2 = [json.loads(line) for line in (again / CELL_LOG).read_text().splitlines()]
    assert {r["status"] for r in log2} == {"hit"}


class FakeClient:
    """What ``preflight`` asks of a Dask client: ``run`` on every worker."""

    def __init__(self, change: dict):
        self.change = change

    def run(self, fn, marker):
        from binsal.cluster import worker_facts

        facts = worker_facts(marker)  # this process as a worker that sees what the driver sees
        return {"tcp://ok:1": dict(facts), "tcp://odd:2": {**facts, **self.change(facts)}}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: {"cache_token": None}, "worker tcp://odd:2 cannot see the cache folder"),
        (
            lambda f: {"versions": {**f["versions"], "tensorflow_runtime": "2.13.1"}},
            "worker tcp://odd:2 runs tensorflow_runtime 2.13.1, the driver 2.15",
        ),
        (lambda f: {"versions": {**f["versions"], "larq": "0.13.3"}}, "runs larq 0.13.3"),
        (lambda f: {"code": "0" * 16}, "worker tcp://odd:2 runs other binsal code"),
    ],
)
def test_preflight_stops_on_a_worker_that_differs(tmp_path, change, message):
    from binsal.cluster import preflight

    plan = replace(smoke_plan(), cache_root=tmp_path)
    with pytest.raises(BinsalError, match=message):
        preflight(FakeClient(change), plan)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []  # the marker is removed
    # the same runtime from the GPU wheel instead of tensorflow-cpu passes
    gpu_wheel = {"tensorflow": "2.15.1", "tensorflow-cpu": "absent"}
    seen = preflight(FakeClient(lambda f: {"versions": {**f["versions"], **gpu_wheel}}), plan)  # type: ignore[arg-type]
    assert set(seen) == {"tcp://ok:1", "tcp://odd:2"}


def test_without_dask_the_cluster_options_say_what_to_install(tmp_path, monkeypatch):
    import argparse

    from binsal import cli

    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails as if not installed
    monkeypatch.delitem(sys.modules, "binsal.cluster", raising=False)
    args = argparse.Namespace(
        cluster="local:2",
        scheduler=None,
        scheduler_file=None,
        threads_per_worker=None,
        shard_images=None,
        device="cpu",
        model=None,
        quiet=True,
    )
    with pytest.raises(BinsalError, match=r"pip install 'binsal\[dask\]'"):
        cli._executor(args)


def test_map_shards_in_the_graph():
    from binsal.cells import shard_bounds

    assert shard_bounds(8, 0) == [(0, 8)] and shard_bounds(8, 8) == [(0, 8)]
    assert shard_bounds(8, 3) == [(0, 3), (3, 6), (6, 8)]
    plan = smoke_plan(benchmarks=("rank_correlation",))  # smoke: 8 evaluation images
    cells = {c.name: c for c in plan_cells(plan, shard_images=3)}
    shards = [c for c in cells.values() if c.kind == "shard"]
    p = plan.profile
    assert len(shards) == 3 * len(p.models) * len(p.saliency.methods)
    whole = cells["maps/s0/vgg_fp/smoothgrad"]
    assert whole.deps == tuple(f"maps/s0/vgg_fp/smoothgrad/{x}" for x in ("0-3", "3-6", "6-8"))
    assert cells["maps/s0/vgg_fp/smoothgrad/3-6"].args == ("vgg_fp", "smoothgrad", "3", "6")
    assert cells["maps/s0/vgg_fp/smoothgrad/3-6"].deps == ("model/s0/vgg_fp",)
    assert not [c for c in plan_cells(plan, shard_images=8) if c.kind == "shard"]


def test_slurm_jobs_run_one_cell_at_a_time_on_the_threads_asked_for(monkeypatch):
    from binsal.cluster import slurm_cluster

    monkeypatch.setenv("BINSAL_SLURM_MEMORY", "24GB")
    cluster = slurm_cluster(8)  # nothing is submitted before scale()
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH --cpus-per-task=8" in script
    assert script.count("--nthreads") == 1 and "--nthreads 1 " in script
    assert "#SBATCH --mem=23G" in script  # dask-jobqueue's rounding of 24GB
