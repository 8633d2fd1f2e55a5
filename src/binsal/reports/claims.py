"""The paper's three claims, evaluated on matched FP/BNN pairs from a run's tidy results table.

Plain functions (no ``Benchmark`` here): the report calls :func:`paper_claims` on the results
table (the columns of ``binsal.core.schema.RESULT_COLUMNS``) and the run's manifest.
Each claim is split into measures; each
measure is compared on every matched pair (the same topology once full precision, once binarized,
so binarization is the only difference) and yields one dict:

``claim`` (text), ``claim_id`` (1, 2, 3), ``measure``, ``pair``, ``fp_model``, ``bnn_model``,
``fp`` / ``fp_ci`` ([low, high]) and ``bnn`` / ``bnn_ci`` (the two sides compared, with their
bootstrap 95 % CIs over images), ``fp_label`` / ``bnn_label`` (what each side is), ``expected``
(what the paper predicts, e.g. "bnn > fp"), ``verdict``, ``test`` (the test that decided it, e.g.
"95 % CIs disjoint" or "TOST non-inferiority, margin 0.1"), ``margin`` (the declared margin of an
equivalence-type test, None for a CI comparison), ``rule`` (the decision rule, in words), ``n``
(images behind the smaller side), ``source`` (benchmark and metric), ``diff`` (bnn - fp) and
``se_diff`` (its standard error), the power line ``mdd``, ``n_needed``, ``n_factor`` (below),
``models`` (every model the measure involves) and ``below_floor`` (those of them below their
accuracy floor).

For claims 2 and 3 the sides are the FP and the BNN model of the pair. Claim 1 is about a
similarity *between* an FP and a BNN map, so both sides are FP-BNN (or FP-FP) similarities:
``fp`` holds the reference (the FP-FP Spearman of two different FP networks, chance level 0,
or Gradient's FP-BNN Spearman) and ``bnn`` the value under test (the matched FP-BNN Spearman of
Gradient, or of SmoothGrad / GradCAM); the labels say which.

Decision rules (never point values alone), by the shape of the prediction:

- Ordered ("bnn > fp", "bnn < fp": "higher", "lower", "different"): the two 95 % CIs. "supported"
  if they are disjoint in the predicted order, "not supported" if disjoint in the opposite order,
  "inconclusive" if they overlap.
- "Alike" ("bnn >= fp (alike)": the matched FP-BNN similarity is not below the FP-FP reference)
  is a non-inferiority test with a declared margin ``SIMILARITY_MARGIN``, the lower of the two
  one-sided tests of TOST (Schuirmann 1987; Lakens 2017, "Equivalence tests", SPPS 8:355).
  Overlapping CIs are *not* evidence of sameness (absence of a difference is not shown by a
  noisy estimate), so the rule works on the difference d = bnn - fp with
  se_d = sqrt(se_fp^2 + se_bnn^2), each side's se = 95 % CI width / (2 x 1.96) (the normal
  approximation of ``binsal.core.stats.difference_p_value``): "supported" if the 90 % CI of d
  lies above -margin (one-sided alpha 0.05), "not supported" if the 95 % CI of d lies entirely
  below -margin (d significantly below -margin), otherwise "inconclusive". One-sided because a
  matched FP-BNN similarity *above* the reference of two unrelated FP networks (a BNN map closer
  to its FP twin than FP networks are to each other) supports "alike"; it must not count against it.
- Equivalence ("bnn ~ fp (equivalent)", two-sided TOST): "supported" if the 90 % CI of d lies
  inside [-margin, +margin], "not supported" if the 95 % CI of d lies entirely outside it,
  otherwise "inconclusive".

The margin: similarities are Spearman correlations; a difference of 0.1 is "small" by Cohen's
convention (Cohen 1988: r = 0.1 small, 0.3 medium, 0.5 large; for correlations near 0 a
difference of 0.1 is Cohen's q = 0.1, "small"), so "alike" means "not lower by more than a small
correlation difference". The report prints the margin.

A side without a finite value or CI (missing benchmark, no masks) gives "inconclusive".

**Accuracy floor.** Saliency of a model that did not learn is meaningless: a measure that involves
a model whose test accuracy is below its floor, factor x chance (chance = 1 / number of classes,
factor = the profile's ``[report] accuracy_floor_factor``, default 2.0; capped at halfway between
chance and 1 so that a two-class model can pass), is "not evaluable: model did not learn", never
supported or not supported. Accuracies and numbers of classes come from the run's manifest
(:func:`model_floors`); a model whose number of classes the manifest does not give is not
checked, and the report says so.

**Power line.** From the observed standard errors, ``mdd`` is the effect the measure's own rule
detects with 80 % power at alpha 0.05 at the current n: for an ordered measure the smallest true
|bnn - fp| the disjoint-CI rule calls, 1.96 (se_fp + se_bnn) + 0.84 se_d (disjoint 95 % CIs are
stricter than a z-test of d, whose mdd would be (1.96 + 0.84) se_d); for "alike" / equivalence the
smallest margin within which a true difference of 0 would be shown, (1.645 + 0.84) se_d (two-sided
TOST near d = 0 needs a little more, both bounds binding). For an inconclusive verdict,
``n_factor`` = (se_d now / se_d required)^2 is how much more data would decide it if the observed
difference is the true one and se ~ 1 / sqrt(n), and ``n_needed`` = ceil(n x n_factor) images. With
several training seeds behind the CIs (``seeds``), more images at the same seeds cannot shrink the
seed-to-seed part of the error, so the plan is in seeds: ``seeds_needed`` = ceil(seeds x n_factor),
each on the same images. An approximation, for planning, not a guarantee.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from binsal.core.stats import Z_95

CLAIMS: dict[int, str] = {
    1: "Gradient maps are alike for BNNs and FP networks",
    2: "SmoothGrad is noisier on BNNs, whose optimal noise is lower (2-6 % vs 10-20 %)",
    3: "GradCAM on BNNs is often blank or nonsensical; removing the ReLU and inverting helps",
}
ALIKE = "bnn >= fp (alike)"
EQUIVALENT = "bnn ~ fp (equivalent)"
EXPECTATIONS = ("bnn > fp", "bnn < fp", ALIKE, EQUIVALENT)
NOT_EVALUABLE = "not evaluable: model did not learn"
VERDICTS = ("supported", "not supported", "inconclusive", NOT_EVALUABLE)
ENTROPY_SIGMA = 20.0  # the paper's SmoothGrad setting (% of input range)

# "alike" on the similarity (Spearman) scale: a "small" correlation difference (Cohen 1988)
SIMILARITY_MARGIN = 0.1
ACCURACY_FLOOR_FACTOR = 2.0  # the default of the profile's [report] accuracy_floor_factor
# pretrained networks of these sources have ImageNet heads (used when the manifest lacks classes)
IMAGENET_SOURCES = {"keras.applications": 1000, "larq-zoo": 1000}

Z_90 = 1.6448536269514722  # two-sided 90 % = one-sided 95 % (the TOST tests at alpha 0.05)
Z_POWER = 0.8416212335729143  # the standard normal's 80 % quantile (80 % power)
CI_TEST = "95 % CIs disjoint"

_ORDERED_RULES = {
    "bnn > fp": "supported if bnn's 95 % CI lies above fp's, not supported if below, "
    "else inconclusive",
    "bnn < fp": "supported if bnn's 95 % CI lies below fp's, not supported if above, "
    "else inconclusive",
}
_SE_TEXT = (
    "d = bnn - fp, se_d = sqrt(se_fp^2 + se_bnn^2) with se = 95 % CI width / (2 x 1.96) "
    "(normal approximation)"
)

# value, ci_low, ci_high, n[, n_groups: training seeds behind the interval, 1 if absent]
_Side = tuple[float, float, float, int] | tuple[float, float, float, int, int]
_MISSING: _Side = (math.nan, math.nan, math.nan, 0, 0)


def _groups(side: _Side) -> int:
    return int(side[4]) if len(side) > 4 else 1


def decision_test(expected: str, margin: float = SIMILARITY_MARGIN) -> str:
    """The name of the test that decides a prediction of shape ``expected``."""
    if expected == ALIKE:
        return f"TOST non-inferiority, margin {margin:g}"
    if expected == EQUIVALENT:
        return f"TOST equivalence, margin {margin:g}"
    return CI_TEST


def rule_text(expected: str, margin: float = SIMILARITY_MARGIN) -> str:
    """The decision rule of ``expected``, in words (the module docstring has the reasons)."""
    m = f"{margin:g}"
    if expected == ALIKE:
        return (
            f"{decision_test(expected, margin)}: {_SE_TEXT}; supported if the 90 % CI of d "
            f"lies above -{m} (bnn not lower than fp by more than the margin, one-sided "
            f"alpha 0.05), not supported if the 95 % CI of d lies entirely below -{m}, "
            "else inconclusive"
        )
    if expected == EQUIVALENT:
        return (
            f"{decision_test(expected, margin)}: {_SE_TEXT}; supported if the 90 % CI of d lies "
            f"inside [-{m}, {m}], not supported if the 95 % CI of d lies entirely outside it, "
            "else inconclusive"
        )
    return f"{CI_TEST}: {_ORDERED_RULES[expected]}"


def _bounds(side: _Side) -> tuple[float, float]:
    """A side's CI, widened to contain its value (asymmetric bootstrap CIs)."""
    return min(side[1], side[0]), max(side[2], side[0])


def _se(side: _Side) -> float:
    lo, hi = _bounds(side)
    return (hi - lo) / (2 * Z_95)


def _finite(*sides: _Side) -> bool:
    return all(math.isfinite(v) for s in sides for v in s[:3])


def difference(fp: _Side, bnn: _Side) -> tuple[float, float]:
    """d = bnn - fp and its standard error under the normal approximation (see module doc)."""
    if not _finite(fp, bnn):
        return math.nan, math.nan
    return bnn[0] - fp[0], math.hypot(_se(fp), _se(bnn))


def verdict(fp: _Side, bnn: _Side, expected: str, *, margin: float = SIMILARITY_MARGIN) -> str:
    """The decision described in the module docstring (accuracy floors aside)."""
    if expected not in EXPECTATIONS:
        raise ValueError(f"expected must be one of {EXPECTATIONS}, got {expected!r}")
    if not _finite(fp, bnn):
        return "inconclusive"
    if expected in (ALIKE, EQUIVALENT):
        # An equivalence-type claim: overlapping CIs used to count as "supported" here, but a
        # wide, noisy CI overlaps anything; absence of a difference is not evidence of sameness.
        d, se = difference(fp, bnn)
        lo90, hi90 = d - Z_90 * se, d + Z_90 * se
        lo95, hi95 = d - Z_95 * se, d + Z_95 * se
        if expected == ALIKE:  # non-inferiority: only the lower bound matters
            supported, refuted = lo90 > -margin, hi95 < -margin
        else:  # equivalence: both bounds
            supported = -margin < lo90 and hi90 < margin
            refuted = hi95 < -margin or lo95 > margin
        return "supported" if supported else "not supported" if refuted else "inconclusive"
    fp_lo, fp_hi = _bounds(fp)
    bnn_lo, bnn_hi = _bounds(bnn)
    above, below = bnn_lo > fp_hi, bnn_hi < fp_lo
    if expected == "bnn > fp":
        return "supported" if above else "not supported" if below else "inconclusive"
    return "supported" if below else "not supported" if above else "inconclusive"


def power(
    fp: _Side,
    bnn: _Side,
    expected: str,
    verdict_: str,
    n: int,
    *,
    margin: float = SIMILARITY_MARGIN,
) -> dict[str, float | int | None]:
    """The power line of one measure: ``mdd``, and for an inconclusive verdict ``n_factor`` and
    ``n_needed`` (None where no finite amount of data decides it at the observed difference,
    e.g. an observed difference of exactly 0 for an ordered prediction). See the module doc."""
    out: dict[str, float | int | None] = {"mdd": math.nan, "n_needed": None, "n_factor": None}
    d, se = difference(fp, bnn)
    if not math.isfinite(d):
        return out
    if expected in (ALIKE, EQUIVALENT):
        out["mdd"] = (Z_90 + Z_POWER) * se
        dist = abs(d) if expected == EQUIVALENT else -d  # how far d lies towards the margin
        if dist < margin:  # on the way to "supported": the 90 % CI must clear the margin
            gap, k = margin - dist, Z_90 + Z_POWER
        else:  # on the way to "not supported": the 95 % CI must lie beyond it
            gap, k = dist - margin, Z_95 + Z_POWER
    else:
        k = (Z_95 * (_se(fp) + _se(bnn)) / se if se > 0 else 0.0) + Z_POWER
        out["mdd"] = k * se
        gap = abs(d)
    if verdict_ != "inconclusive" or n <= 0 or gap <= 0:
        return out
    factor = (k * se / gap) ** 2
    out["n_factor"] = factor
    out["n_needed"] = max(int(n), math.ceil(n * factor))
    return out


def accuracy_floor(num_classes: int, factor: float = ACCURACY_FLOOR_FACTOR) -> float:
    """The test accuracy a model must reach for its maps to be judged: factor x chance
    (1 / num_classes), capped at halfway between chance and 1 (a floor of 1 or more would
    rule out every model, e.g. factor 2 on two classes)."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    chance = 1.0 / num_classes
    return min(factor * chance, (1.0 + chance) / 2.0)


def _num_classes(manifest: Mapping[str, Any], name: str) -> int | None:
    """A model's number of classes from the manifest: its own entry, else the data's
    (``num_classes`` or ``class_names``), else its source's (pretrained ImageNet heads)."""
    model = (manifest.get("models") or {}).get(name) or {}
    data = manifest.get("data") or {}
    names = data.get("class_names") if isinstance(data, Mapping) else None
    for k in (
        model.get("num_classes"),
        data.get("num_classes") if isinstance(data, Mapping) else None,
        len(names) if isinstance(names, list | tuple) and names else None,
        IMAGENET_SOURCES.get(str(model.get("source"))),
    ):
        if isinstance(k, int | float) and not isinstance(k, bool) and k >= 1:
            return int(k)
    return None


def model_floors(
    manifest: Mapping[str, Any] | None, factor: float | None = None
) -> dict[str, dict[str, Any]]:
    """Per model of the manifest: ``accuracy`` (test accuracy), ``num_classes``, ``factor``,
    ``floor`` (NaN where the classes are unknown) and ``below`` (True only for a known accuracy
    below a known floor). ``factor``: else the manifest's profile's ``accuracy_floor_factor``,
    else ``ACCURACY_FLOOR_FACTOR``."""
    if not manifest:
        return {}
    if factor is None:
        profile = manifest.get("profile") or {}
        factor = float(profile.get("accuracy_floor_factor", ACCURACY_FLOOR_FACTOR))
    accs = manifest.get("test_accuracy") or {}
    out = {}
    for name, m in (manifest.get("models") or {}).items():
        # with several training seeds, the lowest replicate's accuracy decides
        acc = m.get("test_accuracy_min", m.get("test_accuracy", accs.get(name)))
        acc = float(acc) if isinstance(acc, int | float) else math.nan
        k = _num_classes(manifest, name)
        floor = accuracy_floor(k, factor) if k is not None else math.nan
        below = math.isfinite(acc) and math.isfinite(floor) and acc < floor
        out[str(name)] = {
            "accuracy": acc,
            "num_classes": k,
            "factor": factor,
            "floor": floor,
            "below": bool(below),
        }
    return out


def models_below_floor(
    manifest: Mapping[str, Any] | None, factor: float | None = None
) -> dict[str, dict[str, Any]]:
    """The models of :func:`model_floors` below their floor (their claims are not evaluable)."""
    return {n: f for n, f in model_floors(manifest, factor).items() if f["below"]}


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
    groups = rows["n_groups"] if "n_groups" in rows else pd.Series([1])
    return (
        float(rows["value"].mean()),
        float(rows["ci_low"].mean()),
        float(rows["ci_high"].mean()),
        int(rows["n"].min()),
        int(groups.fillna(1).min()),
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
    involves: tuple[str, ...] = (),
) -> dict[str, Any]:
    """One measure's dict (keys in the module docstring); ``involves``: models behind the
    sides besides the pair (e.g. the other FP networks of an FP-FP reference)."""

    def r(x: float) -> float:
        return float(x) if math.isfinite(x) else math.nan

    n = min(fp[3], bnn[3]) if math.isfinite(fp[0]) and math.isfinite(bnn[0]) else 0
    seeds = min(_groups(fp), _groups(bnn)) if n else 0
    margin = SIMILARITY_MARGIN
    v = verdict(fp, bnn, expected, margin=margin)
    d, se = difference(fp, bnn)
    pw = power(fp, bnn, expected, v, int(n), margin=margin)
    factor = pw.get("n_factor")
    # two levels: more images at the same seeds cannot shrink the seed-to-seed part of the
    # error, more seeds (same images each) shrink both: the planning unit is the seed
    seeds_needed = (
        max(seeds, math.ceil(seeds * float(factor))) if seeds > 1 and factor is not None else None
    )
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
        "verdict": v,
        "test": decision_test(expected, margin),
        "margin": margin if expected in (ALIKE, EQUIVALENT) else None,
        "n": int(n),
        "seeds": int(seeds),
        "seeds_needed": seeds_needed,
        "source": source,
        "rule": rule_text(expected, margin),
        "diff": r(d),
        "se_diff": r(se),
        **pw,
        "models": list(dict.fromkeys((*models, *involves))),
        "below_floor": [],
    }


def _claim1(t: pd.DataFrame, pair: str, fp: str, bnn: str) -> list[dict[str, Any]]:
    rc = "rank_correlation"
    matched = _scalar(_select(t, rc, "spearman", pair=pair, family="FP-BNN"))
    out = []
    grad = _side(matched[matched["method"] == "gradient"])
    ref_rows = _scalar(_select(t, rc, "spearman", method="gradient", family="FP-FP"))
    has_fp = ref_rows["model"].astype("str").map(lambda ms: fp in str(ms).split("|"))
    ref_rows = ref_rows.loc[has_fp.astype(bool)]  # empty with one FP model: no reference
    ref_models = tuple(
        sorted({m for ms in ref_rows["model"].astype("str") for m in ms.split("|")} - {fp})
    )
    out.append(
        _entry(
            1,
            "Spearman of abs Gradient maps: matched FP-BNN not below the FP-FP reference",
            pair,
            (fp, bnn),
            _side(ref_rows),
            grad,
            ALIKE,
            f"{rc}/spearman",
            (f"FP-FP reference Spearman ({fp} vs other FP networks)", f"{fp}|{bnn} Spearman"),
            involves=ref_models,
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


def paper_claims(
    df: pd.DataFrame,
    *,
    manifest: Mapping[str, Any] | None = None,
    entropy_sigma: float = ENTROPY_SIGMA,
    accuracy_floor_factor: float | None = None,
) -> list[dict]:
    """Evaluate the paper's three claims on every matched pair of a results table.

    Returns one dict per (claim, measure, matched pair), claims in order 1, 2, 3 (keys in the
    module docstring); an empty list if the table has no matched pair. Measures whose rows are
    missing are returned with NaN values and verdict "inconclusive".
    Claim 1 (rank_correlation, spearman): Gradient's matched FP-BNN Spearman not below the
    FP-FP reference by more than ``SIMILARITY_MARGIN`` ("alike", non-inferiority) and above
    chance (0: a near-zero reference is trivially matched), and SmoothGrad's / GradCAM's matched
    FP-BNN Spearman lower than Gradient's.
    Claim 2 (entropy_vs_noise): SmoothGrad entropy at ``entropy_sigma`` % (nearest step of the
    sweep) higher for the BNN; entropy-minimising and localization-maximising sigma
    lower for the BNN. Claim 3 (gradcam_pathologies): blank share higher for the BNN, relevance
    mass and pointing game of standard GradCAM lower, and the share of images where the inverted
    signed map localizes better higher.
    ``manifest`` (the run's): measures involving a model below its accuracy floor
    (:func:`model_floors`, with ``accuracy_floor_factor`` or the profile's) are
    "not evaluable: model did not learn"; without a manifest no floor is checked.
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
    below = models_below_floor(manifest, accuracy_floor_factor)
    for c in out:
        c["below_floor"] = [m for m in c["models"] if m in below]
        if c["below_floor"]:
            c["verdict"] = NOT_EVALUABLE
            c["n_needed"] = c["n_factor"] = c["seeds_needed"] = None
    return out


def claim_verdicts(claims: list[dict]) -> dict[int, str]:
    """One verdict per claim id over its evaluable measures and pairs (those not below an
    accuracy floor): "supported" if every one is, "not supported" if every one with a decision is
    not supported, otherwise "inconclusive" (mixed or undecided); "not evaluable: model did not
    learn" if no measure is evaluable."""
    out: dict[int, str] = {}
    for cid in sorted({c["claim_id"] for c in claims}):
        vs = [c["verdict"] for c in claims if c["claim_id"] == cid]
        vs = [v for v in vs if v != NOT_EVALUABLE]
        if not vs:
            out[cid] = NOT_EVALUABLE
        elif all(v == "supported" for v in vs):
            out[cid] = "supported"
        elif all(v == "not supported" for v in vs if v != "inconclusive") and any(
            v == "not supported" for v in vs
        ):
            out[cid] = "not supported"
        else:
            out[cid] = "inconclusive"
    return out
