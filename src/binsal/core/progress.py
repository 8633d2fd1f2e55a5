"""Visible progress on long work: stage banners with timings and tqdm bars on stderr."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


class StageTimer:
    """Records wall time per named stage (written to the manifest)."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if not self.quiet:
            print(f"==> {name}", file=sys.stderr, flush=True)
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self.seconds[name] = self.seconds.get(name, 0.0) + elapsed
            if not self.quiet:
                print(f"    {name}: {elapsed:.1f} s", file=sys.stderr, flush=True)

    def bar(self, items: Iterable[T], desc: str, total: int | None = None) -> Iterable[T]:
        return tqdm(
            items, desc=f"    {desc}", total=total, disable=self.quiet, file=sys.stderr, leave=False
        )
