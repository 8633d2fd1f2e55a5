"""Benchmarks: each turns maps into tidy score rows.

Each benchmark class registers itself in ``BENCHMARKS`` with ``@BENCHMARKS.add(name)`` beside
its definition; every module of this package is imported here, so adding a benchmark is adding
one module (see README). :func:`check_profile` checks a profile's benchmark tables before any
work.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil

from binsal.benchmarks.base import (
    BENCHMARKS,
    Benchmark,
    BenchmarkOptions,
    MapStore,
    PlotSpec,
    RunContext,
    Score,
    make_method,
)
from binsal.core.errors import BinsalError
from binsal.core.profile import Profile, check_profile_settings


def _discover() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name != "base" and not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    for name in BENCHMARKS.names():
        cls = BENCHMARKS[name]
        if cls.name != name:
            raise RuntimeError(
                f"benchmark class {cls.__name__} named {cls.name!r} registered as {name!r}"
            )


def _check_names(owner: str, bench: str, options: BenchmarkOptions) -> None:
    """Fields with ``metadata={"known": "method" | "model"}`` name registered methods / models."""
    from binsal.models.registry import MODELS
    from binsal.saliency import METHODS

    registries = {"method": METHODS, "model": MODELS}
    for f in dataclasses.fields(options):
        kind = f.metadata.get("known")
        value = getattr(options, f.name)
        if kind not in registries or not isinstance(value, tuple):
            continue
        registry = registries[kind]
        for item in value:
            if item not in registry:
                raise BinsalError(
                    f"{owner}: [benchmarks.{bench}] {f.name}: unknown {kind} {item!r}; "
                    f"known {kind}s: {', '.join(sorted(registry.names()))}"
                )


def check_profile(profile: Profile) -> None:
    """Check ``profile`` before any work: its settings (command-line overrides included), its
    benchmark names and every ``[benchmarks.<name>]`` table against that benchmark's
    ``Options`` (unknown tables, keys, method and model names, wrong types, out-of-range
    values). Raises :class:`BinsalError` with one line naming the key."""
    check_profile_settings(profile)
    owner = f"profile {profile.name!r}"
    BENCHMARKS.check([b for b in profile.benchmarks if b != "all"])
    for bench in profile.benchmark_options:
        if bench not in BENCHMARKS:
            raise BinsalError(
                f"{owner}: unknown section [benchmarks.{bench}]; known benchmarks: "
                f"{', '.join(sorted(BENCHMARKS.names()))}"
            )
    selected = BENCHMARKS.names() if "all" in profile.benchmarks else list(profile.benchmarks)
    for bench in dict.fromkeys([*selected, *profile.benchmark_options]):
        _check_names(owner, bench, BENCHMARKS[bench]().opts(profile))


_discover()

__all__ = [
    "BENCHMARKS",
    "Benchmark",
    "BenchmarkOptions",
    "MapStore",
    "PlotSpec",
    "RunContext",
    "Score",
    "check_profile",
    "make_method",
]
