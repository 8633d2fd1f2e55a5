"""Benchmarks: each turns maps into tidy score rows.

Every ``Benchmark`` subclass (with a ``name``) defined in a module of this package is registered
in ``BENCHMARKS`` on import; adding a benchmark is adding a module (see README).
"""

import importlib
import pkgutil

from binsal.benchmarks.base import Benchmark, MapStore, PlotSpec, RunContext, make_method
from binsal.core.registry import Registry

BENCHMARKS: Registry[type[Benchmark]] = Registry("benchmark")


def _discover() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name != "base" and not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    seen: list[type[Benchmark]] = []
    stack = list(Benchmark.__subclasses__())
    while stack:
        cls = stack.pop(0)
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    for cls in sorted(seen, key=lambda c: getattr(c, "order", 100)):
        if cls.name and cls.name not in BENCHMARKS:
            BENCHMARKS.register(cls.name, cls)


_discover()

__all__ = ["BENCHMARKS", "Benchmark", "MapStore", "PlotSpec", "RunContext", "make_method"]
