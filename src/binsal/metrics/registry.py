"""``METRICS``: every metric class by name, registered with ``@register_metric`` beside it."""

from __future__ import annotations

from typing import Any, TypeVar

from binsal.core.registry import Registry

METRICS: Registry[type[Any]] = Registry("metric")
C = TypeVar("C", bound=type)


def register_metric(cls: C) -> C:
    """Class decorator: a frozen dataclass with class attributes ``name`` and ``direction``
    ("higher", "lower" or "none") and ``__call__(maps, ...) -> (N,)`` becomes ``METRICS[name]``."""
    METRICS.register(cls.name, cls)  # type: ignore[attr-defined]
    return cls
