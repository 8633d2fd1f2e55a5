"""Worker processes for the CPU-bound Python work beside a run: drawing the report's figures
and rendering the synthetic data set."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity where the OS reports one), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def default_workers(cap: int = 4) -> int:
    """One worker process per usable CPU, at most ``cap``."""
    return min(cap, usable_cpus())


def spawn_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` spawned processes. Spawned, not forked: the caller may be running
    TensorFlow, whose threads and locks a fork would copy without their owners."""
    from multiprocessing import get_context

    return ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))
