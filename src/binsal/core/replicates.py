"""Training-seed replicates merged into one score per row.

A profile with ``[train] replicates = k`` trains every model k times (seeds ``seed``, ``seed + 1``,
...) and runs each benchmark on each replicate. While a benchmark runs, the per-unit values
behind each of its rows are collected (:func:`binsal.core.schema.collect_units`). Here the rows
of the replicates that measured the same score (:func:`binsal.core.schema.row_key`) become one
row: the mean of the replicate means with a hierarchical bootstrap interval (seeds resampled,
then units within each seed; :func:`binsal.core.stats.hierarchical_bootstrap_ci`), ``n`` the
units over all seeds and ``n_groups`` the seeds. A score measured on one replicate only (a
benchmark limited to fewer replicates) keeps its row as it was: ``n_groups`` 1 says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from binsal.core.schema import RESULT_COLUMNS, RowKey, row_key, score_row


@dataclass
class Replicate:
    """One replicate's rows (a frame with ``RESULT_COLUMNS``) and, per row key, its finite
    per-unit values (rows without recorded units count as one unit: their value)."""

    seed: int
    frame: Any
    units: Mapping[RowKey, np.ndarray] = field(default_factory=dict)


def frame_keys(frame: Any) -> list[RowKey]:
    """The :func:`row_key` of every row of a results frame, in order."""
    cols = ["benchmark", "model", "family", "pair", "method", "metric", "step", "params"]
    return [
        row_key(
            _text(r[0]),
            _text(r[1]),
            _text(r[2]),
            _text(r[3]),
            _text(r[4]),
            _text(r[5]),
            float(r[6]),
            _text(r[7]),
        )
        for r in frame[cols].itertuples(index=False, name=None)
    ]


def _text(value: Any) -> str:
    """A text cell; empty for a missing one (a CSV read back gives NaN for "")."""
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def merge_replicates(replicates: Sequence[Replicate], *, seed: int, n_boot: int) -> Any:
    """One row per score over the replicates (see the module docstring); rows in first-seen
    order. The merged interval is seeded with ``seed`` (the profile's)."""
    import pandas as pd

    order: list[RowKey] = []
    seen: dict[RowKey, list[tuple[int, dict[str, Any]]]] = {}
    for rep in replicates:
        records = rep.frame.to_dict("records")
        for key, rec in zip(frame_keys(rep.frame), records, strict=True):
            if key not in seen:
                seen[key] = []
                order.append(key)
            seen[key].append((rep.seed, rec))
    units = {rep.seed: rep.units for rep in replicates}
    out: list[dict[str, Any]] = []
    for key in order:
        found = seen[key]
        if len({s for s, _ in found}) < 2:
            out.append(found[0][1])
            continue
        values, groups = [], []
        for s, rec in found:
            v = units[s].get(key)
            v = np.asarray([rec["value"]], np.float64) if v is None else np.asarray(v, np.float64)
            v = v[np.isfinite(v)]
            values.append(v)
            groups.append(np.full(v.size, s))
        first = found[0][1]
        merged = score_row(
            np.concatenate(values),
            groups=np.concatenate(groups),
            benchmark=first["benchmark"],
            model=first["model"],
            family=_text(first["family"]),
            pair=_text(first["pair"]),
            method=first["method"],
            metric=first["metric"],
            direction=first["direction"],
            seed=seed,
            step=None if key[6] is None else float(key[6]),
            n_boot=n_boot,
        )
        rec = merged.as_dict()
        rec["params"] = first["params"]  # the first replicate's (the profile's seed)
        out.append(rec)
    return pd.DataFrame(out, columns=RESULT_COLUMNS)


def save_units(path: Path, keys: Sequence[RowKey], units: Mapping[RowKey, np.ndarray]) -> None:
    """The per-unit values of ``keys`` (a part's rows, in order) as one compressed ``.npz``:
    ``values`` concatenated, ``offsets`` (len(keys) + 1) and ``recorded`` (0/1 per row)."""
    arrays = [np.asarray(units.get(k, np.empty(0)), np.float64) for k in keys]
    offsets = np.concatenate([[0], np.cumsum([a.size for a in arrays])]).astype(np.int64)
    recorded = np.asarray([k in units for k in keys], np.int8)
    values = np.concatenate(arrays) if arrays else np.empty(0)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, values=values, offsets=offsets, recorded=recorded)


def load_units(path: Path, keys: Sequence[RowKey]) -> dict[RowKey, np.ndarray]:
    """What :func:`save_units` wrote, back under the same keys (raises ValueError on a length
    mismatch: the caller recomputes)."""
    with np.load(path) as z:
        values, offsets, recorded = z["values"], z["offsets"], z["recorded"]
    if len(offsets) != len(keys) + 1 or len(recorded) != len(keys):
        raise ValueError(f"{path}: {len(recorded)} rows of units for {len(keys)} rows")
    return {k: values[offsets[i] : offsets[i + 1]] for i, k in enumerate(keys) if recorded[i]}


def replicate_seeds(seed: int, k: int) -> list[int]:
    """The training seeds of k replicates: ``seed, seed + 1, ..., seed + k - 1`` (replicate 0
    is the single-seed run)."""
    return [seed + r for r in range(k)]
