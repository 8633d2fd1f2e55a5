"""The content-keyed cache's writer: atomic entries, checksums, and racing writers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from binsal.core.cache import verify_entry, write_entry
from binsal.core.errors import CorruptCacheError


def _write(entry: Path, who: int) -> None:
    write_entry(entry, {"w.txt": lambda p: p.write_text(f"writer {who}")}, {"who": who})


def test_racing_writers_of_one_entry_keep_the_first(tmp_path):
    """Two workers that computed the same cell write it at once: no error ("Directory not
    empty"), one complete entry, the first writer's, and no temporary folder left behind."""
    entry = tmp_path / "cells" / "bench-abc"
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: _write(entry, i), range(16)))
    meta = verify_entry(entry)
    assert (entry / "w.txt").read_text() == f"writer {meta['who']}"
    assert [p.name for p in entry.parent.iterdir() if not p.name.endswith(".lock")] == [entry.name]
    _write(entry, 99)  # a later writer of an intact entry changes nothing
    assert verify_entry(entry)["who"] == meta["who"]


def test_a_corrupt_entry_is_replaced(tmp_path):
    entry = tmp_path / "e"
    _write(entry, 1)
    (entry / "w.txt").write_text("garbage")
    with pytest.raises(CorruptCacheError, match="w.txt is missing or corrupt"):
        verify_entry(entry)
    _write(entry, 2)
    assert verify_entry(entry)["who"] == 2
