"""Leaderboards: per family (FP, BNN) and per scalar metric, saliency methods ranked with CIs.

Which scores: rows of single models (family "FP" or "BNN"; pairwise FP-BNN rows, family
aggregates and the ``claim_robustness`` re-runs under other analysis settings are left out),
scalar (``step`` NaN), with a declared direction ("higher" or "lower"; descriptive "none"
metrics are not ranked) and a finite value.

How a family's score is aggregated (stated in every output): the results table keeps, per model,
the mean over images with its bootstrap 95 % CI, not the per-image values, so a CI of the
family mean cannot be bootstrapped here. We therefore report

- ``value``: the mean over the family's models of each model's mean (each model weighs the same);
- ``ci_low`` / ``ci_high``: the *envelope* of the models' CIs, [min ci_low, max ci_high]. It is
  conservative: it is wider than the CI of the mean of independent model means, and it also
  covers the spread between models (with two or three models per family, the between-model
  variance cannot be estimated honestly).

A method scored on only some of the family's models is ranked on those (``n_models`` says how
many). Methods are ranked by ``value`` in the metric's better direction (rank 1 = best). A method
is marked ``tie_prev`` when its interval overlaps the interval of the method ranked just above,
and ``tie_leader`` when it overlaps the leader's; ``tie_group`` numbers chains of neighbour
overlaps. The controls Random and Sobel are listed as reference rows (``reference`` True, no
rank); ``vs_random`` says whether a method's interval lies entirely on the better side of
Random's ("above"), entirely on the worse side ("below") or overlaps it ("tie").

Cost (the ``method_cost`` benchmark's rows, not ranked themselves): beside each method, its
forward and backward passes per map, CPU seconds per map and peak memory, each the mean over the
family's models; ``pareto`` marks the methods on the Pareto front of the metric's value against
CPU seconds per map (no other ranked method is at least as good and at least as cheap, and
strictly better in one of them; reference rows and methods without a measured cost are left
out of the front).
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterator, Sequence
from typing import Any, Protocol, cast

import numpy as np
import pandas as pd

REFERENCE_METHODS = ("random", "sobel")
FAMILIES = ("FP", "BNN")
COLUMNS = [
    "family",
    "benchmark",
    "metric",
    "direction",
    "rank",
    "method",
    "reference",
    "value",
    "ci_low",
    "ci_high",
    "n_models",
    "n_images",
    "models",
    "spread",
    "tie_prev",
    "tie_leader",
    "tie_group",
    "vs_random",
    "aggregation",
    "forward_passes",
    "backward_passes",
    "cpu_seconds_per_map",
    "peak_memory_mb",
    "pareto",
]
AGGREGATION = "mean of model means; CI = [min ci_low, max ci_high] over models"
COST_BENCHMARK = "method_cost"  # its rows are columns of the leaderboard, not a ranking
COST_METRICS = ("forward_passes", "backward_passes", "cpu_seconds_per_map", "peak_memory_mb")
# the quality measures the report plots against cost, the first ones present
PARETO_HEADLINES = (("localization", "relevance_mass"), ("road", "road_gap"))


def _eligible(table: pd.DataFrame, models: list[str] | None) -> pd.DataFrame:
    t = table.copy()
    t = t[t["family"].isin(FAMILIES)]
    t = t[t["direction"].isin(["higher", "lower"])]
    t = t[t["step"].isna()] if "step" in t else t
    t = t[np.isfinite(t["value"].astype(float))]
    t = t[t["benchmark"] != COST_BENCHMARK]
    if "params" in t:  # re-runs under other analysis settings (claim_robustness) are not ranked
        t = t[~t["params"].fillna("").astype("str").str.contains('"setting"')]
    if models:
        t = t[t["model"].isin(models)]
    elif "params" in t:
        t = t[~t["params"].fillna("").astype("str").str.contains('"aggregate"')]
    return t


class _MethodAgg(Protocol):
    """A row of one (family, benchmark, metric)'s per-method aggregate (``itertuples``)."""

    method: str
    value: float
    ci_low: float
    ci_high: float
    n_models: int
    n_images: float  # NaN where no model says
    models: str
    vmin: float
    vmax: float


class _BoardRow(Protocol):
    """A leaderboard row (``COLUMNS``) as ``itertuples`` gives it."""

    method: str
    reference: bool
    rank: float  # NaN for reference rows
    value: float
    ci_low: float
    ci_high: float
    n_models: int
    tie_prev: bool
    vs_random: str


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return not (a[0] > b[1] or b[0] > a[1])


def method_costs(table: pd.DataFrame, models: list[str] | None = None) -> pd.DataFrame:
    """Per (family, method): each of :data:`COST_METRICS`, the mean over the family's models
    (the run's ``models`` when given) of the ``method_cost`` benchmark's values."""
    t = table[(table["benchmark"] == COST_BENCHMARK) & table["family"].isin(FAMILIES)]
    t = t[t["metric"].isin(COST_METRICS)]
    if models:
        t = t[t["model"].isin(models)]
    if t.empty:
        return pd.DataFrame(columns=["family", "method", *COST_METRICS])
    wide = t.pivot_table(
        index=["family", "method"], columns="metric", values="value", aggfunc="mean"
    )
    return wide.reindex(columns=list(COST_METRICS)).reset_index()


def pareto_front(quality: np.ndarray, cost: np.ndarray, *, higher_is_better: bool) -> np.ndarray:
    """Which points are on the Pareto front of quality against cost: no other point is at
    least as good and at least as cheap and strictly better in one. Points with a non-finite
    quality or cost are never on it (nor dominate)."""
    q = np.asarray(quality, np.float64) * (1.0 if higher_is_better else -1.0)
    c = np.asarray(cost, np.float64)
    ok = np.isfinite(q) & np.isfinite(c)
    front = np.zeros(q.shape, dtype=bool)
    for i in np.nonzero(ok)[0]:
        others = ok & (q >= q[i]) & (c <= c[i]) & ((q > q[i]) | (c < c[i]))
        front[i] = not others.any()
    return front


def _with_costs(board: pd.DataFrame, costs: pd.DataFrame) -> pd.DataFrame:
    """``board`` with the cost columns of its (family, method) and the Pareto flag per
    (family, benchmark, metric) among its ranked methods."""
    board = board.drop(columns=[*COST_METRICS, "pareto"]).merge(
        costs, on=["family", "method"], how="left"
    )
    board["pareto"] = False
    for _, g in board.groupby(["family", "benchmark", "metric"], sort=False):
        ranked = g[~g["reference"].astype(bool)]
        front = pareto_front(
            ranked["value"].to_numpy(float),
            ranked["cpu_seconds_per_map"].to_numpy(float),
            higher_is_better=bool((ranked["direction"] == "higher").all()),
        )
        board.loc[ranked.index[front], "pareto"] = True
    return board[COLUMNS]


def leaderboard(table: pd.DataFrame, manifest: dict[str, Any] | None = None) -> pd.DataFrame:
    """The leaderboard table (columns :data:`COLUMNS`), ordered by family, benchmark, metric and
    position (controls interleaved at their place)."""
    models = list((manifest or {}).get("models", {}) or [])
    return _with_costs(_ranked(table, models), method_costs(table, models))


def _ranked(table: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    t = _eligible(table, models)
    if t.empty:
        return pd.DataFrame(columns=COLUMNS)
    for col in ("ci_low", "ci_high"):
        t[col] = t[col].astype(float).fillna(t["value"].astype(float))
    # per model first: a model with several rows for one key (parameter variants) is averaged
    per_model = (
        t.groupby(["family", "benchmark", "metric", "direction", "method", "model"], sort=False)
        .agg(
            value=("value", "mean"),
            ci_low=("ci_low", "min"),
            ci_high=("ci_high", "max"),
            n=("n", "min"),
        )
        .reset_index()
    )
    out: list[dict[str, Any]] = []
    keys = ["family", "benchmark", "metric", "direction"]
    for (fam, bench, metric, direction), g in per_model.groupby(keys, sort=False):
        agg = (
            g.groupby("method", sort=False)
            .agg(
                value=("value", "mean"),
                ci_low=("ci_low", "min"),
                ci_high=("ci_high", "max"),
                n_models=("model", "nunique"),
                n_images=("n", "min"),
                models=("model", lambda s: ",".join(sorted(s))),
                vmin=("value", "min"),
                vmax=("value", "max"),
            )
            .reset_index()
        )
        sign = -1.0 if direction == "higher" else 1.0
        agg = agg.assign(_key=sign * agg["value"]).sort_values("_key", kind="stable")
        ref_rand = agg[agg["method"] == "random"]
        rand_ci = (
            (float(ref_rand["ci_low"].iloc[0]), float(ref_rand["ci_high"].iloc[0]))
            if not ref_rand.empty
            else None
        )
        ranked = agg[~agg["method"].isin(REFERENCE_METHODS)]
        leader = (
            (float(ranked["ci_low"].iloc[0]), float(ranked["ci_high"].iloc[0]))
            if len(ranked)
            else None
        )
        rank, prev, group = 0, None, 0
        for r in cast(Iterator[_MethodAgg], agg.itertuples(index=False)):
            ci = (float(r.ci_low), float(r.ci_high))
            is_ref = r.method in REFERENCE_METHODS
            row: dict[str, Any] = {
                "family": fam,
                "benchmark": bench,
                "metric": metric,
                "direction": direction,
                "rank": math.nan,
                "method": r.method,
                "reference": is_ref,
                "value": float(r.value),
                "ci_low": ci[0],
                "ci_high": ci[1],
                "n_models": int(r.n_models),
                "n_images": int(r.n_images) if pd.notna(r.n_images) else 0,
                "models": r.models,
                "spread": float(r.vmax - r.vmin),
                "tie_prev": False,
                "tie_leader": False,
                "tie_group": math.nan,
                "vs_random": "",
                "aggregation": AGGREGATION,
                **dict.fromkeys(COST_METRICS, math.nan),
                "pareto": False,
            }
            if not is_ref:
                rank += 1
                row["rank"] = rank
                row["tie_prev"] = prev is not None and _overlap(ci, prev)
                row["tie_leader"] = rank > 1 and leader is not None and _overlap(ci, leader)
                group += 0 if row["tie_prev"] else 1
                row["tie_group"] = group
                prev = ci
            if rand_ci is not None and r.method != "random":
                if _overlap(ci, rand_ci):
                    row["vs_random"] = "tie"
                else:
                    better = ci[0] > rand_ci[1] if direction == "higher" else ci[1] < rand_ci[0]
                    row["vs_random"] = "above" if better else "below"
            out.append(row)
    return pd.DataFrame(out, columns=COLUMNS)


def write_leaderboard(
    run_dir: Any, table: pd.DataFrame, manifest: dict[str, Any] | None = None
) -> pd.DataFrame:
    from pathlib import Path

    board = leaderboard(table, manifest)
    board.to_csv(Path(run_dir) / "leaderboard.csv", index=False)
    return board


def _cell(r: Any) -> str:
    def f(v: float) -> str:
        return "–" if not math.isfinite(v) else f"{v:.3f}"

    return f"{f(r.value)} <span class=muted>[{f(r.ci_low)}, {f(r.ci_high)}]</span>"


def _cost_cells(r: Any) -> str:
    def passes(v: float) -> str:
        return "–" if not math.isfinite(v) else f"{v:.0f}"

    cpu = float(r.cpu_seconds_per_map)
    ms = "–" if not math.isfinite(cpu) else f"{1000 * cpu:.3g}"
    star = "★" if r.pareto else ""
    return (
        f"<td>{passes(float(r.forward_passes))}/{passes(float(r.backward_passes))}</td>"
        f"<td>{ms}</td><td title='on the Pareto front of value vs CPU time'>{star}</td>"
    )


def _family_table(g: pd.DataFrame) -> str:
    if g.empty:
        return "<p class=muted>no scores</p>"
    costs = bool(np.isfinite(g["cpu_seconds_per_map"].astype(float)).any())
    rows = []
    for r in cast(Iterator[_BoardRow], g.itertuples(index=False)):
        if r.reference:
            pos = "<span class=muted>ref</span>"
        else:
            mark = " =" if r.tie_prev else ""
            pos = f"{int(r.rank)}{mark}"
        cls = " class=ref" if r.reference else (" class=lead" if r.rank == 1 else "")
        rand = {"above": "✓", "below": "✗", "tie": "≈", "": ""}[r.vs_random]
        rows.append(
            f"<tr{cls}><td>{pos}</td><td class=l>{html.escape(str(r.method))}</td>"
            f"<td>{_cell(r)}</td><td>{r.n_models}</td><td title='vs Random'>{rand}</td>"
            f"{_cost_cells(r) if costs else ''}</tr>"
        )
    cost_head = (
        "<th title='forward / backward passes per map'>f/b</th>"
        "<th title='CPU milliseconds per map (measured)'>ms</th><th title='Pareto front'>P</th>"
        if costs
        else ""
    )
    return (
        "<table class=lb><thead><tr><th>#</th><th class=l>method</th><th>value [CI]</th>"
        "<th title='models aggregated'>m</th>"
        "<th title='CI vs Random: ✓ better, ≈ overlaps, ✗ worse'>vs R</th>"
        f"{cost_head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _pareto_measures(board: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    """(benchmark, metric, its rows) of each headline measure with a measured cost."""
    if board.empty or not np.isfinite(board["cpu_seconds_per_map"].astype(float)).any():
        return []
    out = []
    for bench, metric in PARETO_HEADLINES:
        sub = board[(board["benchmark"] == bench) & (board["metric"] == metric)]
        if not sub.empty and np.isfinite(sub["cpu_seconds_per_map"].astype(float)).any():
            out.append((bench, metric, sub))
    return out


def _pareto_job(bench: str, metric: str, sub: pd.DataFrame) -> tuple[str, str, dict[str, Any]]:
    title = f"{bench}: {metric} against CPU time per map"
    return (f"{metric} against cost", "pareto", {"board": sub, "title": title})


def pareto_jobs(board: pd.DataFrame) -> list[tuple[str, str, dict[str, Any]]]:
    """The figures of :func:`pareto_section`, as ``binsal.reports.figures.FigureJob``\\ s (the
    report draws them in its figure workers)."""
    return [_pareto_job(*measure) for measure in _pareto_measures(board)]


def pareto_section(
    board: pd.DataFrame, drawn: Sequence[bytes | str | Exception] | None = None
) -> str:
    """Quality against cost for the headline measures (:data:`PARETO_HEADLINES`) present:
    a figure per measure (FP and BNN panels) and the methods on each front. ``drawn``: the
    PNGs of :func:`pareto_jobs` already drawn (or the exception drawing one raised), else
    they are drawn here."""
    from binsal.reports import figures

    measures = _pareto_measures(board)
    if not measures:
        return ""
    if drawn is None:
        drawn = [figures.pareto_plot(**_pareto_job(*m)[2]) for m in measures]
    parts = [
        "<h3 id=pareto>Quality against cost</h3><p class=muted>CPU seconds per map (measured by "
        "the <code>method_cost</code> benchmark, log scale) against the score; ★ and the line: "
        "the Pareto front, the methods no other method beats at the same or lower cost. "
        "Random and Sobel (grey) are not part of the front.</p>"
    ]
    for (bench, metric, sub), png in zip(measures, drawn, strict=True):
        if isinstance(png, Exception):
            raise png
        if not isinstance(png, bytes):
            raise TypeError(f"the {metric} cost plot was drawn as markup, not a PNG")
        fronts = "; ".join(
            f"{fam}: " + ", ".join(html.escape(str(m)) for m in g.loc[g["pareto"], "method"])
            for fam, g in sub.groupby("family", sort=False)
        )
        parts.append(
            f"<figure><img alt='{html.escape(metric)} against cost' "
            f"src='data:image/png;base64,{base64.b64encode(png).decode()}'>"
            f"<figcaption>{html.escape(bench)} / {html.escape(metric)}: Pareto front "
            f"{fronts}</figcaption></figure>"
        )
    return "".join(parts)


def leaderboard_section(
    board: pd.DataFrame, pareto: Sequence[bytes | str | Exception] | None = None
) -> str:
    """The report section: per benchmark and metric, the FP and the BNN ranking side by side.
    ``pareto``: the quality-against-cost figures already drawn (:func:`pareto_section`)."""
    intro = (
        "<h2 id=leaderboards>Leaderboards</h2><p class=muted>Per family and per scalar metric "
        "with a direction (↑ higher / ↓ lower is better), saliency methods ranked by the "
        f"<b>{html.escape(AGGREGATION)}</b> (conservative: the envelope also covers the spread "
        "between models; per-image values are not kept, so no tighter CI is claimed). "
        "‘=’ marks a method whose interval overlaps the one ranked just above it (a tie); "
        "Random and Sobel are reference rows (‘ref’); ‘vs R’: ✓ interval entirely better than "
        "Random’s, ≈ overlapping, ✗ worse. m = number of models aggregated. Also in "
        "<code>leaderboard.csv</code>.</p>"
    )
    if board.empty:
        return intro + "<p>No scalar single-model scores with a direction in this run.</p>"
    if np.isfinite(board["cpu_seconds_per_map"].astype(float)).any():
        intro += (
            "<p class=muted>Cost beside each method (mean over the family's models, from the "
            "<code>method_cost</code> benchmark): f/b = forward / backward passes per map, ms = "
            "CPU milliseconds per map, P ★ = on the Pareto front of the metric against CPU time "
            "(see <a href=#pareto>quality against cost</a>).</p>"
        )
    parts = [intro, pareto_section(board, pareto)]
    for bench, gb in board.groupby("benchmark", sort=False):
        parts.append(f"<h3>{html.escape(str(bench))}</h3><div class=lbgrid>")
        for (metric, direction), gm in gb.groupby(["metric", "direction"], sort=False):
            arrow = "↑" if direction == "higher" else "↓"
            fams = "".join(
                f"<div><b class={fam.lower()}>{fam}</b>"
                f"{_family_table(gm[gm['family'] == fam])}</div>"
                for fam in FAMILIES
            )
            parts.append(
                f"<div class=lbcard><div class=lbtitle>{html.escape(str(metric))} {arrow}</div>"
                f"<div class=lbfams>{fams}</div></div>"
            )
        parts.append("</div>")
    return "".join(parts)
