"""What a map costs: passes through the model, CPU seconds and memory per method and model.

BNNs exist for constrained devices, so a method's quality is worth knowing next to its cost.
"forward_passes" and "backward_passes" per map are what the method declares from its options
(``SaliencyMethod.passes``: a gradient 1 and 1, SmoothGrad its samples, Integrated Gradients
its path points, Score-CAM 1 + one forward per channel and none backward, the controls none);
exact numbers, so n = 1 and no interval.

"cpu_seconds_per_map" is measured: the process CPU time (every thread) of one batched call of
the method on ``n_images`` evaluation images divided by their number, after one untimed call
(tracing stays out; results an engine keeps between calls are dropped before each timed
one, so SmoothGrad-squared and VarGrad pay for the noisy passes they share with SmoothGrad in
a run); one unit per timed repeat. "peak_memory_mb" is the
peak resident memory of the process during a timed call above its level just before (sampled
every few milliseconds), in MB per call of ``n_images`` maps; one unit per repeat. The maps are
computed afresh here, never taken from the map store: a cached map costs nothing. The
leaderboard shows these beside every method's scores and the Pareto front of quality against
CPU seconds per map.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

from binsal.benchmarks.base import (
    BENCHMARKS,
    Benchmark,
    BenchmarkOptions,
    MethodChoice,
    ModelChoice,
    RunContext,
    Score,
    chosen_models,
    log,
)
from binsal.core.schema import PlotSpec, ScoreRow
from binsal.saliency import forget_results, is_defined

MB = 1024.0**2


def _rss_reader() -> Callable[[], int]:
    """The process's current resident set size in bytes (psutil, else /proc; 0 if neither)."""
    try:
        import psutil

        process = psutil.Process()
        return lambda: int(process.memory_info().rss)
    except ImportError:
        page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

        def statm() -> int:
            try:
                with open("/proc/self/statm") as fh:
                    return int(fh.read().split()[1]) * page
            except OSError:
                return 0

        return statm


@dataclass
class Measured:
    cpu_seconds: float = 0.0
    peak_bytes: int = 0  # peak RSS above the level at the start


@contextmanager
def measure(interval: float = 0.002) -> Iterator[Measured]:
    """CPU time (``time.process_time``: every thread of the process) and the peak resident
    memory above the starting level (a sampling thread) of the ``with`` block."""
    rss = _rss_reader()
    out = Measured()
    start_rss = peak = rss()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(interval):
            peak = max(peak, rss())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.process_time()
    try:
        yield out
    finally:
        out.cpu_seconds = time.process_time() - start
        done.set()
        sampler.join()
        peak = max(peak, rss())
        out.peak_bytes = max(0, peak - start_rss)


@BENCHMARKS.add("method_cost")
class MethodCost(Benchmark):
    name: ClassVar[str] = "method_cost"
    title: ClassVar[str] = "Cost of a map: passes, CPU time and memory"
    description: ClassVar[str] = __doc__ or ""
    order: ClassVar[int] = 90
    scores: ClassVar[Mapping[str, Score]] = {
        "forward_passes": Score("lower", "forward passes through the model per map (declared)"),
        "backward_passes": Score("lower", "backward passes through the model per map (declared)"),
        "cpu_seconds_per_map": Score(
            "lower", "process CPU seconds per map, batched, after a warm-up call (measured)"
        ),
        "peak_memory_mb": Score(
            "lower", "peak resident memory above the start of a call of n_images maps, MB"
        ),
    }
    plots: ClassVar[tuple[PlotSpec, ...]] = (
        PlotSpec("cpu_seconds_per_map", title="CPU seconds per map", ylabel="CPU s / map"),
        PlotSpec("peak_memory_mb", title="Peak memory of a call (above its start)", ylabel="MB"),
    )

    @dataclass(frozen=True)
    class Options(BenchmarkOptions):
        """``[benchmarks.method_cost]``. Each (model, method) is computed 1 + ``repeats``
        times on ``n_images`` images. Costs do not depend on the training seed: by default
        measured on the first replicate only."""

        replicates: int = field(default=1, metadata={"min": 0})
        models: ModelChoice = field(default="all", metadata={"known": "model"})
        methods: MethodChoice = field(default="profile", metadata={"known": "method"})
        n_images: int = field(default=16, metadata={"min": 1})
        repeats: int = field(default=3, metadata={"min": 1})

    def run(self, ctx: RunContext) -> list[ScoreRow]:
        opts = self.Options.from_profile(ctx.profile, self.name)
        names = ctx.methods if opts.methods == "profile" else list(opts.methods)
        n = min(int(opts.n_images), len(ctx.images))
        images = ctx.images[:n]
        engine = ctx.maps.engine
        rows: list[ScoreRow] = []
        grid = [(mo, me) for mo in chosen_models(ctx, opts.models) for me in names]
        for model_name, method_name in ctx.progress.bar(grid, desc="method cost"):
            loaded = ctx.models[model_name]
            ok, why = is_defined(method_name, loaded, engine=engine)
            if not ok:
                log(ctx, f"method cost: skip {method_name} on {model_name}: {why}")
                continue
            method = ctx.method(method_name)
            targets = ctx.targets_for(model_name)[:n]
            method.explain(loaded, images, targets, engine=engine)  # warm-up, untimed
            cpu, peak = [], []
            for _ in range(int(opts.repeats)):
                forget_results()  # no call is served from the last one's noisy passes
                with measure() as m:
                    method.explain(loaded, images, targets, engine=engine)
                cpu.append(m.cpu_seconds / n)
                peak.append(m.peak_bytes / MB)
            forward, backward = method.passes(loaded)
            params = {**method.params(), "n_images": n, "repeats": int(opts.repeats)}
            params["engine"] = engine
            common: dict[str, Any] = {
                "model": model_name,
                "family": loaded.family,
                "pair": loaded.spec.pair,
                "method": method_name,
                "seed": ctx.seed,
                "n_boot": ctx.profile.n_boot,
                "params": params,
            }
            rows.append(self.row([forward], metric="forward_passes", **common))
            rows.append(self.row([backward], metric="backward_passes", **common))
            rows.append(self.row(cpu, metric="cpu_seconds_per_map", **common))
            rows.append(self.row(peak, metric="peak_memory_mb", **common))
        return rows
