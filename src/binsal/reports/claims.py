"""The paper's three claims, evaluated on matched FP/BNN pairs from a run's tidy results table.

Plain functions (no ``Benchmark`` here): the report calls :func:`paper_claims` on the results
table (the columns of ``binsal.core.schema.RESULT_COLUMNS``).
Each claim is split into measures; each
measure is compared on every matched pair (the same topology once full precision, once binarized,
so binarization is the only difference) and yields one dict:

``claim`` (text), ``claim_id`` (1, 2, 3), ``measure``, ``pair``, ``fp_model``, ``bnn_model``,
``fp`` / ``fp_ci`` ([low, high]) and ``bnn`` / ``bnn_ci`` (the two sides compared, with their
bootstrap 95 % CIs over images), ``fp_label`` / ``bnn_label`` (what each side is), ``expected``
(what the paper predicts, e.g. "bnn > fp"), ``verdict``, ``n`` (images behind the smaller side),
``source`` (benchmark and metric) and ``rule`` (the decision rule, in words).

For claims 2 and 3 the sides are the FP and the BNN model of the pair. Claim 1 is about a
similarity *between* an FP and a BNN map, so both sides are FP-BNN (or FP-FP) similarities:
``fp`` holds the reference (the FP-FP Spearman of two different FP networks, chance level 0,
or Gradient's FP-BNN Spearman) and ``bnn`` the value under test (the matched FP-BNN Spearman of
Gradient, or of SmoothGrad / GradCAM); the labels say which.

Verdicts are decided by overlap of the two 95 % CIs, never by point values alone. For an ordered
prediction (bnn > fp or bnn < fp): "supported" if the CIs are disjoint in the predicted order,
"not supported" if they are disjoint in the opposite order, "inconclusive" if they overlap. For
"alike" (bnn >= fp: the matched FP-BNN similarity is not below the reference): "supported" if the
CIs overlap or bnn is higher, "not supported" if bnn's CI lies entirely below the reference's.
A side without a finite value (missing benchmark, no masks) gives "inconclusive".
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

CLAIMS: dict[int, str] = {
    1: "Gradient maps are alike for BNNs and FP networks",
    2: "SmoothGrad is noisier on BNNs, whose optimal noise is lower (2-6 % vs 10-20 %)",
    3: "GradCAM on BNNs is often blank or nonsensical; removing the ReLU and inverting helps",
}
EXPECTATIONS = ("bnn > fp", "bnn < fp", "bnn >= fp (alike)")
VERDICTS = ("supported", "not supported", "inconclusive")
ENTROPY_SIGMA = 20.0  # the paper's SmoothGrad setting (% of input range)

_RULES = {
    "bnn > fp": "supported if bnn's CI lies above fp's, not supported if below, else inconclusive",
    "bnn < fp": "supported if bnn's CI lies below fp's, not supported if above, else inconclusive",
    "bnn >= fp (alike)": "supported if the CIs overlap or bnn's lies above fp's, "
    "not supported if bnn's CI lies entirely below fp's",
}

_Side = tuple[float, float, float, int]  # value, ci_low, ci_high, n
_MISSING: _Side = (math.nan, math.nan, math.nan, 0)


def verdict(fp: _Side, bnn: _Side, expected: str) -> str:
    """The CI-overlap decision described in the module docstring."""
    if expected not in EXPECTATIONS:
        raise ValueError(f"expected must be one of {EXPECTATIONS}, got {expected!r}")
    if not all(math.isfinite(v) for v in (*fp[:3], *bnn[:3])):
        return "inconclusive"
    fp_lo, fp_hi = min(fp[1], fp[0]), max(fp[2], fp[0])
    bnn_lo, bnn_hi = min(bnn[1], bnn[0]), max(bnn[2], bnn[0])
    above, below = bnn_lo > fp_hi, bnn_hi < fp_lo
    if expected == "bnn > fp":
        return "supported" if above else "not supported" if below else "inconclusive"
    if expected == "bnn < fp":
        return "supported" if below else "not supported" if above else "inconclusive"
    return "not supported" if below else "supported"


def _prepare(df: pd.DataFrame) -> pd.DataFrame:
    need = {"benchmark", "model", "family", "pair", "method", "metric", "step", "value"}
    missing = need - set(df.columns)
    if missing:
        raise ValueError(f"results table lacks columns {sorted(missing)}")
    out = df.copy()
    out["pair"] = out["pair"].fillna("").astype(str)
    for col in ("ci_low", "ci_high"):
        if col not in out:
            out[col] = out["value"]
    if "n" not in out:
        out["n"] = 0
    return out


def matched_pairs(df: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """pair name -> (FP model, BNN model), from rows of single models (family FP / BNN)."""
    t = _prepare(df)
    single = t[t["family"].isin(["FP", "BNN"]) & (t["pair"] != "")]
    members: dict[str, dict[str, set[str]]] = {}
    for (pair, fam), g in single.groupby(["pair", "family"]):
        members.setdefault(str(pair), {})[str(fam)] = set(g["model"].astype("str"))
    out = {}
    for pair, fams in sorted(members.items()):
        fps, bnns = sorted(fams.get("FP", ())), sorted(fams.get("BNN", ()))
        if len(fps) == 1 and len(bnns) == 1:
            out[pair] = (fps[0], bnns[0])
    if not out:  # fall back on pairwise rows "fp|bnn" flagged as matched
        cross = t[(t["family"] == "FP-BNN") & (t["pair"] != "")]
        for pair, g in cross.groupby("pair"):
            a, _, b = str(g["model"].iloc[0]).partition("|")
            out[str(pair)] = (a, b)
    return out


def _side(rows: pd.DataFrame) -> _Side:
    """One side from matching rows: the row itself, or for several rows the mean of values and
    of CI bounds (conservative: wider than the CI of a mean)."""
    rows = rows[np.isfinite(rows["value"].astype(float))]
    if rows.empty:
        return _MISSING
    return (
        float(rows["value"].mean()),
        float(rows["ci_low"].mean()),
        float(rows["ci_high"].mean()),
        int(rows["n"].min()),
    )


def _select(
    t: pd.DataFrame, benchmark: str, metric: str, *, method: str | None = None, **eq: Any
) -> pd.DataFrame:
    sel = (t["benchmark"] == benchmark) & (t["metric"] == metric)
    if method is not None:
        sel &= t["method"] == method
    for col, val in eq.items():
        sel &= t[col] == val
    return t[sel]


def _at_step(rows: pd.DataFrame, step: float) -> tuple[pd.DataFrame, float]:
    """Rows at the available step nearest to ``step`` (and that step)."""
    steps = rows["step"].dropna().unique()
    if steps.size == 0:
        return rows.iloc[0:0], math.nan
    near = float(steps[np.argmin(np.abs(steps - step))])
    return rows[np.isclose(rows["step"], near)], near


def _scalar(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[rows["step"].isna()]


def _entry(
    claim_id: int,
    measure: str,
    pair: str,
    models: tuple[str, str],
    fp: _Side,
    bnn: _Side,
    expected: str,
    source: str,
    labels: tuple[str, str] = ("FP model", "BNN model"),
) -> dict[str, Any]:
    def r(x: float) -> float:
        return float(x) if math.isfinite(x) else math.nan

    n = min(fp[3], bnn[3]) if math.isfinite(fp[0]) and math.isfinite(bnn[0]) else 0
    return {
        "claim": CLAIMS[claim_id],
        "claim_id": claim_id,
        "measure": measure,
        "pair": pair,
        "fp_model": models[0],
        "bnn_model": models[1],
        "fp": r(fp[0]),
        "fp_ci": [r(fp[1]), r(fp[2])],
        "bnn": r(bnn[0]),
        "bnn_ci": [r(bnn[1]), r(bnn[2])],
        "fp_label": labels[0],
        "bnn_label": labels[1],
        "expected": expected,
        "verdict": verdict(fp, bnn, expected),
        "n": int(n),
        "source": source,
        "rule": "by 95 % CI overlap: " + _RULES[expected],
    }


def _claim1(t: pd.DataFrame, pair: str, fp: str, bnn: str) -> list[dict[str, Any]]:
    rc = "rank_correlation"
    matched = _scalar(_select(t, rc, "spearman", pair=pair, family="FP-BNN"))
    out = []
    grad = _side(matched[matched["method"] == "gradient"])
    ref_rows = _scalar(_select(t, rc, "spearman", method="gradient", family="FP-FP"))
    ref_rows = ref_rows[
        ref_rows["model"]
        .astype("str")
        .str.split("|")
        .map(lambda ms: isinstance(ms, list) and fp in ms)
    ]
    out.append(
        _entry(
            1,
            "Spearman of abs Gradient maps: matched FP-BNN vs FP-FP reference",
            pair,
            (fp, bnn),
            _side(ref_rows),
            grad,
            "bnn >= fp (alike)",
            f"{rc}/spearman",
            (f"FP-FP reference Spearman ({fp} vs other FP networks)", f"{fp}|{bnn} Spearman"),
        )
    )
    out.append(
        _entry(
            1,
            "Spearman of abs Gradient maps: matched FP-BNN above chance (0)",
            pair,
            (fp, bnn),
            (0.0, 0.0, 0.0, grad[3]),
            grad,
            "bnn > fp",
            f"{rc}/spearman",
            ("chance: independent maps (0)", f"{fp}|{bnn} Spearman"),
        )
    )
    for other in ("smoothgrad", "gradcam"):
        out.append(
            _entry(
                1,
                f"matched FP-BNN Spearman: {other} lower than gradient",
                pair,
                (fp, bnn),
                grad,
                _side(matched[matched["method"] == other]),
                "bnn < fp",
                f"{rc}/spearman",
                (f"gradient {fp}|{bnn} Spearman", f"{other} {fp}|{bnn} Spearman"),
            )
        )
    return out


def _claim2(t: pd.DataFrame, pair: str, fp: str, bnn: str, sigma: float) -> list[dict[str, Any]]:
    nb = "entropy_vs_noise"
    out = []
    ent = _select(t, nb, "entropy", method="smoothgrad")
    ent_fp, s_fp = _at_step(ent[ent["model"] == fp], sigma)
    ent_bnn, s_bnn = _at_step(ent[ent["model"] == bnn], sigma)
    step = s_fp if math.isfinite(s_fp) else s_bnn
    if math.isfinite(s_fp) and math.isfinite(s_bnn) and s_fp != s_bnn:
        ent_bnn = ent_bnn.iloc[0:0]  # no common step: not comparable
    out.append(
        _entry(
            2,
            f"SmoothGrad map entropy at sigma = {step:g} % (higher = noisier)",
            pair,
            (fp, bnn),
            _side(ent_fp),
            _side(ent_bnn),
            "bnn > fp",
            f"{nb}/entropy",
        )
    )
    for metric, what in (
        ("argmin_entropy_sigma", "entropy-minimising sigma (%)"),
        ("argmax_localization_sigma", "localization-maximising sigma (%)"),
    ):
        rows = _scalar(_select(t, nb, metric, method="smoothgrad"))
        out.append(
            _entry(
                2,
                f"{what}, lower for the BNN",
                pair,
                (fp, bnn),
                _side(rows[rows["model"] == fp]),
                _side(rows[rows["model"] == bnn]),
                "bnn < fp",
                f"{nb}/{metric}",
            )
        )
    return out


def _claim3(t: pd.DataFrame, pair: str, fp: str, bnn: str) -> list[dict[str, Any]]:
    gp = "gradcam_pathologies"
    measures = (
        ("blank_share", "share of blank GradCAM maps", "bnn > fp"),
        ("relevance_mass_standard", "GradCAM relevance mass in the object mask", "bnn < fp"),
        ("pointing_game_standard", "GradCAM pointing game", "bnn < fp"),
        (
            "inverted_better_relevance_mass",
            "share of images where the inverted signed map has more relevance mass",
            "bnn > fp",
        ),
    )
    out = []
    for metric, what, expected in measures:
        rows = _scalar(_select(t, gp, metric))
        out.append(
            _entry(
                3,
                what,
                pair,
                (fp, bnn),
                _side(rows[rows["model"] == fp]),
                _side(rows[rows["model"] == bnn]),
                expected,
                f"{gp}/{metric}",
            )
        )
    return out


def paper_claims(df: pd.DataFrame, *, entropy_sigma: float = ENTROPY_SIGMA) -> list[dict]:
    """Evaluate the paper's three claims on every matched pair of a results table.

    Returns one dict per (claim, measure, matched pair), claims in order 1, 2, 3 (keys in the
    module docstring); an empty list if the table has no matched pair. Measures whose rows are
    missing are returned with NaN values and verdict "inconclusive".
    Claim 1 (rank_correlation, spearman): Gradient's matched FP-BNN Spearman vs the FP-FP
    reference ("alike") and above chance (0: two near-zero similarities overlap trivially), and
    SmoothGrad's / GradCAM's matched FP-BNN Spearman lower than Gradient's.
    Claim 2 (entropy_vs_noise): SmoothGrad entropy at ``entropy_sigma`` % (nearest step of the
    sweep) higher for the BNN; entropy-minimising and localization-maximising sigma
    lower for the BNN. Claim 3 (gradcam_pathologies): blank share higher for the BNN, relevance
    mass and pointing game of standard GradCAM lower, and the share of images where the inverted
    signed map localizes better higher.
    """
    t = _prepare(df)
    out: list[dict[str, Any]] = []
    pairs = matched_pairs(t)
    for build in (
        lambda p, a, b: _claim1(t, p, a, b),
        lambda p, a, b: _claim2(t, p, a, b, entropy_sigma),
        lambda p, a, b: _claim3(t, p, a, b),
    ):
        for pair, (fp, bnn) in pairs.items():
            out.extend(build(pair, fp, bnn))
    return out


def claim_verdicts(claims: list[dict]) -> dict[int, str]:
    """One verdict per claim id over its measures and pairs: "supported" if every measure is,
    "not supported" if every measure with a decision is not supported, otherwise "inconclusive"
    (mixed or undecided)."""
    out: dict[int, str] = {}
    for cid in sorted({c["claim_id"] for c in claims}):
        vs = [c["verdict"] for c in claims if c["claim_id"] == cid]
        if all(v == "supported" for v in vs):
            out[cid] = "supported"
        elif all(v == "not supported" for v in vs if v != "inconclusive") and any(
            v == "not supported" for v in vs
        ):
            out[cid] = "not supported"
        else:
            out[cid] = "inconclusive"
    return out
