"""Cells on Dask: a local cluster and an external scheduler give the in-process results value for
value (maps byte for byte), on a cold and on a warm model cache; a worker killed mid-cell is
replaced and its cell redone; a killed driver resumes without redoing finished cells; tasks run
on both workers at once with the TensorFlow threads asked for."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from binsal.cells import CELL_LOG
from tests.conftest import QUICK, binsal_run, warm_models

pytestmark = pytest.mark.slow

FAULT_PRELOAD = Path(__file__).parent / "dask_support" / "fault_preload.py"
THREADS = "2"  # an in-process run's TensorFlow threads (binsal.models.determinism)
MEASURED = ("cpu_seconds_per_map", "peak_memory_mb")  # method_cost's timings
VALUES = ["value", "ci_low", "ci_high", "ci_method"]


def assert_same_results(a: Path, b: Path) -> None:
    """results.csv equal value for value (run_id aside) and every map file byte for byte."""
    left = pd.read_csv(a / "results.csv").drop(columns="run_id")
    right = pd.read_csv(b / "results.csv").drop(columns="run_id")
    # method_cost's CPU seconds and memory measure the machine at that moment, not the maps:
    # the same rows, their values left out
    timed = left["metric"].isin(MEASURED)
    assert timed.equals(right["metric"].isin(MEASURED))
    pd.testing.assert_frame_equal(
        left.drop(columns=VALUES), right.drop(columns=VALUES), check_exact=True
    )
    pd.testing.assert_frame_equal(left[~timed], right[~timed], check_exact=True)
    maps_a = sorted(p.name for p in (a / "maps").glob("*.npy"))
    maps_b = sorted(p.name for p in (b / "maps").glob("*.npy"))
    assert maps_a == maps_b and maps_a
    for name in maps_a:
        assert (a / "maps" / name).read_bytes() == (b / "maps" / name).read_bytes(), name


def cell_log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / CELL_LOG).read_text().splitlines()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """A ``dask scheduler`` and two ``dask worker`` processes (one thread each, the fault
    preload in them), as on a cluster; yields (address, folder where faults are armed)."""
    faults = tmp_path_factory.mktemp("faults")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "BINSAL_TEST_FAULTS": str(faults), "TF_CPP_MIN_LOG_LEVEL": "2"}
    dask = [sys.executable, "-m", "dask"]
    procs = [
        subprocess.Popen(
            [*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    worker = [*dask, "worker", address, "--nthreads", "1", "--no-dashboard"]
    for i in range(2):
        procs.append(
            subprocess.Popen(
                [*worker, "--name", f"w{i}", "--preload", str(FAULT_PRELOAD)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    from distributed import Client

    with Client(address, timeout=60) as client:
        client.wait_for_workers(2, timeout=120)
    yield address, faults
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()


def test_local_cluster_equals_in_process_on_a_cold_cache(smoke_run, tmp_path):
    """The smoke profile from nothing on two workers (the data set, every model, map,
    retraining and benchmark): the in-process smoke run's results, maps byte for byte."""
    reference, _, _ = smoke_run
    run = binsal_run(
        ["--profile", "smoke", "--cluster", "local:2", "--threads-per-worker", THREADS],
        tmp_path / "cache",
        tmp_path / "results",
    )
    assert_same_results(reference, run)
    log = cell_log(run)
    assert {r["status"] for r in log} <= {"computed", "undefined"}
    assert {r["status"] for r in log if r["kind"] == "model"} == {"computed"}
    assert {r["intra_op_threads"] for r in log} == {int(THREADS)}  # what was asked, everywhere
    # the local cluster's two workers, by name: one its nanny restarted (a new address) is
    # still the same worker slot, and the manifest counts the restart
    assert {r["worker_name"] for r in log} == {"0", "1"}
    # cells on the two workers ran at the same time (a task stream with overlapping intervals)
    overlap = any(
        a["start"] < b["stop"] and b["start"] < a["stop"]
        for a in log
        for b in log
        if a["worker_name"] != b["worker_name"]
    )
    assert overlap
    manifest = json.loads((run / "manifest.json").read_text())
    ex = manifest["execution"]
    assert ex["executor"] == "dask" and ex["threads_per_worker"] == int(THREADS)
    assert {w["intra_op_threads"] for w in ex["workers"].values()} == {int(THREADS)}
    assert sum(ex["cells"].values()) == len(log)
    addresses = {r["worker"] for r in log}
    assert sum(ex["worker_restarts"].values()) == len(addresses) - 2


def test_local_cluster_equals_in_process_on_a_warm_model_cache(smoke_run, tmp_path):
    """The models come from the cache (trained by the in-process run); maps, retrainings and
    benchmarks are computed on two workers."""
    reference, _, cache = smoke_run
    run = binsal_run(
        ["--profile", "smoke", "--cluster", "local:2"],  # default threads: in-process's
        warm_models(cache, tmp_path / "cache"),
        tmp_path / "r",
    )
    assert_same_results(reference, run)
    log = cell_log(run)
    assert {r["status"] for r in log if r["kind"] == "model"} == {"hit"}
    assert {r["status"] for r in log if r["kind"] != "model"} <= {"computed", "undefined"}
    assert {r["intra_op_threads"] for r in log} == {int(THREADS)}


def test_external_scheduler_equals_in_process(quick_reference, scheduler, tmp_path):
    ref, cache = quick_reference
    address, _ = scheduler
    run = binsal_run(
        [*QUICK, "--scheduler", address],  # default threads: an in-process run's
        warm_models(cache, tmp_path / "cache"),
        tmp_path / "r",
    )
    assert_same_results(ref, run)
    log = cell_log(run)
    assert {r["worker_name"] for r in log} == {"w0", "w1"}
    # the models come from the cache; maps, retrainings and benchmarks are computed there
    assert {r["status"] for r in log if r["kind"] == "model"} == {"hit"}
    assert {r["status"] for r in log if r["kind"] != "model"} <= {"computed", "undefined"}
    assert {r["intra_op_threads"] for r in log} == {int(THREADS)}


def test_a_worker_killed_mid_shard_is_replaced_and_the_shard_redone(
    quick_reference, scheduler, tmp_path
):
    ref, cache = quick_reference
    address, faults = scheduler
    shard = "maps/s0/vgg_bnn/smoothgrad/4-8"  # maps in shards of 4 of the 8 images
    (faults / "kill-maps").write_text(shard)
    run = binsal_run(
        [*QUICK, "--scheduler", address, "--threads-per-worker", THREADS, "--shard-images", "4"],
        warm_models(cache, tmp_path / "cache"),
        tmp_path / "r",
    )
    assert (faults / "fired-maps").is_file()  # the worker did die in that cell
    assert_same_results(ref, run)  # sharded maps equal whole ones, byte for byte
    log = {r["cell"]: r for r in cell_log(run)}
    assert log[shard]["status"] == "computed"
    assert sum(1 for c in log if c.startswith("maps/s0/vgg_bnn/smoothgrad/")) == 2


def test_a_killed_driver_resumes_without_redoing_finished_cells(
    quick_reference, scheduler, tmp_path
):
    ref, cache = quick_reference
    address, _ = scheduler
    cache = warm_models(cache, tmp_path / "cache")
    results = tmp_path / "r"
    args = [*QUICK, "--scheduler", address, "--threads-per-worker", THREADS]
    cmd = [sys.executable, "-m", "binsal", "run", "--quiet", "--results-dir", str(results), *args]
    env = {**os.environ, "BINSAL_CACHE_DIR": str(cache)}
    proc = subprocess.Popen(
        cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    k, computed = 6, []
    deadline = time.monotonic() + 600
    while len(computed) < k and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        logs = list(results.glob(f"*/{CELL_LOG}"))
        if logs:
            lines = logs[0].read_text().splitlines()
            computed = [json.loads(x) for x in lines if '"computed"' in x]
    assert proc.poll() is None and len(computed) >= k, "the run ended before K cells"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = {r["cell"] for r in computed}
    run = binsal_run(args, cache, results)  # resumes the same run folder
    assert_same_results(ref, run)
    attempts = {}
    for r in cell_log(run):
        attempts.setdefault(r["attempt"], []).append(r)
    assert len(attempts) == 2
    last = list(attempts.values())[-1]  # one log, the resumed attempt's lines after the first's
    redone = {r["cell"] for r in last if r["status"] == "computed"} & first
    assert redone == set(), f"finished cells computed again: {sorted(redone)}"
    assert {r["status"] for r in last if r["cell"] in first} == {"hit"}


def test_the_cells_of_one_model_prefer_one_worker():
    """Model, maps and map-shard cells of one (replicate, model) share a preferred worker, the
    models dealt round-robin; benchmarks and ROAR's retrainings have no preference; one worker
    needs none."""
    from binsal.cells import Cell
    from binsal.cluster import model_affinity

    cells = [
        Cell("model/s0/a", "model", 0, 0, ("a",)),
        Cell("model/s0/b", "model", 0, 0, ("b",)),
        Cell("model/s0/c", "model", 0, 0, ("c",)),
        Cell("maps/s0/a/gradient", "maps", 0, 0, ("a", "gradient")),
        Cell("maps/s0/b/gradient/0-64", "shard", 0, 0, ("b", "gradient", "0", "64")),
        Cell("model/s1/a", "model", 1, 1, ("a",)),
        Cell("roar/s0/a/gradient/50/0", "subcell", 0, 0, ("roar", "a/gradient/50/0")),
        Cell("benchmark/s0/road", "benchmark", 0, 0, ("road",)),
    ]
    prefer = model_affinity(cells, ["w0", "w1"])
    assert prefer == {
        "model/s0/a": "w0",
        "model/s0/b": "w1",
        "model/s0/c": "w0",
        "maps/s0/a/gradient": "w0",
        "maps/s0/b/gradient/0-64": "w1",
        "model/s1/a": "w1",  # another replicate: another group, dealt on
    }
    assert model_affinity(cells, ["w0"]) == {}
