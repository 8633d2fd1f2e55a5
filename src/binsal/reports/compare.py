"""Regression table between two runs: the scores whose change falls outside both runs' CIs.

Scores are matched on (benchmark, model, family, pair, method, metric, step, params), with
bookkeeping dropped from ``params``: seeds (``seed``, ``*_seed``: two runs with different seeds
measure the same thing) and what a run observed rather than chose (:data:`VOLATILE_PARAMS`, e.g.
whether a model came from the cache, the accuracy it was trained to). A
matched score is flagged when the two 95 % CIs are disjoint (B's interval lies entirely above or
entirely below A's), i.e. the change is outside *both* runs' confidence intervals. The label
follows the score's direction: for "higher" an increase is ``better``, for "lower" a decrease is
``better``, the opposite is ``worse``; scores with direction "none" are ``changed``.
Scores present in only one run are counted (and listed in the HTML page), not flagged. A
score whose interval cannot carry a test (:func:`testable`: one unit, or a zero-width interval
not stated to be exact) gets no p-value and no flag.

Disjoint 95 % CIs of two equally precise estimates happen by chance for about 0.56 % of
unchanged scores (a z of 2 * 1.96 / sqrt(2) = 2.77), so a comparison of thousands of scores
flags some by chance. Every matched score therefore also gets a two-sided ``p_value`` for the
change (normal approximation from the CIs, :func:`binsal.core.stats.difference_p_value`) and
its Benjamini-Hochberg ``q_value`` over the comparison; with ``fdr=Q`` a score is flagged only
when its CIs are disjoint *and* q <= Q, which bounds the expected share of false flags by Q.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from binsal.core.errors import BinsalError
from binsal.core.stats import benjamini_hochberg, difference_p_value

KEY_COLUMNS = ["benchmark", "model", "family", "pair", "method", "metric", "step", "params"]
VOLATILE_PARAMS = ("cache", "trained_test_accuracy", "train_seconds")


MAP_RTOL = 1e-3  # a map differs when max |A - B| > MAP_RTOL * max |A| (float32 round-off: ~1e-6)


@dataclass
class RunData:
    run_id: str
    table: pd.DataFrame
    manifest: dict[str, Any]
    env_name: str = ""
    run_dir: Path | None = None  # the run folder (its maps/), when it can be found

    @property
    def weights(self) -> str:
        """ "retrain" or "bundle:<id>" (:func:`binsal.reports.history.weights_label`)."""
        from binsal.reports.history import weights_label

        return weights_label(self.manifest)


def map_differences(a_dir: Path, b_dir: Path, *, rtol: float = MAP_RTOL) -> pd.DataFrame:
    """Per saliency map stored by both runs (same file name in ``maps/``: same model name,
    method options, engine, images and targets): model, method, max |A - B|, max |A|, their
    ratio and whether it exceeds ``rtol``. Meaningful when both runs evaluated the same weights
    (a weights bundle); with retrained models every map differs."""
    rows = []
    a_maps, b_maps = Path(a_dir) / "maps", Path(b_dir) / "maps"
    if not (a_maps.is_dir() and b_maps.is_dir()):
        return pd.DataFrame(columns=MAP_COLUMNS)
    for fa in sorted(a_maps.glob("*.npy")):
        fb = b_maps / fa.name
        if fa.name.endswith(".tmp.npy") or not fb.is_file():
            continue
        ma, mb = np.load(fa), np.load(fb)
        model, method = (fa.stem.split("__") + ["", ""])[:2]
        if ma.shape != mb.shape:
            diff, scale = math.inf, float(np.max(np.abs(ma))) if ma.size else 0.0
        else:
            diff = float(np.max(np.abs(ma - mb))) if ma.size else 0.0
            scale = float(np.max(np.abs(ma))) if ma.size else 0.0
        rel = diff / scale if scale > 0 else (0.0 if diff == 0 else math.inf)
        rows.append((model, method, fa.name, diff, scale, rel, bool(rel > rtol)))
    return pd.DataFrame(rows, columns=MAP_COLUMNS)


MAP_COLUMNS = ["model", "method", "file", "max_abs_diff", "max_abs_a", "rel_diff", "changed"]


@dataclass
class Comparison:
    a: RunData
    b: RunData
    table: pd.DataFrame  # every matched score, with ``label`` ("" when not flagged)
    only_a: pd.DataFrame = field(default_factory=pd.DataFrame)
    only_b: pd.DataFrame = field(default_factory=pd.DataFrame)
    fdr: float | None = None  # the false discovery rate flags were held to, if any
    maps: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=MAP_COLUMNS))
    mismatches: list[str] = field(default_factory=list)  # see run_mismatches

    @property
    def regressions(self) -> pd.DataFrame:
        return self.table[self.table["label"] != ""].reset_index(drop=True)

    @property
    def n_worse(self) -> int:
        return int((self.table["label"] == "worse").sum())


def _ignored(key: str) -> bool:
    return key == "seed" or key.endswith("_seed") or key in VOLATILE_PARAMS


def normalise_params(params: Any) -> str:
    """Canonical JSON of a params cell without seeds and :data:`VOLATILE_PARAMS`."""
    if params is None or (isinstance(params, float) and math.isnan(params)):
        return "{}"
    if isinstance(params, float):  # a number, not a mapping
        return str(params)
    try:
        obj = json.loads(params) if isinstance(params, str) else dict(params)
    except (TypeError, ValueError):
        return str(params)
    if isinstance(obj, dict):
        obj = {k: v for k, v in obj.items() if not _ignored(k)}
    return json.dumps(obj, sort_keys=True, default=str)


def _keyed(table: pd.DataFrame) -> pd.DataFrame:
    t = table.copy()
    t["pair"] = t["pair"].fillna("").astype(str)
    t["family"] = t["family"].fillna("").astype(str)
    t["params"] = t["params"].map(normalise_params)
    # NaN never equals NaN in a merge key: scalar rows get a sentinel step
    t["step"] = t["step"].astype(float).round(9).fillna(-math.inf)
    for col in ("value", "ci_low", "ci_high"):
        t[col] = t[col].astype(float)
    t["testable"] = testable(t)
    return t.drop_duplicates(KEY_COLUMNS, keep="last")


def testable(t: pd.DataFrame) -> pd.Series:
    """Rows whose interval can carry a test: finite bounds, and a positive width unless the
    interval is stated to be exact (``ci_method`` "constant": n > 1 identical values). A
    zero-width interval of an older run (no ``ci_method``: a percentile bootstrap collapsed on
    a 0/n or n/n proportion) or of a single unit is no evidence of precision: never flagged."""
    lo, hi = t["ci_low"].astype(float), t["ci_high"].astype(float)
    method = t["ci_method"] if "ci_method" in t else pd.Series("", index=t.index)
    method = method.fillna("").astype("str")
    finite = np.isfinite(lo) & np.isfinite(hi)
    ok = finite & ((hi > lo) | (method == "constant")) & (method != "none")
    return pd.Series(ok, index=t.index)


def run_mismatches(a: RunData, b: RunData, both: pd.DataFrame) -> list[str]:
    """Why two runs may not measure the same thing: another profile, other evaluation images,
    or scores over a different number of units. Each is one line."""
    out = []
    pa, pb = a.manifest.get("profile") or {}, b.manifest.get("profile") or {}
    name_a, name_b = pa.get("name"), pb.get("name")
    if name_a and name_b and name_a != name_b:
        out.append(f"the runs use different profiles ({name_a} vs {name_b})")
    ia, ib = a.manifest.get("eval_indices"), b.manifest.get("eval_indices")
    if ia is not None and ib is not None and list(ia) != list(ib):
        out.append(f"the runs explain different images ({len(ia)} vs {len(ib)} evaluation images)")
    if "n_a" in both and "n_b" in both:
        differ = int((both["n_a"].fillna(-1) != both["n_b"].fillna(-1)).sum())
        if differ:
            out.append(f"{differ} matched scores rest on a different n in the two runs")
    return out


def label(direction: str, a: tuple[float, float, float], b: tuple[float, float, float]) -> str:
    """ "better" / "worse" / "changed" when B's CI is disjoint from A's, else ""."""
    (va, la, ha), (vb, lb, hb) = a, b
    if not all(math.isfinite(x) for x in (va, vb)):
        return ""
    # a degenerate or missing CI is the point itself
    la, ha = (la, ha) if math.isfinite(la) and math.isfinite(ha) else (va, va)
    lb, hb = (lb, hb) if math.isfinite(lb) and math.isfinite(hb) else (vb, vb)
    if lb > ha:
        up = True
    elif hb < la:
        up = False
    else:
        return ""
    if direction == "higher":
        return "better" if up else "worse"
    if direction == "lower":
        return "worse" if up else "better"
    return "changed"


def compare_tables(a: RunData, b: RunData, *, fdr: float | None = None) -> Comparison:
    """Every matched score of A and B with its change, p- and q-value and label (see the module
    docstring); ``fdr`` (e.g. 0.05) also requires q <= fdr for a flag."""
    if fdr is not None and not 0.0 < fdr < 1.0:
        raise ValueError(f"fdr must be in (0, 1), got {fdr}")
    ta, tb = _keyed(a.table), _keyed(b.table)
    keep = [*KEY_COLUMNS, "value", "ci_low", "ci_high", "n", "direction", "testable"]
    merged = ta[keep].merge(
        tb[keep], on=KEY_COLUMNS, how="outer", suffixes=("_a", "_b"), indicator=True
    )
    both = merged[merged["_merge"] == "both"].drop(columns="_merge").copy()
    both["direction"] = both["direction_b"].fillna(both["direction_a"]).fillna("none")
    both = both.drop(columns=["direction_a", "direction_b"])
    both["change"] = both["value_b"] - both["value_a"]
    both["label"] = [
        label(d, (va, la, ha), (vb, lb, hb))
        for d, va, la, ha, vb, lb, hb in zip(
            both["direction"],
            both["value_a"],
            both["ci_low_a"],
            both["ci_high_a"],
            both["value_b"],
            both["ci_low_b"],
            both["ci_high_b"],
            strict=True,
        )
    ]
    both["p_value"] = difference_p_value(
        both["value_a"].to_numpy(),
        (both["ci_low_a"].to_numpy(), both["ci_high_a"].to_numpy()),
        both["value_b"].to_numpy(),
        (both["ci_low_b"].to_numpy(), both["ci_high_b"].to_numpy()),
    )
    both["testable"] = both["testable_a"].fillna(False).astype(bool) & both["testable_b"].fillna(
        False
    ).astype(bool)
    both = both.drop(columns=["testable_a", "testable_b"])
    both.loc[~both["testable"], "p_value"] = np.nan
    both.loc[~both["testable"], "label"] = ""
    both["q_value"] = benjamini_hochberg(both["p_value"].to_numpy())
    if fdr is not None:
        both.loc[~(both["q_value"] <= fdr), "label"] = ""
    both["step"] = both["step"].replace(-math.inf, np.nan)
    both.insert(0, "run_b", b.run_id)
    both.insert(0, "run_a", a.run_id)
    both.insert(2, "env_b", b.env_name)
    both.insert(2, "env_a", a.env_name)
    only_a = merged[merged["_merge"] == "left_only"][KEY_COLUMNS].copy()
    only_b = merged[merged["_merge"] == "right_only"][KEY_COLUMNS].copy()
    for t in (only_a, only_b):
        t["step"] = t["step"].replace(-math.inf, np.nan)
    order = {"worse": 0, "better": 1, "changed": 2, "": 3}
    both = both.sort_values(
        by=["label", "benchmark", "metric", "model", "method", "step"],
        key=lambda s: s.map(order) if s.name == "label" else s,
    ).reset_index(drop=True)
    maps = (
        map_differences(a.run_dir, b.run_dir)
        if a.run_dir is not None and b.run_dir is not None
        else pd.DataFrame(columns=MAP_COLUMNS)
    )
    return Comparison(
        a,
        b,
        both,
        only_a.reset_index(drop=True),
        only_b.reset_index(drop=True),
        fdr,
        maps,
        run_mismatches(a, b, both),
    )


# ---- loading runs ------------------------------------------------------------------------------


REQUIRED_COLUMNS = [*KEY_COLUMNS, "value", "ci_low", "ci_high", "n", "direction"]


def _read_folder(folder: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A run folder's results table and manifest, checked against the results schema: a folder
    someone sent is untrusted input (one-line :class:`BinsalError` on anything else)."""
    csv = folder / "results.csv"
    try:
        table = pd.read_csv(csv, keep_default_na=False, na_values=["", "nan", "NaN"])
    except (ValueError, pd.errors.ParserError) as exc:  # UnicodeDecodeError is a ValueError
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BinsalError(f"{csv} is not a binsal results table ({msg})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise BinsalError(
            f"{csv} is not a binsal results table: no column {', '.join(missing)} "
            f"(needs {', '.join(REQUIRED_COLUMNS)})"
        )
    if not all(pd.api.types.is_numeric_dtype(table[c]) for c in ("value", "ci_low", "ci_high")):
        raise BinsalError(f"{csv}: value, ci_low and ci_high must be numbers")
    mpath = folder / "manifest.json"
    manifest: Any = {}
    if mpath.is_file():
        try:
            manifest = json.loads(mpath.read_text(encoding="utf-8"))
        except (ValueError, OSError) as exc:
            raise BinsalError(f"{mpath} is not readable JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise BinsalError(f"{mpath} must hold a JSON object, got {type(manifest).__name__}")
    return table, manifest


def load_run(ref: str, *, history: str | Path | None = None) -> RunData:
    """A run from a folder (``results.csv`` + ``manifest.json``), a ``results.csv`` path, or a
    run id (or unique prefix) recorded in the history."""
    p = Path(ref)
    if p.is_file() and p.suffix == ".csv":
        p = p.parent
    if p.is_dir() and (p / "results.csv").is_file():
        table, manifest = _read_folder(p)
        run_id = str(manifest.get("run_id") or p.resolve().name)
        return RunData(run_id, table, manifest, str(manifest.get("env_name", "")), p.resolve())
    from binsal.reports import history as hist

    path = Path(history) if history else hist.history_path()
    if path is None or not path.exists():
        raise FileNotFoundError(f"{ref!r} is no run folder and there is no history at {path}")
    try:
        table, manifest = hist.load_run(path, ref)
    except KeyError as exc:
        raise FileNotFoundError(f"run {exc} not found in {path} nor as a folder") from None
    folder = manifest.get("run_dir")
    run_dir = Path(folder) if folder and Path(folder).is_dir() else None
    return RunData(
        str(manifest.get("run_id", ref)), table, manifest, manifest.get("env_name", ""), run_dir
    )


def latest_per_env_pairs(
    history: str | Path, *, baseline_env: str | None = None, profile: str | None = None
) -> list[tuple[RunData, RunData]]:
    """(baseline, other) for the latest run of each env in the history. The baseline is
    ``baseline_env`` if given and present, else the first env name in sort order."""
    from binsal.reports.history import latest_per_env

    latest = latest_per_env(history, profile)
    if len(latest) < 2:
        raise ValueError(
            f"--latest-per-env needs runs from two environments in {history}; found "
            f"{sorted(latest) or 'none'}"
        )
    base = baseline_env if baseline_env in latest else sorted(latest)[0]
    ref = load_run(latest[base], history=history)
    ref.env_name = ref.env_name or base
    out = []
    for env, run_id in latest.items():
        if env == base:
            continue
        other = load_run(run_id, history=history)
        other.env_name = other.env_name or env
        out.append((ref, other))
    return out


# ---- output ------------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1200px;
padding:1rem 1.5rem;color:#222;line-height:1.4}
table{border-collapse:collapse;font-size:.8rem;margin:.5rem 0}
th,td{border:1px solid #ddd;padding:.2rem .45rem;text-align:right}th{background:#f4f4f4}
td.l,th.l{text-align:left}.muted{color:#666;font-size:.85rem}td{white-space:nowrap}
.worse{background:#fde2e1}.better{background:#e3f4e1}.changed{background:#fff4d6}
h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:1.6rem}
"""


def _f(v: Any) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return html.escape(str(v))
    return "–" if not math.isfinite(v) else f"{v:.4g}"


def _versions(m: dict[str, Any]) -> str:
    libs = m.get("library_versions", {}) or {}
    keys = ("tensorflow_runtime", "keras", "tf-keras", "larq", "larq-zoo", "tf-keras-vis", "numpy")
    return ", ".join(f"{k} {libs[k]}" for k in keys if libs.get(k) and libs[k] != "absent")


def comparison_section(c: Comparison, *, max_rows: int = 400) -> str:
    reg = c.regressions
    counts = reg["label"].value_counts().to_dict()
    head = (
        f"<h2>{html.escape(c.a.env_name or 'A')} → {html.escape(c.b.env_name or 'B')}</h2>"
        f"<p class=muted>A: <b>{html.escape(c.a.run_id)}</b> "
        f"({html.escape(_versions(c.a.manifest))})<br>"
        f"B: <b>{html.escape(c.b.run_id)}</b> ({html.escape(_versions(c.b.manifest))})</p>"
        f"{_weights_note(c)}{_mismatch_note(c)}{_maps_section(c)}"
        f"<p>{len(c.table)} matched scores; flagged (CIs disjoint): "
        f"<b class=worse>{counts.get('worse', 0)} worse</b>, "
        f"<b class=better>{counts.get('better', 0)} better</b>, "
        f"<b class=changed>{counts.get('changed', 0)} changed</b> (direction none); "
        f"{len(c.only_a)} scores only in A, {len(c.only_b)} only in B.</p>"
    )
    if reg.empty:
        return (
            head + "<p>No score changed beyond both runs' confidence intervals.</p>" + _missing(c)
        )
    cols = ["label", "benchmark", "model", "family", "method", "metric", "step", "direction"]
    th = "".join(f"<th class=l>{c_}</th>" for c_ in cols)
    th += "<th>A [95 % CI]</th><th>B [95 % CI]</th><th>change</th>"
    body = []
    for _, r in reg.head(max_rows).iterrows():
        tds = "".join(
            f"<td class=l>{html.escape(_f(r[c_]) if c_ == 'step' else str(r[c_]))}</td>"
            for c_ in cols
        )
        tds += f"<td>{_f(r['value_a'])} [{_f(r['ci_low_a'])}, {_f(r['ci_high_a'])}]</td>"
        tds += f"<td>{_f(r['value_b'])} [{_f(r['ci_low_b'])}, {_f(r['ci_high_b'])}]</td>"
        tds += f"<td>{_f(r['change'])}</td>"
        body.append(f"<tr class={r['label']}>{tds}</tr>")
    more = (
        f"<p class=muted>{len(reg) - max_rows} more rows in the CSV.</p>"
        if len(reg) > max_rows
        else ""
    )
    return (
        head
        + f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"
        + _missing(c)
    )


def _weights_note(c: Comparison) -> str:
    wa, wb = c.a.weights, c.b.weights
    if wa == wb and wa.startswith("bundle:"):
        return (
            f"<p>Weights: the same bundle ({html.escape(wa[7:])}) in both runs: a changed map "
            "or score is the libraries' doing (benchmarks that train by design, ROAR and data "
            "randomization, still retrain).</p>"
        )
    return (
        f"<p class=changed>Weights: A {html.escape(wa)}, B {html.escape(wb)}: the runs evaluate "
        "different trained weights, so changes mix training noise with library behaviour "
        "(use <code>binsal bundle</code> and <code>--weights-bundle</code> to isolate the "
        "library).</p>"
    )


def _mismatch_note(c: Comparison) -> str:
    if not c.mismatches:
        return ""
    items = "".join(f"<li>{html.escape(m)}</li>" for m in c.mismatches)
    return f"<div class=changed><b>These runs may not be comparable:</b><ul>{items}</ul></div>"


def _maps_section(c: Comparison) -> str:
    m = c.maps
    if m.empty:
        return "<p class=muted>Maps: not compared (run folders not found or no common maps).</p>"
    changed = m[m["changed"]]
    g = (
        m.groupby(["model", "method"])
        .agg(maps=("file", "size"), max_abs_diff=("max_abs_diff", "max"), rel=("rel_diff", "max"))
        .reset_index()
    )
    rows = "".join(
        f"<tr class={'changed' if rel > MAP_RTOL else ''}><td class=l>{html.escape(str(model))}"
        f"</td><td class=l>{html.escape(str(method))}</td><td>{n}</td>"
        f"<td>{_f(diff)}</td><td>{_f(rel)}</td></tr>"
        for model, method, n, diff, rel in zip(
            g["model"],
            g["method"],
            g["maps"],
            g["max_abs_diff"],
            g["rel"].astype(float),
            strict=True,
        )
    )
    return (
        f"<p>Maps: {len(m)} compared, <b>{len(changed)} differ</b> beyond {MAP_RTOL:g} of the "
        "map's largest |value|.</p><details><summary>per model and method</summary><table><thead>"
        "<tr><th class=l>model</th><th class=l>method</th><th>maps</th><th>max |A-B|</th>"
        f"<th>max |A-B| / max |A|</th></tr></thead><tbody>{rows}</tbody></table></details>"
    )


def _missing(c: Comparison) -> str:
    parts = []
    for name, t in (("only in A", c.only_a), ("only in B", c.only_b)):
        if t.empty:
            continue
        g = t.groupby(["benchmark", "method"]).size().reset_index(name="scores")
        rows = "".join(
            f"<tr><td class=l>{html.escape(str(r.benchmark))}</td>"
            f"<td class=l>{html.escape(str(r.method))}</td><td>{r.scores}</td></tr>"
            for r in g.itertuples()
        )
        parts.append(
            f"<details><summary>{len(t)} scores {name}</summary><table><thead><tr>"
            f"<th class=l>benchmark</th><th class=l>method</th><th>scores</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></details>"
        )
    return "".join(parts)


def render_html(
    comparisons: list[Comparison], *, title: str = "binsal: run comparison", extra: str = ""
) -> str:
    sections = "".join(comparison_section(c) for c in comparisons)
    fdrs = sorted({c.fdr for c in comparisons if c.fdr is not None})
    fdr_note = (
        f" and the Benjamini-Hochberg q-value is at most {', '.join(map(str, fdrs))}"
        if fdrs
        else " (about 0.56 % of unchanged scores are flagged by chance; --fdr bounds that)"
    )
    summary = (__doc__ or "").split("\n")[0]
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p class=muted>{html.escape(summary)} "
        "Matched on benchmark, model, family, pair, method, metric, step and params (seeds and "
        "bookkeeping such as cache hits ignored); flagged when the two 95 % CIs are disjoint"
        f"{fdr_note}.</p>"
        f"{extra}{sections}</body></html>"
    )


def write_outputs(
    comparisons: list[Comparison], out: str | Path, *, extra_html: str = ""
) -> tuple[Path, Path]:
    """``regressions.csv`` (flagged rows of every comparison) and ``compare.html`` in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    frames = [c.regressions for c in comparisons]
    reg = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    csv = out / "regressions.csv"
    reg.to_csv(csv, index=False)
    maps = [
        c.maps.assign(run_a=c.a.run_id, run_b=c.b.run_id, env_a=c.a.env_name, env_b=c.b.env_name)
        for c in comparisons
        if not c.maps.empty
    ]
    if maps:
        pd.concat(maps, ignore_index=True).to_csv(out / "maps.csv", index=False)
    page = out / "compare.html"
    page.write_text(render_html(comparisons, extra=extra_html), encoding="utf-8")
    return csv, page


def matrix_overview(history: str | Path, *, profile: str | None = None) -> str:
    """HTML: the latest run of each environment with its versions, and what failed there."""
    from binsal.reports import history as hist

    runs = hist.list_runs(history)
    if runs.empty:
        return ""
    if profile:
        runs = runs[runs["profile"] == profile]
    latest = runs.sort_values("finished_utc").groupby("env_name", sort=True).tail(1)
    fails = hist.list_failures(history)
    cols = ["tensorflow", "keras", "tf_keras", "larq", "larq_zoo", "tf_keras_vis", "numpy"]
    th = "".join(f"<th class=l>{c}</th>" for c in ["env", "run", *cols]) + "<th>scores</th>"
    th += "<th>wall s</th><th class=l>failed in this env</th>"
    body = []
    for r in cast(Iterator[hist.RunRow], latest.sort_values("env_name").itertuples(index=False)):
        mine = fails[fails["env_name"] == r.env_name] if not fails.empty else fails
        if not mine.empty:
            mine = mine[
                (mine["run_id"] == r.run_id)
                | (mine["run_id"].isna() & (mine["recorded_utc"] > (r.finished_utc or "")))
            ]
        failed = "; ".join(
            f"{f.stage} {f.benchmark or f.method} {f.model}".strip()
            + f": {hist.short_error(f.error)}"
            for f in cast(Iterator[hist.FailureRow], mine.itertuples(index=False))
        )
        tds = f"<td class=l>{html.escape(str(r.env_name))}</td>"
        tds += f"<td class=l>{html.escape(str(r.run_id))}</td>"
        tds += "".join(f"<td class=l>{html.escape(str(getattr(r, c) or ''))}</td>" for c in cols)
        tds += f"<td>{r.n_rows}</td><td>{_f(r.wall_seconds)}</td>"
        tds += f"<td class=l>{html.escape(failed) or '–'}</td>"
        body.append(f"<tr>{tds}</tr>")
    return (
        "<h2>Environments (latest run of each)</h2>"
        f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )
