"""Cells on Dask (``pip install 'binsal[dask]'``): a local cluster, an existing scheduler (an
address or a scheduler file, e.g. inside a SLURM allocation) or SLURM jobs via dask-jobqueue.

Each worker process runs one cell at a time with ``threads_per_worker`` TensorFlow intra-op
threads (pinned by :class:`WorkerSetup` before TensorFlow starts), loads the run's data and
each model once (:mod:`binsal.cells`), and writes to the caches every worker shares. Cells of
a lost worker are rerun elsewhere (Dask's own rescheduling, plus ``retries``).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from distributed import Client, WorkerPlugin, as_completed

from binsal.cells import (
    Cell,
    CellLog,
    assign_devices,
    parse_cluster,
    plan_cells,
    run_cell,
    select,
    visible_gpus,
)
from binsal.core.errors import BinsalError
from binsal.core.interrupt import reraise_if_interrupted
from binsal.pipeline import RunPlan


class WorkerSetup(WorkerPlugin):
    """On every worker, before any cell: TensorFlow's intra-op threads (``$BINSAL_TF_THREADS``
    and set directly, so they hold with determinism off too), one inter-op thread, the GPU this
    worker owns (``devices[i]`` for the local cluster's worker ``i``: ``CUDA_VISIBLE_DEVICES``)
    and memory growth on every visible GPU."""

    idempotent = True

    def __init__(self, threads: int, devices: list[str] | None = None):
        self.threads = int(threads)
        self.devices = devices

    def setup(self, worker: Any) -> None:
        from binsal.models.determinism import THREADS_ENV

        os.environ[THREADS_ENV] = str(self.threads)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        if self.devices is not None and isinstance(worker.name, int):
            os.environ["CUDA_VISIBLE_DEVICES"] = self.devices[worker.name % len(self.devices)]
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(self.threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # TensorFlow already started in this process: reported by cells
            pass
        for gpu in tf.config.list_physical_devices("GPU"):
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError:
                pass


def worker_facts(marker: str, dask_worker: Any = None) -> dict[str, Any]:
    """What the preflight compares on every worker: library versions, binsal's code digest,
    whether the driver's marker file in the cache folder is visible, thread settings and
    devices (run on each worker by :meth:`Client.run`, which passes ``dask_worker``)."""
    import tensorflow as tf

    from binsal.core.cache import code_digest
    from binsal.core.environment import library_versions

    path = Path(marker)
    return {
        "versions": library_versions(),
        "code": code_digest(),
        "cache_token": path.read_text() if path.is_file() else None,
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "devices": [d.name for d in tf.config.list_physical_devices()],
        "nthreads": dask_worker.state.nthreads if dask_worker is not None else 0,
    }


def preflight(client: Client, plan: RunPlan) -> dict[str, Any]:
    """Before any cell: every worker sees the cache folder (a marker the driver writes there)
    and runs the driver's library versions and binsal code; else one line (exit 2)."""
    from binsal.core.cache import code_digest
    from binsal.core.environment import library_versions

    token = uuid.uuid4().hex
    marker = Path(plan.cache_root) / f".preflight-{token}"
    marker.write_text(token)
    try:
        facts = cast(dict[str, dict[str, Any]], client.run(worker_facts, str(marker)))
    finally:
        marker.unlink(missing_ok=True)
    # the runtime TensorFlow version counts, not which wheel brought it (a CPU driver may
    # drive GPU workers: tensorflow-cpu here, tensorflow[and-cuda] there)
    wheels = ("tensorflow", "tensorflow-cpu")
    mine = {"versions": library_versions(), "code": code_digest()}
    for w in wheels:
        mine["versions"].pop(w, None)
    for addr, f in sorted(facts.items()):
        if f["cache_token"] != token:
            raise BinsalError(
                f"worker {addr} cannot see the cache folder {plan.cache_root}: put it (and the "
                "results folder) on a filesystem every worker shares (--cache-dir)"
            )
        for lib, v in mine["versions"].items():
            if f["versions"].get(lib) != v:
                raise BinsalError(
                    f"worker {addr} runs {lib} {f['versions'].get(lib)}, the driver {v}: every "
                    "worker needs the driver's TensorFlow / larq / binsal stack"
                )
        if f["code"] != mine["code"]:
            raise BinsalError(
                f"worker {addr} runs other binsal code (digest {f['code']}, the driver "
                f"{mine['code']}): install the driver's binsal on every worker"
            )
    return {
        addr: {k: f[k] for k in ("intra_op_threads", "devices", "nthreads")}
        for addr, f in sorted(facts.items())
    }


# cells that load one model and trace its functions: kept together on one worker
MODEL_KINDS = ("model", "maps", "shard")


def model_affinity(cells: Iterable[Cell], workers: list[str]) -> dict[str, str]:
    """Cell name -> the worker it should run on where there is a choice: the model cell, maps
    and map shards of one (replicate, model) on one worker, the models dealt round-robin, so
    that each worker loads and traces about 1/W of the models instead of all of them (2
    workers without it, the default profile's maps: the cells of the light methods, whose time
    is mostly the model's load and tracing, took 1.4-1.75x as long as on 1 worker, the heavy
    ones 1.1-1.2x). Benchmarks and retrainings read every model or one: no
    preference, wherever there is room. Loose: Dask's work stealing moves a cell to an idle
    worker, and a lost worker's cells go to the others."""
    if len(workers) < 2:
        return {}
    dealt: dict[tuple[int, str], str] = {}
    out: dict[str, str] = {}
    for cell in cells:
        if cell.kind in MODEL_KINDS and cell.args:
            group = (cell.replicate, cell.args[0])
            if group not in dealt:
                dealt[group] = workers[len(dealt) % len(workers)]
            out[cell.name] = dealt[group]
    return out


def slurm_cluster(threads: int) -> Any:
    """A dask-jobqueue SLURM cluster whose jobs each run one worker process with one task slot
    (one cell at a time) on ``threads`` CPUs (``--cpus-per-task``, the TensorFlow threads);
    queue, account and walltime from Dask's jobqueue configuration, memory per job from
    ``$BINSAL_SLURM_MEMORY`` (16GB). No job is submitted until it is scaled."""
    from dask_jobqueue.slurm import SLURMCluster

    return SLURMCluster(
        cores=1,  # Dask's task slots per worker
        job_cpu=threads,
        processes=1,
        memory=os.environ.get("BINSAL_SLURM_MEMORY", "16GB"),
    )


@dataclass
class DaskExecutor:
    """Runs a plan's cells on Dask. Exactly one of ``cluster`` ("local:N" or "slurm:N"),
    ``scheduler`` (an address, tcp://HOST:PORT) or ``scheduler_file``."""

    cluster: str | None = None
    scheduler: str | None = None
    scheduler_file: str | None = None
    threads_per_worker: int = 1
    device: str = "cpu"
    retries: int = 2
    quiet: bool = False
    timeout: float = 120.0  # seconds to wait for the first worker
    only: tuple[str, ...] = ()  # cell-name prefixes to run (all: empty), e.g. to time a stage
    shard_images: int = 64  # maps in cells of this many images (0: one cell per model, method)

    def __post_init__(self) -> None:
        given = [x for x in (self.cluster, self.scheduler, self.scheduler_file) if x]
        if len(given) != 1:
            raise BinsalError("give one of --cluster, --scheduler and --scheduler-file")
        self.kind, self.n_workers = parse_cluster(self.cluster) if self.cluster else ("remote", 0)
        if self.scheduler_file and not Path(self.scheduler_file).is_file():
            raise BinsalError(f"--scheduler-file {self.scheduler_file} is not a file")
        if self.threads_per_worker < 1:
            raise BinsalError(f"--threads-per-worker must be >= 1, got {self.threads_per_worker}")

    def _connect(self) -> tuple[Client, Any, list[str] | None]:
        if self.kind == "local":
            from distributed import LocalCluster

            devices = assign_devices(self.device, visible_gpus(), self.n_workers)
            cluster: Any = LocalCluster(
                n_workers=len(devices) if devices[0] != "-1" else self.n_workers,
                threads_per_worker=1,  # one cell at a time per worker process
                processes=True,
                # no memory-based restarts: a worker's memory is its loaded models and
                # TensorFlow's allocator, which Dask cannot spill (the OS bounds it)
                memory_limit=0,
                dashboard_address=None,  # pyright: ignore[reportArgumentType]  (None: no dashboard)
                silence_logs=logging.ERROR,
            )
            return Client(cluster), cluster, devices
        if self.kind == "slurm":
            cluster = slurm_cluster(self.threads_per_worker)
            cluster.scale(jobs=self.n_workers)
            return Client(cluster), cluster, None
        if self.scheduler:
            return Client(self.scheduler, timeout=self.timeout), None, None
        return Client(scheduler_file=self.scheduler_file, timeout=self.timeout), None, None

    def execute(self, plan: RunPlan) -> dict[str, Any]:
        client, cluster, devices = self._connect()
        try:
            client.register_plugin(WorkerSetup(self.threads_per_worker, devices), name="binsal")
            client.wait_for_workers(max(1, self.n_workers), timeout=self.timeout)
            workers = preflight(client, plan)
            cells = select(plan_cells(plan, self.shard_images), self.only)
            log = CellLog(plan.run_dir, self.quiet)
            futures: dict[str, Any] = {}
            names: dict[str, str] = {}
            addresses: dict[str, set[str]] = {}  # worker name -> the addresses it ran cells at
            prefer = model_affinity(cells, list(workers))
            for cell in cells:
                deps = [futures[d] for d in cell.deps if d in futures]
                key = f"{cell.kind}-{cell.name}-{log.attempt}"
                where = prefer.get(cell.name)
                # a hint: an idle worker still steals the cell
                hint = {"workers": [where], "allow_other_workers": True} if where else {}
                futures[cell.name] = client.submit(
                    run_cell, plan, cell, *deps, key=key, retries=self.retries, pure=False, **hint
                )
                names[key] = cell.name
            for fut in as_completed(list(futures.values())):
                try:
                    record = fut.result()
                except Exception as exc:  # e.g. KilledWorker: the driver redoes it in-process
                    reraise_if_interrupted(exc)
                    what = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
                    record = {"cell": names[fut.key], "kind": "", "status": "lost", "error": what}
                log.add(record, len(cells))
                if "worker_name" in record:
                    addresses.setdefault(record["worker_name"], set()).add(record["worker"])
            return log.record(
                "dask",
                scheduler=client.scheduler.address if client.scheduler else "",
                cluster=self.cluster or "",
                threads_per_worker=self.threads_per_worker,
                shard_images=self.shard_images,
                device=self.device,
                workers=workers,
                # workers that came back under a new address (a nanny's restart) mid-run
                worker_restarts={n: len(a) - 1 for n, a in sorted(addresses.items()) if len(a) > 1},
            )
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
