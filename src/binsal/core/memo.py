"""In-memory results kept for the next call that asks for the same thing, bounded in bytes.

One mechanism for the engines' and metrics' reuse within a benchmark (the SmoothGrad family's
shared noisy pass, its noise draws, the ranks and HOG descriptors of a set of maps): a dict in
recency order, the least recently used entries dropped first, the newest always kept.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

V = TypeVar("V")


def keep_recent(
    store: dict[Hashable, V],
    key: Hashable,
    compute: Callable[[], V],
    max_bytes: int,
    nbytes: Callable[[V], int],
) -> V:
    """``store[key]``, else ``compute()`` kept there; the entry becomes the most recent and the
    least recent ones are dropped while the store holds more than ``max_bytes`` (by ``nbytes``
    of each entry), never the entry just asked for."""
    value = store.pop(key) if key in store else compute()
    store[key] = value  # a dict keeps insertion order: most recent last
    held = sum(nbytes(v) for v in store.values())
    while len(store) > 1 and held > max_bytes:
        held -= nbytes(store.pop(next(iter(store))))
    return value
