"""The robustness table: each claim's verdict under every combination of analysis choices.

Reads the ``claim_robustness`` rows of a results table (each carries ``of``, the benchmark it
re-ran, and ``setting``, the choices that reached it), rebuilds for every combination of the
choices the table of the underlying benchmarks as that combination would have produced it, and
evaluates the claims on it with :func:`binsal.reports.claims.paper_claims` (the same rules, floors
and power lines as the main claims table; claim 2's sigma is the combination's SmoothGrad sigma).

Per claim, the summary says whether its verdict

- **survives all** combinations (supported under each: the strongest evidence the table gives),
- is **the same under all** (e.g. "inconclusive under all"),
- **holds only under the paper's settings** (supported at the paper's combination, not at some
  other),
- **flips** (supported under some combinations and not supported under others),
- or **varies** otherwise (decided under some combinations, inconclusive under others).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from binsal.core.profile import PRESETS
from binsal.reports import claims as cl

BENCHMARK = "claim_robustness"
# tf-keras-vis 0.8.7's defaults (the preset) and its ``smooth_noise=0.20``: the combination the
# paper's figures were made with; binsal's defaults at the same sigma
PAPER_SETTING: dict[str, Any] = {**PRESETS["tf-keras-vis"], "smoothgrad_noise": 0.2}
BINSAL_SETTING: dict[str, Any] = {**PRESETS["binsal"], "smoothgrad_noise": 0.2}


def _rows(table: pd.DataFrame) -> pd.DataFrame:
    """The robustness rows, with columns ``of`` and ``setting`` (a dict) parsed from params."""
    rows = table[table["benchmark"] == BENCHMARK].copy()
    params = [json.loads(p) if isinstance(p, str) else {} for p in rows["params"]]
    keep = [isinstance(p.get("setting"), dict) and "of" in p for p in params]
    rows = rows[keep]  # rows without a setting were not written by claim_robustness
    params = [p for p, k in zip(params, keep, strict=True) if k]
    rows["of"] = [p["of"] for p in params]
    rows["setting"] = [p["setting"] for p in params]
    rows["metric"] = [str(m).split("/", 1)[1] for m in rows["metric"]]
    rows["benchmark"] = rows["of"]
    return rows


def grid(rows: pd.DataFrame) -> dict[str, list[Any]]:
    """Each choice -> the values it took in the rows, in first-seen order."""
    out: dict[str, list[Any]] = {}
    for setting in rows["setting"]:
        for k, v in setting.items():
            if v not in out.setdefault(k, []):
                out[k].append(v)
    return out


def _matches(setting: Mapping[str, Any], combo: Mapping[str, Any]) -> bool:
    return all(combo.get(k) == v for k, v in setting.items())


def _label(setting: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in setting.items())


def reaching(rows: pd.DataFrame, claim: cl.ClaimSpec) -> tuple[str, ...]:
    """The choices that reach ``claim``: those in the settings of the rows its measures read
    (benchmark and method), plus SmoothGrad's sigma where a measure reads a sigma step."""
    keys: dict[str, None] = {}
    for m in claim.measures:
        methods = {m.method, m.reference_method} - {""}
        hit = (rows["benchmark"] == m.benchmark).to_numpy().copy()
        if methods:
            hit &= rows["method"].isin(sorted(methods)).to_numpy()
        for setting in rows["setting"][hit]:
            keys.update(dict.fromkeys(setting))
        if m.step_name == "sigma":
            keys["smoothgrad_noise"] = None
    return tuple(keys)


def robustness(
    table: pd.DataFrame, manifest: Mapping[str, Any] | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(per combination: {setting, verdicts: claim id -> verdict}, per claim: the summary).

    Each claim is evaluated once per distinct combination of the choices that reach it (claim 3
    reads only GradCAM rows: twice, once per layer rule), on that combination's table.
    Empty lists when the table has no ``claim_robustness`` rows."""
    if "benchmark" not in table or not (table["benchmark"] == BENCHMARK).any():
        return [], []
    rows = _rows(table)
    if rows.empty:
        return [], []
    values = grid(rows)
    keys = list(values)
    combos = [dict(zip(keys, c, strict=True)) for c in itertools.product(*values.values())]
    specs = cl.load_claims()
    reach = {spec.id: reaching(rows, spec) for spec in specs}
    # the rows' distinct settings, each matched once per combination (not once per row)
    codes, distinct = pd.factorize(
        pd.Series([json.dumps(s, sort_keys=True, default=str) for s in rows["setting"]])
    )
    settings = [json.loads(d) for d in distinct]
    memo: dict[tuple[Any, str], str] = {}
    per_combo = []
    for combo in combos:
        keys = {
            spec.id: (spec.id, json.dumps({k: combo.get(k) for k in reach[spec.id]}, default=str))
            for spec in specs
        }
        todo = [spec for spec in specs if keys[spec.id] not in memo]
        if todo:  # the claims this combination decides anew, in one evaluation of its table
            hit = [i for i, setting in enumerate(settings) if _matches(setting, combo)]
            sub = rows[np.isin(codes, hit)].drop(columns=["of", "setting"])
            noise = combo.get("smoothgrad_noise")  # claim 2's sigma: this setting's, in %
            steps = {} if noise is None else {"sigma": 100.0 * float(noise)}
            entries = cl.evaluate_claims(sub, todo, manifest=manifest, steps=steps)
            verdicts = cl.claim_verdicts(entries)
            for spec in todo:
                memo[keys[spec.id]] = verdicts.get(spec.id, "inconclusive")
        per_combo.append({"setting": combo, "verdicts": {s.id: memo[keys[s.id]] for s in specs}})
    summary = []
    for cid in [spec.id for spec in specs]:
        verdicts = [p["verdicts"].get(cid, "inconclusive") for p in per_combo]
        at = {
            name: next(
                (p["verdicts"].get(cid) for p in per_combo if _matches(p["setting"], ref)),
                None,
            )
            for name, ref in (("paper", PAPER_SETTING), ("binsal", BINSAL_SETTING))
        }
        counts = {v: verdicts.count(v) for v in dict.fromkeys(verdicts)}
        if counts == {"supported": len(verdicts)}:
            label = "survives all"
        elif len(counts) == 1:
            label = f"{verdicts[0]} under all"
        elif "supported" in counts and "not supported" in counts:
            label = "flips"
        elif at["paper"] == "supported":
            label = "holds only under the paper's settings"
        else:
            label = "varies"
        summary.append(
            {
                "claim_id": cid,
                "paper": at["paper"],
                "binsal": at["binsal"],
                "counts": counts,
                "n_settings": len(verdicts),
                "robustness": label,
            }
        )
    return per_combo, summary


def robustness_html(
    table: pd.DataFrame, manifest: Mapping[str, Any] | None = None, title: str = ""
) -> str:
    """The report section: the per-claim summary, then every combination's verdicts (collapsed)."""
    import html

    per_combo, summary = robustness(table, manifest)
    head = f"<h2 id='{BENCHMARK}'>{html.escape(title or 'Robustness of the verdicts')}</h2>"
    if not summary:
        return head + "<p class=muted>No claim could be evaluated on these rows.</p>"
    columns = (
        "<tr><th class=l>claim</th><th class=l>robustness</th><th class=l>paper's settings"
        "</th><th class=l>binsal's defaults</th><th class=l>verdicts over all settings</th></tr>"
    )
    body = "".join(
        f"<tr><td class=l>{s['claim_id']}</td><td class=l><b>{html.escape(s['robustness'])}</b>"
        f"</td><td class=l>{html.escape(str(s['paper'] or 'not in the grid'))}</td>"
        f"<td class=l>{html.escape(str(s['binsal'] or 'not in the grid'))}</td><td class=l>"
        + html.escape(", ".join(f"{v}: {k} of {s['n_settings']}" for v, k in s["counts"].items()))
        + "</td></tr>"
        for s in summary
    )
    ids = [s["claim_id"] for s in summary]
    detail_head = "<tr><th class=l>setting</th>" + "".join(f"<th>claim {c}</th>" for c in ids)
    detail = "".join(
        f"<tr><td class=l>{html.escape(_label(p['setting']))}</td>"
        + "".join(f"<td>{html.escape(p['verdicts'].get(c, ''))}</td>" for c in ids)
        + "</tr>"
        for p in per_combo
    )
    return (
        f"{head}<p class=muted>Each claim evaluated "
        "again under every combination of the analysis choices (per-sample abs, channel "
        "reduction, normalisation, GradCAM layer rule, SmoothGrad sigma) on the "
        "<code>claim_robustness</code> rows; the paper's settings are tf-keras-vis 0.8.7's "
        f"defaults ({html.escape(_label(PAPER_SETTING))}).</p>"
        f"<div class=scroll><table><thead>{columns}</thead><tbody>{body}</tbody></table></div>"
        f"<details><summary>verdicts under each of the {len(per_combo)} settings</summary>"
        f"<div class=scroll><table><thead>{detail_head}</tr></thead><tbody>{detail}</tbody>"
        "</table></div></details>"
    )
