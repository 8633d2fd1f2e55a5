"""The run as a graph of cells, executed in this process or on a Dask cluster.

A cell is one independent piece of a run whose output lands in a content-keyed cache (keys:
weights hash, method and benchmark options, images, library versions and binsal's code, see
:func:`binsal.pipeline.environment_key`): training one model of one training seed (the model
cache), the maps of one (model, method) (``<cache>/maps``), one sub-cell of a benchmark such as
one ROAR retraining (model, method, fraction, repeat), and one benchmark on one replicate
(``<cache>/cells``). A cell first checks its cache ("hit") and computes only on a miss
("computed"), so a run killed at any point resumes at cell granularity; every cache write is
atomic and the first writer wins (:func:`binsal.core.cache.write_entry`). After the cells, the
driver runs :func:`binsal.pipeline.run_suite`'s stages as always, which then only read the
caches: the results are the in-process ones, value for value, whatever ran where.

Executors: :class:`InProcessExecutor` (every cell here, in graph order) and
:class:`DaskExecutor` (``distributed``: a local cluster, an existing scheduler, or SLURM via
dask-jobqueue). The caches must be on a filesystem every worker sees; a preflight checks that
and that every worker runs the driver's library versions and binsal code before any work.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from binsal.core.errors import BinsalError
from binsal.core.interrupt import reraise_if_interrupted
from binsal.core.progress import StageTimer, notice
from binsal.pipeline import RunPlan

CELL_LOG = "cells.jsonl"  # one line per finished cell and attempt, in the run folder


@dataclass(frozen=True)
class Cell:
    """One node of the graph: ``name`` is unique in a run (``kind/s<seed>/...``), ``args`` what
    the kind needs (model, method, benchmark, sub-cell label), ``deps`` the names of the cells
    whose caches it reads."""

    name: str
    kind: str  # "model", "maps", "subcell" or "benchmark"
    seed: int
    replicate: int
    args: tuple[str, ...]
    deps: tuple[str, ...] = ()


def shard_bounds(n_images: int, shard_images: int) -> list[tuple[int, int]]:
    """[first, stop) of each image shard of ``shard_images`` images (one shard when 0 or when
    the images fit in one)."""
    if shard_images < 1 or n_images <= shard_images:
        return [(0, n_images)]
    return [(a, min(a + shard_images, n_images)) for a in range(0, n_images, shard_images)]


def plan_cells(plan: RunPlan, shard_images: int = 0) -> list[Cell]:
    """The cells of a run, in an order where every cell comes after its dependencies: per
    replicate, the models trained here, each (model, method)'s maps, each benchmark's sub-cells
    and each benchmark (on the replicates it runs on). ``shard_images`` > 0: the maps of a
    (model, method) are computed in shards of that many evaluation images (``.../<a>-<b>``
    cells, each a slice with its per-image seeds), which its maps cell then concatenates."""
    from binsal.benchmarks import BENCHMARKS
    from binsal.models.registry import MODELS
    from binsal.pipeline import runs_on

    profile = plan.profile
    specs = {n: MODELS[n](profile) for n in profile.models}
    cells: list[Cell] = []
    for r, seed in enumerate(plan.seeds):
        prof_r = replace(profile, seed=seed)
        names = [n for n in profile.models if r == 0 or specs[n].source == "synthetic"]
        if not names:
            break
        trained: dict[str, str] = {}
        for n in names:
            if specs[n].source == "synthetic" and plan.bundle is None:
                trained[n] = f"model/s{seed}/{n}"
                cells.append(Cell(trained[n], "model", seed, r, (n,)))
        needs = {n: tuple(v for k, v in trained.items() if k == n) for n in names}
        upstream = list(trained.values())
        n_images = profile.saliency.n_images  # at most: the data may hold fewer
        shards = shard_bounds(n_images, shard_images)
        for n in names:
            for m in profile.saliency.methods:
                name = f"maps/s{seed}/{n}/{m}"
                parts: tuple[str, ...] = ()
                if len(shards) > 1:
                    parts = tuple(f"{name}/{a}-{b}" for a, b in shards)
                    for part, (a, b) in zip(parts, shards, strict=True):
                        cells.append(Cell(part, "shard", seed, r, (n, m, str(a), str(b)), needs[n]))
                cells.append(Cell(name, "maps", seed, r, (n, m), parts or needs[n]))
                upstream.append(name)
        for b in profile.benchmarks:
            if len(plan.seeds) > 1 and not runs_on(b, prof_r, r):
                continue
            subs = []
            for label in BENCHMARKS[b]().subcells(prof_r, names):
                name = f"{b}/s{seed}/{label}"
                cells.append(Cell(name, "subcell", seed, r, (b, label), needs[label.split("/")[0]]))
                subs.append(name)
            cells.append(Cell(f"bench/s{seed}/{b}", "benchmark", seed, r, (b,), (*upstream, *subs)))
    return cells


def select(cells: list[Cell], only: Iterable[str]) -> list[Cell]:
    """The cells whose name starts with one of ``only`` (all when empty), e.g. ("maps/",) to
    measure one stage; dependencies outside the selection are taken to be in the cache."""
    prefixes = tuple(only)
    return [c for c in cells if not prefixes or c.name.startswith(prefixes)]


# --- the worker side: one process's view of a run (models loaded once per worker) ----------

_WORKER: dict[str, Any] = {"prepared": False, "data": {}, "models": {}}


def _prepare(plan: RunPlan) -> None:
    """Once per process: the driver's ``BINSAL_*`` settings (this worker's own thread count
    kept), TensorFlow's log level and the run's determinism and thread counts."""
    if _WORKER["prepared"]:
        return
    from binsal.models.determinism import THREADS_ENV, configure

    for k, v in plan.environ.items():
        if k != THREADS_ENV or THREADS_ENV not in os.environ:
            os.environ[k] = v
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    configure(plan.deterministic)
    _WORKER["prepared"] = True


def _plan_key(plan: RunPlan) -> str:
    from binsal.core.cache import config_key

    return config_key(
        [plan.profile.to_dict(), str(plan.cache_root), str(plan.run_dir), plan.bundle, plan.env_key]
    )


def _data(plan: RunPlan) -> Any:
    from binsal.datasets.evalset import load_data

    key = _plan_key(plan)
    if key not in _WORKER["data"]:
        _WORKER["data"] = {key: load_data(plan.profile, plan.cache_root)}  # one run at a time
        _WORKER["models"] = {}
    return _WORKER["data"][key]


def _model(plan: RunPlan, replicate: int, seed: int, name: str) -> Any:
    """One model of one replicate, loaded (or trained) once per process."""
    from binsal.pipeline import load_models, resolve_bundle

    data = _data(plan)
    key = (seed, name)
    if key not in _WORKER["models"]:
        prof = replace(plan.profile, seed=seed, models=(name,))
        bundle = resolve_bundle(plan.profile, plan.bundle)
        timer = StageTimer(quiet=True)
        loaded = load_models(prof, data, plan.cache_root, timer, bundle, trained_only=replicate > 0)
        _WORKER["models"][key] = loaded[name]
    return _WORKER["models"][key]


def _context(plan: RunPlan, cell: Cell, names: Iterable[str]) -> Any:
    """A run context of the cell's replicate holding the models ``names`` and their
    predictions on the evaluation images."""
    from binsal.pipeline import compute_predictions, context_for

    timer = StageTimer(quiet=True)
    models = {n: _model(plan, cell.replicate, cell.seed, n) for n in names}
    ctx = context_for(
        replace(plan.profile, seed=cell.seed),
        models,
        _data(plan),
        run_dir=plan.run_dir,
        cache_root=plan.cache_root,
        env_key=plan.env_key,
        timer=timer,
    )
    compute_predictions(ctx, timer)
    return ctx


def _run_model(plan: RunPlan, cell: Cell) -> str:
    loaded = _model(plan, cell.replicate, cell.seed, cell.args[0])
    return "hit" if loaded.meta.get("cache") in ("hit", "shipped") else "computed"


def _shard_folder(plan: RunPlan, ctx: Any, model: str, method: Any) -> tuple[Path, bool]:
    """Where the shards of one (model, method)'s maps go (``<cache>/map_shards/<key>``), and
    whether the whole maps are in the shared map store already."""
    key = ctx.maps.key(ctx.models[model], method, ctx.images, ctx.targets_for(model))
    shared = ctx.maps._shared_path(key)
    done = shared is not None and shared.is_file()
    return Path(plan.cache_root) / "map_shards" / f"{key}__{plan.env_key}", done


def _run_shard(plan: RunPlan, cell: Cell) -> str:
    from binsal.saliency.base import image_offset

    model, method, first, stop = cell.args
    a, b = int(first), int(stop)
    ctx = _context(plan, cell, [model])
    if not ctx.is_defined(model, method)[0]:
        return "undefined"
    m = ctx.method(method)
    folder, done = _shard_folder(plan, ctx, model, m)
    path = folder / f"{first}-{stop}.npy"
    if a >= len(ctx.images):  # the data holds fewer images than the profile asks for
        return "skipped"
    if done or path.is_file():
        return "hit"
    targets = ctx.targets_for(model)
    with image_offset(a):  # per-image seeds as in the whole set
        maps = m.explain(ctx.models[model], ctx.images[a:b], targets[a:b], engine=ctx.maps.engine)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{first}-{stop}.{os.getpid()}.tmp.npy"
    np.save(tmp, maps)
    tmp.replace(path)
    return "computed"


def _run_maps(plan: RunPlan, cell: Cell) -> str:
    model, method = cell.args
    ctx = _context(plan, cell, [model])
    if not ctx.is_defined(model, method)[0]:
        return "undefined"
    m = ctx.method(method)
    folder, done = _shard_folder(plan, ctx, model, m)
    if done:
        ctx.maps_for(model, m)  # into the run folder too
        ctx.maps.release()
        return "hit"
    n = len(ctx.images)  # the data may hold fewer images than the profile asks for
    shards = [d.rsplit("/", 1)[1] for d in cell.deps if d.startswith(cell.name + "/")]
    files = [folder / f"{x}.npy" for x in shards if int(x.split("-")[0]) < n]
    if len(files) > 1 and all(f.is_file() for f in files):
        maps = np.concatenate([np.load(f) for f in files])
        ctx.maps.store(ctx.models[model], m, ctx.images, ctx.targets_for(model), maps)
        shutil.rmtree(folder, ignore_errors=True)  # kept whole in the map store now
        return "computed"
    ctx.maps_for(model, m)  # unsharded, or a shard is missing: the whole maps here
    ctx.maps.release()
    return "computed"


def _run_subcell(plan: RunPlan, cell: Cell) -> str:
    from binsal.benchmarks import BENCHMARKS

    bench, label = cell.args
    ctx = _context(plan, cell, [label.split("/")[0]])
    return BENCHMARKS[bench]().run_subcell(ctx, label)


def _run_benchmark(plan: RunPlan, cell: Cell) -> str:
    from binsal.pipeline import compute_cell

    names = [n for n in plan.profile.models if cell.replicate == 0 or _trained(plan, n)]
    ctx = _context(plan, cell, names)
    status = compute_cell(ctx, cell.args[0], plan.env_key, with_units=len(plan.seeds) > 1)
    ctx.maps.release()
    return status


def _trained(plan: RunPlan, name: str) -> bool:
    from binsal.models.registry import MODELS

    return MODELS[name](plan.profile).source == "synthetic"


KINDS: dict[str, Callable[[RunPlan, Cell], str]] = {
    "model": _run_model,
    "shard": _run_shard,
    "maps": _run_maps,
    "subcell": _run_subcell,
    "benchmark": _run_benchmark,
}


def run_cell(plan: RunPlan, cell: Cell, *upstream: Any) -> dict[str, Any]:
    """Run one cell where this is called (``upstream``: the records of its dependencies, only
    there to order the graph) and return its record. A cell that raises is recorded as
    "failed" and never stops the graph: the driver's stages then redo that work in-process and
    report it as the run's failure, as without cells."""
    start = time.time()
    _prepare(plan)
    try:
        status, error = KINDS[cell.kind](plan, cell), ""
    except Exception as exc:  # one cell's failure never loses the others
        reraise_if_interrupted(exc)
        status, error = "failed", f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    import tensorflow as tf

    return {
        "cell": cell.name,
        "kind": cell.kind,
        "status": status,
        "error": error,
        **_worker_identity(),
        "pid": os.getpid(),
        "start": start,
        "stop": time.time(),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
    }


def _worker_identity() -> dict[str, str]:
    """This worker's address and name: a worker its nanny restarted keeps its name (e.g. the
    local cluster's ``0``, ``1``) under a new address."""
    try:
        from distributed import get_worker

        worker = get_worker()
        return {"worker": str(worker.address), "worker_name": str(worker.name)}
    except (ImportError, ValueError):
        return {"worker": "in-process", "worker_name": "in-process"}


class CellLog:
    """Appends each finished cell's record to ``<run>/cells.jsonl`` (with this attempt's id)
    and counts the statuses for the manifest."""

    def __init__(self, run_dir: Path, quiet: bool):
        self.path = Path(run_dir) / CELL_LOG
        self.attempt = uuid.uuid4().hex[:8]
        self.counts: dict[str, int] = {}
        self.quiet = quiet
        self.failed: list[dict[str, Any]] = []

    def add(self, record: dict[str, Any], total: int) -> None:
        record = {**record, "attempt": self.attempt}
        self.counts[record["status"]] = self.counts.get(record["status"], 0) + 1
        if record["status"] in ("failed", "lost"):
            self.failed.append(record)
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        if not self.quiet:
            done = sum(self.counts.values())
            took = record.get("stop", 0.0) - record.get("start", 0.0)
            where = record.get("worker", "")
            notice(f"    [{done}/{total}] {record['cell']}: {record['status']} {took:.1f}s {where}")
        if record["status"] in ("failed", "lost"):
            notice(f"    cell {record['cell']} {record['status']}: {record['error']}", warning=True)

    def record(self, executor: str, **extra: Any) -> dict[str, Any]:
        return {
            "executor": executor,
            "attempt": self.attempt,
            "cells": dict(sorted(self.counts.items())),
            "failed_cells": [{"cell": r["cell"], "error": r["error"]} for r in self.failed],
            "cell_log": CELL_LOG,
            **extra,
        }


class InProcessExecutor:
    """Every cell in this process, in graph order (the same work as the plain stage-by-stage
    run, cell by cell: a reference for the Dask executor and a cell-level resume)."""

    def __init__(self, quiet: bool = False, only: tuple[str, ...] = (), shard_images: int = 0):
        self.quiet, self.only, self.shard_images = quiet, only, shard_images

    def execute(self, plan: RunPlan) -> dict[str, Any]:
        cells = select(plan_cells(plan, self.shard_images), self.only)
        log = CellLog(plan.run_dir, self.quiet)
        for cell in cells:
            log.add(run_cell(plan, cell), len(cells))
        _WORKER.update(data={}, models={})  # the driver loads its own copies next
        return log.record("in-process")


# --- where cells run: cluster specs and devices (no Dask needed to check them) ---------------

CLUSTER_KINDS = ("local", "slurm")
DEVICES = ("cpu", "gpu", "auto")


def parse_cluster(spec: str) -> tuple[str, int]:
    """``local:N`` (a Dask LocalCluster of N worker processes) or ``slurm:N`` (N SLURM jobs,
    one worker each, via dask-jobqueue) -> (kind, N)."""
    kind, _, n = spec.partition(":")
    if kind not in CLUSTER_KINDS or not n.isdigit() or int(n) < 1:
        raise BinsalError(
            f"--cluster {spec!r} is not a cluster; allowed: local:N or slurm:N with N >= 1 "
            "workers (an existing cluster: --scheduler tcp://HOST:PORT or --scheduler-file PATH)"
        )
    return kind, int(n)


def assign_devices(device: str, n_gpus: int, n_workers: int) -> list[str]:
    """What each local worker may see, as ``CUDA_VISIBLE_DEVICES`` values: ``cpu`` -> "-1"
    for each of ``n_workers`` (no GPU); ``gpu`` -> one worker per GPU ("0", "1", ...; at most
    ``n_workers`` when given); ``auto`` -> ``gpu`` when a GPU is visible, else ``cpu``."""
    if device not in DEVICES:
        raise BinsalError(f"--device {device!r} is not a device; allowed: {', '.join(DEVICES)}")
    if device == "auto":
        device = "gpu" if n_gpus > 0 else "cpu"
    if device == "cpu":
        return ["-1"] * max(1, n_workers)
    if n_gpus < 1:
        raise BinsalError(
            "--device gpu: no GPU is visible (nvidia-smi -L lists none); install the GPU "
            "TensorFlow wheel (tox -e gpu) on a machine with one, or use --device cpu"
        )
    n = n_gpus if n_workers < 1 else min(n_workers, n_gpus)
    return [str(i) for i in range(n)]


def visible_gpus() -> int:
    """GPUs on this machine (``nvidia-smi -L``; 0 without it), TensorFlow left unstarted."""
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))


def use_device_here(device: str) -> str:
    """For an in-process run: ``cpu`` hides every GPU from TensorFlow (before it starts),
    ``gpu`` requires one (memory growth is then turned on by the run); returns the choice."""
    chosen = assign_devices(device, visible_gpus() if device != "cpu" else 0, 1)
    if chosen == ["-1"]:
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
        return "cpu"
    return "gpu"
