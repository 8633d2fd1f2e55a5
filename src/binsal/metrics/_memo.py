"""Per-map results kept by the content of the maps (private to binsal.metrics).

Benchmarks compare one set of maps with many (the original maps with every randomization step,
each model's maps with every other model's, one removal order for deletion and insertion): the
ranks, HOG descriptors and removal positions of a set are kept by content (a BLAKE2 digest of
the maps: ~1 ms for 128 maps of 64x64, against ~50 ms to rank them), the least recently used
first out, up to ``MAX_BYTES`` (the ranks of one model's 128 maps of 64x64 take 4 MB); the
pipeline forgets them after every benchmark. The values are the ones computed afresh, bit for
bit, returned as read-only arrays.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable

import numpy as np

from binsal.core.memo import keep_recent

_MEMO: dict[Hashable, np.ndarray] = {}
MAX_BYTES = 64 * 2**20


def memoized(
    kind: tuple[Hashable, ...], maps: np.ndarray, compute: Callable[[], np.ndarray]
) -> np.ndarray:
    """``compute()`` (a function of ``maps`` and ``kind`` only), or the array it gave before for
    maps of the same content, shape and dtype."""
    x = np.ascontiguousarray(maps)
    digest = hashlib.blake2b(x.tobytes(), digest_size=16).digest()

    def fresh() -> np.ndarray:
        out = np.asarray(compute())
        out.setflags(write=False)
        return out

    key = (*kind, x.shape, x.dtype.str, digest)
    return keep_recent(_MEMO, key, fresh, MAX_BYTES, lambda v: v.nbytes)


def forget() -> None:
    """Drop every kept result (what timing a metric from scratch needs); public as
    ``binsal.metrics.forget_results``."""
    _MEMO.clear()
