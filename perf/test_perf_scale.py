"""Scaling out: the maps stage and ROAR's retrainings as cells on a Dask LocalCluster of 2
workers vs 1, and vs the same cells in this process, on the default profile's data and shipped
models. Each configuration starts from caches without those cells (maps, retrainings), so
every cell computes; the time is the cells' span in the cell log (first start to last stop),
worker start-up and each worker's first data and model load included. Run it on an idle
machine (`tox -e perf -- -k scale`); the speed-ups land in the saved benchmark's extra_info
and in `.benchmarks/scale.json`."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from binsal.cells import CELL_LOG, InProcessExecutor
from binsal.core.profile import load_profile
from binsal.pipeline import RunPlan, environment_key, resolve_profile

MAPS_METHODS = (
    "gradient",
    "smoothgrad",
    "gradcam",
    "integrated_gradients",
    "gradcam_pp",
    "guided_backprop",
)
ROAR_OPTIONS = {
    "models": ["vgg_fp"],
    "methods": ["gradient", "gradcam"],
    "fractions": [0, 50, 90],
    "epochs": 2,
    "n_train": 1500,
    "batch_size": 64,
    "replicates": 1,
}
# (label, workers, TensorFlow threads per worker); workers 0: this process (2 threads)
CONFIGS = (("in-process", 0, 2), ("1 worker x 1", 1, 1), ("1 worker x 2", 1, 2), ("2 x 1", 2, 1))


def _plan(root: Path, run_dir: Path, stage: str) -> RunPlan:
    base = load_profile("default")
    sal = replace(base.saliency, methods=MAPS_METHODS if stage == "maps" else ("gradient",))
    profile = replace(
        base,
        saliency=sal,
        benchmarks=("roar",) if stage == "roar" else (),
        benchmark_options={**base.benchmark_options, "roar": ROAR_OPTIONS},
        train=replace(base.train, replicates=1),
    )
    return RunPlan(
        profile=resolve_profile(profile),
        cache_root=root,
        run_dir=run_dir,
        env_key=environment_key(),
        seeds=(0,),
        bundle=None,
        deterministic=True,
    )


def _span(run_dir: Path) -> tuple[float, int]:
    log = [json.loads(x) for x in (run_dir / CELL_LOG).read_text().splitlines()]
    assert log and {r["status"] for r in log} <= {"computed", "undefined"}, log
    return max(r["stop"] for r in log) - min(r["start"] for r in log), len(log)


def _measure(root: Path, stage: str, label: str, workers: int, threads: int) -> tuple[float, int]:
    for part in ("maps", "roar_rankings", "cells", "models/roar"):
        shutil.rmtree(root / part, ignore_errors=True)
    run_dir = root / f"run-{stage}-{label.replace(' ', '')}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    plan = _plan(root, run_dir, stage)
    only = ("maps/",) if stage == "maps" else ("roar/",)
    if workers == 0:
        InProcessExecutor(quiet=True, only=only).execute(plan)
    else:
        from binsal.cluster import DaskExecutor

        DaskExecutor(
            cluster=f"local:{workers}", threads_per_worker=threads, quiet=True, only=only
        ).execute(plan)
    return _span(run_dir)


@pytest.fixture(scope="module")
def warm_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache with the default profile's data and models (shipped weights: no training)."""
    from binsal.core.progress import StageTimer
    from binsal.datasets.evalset import load_data
    from binsal.models.determinism import configure
    from binsal.pipeline import load_models

    configure(True)
    root = tmp_path_factory.mktemp("scale")
    plan = _plan(root, root / "run", "maps")
    load_models(plan.profile, load_data(plan.profile, root), root, StageTimer(quiet=True))
    return root


@pytest.mark.parametrize("stage", ["maps", "roar"])
def test_scale_out(benchmark, warm_root, stage):
    benchmark.group = "scale-out"
    seconds: dict[str, float] = {}
    for label, workers, threads in CONFIGS:
        seconds[label], n = _measure(warm_root, stage, label, workers, threads)
    # the saved benchmark: the 2-worker run once more (pytest-benchmark keeps its time)
    benchmark.pedantic(lambda: _measure(warm_root, stage, "2 x 1", 2, 1), rounds=1, iterations=1)
    speedups = {
        "2 workers vs 1 (1 thread each)": seconds["1 worker x 1"] / seconds["2 x 1"],
        "2 workers x 1 vs 1 worker x 2 threads": seconds["1 worker x 2"] / seconds["2 x 1"],
        "2 workers vs in-process (2 threads)": seconds["in-process"] / seconds["2 x 1"],
    }
    benchmark.extra_info.update({"cells": n, "seconds": seconds, "speedups": speedups})
    out = Path(".benchmarks") / "scale.json"
    out.parent.mkdir(exist_ok=True)
    saved = json.loads(out.read_text()) if out.is_file() else {}
    saved[stage] = {"cells": n, "seconds": seconds, "speedups": speedups}
    out.write_text(json.dumps(saved, indent=2))
    print(f"\n{stage}: {n} cells; seconds {seconds}; speed-ups {speedups}")
