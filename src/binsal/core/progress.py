"""Visible progress on long work: stage banners with timings, tqdm bars and notices, all on
stderr (stdout carries only a command's results)."""

from __future__ import annotations

import ctypes
import ctypes.util
import resource
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


_QUIET = {"on": False}  # `binsal run --quiet`: the process prints warnings only


@contextmanager
def quiet_notices(quiet: bool) -> Iterator[None]:
    """Within the block, :func:`notice` prints warnings only when ``quiet``."""
    before = _QUIET["on"]
    _QUIET["on"] = quiet
    try:
        yield
    finally:
        _QUIET["on"] = before


def notice(message: str, *, warning: bool = False) -> None:
    """One line on stderr, printed above any live progress bar (not into it); ``--quiet``
    keeps only warnings (something was redone, left out or failed)."""
    if _QUIET["on"] and not warning:
        return
    tqdm.write(message, file=sys.stderr)
    sys.stderr.flush()


def close_bars() -> None:
    """Close every live progress bar (e.g. on Ctrl-C), so that a last line starts clean."""
    for bar in list(getattr(tqdm, "_instances", [])):
        bar.close()


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (``ru_maxrss``: KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


_LIBC: ctypes.CDLL | bool | None = None  # the C library, once looked up (False: none)


def return_freed_memory() -> None:
    """Give the heap pages freed since the last call back to the OS (glibc's ``malloc_trim``).
    TensorFlow's CPU tensors and traced graphs live on the C heap, and glibc keeps what they
    free: measured on the default profile's vgg_bnn, 8 traced clones freed by ``gc.collect()``
    left RSS at 858 MB and a trim brought it to 603 MB; without trims RSS grew with every
    training-seed replicate. A no-op where the C library has no ``malloc_trim`` (not glibc)."""
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        except OSError:
            _LIBC = False
    trim = getattr(_LIBC, "malloc_trim", None) if _LIBC else None
    if trim is not None:
        trim(0)


class StageTimer:
    """Records wall time per named stage and the process's peak RSS at each stage's end (both
    written to the manifest: the stage at which the peak first reaches its final value is the
    one that set it)."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.seconds: dict[str, float] = {}
        self.peak_rss_mb: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if not self.quiet:
            notice(f"==> {name}")
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self.seconds[name] = self.seconds.get(name, 0.0) + elapsed
            self.peak_rss_mb[name] = round(peak_rss_mb(), 1)
            if not self.quiet:
                notice(f"    {name}: {elapsed:.1f} s")

    def counter(self, total: int, desc: str, unit: str = "it") -> tqdm:
        """A bar advanced by hand (``update``), e.g. per training batch."""
        return tqdm(
            total=total,
            desc=f"    {desc}",
            unit=unit,
            disable=self.quiet,
            file=sys.stderr,
            leave=False,
        )

    def bar(self, items: Iterable[T], desc: str, total: int | None = None) -> Iterable[T]:
        return tqdm(
            items, desc=f"    {desc}", total=total, disable=self.quiet, file=sys.stderr, leave=False
        )
