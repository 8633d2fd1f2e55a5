"""Dask worker preload for tests/test_dask.py (``dask worker --preload <this file>``): a worker
that starts a cell named by an armed file in ``$BINSAL_TEST_FAULTS`` (``kill-<id>`` holding a
glob of cell names) kills its own process, once (the first worker to rename the file to
``fired-<id>`` does), as a lost machine would."""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import Any

import binsal.cells as cells

# the unpatched function, even when the preload runs twice in one process (worker and nanny)
_run_cell = getattr(cells, "_unpatched_run_cell", cells.run_cell)
cells._unpatched_run_cell = _run_cell  # type: ignore[attr-defined]


def run_cell(plan: Any, cell: Any, *upstream: Any) -> dict[str, Any]:
    armed = os.environ.get("BINSAL_TEST_FAULTS")
    if armed:
        for f in sorted(Path(armed).glob("kill-*")):
            if fnmatch.fnmatch(cell.name, f.read_text().strip()):
                try:
                    f.rename(f.with_name("fired-" + f.name.removeprefix("kill-")))
                except OSError:  # another worker fired it
                    continue
                os._exit(1)
    return _run_cell(plan, cell, *upstream)


cells.run_cell = run_cell  # tasks name binsal.cells.run_cell: unpickled here, they get this
