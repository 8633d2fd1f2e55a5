"""The one results schema every benchmark emits (tidy, long format: one row per score).

``COLUMNS`` is the single definition of a score's columns: the CSV header
(``RESULT_COLUMNS``), the typed row (``ScoreRow``) and the history's SQLite ``scores`` table
(:func:`scores_table_sql`) are all generated from it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

import numpy as np

from binsal.core.stats import IntervalMethod, mean_interval

Direction = Literal["higher", "lower", "none"]
DIRECTIONS: tuple[str, ...] = get_args(Direction)


@dataclass(frozen=True)
class Column:
    name: str
    sql: str  # SQLite column definition after the name
    doc: str


COLUMNS: tuple[Column, ...] = (
    Column("benchmark", "TEXT NOT NULL", 'e.g. "rank_correlation"'),
    Column("model", "TEXT NOT NULL", 'model name, or "fp_model|bnn_model" for pairwise scores'),
    Column("family", "TEXT", '"FP", "BNN" or "FP-BNN"'),
    Column("pair", "TEXT NOT NULL DEFAULT ''", 'matched-pair name ("" when not part of a pair)'),
    Column("method", "TEXT NOT NULL", "saliency method name"),
    Column("metric", "TEXT NOT NULL", 'score name, e.g. "spearman"'),
    Column("step", "REAL", "x position for curves (layer, noise, fraction); NaN for scalars"),
    Column("params", "TEXT NOT NULL DEFAULT '{}'", "JSON of the options behind the score"),
    Column("value", "REAL", "mean over n units (images)"),
    Column("ci_low", "REAL", "95 % confidence interval, low end"),
    Column("ci_high", "REAL", "95 % confidence interval, high end"),
    Column("n", "INTEGER", "number of units (images) averaged"),
    Column("direction", "TEXT", '"higher" / "lower" is better, or "none" (descriptive)'),
    Column("seed", "INTEGER", "seed of the random draws behind the score"),
    Column("ci_method", "TEXT", "how the CI was made (binsal.core.stats.Interval.method)"),
    Column("n_groups", "INTEGER", "independent replicates (training seeds) behind the n units"),
)
RESULT_COLUMNS: list[str] = [c.name for c in COLUMNS]


@dataclass(frozen=True)
class ScoreRow:
    """One score: the fields of ``COLUMNS``, in that order (checked at import)."""

    benchmark: str
    model: str
    family: str
    pair: str
    method: str
    metric: str
    step: float
    params: str
    value: float
    ci_low: float
    ci_high: float
    n: int
    direction: Direction
    seed: int
    ci_method: IntervalMethod = "bootstrap"
    n_groups: int = 1

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


assert [f for f in ScoreRow.__dataclass_fields__] == RESULT_COLUMNS, "ScoreRow != COLUMNS"


@dataclass(frozen=True)
class PlotSpec:
    """A declarative figure for the report: a benchmark says *what* to plot, reports draw it
    (from the declaration written into the run's manifest).

    ``kind="curve"``: ``metric`` against ``step`` with 95 % CI bands, one panel per method, one
    line per ``hue`` value; ``kind="points"``: one marker per (method, model) with its CI.
    """

    metric: str
    kind: Literal["points", "curve"] = "points"
    title: str = ""
    xlabel: str = "step"
    ylabel: str = ""
    hue: str = "model"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def scores_table_sql(table: str = "scores", *, run_column: str = "") -> str:
    """``CREATE TABLE`` for score rows, generated from ``COLUMNS`` (``run_column`` first)."""
    cols = ([run_column] if run_column else []) + [f"{c.name} {c.sql}" for c in COLUMNS]
    return f"CREATE TABLE IF NOT EXISTS {table} (\n    " + ",\n    ".join(cols) + "\n);"


def rows_frame(rows: Iterable[ScoreRow]) -> Any:
    """Score rows as a pandas DataFrame with exactly ``RESULT_COLUMNS``."""
    import pandas as pd

    return pd.DataFrame([r.as_dict() for r in rows], columns=RESULT_COLUMNS)


def check_direction(direction: str) -> Direction:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {'/'.join(DIRECTIONS)}, got {direction!r}")
    return direction  # type: ignore[return-value]


RowKey = tuple[str, str, str, str, str, str, float | None, str]

# params that differ between training-seed replicates of the same score (not part of its key):
# these, and every seed ("seed" or a name ending in "_seed", e.g. a layer's re-draw seed)
REPLICATE_PARAMS = ("seed", "trained_test_accuracy", "cache", "train_seconds")

# per-unit values of every row made while a sink is open (see ``collect_units``)
_UNIT_SINK: ContextVar[dict[RowKey, np.ndarray] | None] = ContextVar("binsal_units", default=None)


def row_key(
    benchmark: str,
    model: str,
    family: str,
    pair: str,
    method: str,
    metric: str,
    step: float | None,
    params: str,
) -> RowKey:
    """What a score is, independent of the replicate it was measured on: the row's identifying
    columns, with ``step`` NaN as None and what a replicate changes (``REPLICATE_PARAMS``: the
    seed of its draws, its training seed, ...) left out of ``params``."""
    try:
        extra = json.loads(params) if params else {}
    except json.JSONDecodeError:
        extra = {"_": params}
    if isinstance(extra, dict):
        extra = {
            k: v for k, v in extra.items() if k not in REPLICATE_PARAMS and not k.endswith("_seed")
        }
    s = None if step is None or (isinstance(step, float) and math.isnan(step)) else float(step)
    blob = json.dumps(extra, sort_keys=True, default=str)
    return (benchmark, model, family or "", pair or "", method, metric, s, blob)


def key_of(row: ScoreRow) -> RowKey:
    return row_key(
        row.benchmark, row.model, row.family, row.pair, row.method, row.metric, row.step, row.params
    )


@contextmanager
def collect_units() -> Iterator[dict[RowKey, np.ndarray]]:
    """While open, every :func:`score_row` also records its finite per-unit values under its
    :func:`row_key` (the last one wins), so that the rows of several training-seed replicates
    can be merged into one row with a two-level interval (``binsal.core.replicates``)."""
    sink: dict[RowKey, np.ndarray] = {}
    token = _UNIT_SINK.set(sink)
    try:
        yield sink
    finally:
        _UNIT_SINK.reset(token)


def units_sink() -> dict[RowKey, np.ndarray] | None:
    """The per-unit values :func:`collect_units` is recording into, None outside it (for code
    that renames rows after they were scored and must record their units under the new key)."""
    return _UNIT_SINK.get()


def score_row(
    values: np.ndarray | list[float],
    *,
    benchmark: str,
    model: str,
    family: str,
    method: str,
    metric: str,
    direction: Direction,
    seed: int,
    pair: str = "",
    step: float | None = None,
    params: Mapping[str, Any] | None = None,
    n_boot: int = 1000,
    groups: np.ndarray | list[int] | None = None,
) -> ScoreRow:
    """Aggregate per-unit values into one tidy row: mean, 95 % CI, n and how the CI was made
    (:func:`binsal.core.stats.mean_interval`: percentile bootstrap; Wilson for 0/1 values;
    Student t below 10 units; two-level bootstrap when ``groups`` names several replicates).

    Non-finite per-unit values are dropped (and ``n`` counts only the finite ones).
    """
    iv = mean_interval(values, groups=groups, n_boot=n_boot, seed=seed)
    row = ScoreRow(
        benchmark=benchmark,
        model=model,
        family=family,
        pair=pair,
        method=method,
        metric=metric,
        step=math.nan if step is None else float(step),
        params=json.dumps(dict(params or {}), sort_keys=True, default=str),
        value=iv.value,
        ci_low=iv.low,
        ci_high=iv.high,
        n=iv.n,
        direction=check_direction(direction),
        seed=int(seed),
        ci_method=iv.method,
        n_groups=iv.n_groups,
    )
    sink = _UNIT_SINK.get()
    if sink is not None and groups is None:
        arr = np.asarray(values, dtype=np.float64).ravel()
        sink[key_of(row)] = arr[np.isfinite(arr)]
    return row
