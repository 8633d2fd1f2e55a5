"""Claims about BNN vs FP saliency, evaluated on a run's tidy results table.

Plain functions (no ``Benchmark`` here): the report calls :func:`paper_claims` on the results
table (the columns of ``binsal.core.schema.RESULT_COLUMNS``) and the run's manifest.

**Claims are data.** The paper's three claims are declared in ``claims.toml`` beside this module
(its header documents the format); :func:`load_claims` reads it, checked, and appends the claims
of a user's file of the same shape (``paper_claims(..., claims_file=...)``,
``binsal report RUN_DIR --claims FILE``). Each claim is split into measures; a measure names the
rows it reads (benchmark, metric, method, step) and what its two sides are (``kind``):
``fp_vs_bnn`` (the FP model against the BNN model), ``fp_fp_reference`` (the FP-BNN similarity
against the similarity of two different FP networks), ``chance`` (against a constant) or
``method_vs_method`` (the FP-BNN similarity of one method against another's). The code below
knows these kinds, never a claim.

**Levels.** Each measure is compared on every *matched pair* (``level`` "pair": the same
topology once full precision, once binarized, so binarization is the only difference); a table
without a matched pair but with FP and BNN models is compared per *family* (``level``
"family": all FP models against all BNN models, models as the unit). At the family level each
side is the mean over that family's models (for pairwise rows, over its model pairs) of each
model's value, with a Student-t 95 % interval over models (``binsal.core.stats.t_ci``): with the
few models a run has (2-10), a bootstrap over models has too few distinct resamples to cover
(with two models, three), and the spread between models, not the images behind each, is the
question when models are the unit (that spread already holds each model's own estimation
error). The interval is widened where needed to the mean of the models' own CIs, so that models
that agree exactly (a blank share of 0 for every FP model) do not give a zero-width interval. A
side with one model falls back on that model's own CI over images (``fp_ci_over`` /
``bnn_ci_over`` say so), and the plan in ``n_needed`` is then in images; models below their
accuracy floor are left out of a family (``left_out``). Rows that aggregate a family (model
"all FP" / "all BNN", or params with an ``aggregate`` key) are never taken for a model.
Evaluation reads only the table it is given, so a claim can be evaluated on a table filtered to
one analysis setting.

Each measure yields one dict:

``claim`` (text), ``claim_id``, ``measure``, ``level`` ("pair" / "family"), ``pair`` (the pair
name, "" at the family level), ``fp_model``, ``bnn_model`` (at the family level "all FP" /
"all BNN"), ``fp_models`` / ``bnn_models`` (the models behind each side), ``fp`` / ``fp_ci``
([low, high]) and ``bnn`` / ``bnn_ci`` (the two sides compared, with their 95 % CIs),
``fp_ci_over`` / ``bnn_ci_over`` (what each CI is over), ``fp_label`` / ``bnn_label`` (what
each side is), ``expected`` (what the claim predicts, e.g. "bnn > fp"), ``verdict``, ``reason``
(why an inconclusive measure could not be compared, e.g. "benchmark gradcam_pathologies not in
this run"; "" otherwise), ``test`` (the test that decided it, e.g. "95 % CIs disjoint" or "TOST
non-inferiority, margin 0.1"), ``margin`` (the declared margin of an equivalence-type test,
None for a CI comparison), ``rule`` (the decision rule, in words), ``n`` (units behind the
smaller side) and ``unit`` (what n counts: "images", "models", "model pairs", or "mixed"),
``step`` (the step compared, NaN for scalar rows), ``source`` (benchmark and metric), ``diff``
(bnn - fp) and ``se_diff`` (its standard error), the power line ``mdd``, ``n_needed``,
``n_factor`` (below), ``seeds`` / ``seeds_needed``, ``models`` (every model the measure
involves), ``below_floor`` (those of them below their accuracy floor) and ``left_out`` (family
level: models left out of a family for being below their floor).

For ``fp_vs_bnn`` measures the sides are the FP and the BNN model (or family). Claim 1 is about
a similarity *between* an FP and a BNN map, so both sides are FP-BNN (or FP-FP) similarities:
``fp`` holds the reference (the FP-FP Spearman of two different FP networks, chance level 0,
or Gradient's FP-BNN Spearman) and ``bnn`` the value under test (the matched FP-BNN Spearman of
Gradient, or of SmoothGrad / GradCAM); the labels say which.

Decision rules (never point values alone), by the shape of the prediction:

- Ordered ("bnn > fp", "bnn < fp": "higher", "lower"): the two 95 % CIs. "supported"
  if they are disjoint in the predicted order, "not supported" if disjoint in the opposite order,
  "inconclusive" if they overlap.
- "Alike" ("bnn >= fp (alike)": the matched FP-BNN similarity is not below the FP-FP reference)
  is a non-inferiority test with a declared margin (``SIMILARITY_MARGIN`` unless the measure
  declares another), the lower of the two
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

The margin of claim 1: similarities are Spearman correlations; a difference of 0.1 is "small"
by Cohen's convention (Cohen 1988: r = 0.1 small, 0.3 medium, 0.5 large; for correlations near 0
a difference of 0.1 is Cohen's q = 0.1, "small"), so "alike" means "not lower by more than a
small correlation difference". The report prints the margin.

A side without a finite value or CI (missing benchmark, no masks) gives "inconclusive", with
the ``reason``.

**Accuracy floor.** Saliency of a model that did not learn is meaningless: a measure that involves
a model whose test accuracy is below its floor, factor x chance (chance = 1 / number of classes,
factor = the profile's ``[report] accuracy_floor_factor``, default 2.0; capped at halfway between
chance and 1 so that a two-class model can pass), is "not evaluable: model did not learn", never
supported or not supported (at the family level such a model is left out of its family, and a
family left without models is not evaluable). Accuracies and numbers of classes come from the
run's manifest (:func:`model_floors`); a model whose number of classes the manifest does not give
is not checked, and the report says so.

**Power line.** From the observed standard errors, ``mdd`` is the effect the measure's own rule
detects with 80 % power at alpha 0.05 at the current n: for an ordered measure the smallest true
|bnn - fp| the disjoint-CI rule calls, 1.96 (se_fp + se_bnn) + 0.84 se_d (disjoint 95 % CIs are
stricter than a z-test of d, whose mdd would be (1.96 + 0.84) se_d); for "alike" / equivalence the
smallest margin within which a true difference of 0 would be shown, (1.645 + 0.84) se_d (two-sided
TOST near d = 0 needs a little more, both bounds binding). For an inconclusive verdict,
``n_factor`` = (se_d now / se_d required)^2 is how much more data would decide it if the observed
difference is the true one and se ~ 1 / sqrt(n), and ``n_needed`` = ceil(n x n_factor) units
(images; models at the family level; none where the two sides count different units). With
several training seeds behind the CIs (``seeds``), more images at the same seeds cannot shrink the
seed-to-seed part of the error, so the plan is in seeds: ``seeds_needed`` = ceil(seeds x n_factor),
each on the same images. An approximation, for planning, not a guarantee.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from binsal.core.errors import BinsalError
from binsal.core.options import build
from binsal.core.stats import Z_95, accuracy_floor, t_ci

ALIKE = "bnn >= fp (alike)"
EQUIVALENT = "bnn ~ fp (equivalent)"
EXPECTATIONS = ("bnn > fp", "bnn < fp", ALIKE, EQUIVALENT)
NOT_EVALUABLE = "not evaluable: model did not learn"
VERDICTS = ("supported", "not supported", "inconclusive", NOT_EVALUABLE)

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


# ---- claims declared in data (claims.toml) ---------------------------------------------------

Kind = Literal["fp_vs_bnn", "fp_fp_reference", "chance", "method_vs_method"]
KINDS: tuple[str, ...] = get_args(Kind)
Level = Literal["auto", "pair", "family"]
Expected = Literal[
    "bnn > fp", "bnn < fp", "alike", "equivalent", "bnn >= fp (alike)", "bnn ~ fp (equivalent)"
]
_SHORT = {"alike": ALIKE, "equivalent": EQUIVALENT}
CLAIMS_FILE = "claims.toml"  # the paper's claims, shipped beside this module
# the placeholders a measure's text and labels may use
_PLACEHOLDERS = {"step": 20.0, "fp": "fp", "bnn": "bnn", "method": "m", "reference_method": "r"}
_DEFAULT_LABELS = {
    "pair": ("FP model", "BNN model"),
    "family": ("mean over the FP models", "mean over the BNN models"),
}
_PAIRWISE_DEFAULT_LABELS = ("{reference_method} {fp}|{bnn}", "{method} {fp}|{bnn}")


@dataclass(frozen=True)
class MeasureSpec:
    """One measure of a claim, as declared in a ``[[claim.measure]]`` table (claims.toml's
    header documents each key)."""

    text: str = ""
    benchmark: str = ""
    metric: str = ""
    expected: Expected = "bnn > fp"
    kind: Kind = "fp_vs_bnn"
    method: str = ""
    reference_method: str = ""
    step: float | None = None
    step_name: str = ""
    margin: float = field(default=SIMILARITY_MARGIN, metadata={"gt": 0})
    chance: float = 0.0
    fp_label: str = ""
    bnn_label: str = ""

    @property
    def prediction(self) -> str:
        """``expected`` in the long form the decision rules take (``EXPECTATIONS``)."""
        return _SHORT.get(self.expected, self.expected)


@dataclass(frozen=True)
class ClaimSpec:
    """A claim: its id, its text and its measures."""

    id: int | str
    text: str
    measures: tuple[MeasureSpec, ...]


@dataclass(frozen=True)
class _ClaimTable:
    id: int | str = ""
    text: str = ""
    measure: Any = None


def _check_measure(m: MeasureSpec, where: str) -> None:
    for key in ("text", "benchmark", "metric"):
        if not getattr(m, key):
            raise BinsalError(f"{where}{key} is required")
    if m.kind == "method_vs_method" and not (m.method and m.reference_method):
        raise BinsalError(f"{where}kind 'method_vs_method' needs method and reference_method")
    if m.kind != "method_vs_method" and m.reference_method:
        raise BinsalError(f"{where}reference_method is only for kind 'method_vs_method'")
    if m.step is not None and m.kind != "fp_vs_bnn":
        raise BinsalError(f"{where}step is only for kind 'fp_vs_bnn' (pairwise rows are scalars)")
    if m.step_name and m.step is None:
        raise BinsalError(f"{where}step_name {m.step_name!r} needs a step")
    for key in ("text", "fp_label", "bnn_label"):
        try:
            getattr(m, key).format(**_PLACEHOLDERS)
        except (KeyError, IndexError, ValueError) as exc:
            known = ", ".join("{" + p + "}" for p in _PLACEHOLDERS)
            raise BinsalError(
                f"{where}{key} {getattr(m, key)!r} is not a template of {known}: {exc!r}"
            ) from None


def parse_claims(text: str, *, where: str) -> tuple[ClaimSpec, ...]:
    """Claims from the text of a claims TOML file (``where`` names it in errors); every key is
    checked, one-line :class:`BinsalError` on a bad entry."""
    owner = f"claims {where}"
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BinsalError(f"{owner}: not valid TOML: {exc}") from None
    unknown = sorted(set(raw) - {"claim"})
    if unknown:
        raise BinsalError(f"{owner}: unknown key {unknown[0]!r}; a claims file holds [[claim]]")
    tables = raw.get("claim")
    if not isinstance(tables, list) or not tables:
        raise BinsalError(f"{owner}: no [[claim]] table")
    out: list[ClaimSpec] = []
    for i, table in enumerate(tables, 1):
        c = build(_ClaimTable, table, owner=owner, section=f"claim {i}")
        if c.id == "" or not c.text:
            raise BinsalError(f"{owner}: [claim {i}] needs an id and a text")
        section = f"claim {c.id}"
        if any(x.id == c.id for x in out):
            raise BinsalError(f"{owner}: [{section}] id {c.id!r} declared twice")
        if not isinstance(c.measure, list) or not c.measure:
            raise BinsalError(f"{owner}: [{section}] has no [[claim.measure]]")
        measures = []
        for j, m_raw in enumerate(c.measure, 1):
            sub = f"{section} measure {j}"
            m = build(MeasureSpec, m_raw, owner=owner, section=sub)
            _check_measure(m, f"{owner}: [{sub}] ")
            measures.append(m)
        out.append(ClaimSpec(c.id, c.text, tuple(measures)))
    return tuple(out)


@lru_cache(maxsize=1)
def _shipped_claims() -> tuple[ClaimSpec, ...]:
    text = (resources.files("binsal.reports") / CLAIMS_FILE).read_text(encoding="utf-8")
    return parse_claims(text, where=CLAIMS_FILE)


def load_claims(path: str | Path | None = None, *, shipped: bool = True) -> tuple[ClaimSpec, ...]:
    """The paper's claims (``claims.toml``, unless ``shipped`` is False), then those of the
    user's TOML file ``path``; a claim id declared twice is an error."""
    out = _shipped_claims() if shipped else ()
    if path is None:
        return out
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise BinsalError(f"claims {p}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise BinsalError(f"claims {p}: cannot read it: {exc.strerror}") from None
    extra = parse_claims(text, where=str(p))
    ids = {c.id for c in out}
    twice = [c.id for c in extra if c.id in ids]
    if twice:
        raise BinsalError(f"claims {p}: claim id {twice[0]!r} is already declared (the paper's)")
    return out + extra


CLAIMS: dict[int | str, str] = {c.id: c.text for c in _shipped_claims()}


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


# ---- the results table ----------------------------------------------------------------------


def _prepare(df: pd.DataFrame) -> pd.DataFrame:
    need = {"benchmark", "model", "family", "pair", "method", "metric", "step", "value"}
    missing = need - set(df.columns)
    if missing:
        raise ValueError(f"results table lacks columns {sorted(missing)}")
    out = df.copy()
    out["pair"] = out["pair"].fillna("").astype(str)
    out["model"] = out["model"].astype(str)
    for col in ("ci_low", "ci_high"):
        if col not in out:
            out[col] = out["value"]
    if "n" not in out:
        out["n"] = 0
    return out


def _mask(rows: pd.DataFrame, keep: Iterable[bool]) -> pd.DataFrame:
    """``rows`` where ``keep``: a NumPy boolean mask, so that an empty selection stays a frame
    with every column (``rows[series]`` reads an empty object-dtype Series, as ``.map`` returns
    on no rows, as a list of column labels: a frame without columns, then KeyError('value'))."""
    return rows.loc[np.fromiter(keep, dtype=bool, count=len(rows))]


def _members(model: str) -> list[str]:
    """The models of a row: one, or two for a pairwise row "a|b"."""
    return str(model).split("|")


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


def _is_aggregate(model: str, family: str, params: Any) -> bool:
    """A row that aggregates a family ("all FP", or params with an ``aggregate`` key), not a
    model of it."""
    if model == f"all {family}":
        return True
    try:
        extra = json.loads(params) if isinstance(params, str) and params else {}
    except json.JSONDecodeError:
        return False
    return isinstance(extra, dict) and "aggregate" in extra


def family_members(df: pd.DataFrame) -> dict[str, list[str]]:
    """{"FP": [...], "BNN": [...]}: the models of each family in a results table, from rows of
    single models (not family aggregates) and pairwise rows ("FP-BNN": fp|bnn, "FP-FP",
    "BNN-BNN"), in order of appearance."""
    t = _prepare(df)
    out: dict[str, dict[str, None]] = {"FP": {}, "BNN": {}}
    params = t["params"] if "params" in t else pd.Series([""] * len(t), index=t.index)
    for model, family, par in zip(t["model"], t["family"], params, strict=True):
        model, fam = str(model), str(family)
        if fam in out:
            if "|" not in model and not _is_aggregate(model, fam, par):
                out[fam][model] = None
            continue
        a, sep, b = model.partition("|")
        fams = fam.split("-")
        if sep and len(fams) == 2 and all(f in out for f in fams):
            out[fams[0]][a] = None
            out[fams[1]][b] = None
    return {f: list(ms) for f, ms in out.items()}


@dataclass(frozen=True)
class Unit:
    """What one evaluation compares: a matched pair (``fp``, ``bnn``: one model each) or the two
    families (``name`` ""); ``left_out``: family models left out (below their accuracy floor)."""

    level: Literal["pair", "family"]
    name: str
    fp: tuple[str, ...]
    bnn: tuple[str, ...]
    left_out: tuple[str, ...] = ()


def evaluation_units(
    df: pd.DataFrame, level: Level = "auto", below: Iterable[str] = ()
) -> list[Unit]:
    """The matched pairs of ``df`` (``level`` "pair", or "auto" where it has one), else the two
    families (``level`` "family", or "auto" with FP and BNN models but no matched pair), models
    in ``below`` left out of the families; [] when there is nothing to compare."""
    if level not in get_args(Level):
        raise ValueError(f"level must be one of {get_args(Level)}, got {level!r}")
    pairs = matched_pairs(df) if level != "family" else {}
    if pairs or level == "pair":
        return [Unit("pair", p, (fp,), (bnn,)) for p, (fp, bnn) in pairs.items()]
    fams = family_members(df)
    if not fams["FP"] or not fams["BNN"]:
        return []
    low = set(below)
    left = tuple(m for m in (*fams["FP"], *fams["BNN"]) if m in low)
    fp = tuple(m for m in fams["FP"] if m not in low)
    bnn = tuple(m for m in fams["BNN"] if m not in low)
    return [Unit("family", "", fp, bnn, left)]


# ---- one side of a measure ------------------------------------------------------------------


@dataclass(frozen=True)
class _SideResult:
    side: _Side
    unit: str  # what side[3] counts: "images", "models", "model pairs"
    over: str  # what the CI is over, in words
    reason: str = ""  # why there is no value
    step: float = math.nan


def _side(rows: pd.DataFrame) -> _Side:
    """One side from matching rows: the row itself, or for several rows the mean of values and
    of CI bounds (conservative: wider than the CI of a mean)."""
    rows = rows[np.isfinite(rows["value"].astype(float).to_numpy())]
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


def _over_units(rows: pd.DataFrame, level: str, unit: str) -> _SideResult:
    """A side from the rows of its models (``unit``: "models" or "model pairs", one group of
    rows per ``model`` value). Pair level: :func:`_side`. Family level: the mean over the
    units' values with a Student-t 95 % interval over units (module doc), or with one unit its
    own CI over images."""
    if level == "pair":
        side = _side(rows)
        return _SideResult(side, "images", "its own CI" if math.isfinite(side[0]) else "")
    per = [_side(g) for _, g in rows.groupby("model", sort=True)]
    per = [s for s in per if math.isfinite(s[0])]
    if not per:
        return _SideResult(_MISSING, unit, "")
    if len(per) == 1:
        one = unit.removesuffix("s")
        return _SideResult(per[0], "images", f"one {one}: its own CI over images")
    k = len(per)
    mean, lo, hi = t_ci(np.array([s[0] for s in per]))
    # never narrower than the models' own CIs (their mean bounds): k models that agree exactly
    # (a blank share of 0 for every FP model) would otherwise give a zero-width interval
    own_lo = float(np.mean([_bounds(s)[0] for s in per]))
    own_hi = float(np.mean([_bounds(s)[1] for s in per]))
    over = f"t interval over {k} {unit}"
    if own_lo < lo or own_hi > hi:
        lo, hi = min(lo, own_lo), max(hi, own_hi)
        over += ", widened to their mean own CI"
    return _SideResult((mean, lo, hi, k, 1), unit, over)


def _at_step(rows: pd.DataFrame, step: float) -> tuple[pd.DataFrame, float]:
    """Rows at the available step nearest to ``step`` (and that step)."""
    steps = rows["step"].dropna().unique()
    if steps.size == 0:
        return rows.iloc[0:0], math.nan
    near = float(steps[np.argmin(np.abs(steps - step))])
    return rows[np.isclose(rows["step"], near)], near


def _scalar(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[rows["step"].isna()]


# the rows of one table by (benchmark, metric[, method]), split once while evaluate_claims reads
# that table: a claim's sides filter it hundreds of times (the robustness table evaluates the
# claims once per analysis setting), and each boolean mask over it costs far more than a lookup
_INDEX: dict[str, Any] = {"table": None, "rows": {}}


def _index(t: pd.DataFrame) -> dict[tuple[str, ...], pd.DataFrame]:
    rows: dict[tuple[str, ...], pd.DataFrame] = {}
    for cols in (["benchmark", "metric"], ["benchmark", "metric", "method"]):
        for key, group in t.groupby(cols, sort=False, dropna=False):
            rows[tuple(str(k) for k in key)] = group
    return rows


def _rows(t: pd.DataFrame, m: MeasureSpec, method: str) -> pd.DataFrame:
    if _INDEX["table"] is t:
        key = (m.benchmark, m.metric, method) if method else (m.benchmark, m.metric)
        hit = _INDEX["rows"].get(key)
        return t.iloc[0:0] if hit is None else hit
    sel = (t["benchmark"] == m.benchmark) & (t["metric"] == m.metric)
    if method:
        sel &= t["method"] == method
    return t[sel]


def _why_missing(t: pd.DataFrame, m: MeasureSpec, method: str, what: str) -> str:
    """Why a side has no value: the first thing the table lacks."""
    b = t[t["benchmark"] == m.benchmark]
    if b.empty:
        return f"benchmark {m.benchmark} not in this run"
    b = b[b["metric"] == m.metric]
    if b.empty:
        return f"metric {m.metric} of {m.benchmark} not in this run"
    if method and not (b["method"] == method).any():
        return f"no {method} rows of {m.benchmark}/{m.metric} in this run"
    return f"no finite {m.benchmark}/{m.metric} value for {what}"


def _pairwise(t: pd.DataFrame, m: MeasureSpec, u: Unit, method: str, family: str) -> pd.DataFrame:
    """Scalar pairwise rows ("a|b") of ``family`` ("FP-BNN" / "FP-FP") for the unit: at the pair
    level the matched pair's FP-BNN rows, or the FP-FP rows that hold its FP model; at the
    family level every row of two models of the families."""
    rows = _scalar(_rows(t, m, method))
    rows = rows[rows["family"] == family]
    if u.level == "pair" and family == "FP-BNN":
        return rows[rows["pair"] == u.name]
    if u.level == "pair":
        return _mask(rows, (u.fp[0] in _members(x) for x in rows["model"]))
    first = u.fp
    second = u.bnn if family == "FP-BNN" else u.fp
    return _mask(
        rows,
        (
            len(ms) == 2 and ms[0] in first and ms[1] in second
            for ms in map(_members, rows["model"])
        ),
    )


def _model_side(
    t: pd.DataFrame, m: MeasureSpec, u: Unit, models: tuple[str, ...], step: float | None
) -> _SideResult:
    rows = _rows(t, m, m.method)
    rows = rows[rows["model"].isin(models)]
    near = math.nan
    if step is None:
        rows = _scalar(rows)
    else:
        rows, near = _at_step(rows, step)
    out = _over_units(rows, u.level, "models")
    return _SideResult(out.side, out.unit, out.over, out.reason, near)


def _measure_sides(
    t: pd.DataFrame, m: MeasureSpec, u: Unit, step: float | None
) -> tuple[_SideResult, _SideResult, tuple[str, ...]]:
    """(FP side, BNN side, models involved besides the unit's) of a measure on a unit, with
    the reason where a side has no value."""
    fam = u.level == "family"
    fp_what = "the FP models" if fam else u.fp[0]
    bnn_what = "the BNN models" if fam else u.bnn[0]
    involves: tuple[str, ...] = ()
    if m.kind == "fp_vs_bnn":
        fp = _model_side(t, m, u, u.fp, step)
        bnn = _model_side(t, m, u, u.bnn, step)
        if math.isfinite(fp.step) and math.isfinite(bnn.step) and fp.step != bnn.step:
            why = f"no common step: FP side at {fp.step:g}, BNN side at {bnn.step:g}"
            bnn = _SideResult(_MISSING, bnn.unit, "", why, bnn.step)
        fp_why = "" if math.isfinite(fp.side[0]) else _why_missing(t, m, m.method, fp_what)
        bnn_why = bnn.reason or (
            "" if math.isfinite(bnn.side[0]) else _why_missing(t, m, m.method, bnn_what)
        )
        return _with(fp, fp_why), _with(bnn, bnn_why), involves
    unit = "model pairs"
    pairs_what = f"{u.fp[0]}|{u.bnn[0]}" if not fam else "the FP-BNN model pairs"
    if m.kind == "method_vs_method":
        ref = _pairwise(t, m, u, m.reference_method, "FP-BNN")
        test = _pairwise(t, m, u, m.method, "FP-BNN")
        fp = _over_units(ref, u.level, unit)
        bnn = _over_units(test, u.level, unit)
        fp_why = (
            "" if math.isfinite(fp.side[0]) else _why_missing(t, m, m.reference_method, pairs_what)
        )
        bnn_why = "" if math.isfinite(bnn.side[0]) else _why_missing(t, m, m.method, pairs_what)
        return _with(fp, fp_why), _with(bnn, bnn_why), involves
    bnn = _over_units(_pairwise(t, m, u, m.method, "FP-BNN"), u.level, unit)
    bnn = _with(bnn, "" if math.isfinite(bnn.side[0]) else _why_missing(t, m, m.method, pairs_what))
    if m.kind == "chance":
        c = float(m.chance)
        fp = _SideResult((c, c, c, bnn.side[3]), bnn.unit, "a constant")
        return fp, bnn, involves
    # fp_fp_reference: empty with one FP model (no reference)
    ref_rows = _pairwise(t, m, u, m.method, "FP-FP")
    if not fam:
        names = {x for ms in ref_rows["model"] for x in _members(ms)}
        involves = tuple(sorted(names - {u.fp[0]}))
    fp = _over_units(ref_rows, u.level, unit)
    fp_why = ""
    if not math.isfinite(fp.side[0]):
        fp_why = _why_missing(t, m, m.method, "an FP-FP pair")
        if fp_why.startswith("no finite"):
            fp_why = f"no FP-FP reference: {m.benchmark} has no row of two FP networks" + (
                "" if fam else f" with {u.fp[0]}"
            )
    return _with(fp, fp_why), bnn, involves


def _with(s: _SideResult, reason: str) -> _SideResult:
    return _SideResult(s.side, s.unit, s.over, reason, s.step)


# ---- a measure's entry ----------------------------------------------------------------------


def _entry(
    t: pd.DataFrame, claim: ClaimSpec, m: MeasureSpec, u: Unit, steps: Mapping[str, float]
) -> dict[str, Any]:
    """One measure's dict on one unit (keys in the module docstring); ``steps`` overrides the
    step of measures by their ``step_name``."""

    def r(x: float) -> float:
        return float(x) if math.isfinite(x) else math.nan

    step = m.step
    if step is not None and m.step_name in steps:
        step = float(steps[m.step_name])
    fp_s, bnn_s, involves = _measure_sides(t, m, u, step)
    fp, bnn = fp_s.side, bnn_s.side
    fam = u.level == "family"
    names = {
        "fp": "FP" if fam else u.fp[0],
        "bnn": "BNN" if fam else u.bnn[0],
        "method": m.method,
        "reference_method": m.reference_method,
        "step": fp_s.step if math.isfinite(fp_s.step) else bnn_s.step,
    }
    if m.kind == "fp_vs_bnn":
        default = _DEFAULT_LABELS[u.level]
    elif m.kind == "method_vs_method":
        default = _PAIRWISE_DEFAULT_LABELS
    else:
        ref = "FP-FP reference" if m.kind == "fp_fp_reference" else f"chance ({m.chance:g})"
        default = (ref, "{fp}|{bnn}")
    labels = (
        (m.fp_label or default[0]).format(**names),
        (m.bnn_label or default[1]).format(**names),
    )
    expected = m.prediction
    both = math.isfinite(fp[0]) and math.isfinite(bnn[0])
    n = min(fp[3], bnn[3]) if both else 0
    unit = fp_s.unit if fp_s.unit == bnn_s.unit else "mixed"
    seeds = min(_groups(fp), _groups(bnn)) if n else 0
    margin = float(m.margin)
    v = verdict(fp, bnn, expected, margin=margin)
    d, se = difference(fp, bnn)
    pw = power(fp, bnn, expected, v, int(n), margin=margin)
    if unit == "mixed":  # n counts models on one side, images on the other: no plan in n
        pw["n_needed"] = pw["n_factor"] = None
    factor = pw.get("n_factor")
    # two levels: more images at the same seeds cannot shrink the seed-to-seed part of the
    # error, more seeds (same images each) shrink both: the planning unit is the seed
    seeds_needed = (
        max(seeds, math.ceil(seeds * float(factor))) if seeds > 1 and factor is not None else None
    )
    reasons = [s.reason for s in (fp_s, bnn_s) if s.reason]
    reason = "; ".join(dict.fromkeys(reasons)) if not both else ""
    models = (*u.fp, *u.bnn) if fam else (u.fp[0], u.bnn[0], *involves)
    return {
        "claim": claim.text,
        "claim_id": claim.id,
        "measure": m.text.format(**names),
        "pair": u.name,
        "fp_model": "all FP" if fam else u.fp[0],
        "bnn_model": "all BNN" if fam else u.bnn[0],
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
        "source": f"{m.benchmark}/{m.metric}",
        "rule": rule_text(expected, margin),
        "diff": r(d),
        "se_diff": r(se),
        **pw,
        "models": list(dict.fromkeys(models)),
        "below_floor": [],
        "level": u.level,
        "fp_models": list(u.fp),
        "bnn_models": list(u.bnn),
        "fp_ci_over": fp_s.over,
        "bnn_ci_over": bnn_s.over,
        "unit": unit,
        "step": r(names["step"]) if step is not None else math.nan,
        "reason": reason or ("" if both else "no value"),
        "left_out": list(u.left_out),
    }


def evaluate_claims(
    df: pd.DataFrame,
    claims: Sequence[ClaimSpec] | None = None,
    *,
    manifest: Mapping[str, Any] | None = None,
    level: Level = "auto",
    steps: Mapping[str, float] | None = None,
    accuracy_floor_factor: float | None = None,
) -> list[dict]:
    """Evaluate ``claims`` (default: the paper's, :func:`load_claims`) on a results table.

    One dict per (claim, unit, measure), claims in their declared order (keys in the module
    docstring). The units (:func:`evaluation_units`): every matched pair, or where ``level``
    is "auto" and the table has none, the two families; [] when the table has no FP and BNN
    models. A measure whose rows are missing has NaN values, verdict "inconclusive" and its
    ``reason``. ``steps``: {step_name: step} overrides the declared step of those measures
    (e.g. {"sigma": 10.0}). ``manifest`` (the run's): a pair-level measure involving a model
    below its accuracy floor (:func:`model_floors`, with ``accuracy_floor_factor`` or the
    profile's) is "not evaluable: model did not learn"; at the family level such models are
    left out of their family; without a manifest no floor is checked. Only ``df`` is read, so a
    table filtered to one analysis setting gives that setting's verdicts.
    """
    t = _prepare(df)
    specs = load_claims() if claims is None else tuple(claims)
    below = models_below_floor(manifest, accuracy_floor_factor)
    units = evaluation_units(t, level, below)
    chosen = dict(steps or {})
    _INDEX.update(table=t, rows=_index(t))
    try:
        out = [_entry(t, c, m, u, chosen) for c in specs for u in units for m in c.measures]
    finally:
        _INDEX.update(table=None, rows={})
    for c in out:
        if c["level"] == "pair":
            c["below_floor"] = [x for x in c["models"] if x in below]
        elif not (c["fp_models"] and c["bnn_models"]):  # a family left without a model
            c["below_floor"] = list(c["left_out"])
        if c["below_floor"]:
            c["verdict"] = NOT_EVALUABLE
            c["reason"] = ""
            c["n_needed"] = c["n_factor"] = c["seeds_needed"] = None
    return out


def paper_claims(
    df: pd.DataFrame,
    *,
    manifest: Mapping[str, Any] | None = None,
    entropy_sigma: float | None = None,
    accuracy_floor_factor: float | None = None,
    claims_file: str | Path | None = None,
    level: Level = "auto",
) -> list[dict]:
    """The paper's claims (``claims.toml``), and those of a user's ``claims_file``, evaluated
    on a results table by :func:`evaluate_claims`.

    Claim 1 (rank_correlation, spearman): Gradient's matched FP-BNN Spearman not below the
    FP-FP reference by more than ``SIMILARITY_MARGIN`` ("alike", non-inferiority) and above
    chance (0: a near-zero reference is trivially matched), and SmoothGrad's / GradCAM's matched
    FP-BNN Spearman lower than Gradient's.
    Claim 2 (entropy_vs_noise): SmoothGrad entropy at ``entropy_sigma`` % (default the declared
    20 %; nearest step of the sweep) higher for the BNN; entropy-minimising and
    localization-maximising sigma lower for the BNN. Claim 3 (gradcam_pathologies): blank share
    higher for the BNN, relevance mass and pointing game of standard GradCAM lower, and the
    share of images where the inverted signed map localizes better higher.
    """
    steps = {} if entropy_sigma is None else {"sigma": float(entropy_sigma)}
    return evaluate_claims(
        df,
        load_claims(claims_file),
        manifest=manifest,
        level=level,
        steps=steps,
        accuracy_floor_factor=accuracy_floor_factor,
    )


def claim_verdicts(claims: list[dict]) -> dict[int | str, str]:
    """One verdict per claim id (in order of appearance) over its evaluable measures and units
    (those not below an accuracy floor): "supported" if every one is, "not supported" if every
    one with a decision is not supported, otherwise "inconclusive" (mixed or undecided); "not
    evaluable: model did not learn" if no measure is evaluable."""
    out: dict[int | str, str] = {}
    for cid in dict.fromkeys(c["claim_id"] for c in claims):
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
