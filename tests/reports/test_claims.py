"""The paper's three claims on crafted results tables: ordered predictions decided by 95 % CI
comparison, "alike" by a TOST non-inferiority test with a declared margin, no verdict on a model
below its accuracy floor, and the power line."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from binsal.benchmarks import BENCHMARKS
from binsal.core.errors import BinsalError
from binsal.core.profile import load_profile, with_overrides
from binsal.core.schema import RESULT_COLUMNS
from binsal.reports.claims import (
    ALIKE,
    CLAIMS,
    EQUIVALENT,
    NOT_EVALUABLE,
    SIMILARITY_MARGIN,
    accuracy_floor,
    claim_verdicts,
    family_members,
    load_claims,
    matched_pairs,
    model_floors,
    paper_claims,
    power,
    verdict,
)
from binsal.reports.html import claims_section, render_report

KEYS = {"claim", "measure", "fp", "fp_ci", "bnn", "bnn_ci", "verdict", "n", "test", "margin"}
KEYS |= {"mdd", "n_needed", "n_factor", "models", "below_floor", "rule"}
PAIRS = {"vgg": ("vgg_fp", "vgg_bnn"), "resnet": ("resnet_fp", "resnet_bnn")}


def _row(bench, model, family, pair, method, metric, value, half=0.05, step=math.nan, n=32):
    return {
        "benchmark": bench,
        "model": model,
        "family": family,
        "pair": pair,
        "method": method,
        "metric": metric,
        "step": step,
        "params": "{}",
        "value": value,
        "ci_low": value - half,
        "ci_high": value + half,
        "n": n,
        "direction": "none",
        "seed": 0,
    }


def _table(paper_holds: bool, half: float = 0.05, sigmas=(1, 2, 5, 10, 15, 20, 30, 40, 50)):
    """A results table where every claim of the paper holds (or every one is reversed)."""
    g = 1.0 if paper_holds else -1.0  # sign of the BNN-vs-FP effect
    rows = []
    rc = "rank_correlation"
    rows.append(_row(rc, "vgg_fp|resnet_fp", "FP-FP", "", "gradient", "spearman", 0.3, half))
    for pair, (fp, bnn) in PAIRS.items():
        model = f"{fp}|{bnn}"
        grad = 0.6 if paper_holds else -0.2
        rows.append(_row(rc, model, "FP-BNN", pair, "gradient", "spearman", grad, half))
        for other in ("smoothgrad", "gradcam"):
            val = 0.2 if paper_holds else 0.8
            rows.append(_row(rc, model, "FP-BNN", pair, other, "spearman", val, half))
        rows.append(_row(rc, model, "FP-BNN", pair, "gradient", "kendall", 0.5, half))
        nb = "entropy_vs_noise"
        for model_, fam in ((fp, "FP"), (bnn, "BNN")):
            is_bnn = fam == "BNN"
            for s in sigmas:
                ent = 5.0 + (0.5 * g if is_bnn else 0.0)
                rows.append(_row(nb, model_, fam, pair, "smoothgrad", "entropy", ent, half, s))
            opt = (4.0 if paper_holds else 40.0) if is_bnn else 15.0
            for metric in ("argmin_entropy_sigma", "argmax_localization_sigma"):
                rows.append(_row(nb, model_, fam, pair, "smoothgrad", metric, opt, 20 * half))
            gp = "gradcam_pathologies"
            for metric, fp_val, shift in (
                ("blank_share", 0.05, 0.4),
                ("relevance_mass_standard", 0.6, -0.4),
                ("pointing_game_standard", 0.8, -0.5),
                ("inverted_better_relevance_mass", 0.1, 0.5),
            ):
                val = fp_val + (shift * g if is_bnn else 0.0)
                rows.append(_row(gp, model_, fam, pair, "gradcam", metric, val, half))
    # family aggregates must not be taken for a matched pair
    rows.append(_row("entropy_vs_noise", "all FP", "FP", "", "smoothgrad", "entropy", 9.0))
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def test_not_a_benchmark():
    assert "claims" not in BENCHMARKS.names()


def test_ordered_verdicts_by_ci_comparison():
    fp = (1.0, 0.9, 1.1, 10)
    assert verdict(fp, (2.0, 1.8, 2.2, 10), "bnn > fp") == "supported"
    assert verdict(fp, (2.0, 1.8, 2.2, 10), "bnn < fp") == "not supported"
    assert verdict(fp, (0.5, 0.4, 0.6, 10), "bnn < fp") == "supported"
    assert verdict(fp, (1.05, 1.0, 1.3, 10), "bnn > fp") == "inconclusive"  # overlap
    assert verdict(fp, (math.nan, math.nan, math.nan, 0), "bnn > fp") == "inconclusive"
    assert verdict(fp, (1.1, 1.1, 1.1, 10), "bnn > fp") == "inconclusive"  # touching CIs
    with pytest.raises(ValueError, match="expected"):
        verdict(fp, fp, "bigger")


# "Alike" used to be "supported" whenever the two 95 % CIs overlapped. A wide, noisy CI overlaps
# anything, and absence of a difference is not evidence of sameness, so "alike" is now a TOST
# (non-inferiority / equivalence) test with a declared margin on the difference bnn - fp.
REF = (0.3, 0.25, 0.35, 50)  # an FP-FP reference similarity with its 95 % CI


def test_alike_with_a_wide_ci_is_inconclusive_not_supported():
    wide = (0.3, -0.2, 0.8, 50)  # overlaps the reference: the old rule said "supported"
    assert verdict(REF, wide, ALIKE) == "inconclusive"
    assert verdict(REF, wide, EQUIVALENT) == "inconclusive"
    # overlapping CIs but a 90 % CI of the difference reaching past -0.1
    assert verdict((1.0, 0.9, 1.1, 10), (1.05, 1.0, 1.3, 10), ALIKE) == "inconclusive"


def test_alike_with_a_tight_ci_inside_the_margin_is_supported():
    tight = (0.28, 0.26, 0.30, 50)
    assert verdict(REF, tight, ALIKE) == "supported"
    assert verdict(REF, tight, EQUIVALENT) == "supported"
    # the example: two near-zero similarities, within 0.1 of each other
    assert verdict((0.037, 0.017, 0.058, 32), (0.003, -0.023, 0.038, 32), ALIKE) == "supported"
    # ... but a smaller declared margin cannot be shown at this precision
    near_zero = ((0.037, 0.017, 0.058, 32), (0.003, -0.023, 0.038, 32))
    assert verdict(*near_zero, ALIKE, margin=0.02) == "inconclusive"


def test_alike_far_outside_the_margin_is_not_supported():
    far = (-0.2, -0.25, -0.15, 50)
    assert verdict(REF, far, ALIKE) == "not supported"
    assert verdict(REF, far, EQUIVALENT) == "not supported"
    # a BNN map closer to its FP twin than FP networks are to each other: non-inferior (alike),
    # but not equivalent (two-sided)
    high = (0.6, 0.55, 0.65, 50)
    assert verdict(REF, high, ALIKE) == "supported"
    assert verdict(REF, high, EQUIVALENT) == "not supported"
    assert verdict(REF, (math.nan, math.nan, math.nan, 0), ALIKE) == "inconclusive"


def test_power_line_matches_a_hand_computation():
    z95, z90, z80 = 1.959964, 1.644854, 0.841621
    # ordered: two CIs of width 0.2, difference 0.05 (overlapping: inconclusive), n = 40
    fp, bnn = (1.0, 0.9, 1.1, 40), (1.05, 0.95, 1.15, 40)
    se = 0.2 / (2 * z95)  # each side
    se_d = math.sqrt(2) * se
    mdd = z95 * (se + se) + z80 * se_d  # disjoint 95 % CIs with 80 % power: 0.2607
    out = power(fp, bnn, "bnn > fp", "inconclusive", 40)
    assert out["mdd"] == pytest.approx(mdd, rel=1e-5) and mdd == pytest.approx(0.2607, abs=1e-4)
    assert out["n_factor"] == pytest.approx((mdd / 0.05) ** 2, rel=1e-5)  # 27.19
    assert out["n_needed"] == math.ceil(40 * (mdd / 0.05) ** 2) == 1088
    # non-inferiority: d = -0.05, se_d from CI widths 0.1 and 0.4, margin 0.1, n = 50
    bnn = (0.25, 0.05, 0.45, 50)
    se_d = math.hypot(0.1, 0.4) / (2 * z95)
    mdd = (z90 + z80) * se_d  # smallest margin a true 0 is shown within: 0.2615
    assert verdict(REF, bnn, ALIKE) == "inconclusive"
    out = power(REF, bnn, ALIKE, "inconclusive", 50)
    assert out["mdd"] == pytest.approx(mdd, rel=1e-5) and mdd == pytest.approx(0.2615, abs=1e-4)
    assert out["n_needed"] == math.ceil(50 * (mdd / (SIMILARITY_MARGIN - 0.05)) ** 2) == 1369
    # a decided verdict needs no more data; an observed difference of 0 no finite amount
    assert power(fp, (2.0, 1.8, 2.2, 40), "bnn > fp", "supported", 40)["n_needed"] is None
    assert power(fp, fp, "bnn > fp", "inconclusive", 40)["n_needed"] is None


def test_matched_pairs_from_single_model_rows():
    assert matched_pairs(_table(True)) == PAIRS


def test_all_claims_supported_when_the_paper_holds():
    claims = paper_claims(_table(True))
    assert claims and all(KEYS <= set(c) for c in claims)
    assert [c["claim_id"] for c in claims] == sorted(c["claim_id"] for c in claims)
    assert {c["pair"] for c in claims} == set(PAIRS)
    assert {c["claim"] for c in claims} == set(CLAIMS.values())
    bad = [(c["measure"], c["pair"], c["verdict"]) for c in claims if c["verdict"] != "supported"]
    assert not bad
    assert claim_verdicts(claims) == {1: "supported", 2: "supported", 3: "supported"}
    for c in claims:
        assert c["n"] == 32
        assert c["fp_ci"][0] <= c["fp"] <= c["fp_ci"][1]
        assert c["bnn_ci"][0] <= c["bnn"] <= c["bnn_ci"][1]
        assert c["rule"].startswith(c["test"])
        if c["expected"] == ALIKE:
            assert (c["test"], c["margin"]) == ("TOST non-inferiority, margin 0.1", 0.1)
        else:
            assert (c["test"], c["margin"]) == ("95 % CIs disjoint", None)
        assert c["mdd"] >= 0 and c["n_needed"] is None  # decided: nothing more needed
    ent = next(c for c in claims if c["measure"].startswith("SmoothGrad map entropy"))
    assert "sigma = 20 %" in ent["measure"]
    assert (ent["fp"], ent["bnn"]) == (5.0, 5.5)
    assert (ent["fp_model"], ent["bnn_model"]) == PAIRS[ent["pair"]]
    # claim 1 compares similarities: the labels say what each side is
    ref = next(c for c in claims if "FP-FP reference" in c["measure"])
    assert (ref["fp"], ref["bnn"]) == (0.3, 0.6) and "FP-FP" in ref["fp_label"]


def test_claims_not_supported_when_reversed():
    claims = paper_claims(_table(False))
    verdicts = {(c["claim_id"], c["measure"]): c["verdict"] for c in claims}
    assert set(verdicts.values()) == {"not supported"}
    assert claim_verdicts(claims) == {1: "not supported", 2: "not supported", 3: "not supported"}


def test_overlapping_cis_are_inconclusive():
    claims = paper_claims(_table(True, half=5.0))  # huge CIs: nothing is decided
    ordered = [c for c in claims if c["expected"] != ALIKE]
    # the chance-level reference (0, no CI) can still be decided
    decided = [c for c in ordered if c["verdict"] != "inconclusive"]
    assert all("chance" in c["measure"] for c in decided)
    # "alike" too: overlapping CIs no longer make it supported (see the TOST tests above)
    assert all(c["verdict"] == "inconclusive" for c in claims if c["expected"] == ALIKE)
    assert claim_verdicts(claims) == {1: "inconclusive", 2: "inconclusive", 3: "inconclusive"}
    # ... and each undecided measure says how much more data would decide it
    undecided = [c for c in claims if c["verdict"] == "inconclusive"]
    assert all(c["n_needed"] > c["n"] for c in undecided if c["n_needed"] is not None)


def test_missing_benchmarks_and_nearest_sigma():
    df = _table(True, sigmas=(1, 5, 15, 30))
    df = df[df["benchmark"] != "gradcam_pathologies"]
    claims = paper_claims(df)
    c3 = [c for c in claims if c["claim_id"] == 3]
    assert c3 and all(c["verdict"] == "inconclusive" and np.isnan(c["fp"]) for c in c3)
    assert all(c["n"] == 0 for c in c3)
    ent = next(c for c in claims if c["measure"].startswith("SmoothGrad map entropy"))
    assert "sigma = 15 %" in ent["measure"]  # nearest available step to 20 %
    assert ent["verdict"] == "supported"


def test_csv_roundtrip_and_no_pairs():
    df = _table(True)
    df.insert(0, "run_id", "r1")
    df.loc[df["pair"] == "", "pair"] = np.nan  # as read back from CSV
    assert len(paper_claims(df)) == len(paper_claims(_table(True)))
    unpaired = _table(True).assign(pair="")
    # no matched pair: nothing at the pair level; by default the two families are compared
    # (issue 10: claims per family where a run has no pair; tests below)
    assert paper_claims(unpaired, level="pair") == []
    assert {c["level"] for c in paper_claims(unpaired)} == {"family"}
    with pytest.raises(ValueError, match="lacks columns"):
        paper_claims(pd.DataFrame({"model": ["a"]}))


# ---- accuracy floor ----------------------------------------------------------------------------


def _manifest(acc: dict[str, float], num_classes: int | None = 4, factor: float | None = None):
    models = {}
    for pair, (fp, bnn) in PAIRS.items():
        for name, fam in ((fp, "FP"), (bnn, "BNN")):
            models[name] = {"family": fam, "pair": pair, "test_accuracy": acc.get(name, 0.9)}
            if num_classes is not None:
                models[name]["num_classes"] = num_classes
    profile: dict = {"name": "crafted", "seed": 0}
    if factor is not None:
        profile["accuracy_floor_factor"] = factor
    return {"run_id": "r1", "profile": profile, "models": models}


def test_accuracy_floor_is_factor_times_chance_capped_below_one():
    assert accuracy_floor(4) == 0.5  # default factor 2
    assert accuracy_floor(1000) == pytest.approx(0.002)
    assert accuracy_floor(2) == 0.75  # 2 x 0.5 = 1 would rule out every model: halfway instead
    assert accuracy_floor(10, 3.0) == pytest.approx(0.3)


def test_chance_level_model_is_not_evaluable_and_the_report_says_so():
    manifest = _manifest({"vgg_bnn": 0.25})  # 4 classes: chance 0.25, floor 0.5
    floors = model_floors(manifest)
    assert floors["vgg_bnn"]["floor"] == 0.5 and floors["vgg_bnn"]["below"]
    assert not floors["vgg_fp"]["below"]
    claims = paper_claims(_table(True), manifest=manifest)
    vgg = [c for c in claims if c["pair"] == "vgg"]
    assert vgg and all(c["verdict"] == NOT_EVALUABLE for c in vgg)
    assert all(c["below_floor"] == ["vgg_bnn"] and c["n_needed"] is None for c in vgg)
    # the other pair is judged as before, and carries the claim verdicts
    assert all(c["verdict"] == "supported" for c in claims if c["pair"] == "resnet")
    assert claim_verdicts(claims) == {1: "supported", 2: "supported", 3: "supported"}
    page = render_report(_table(True), manifest)
    assert "model vgg_bnn: test accuracy 0.25 &lt; floor 0.50 (2 x chance)" in page
    assert "its claims are not evaluable" in page and "class=banner" in page
    assert page.count(NOT_EVALUABLE) >= len(vgg)
    assert "TOST non-inferiority, margin 0.1" in page and "n to decide" in page
    # no model below its floor: no banner
    assert "class=banner" not in render_report(_table(True), _manifest({}))


def test_floor_of_an_fp_fp_reference_and_claim_without_evaluable_measures():
    # the FP-FP reference of every pair involves vgg_fp: the resnet pair's "alike" measure too
    manifest = _manifest({"vgg_fp": 0.1})
    claims = paper_claims(_table(True), manifest=manifest)
    ref = next(c for c in claims if c["pair"] == "resnet" and c["expected"] == ALIKE)
    assert ref["verdict"] == NOT_EVALUABLE and ref["below_floor"] == ["vgg_fp"]
    every = _manifest({m: 0.1 for ms in PAIRS.values() for m in ms})
    assert set(claim_verdicts(paper_claims(_table(True), manifest=every)).values()) == {
        NOT_EVALUABLE
    }


def test_floor_factor_from_the_profile_and_unknown_classes():
    # the profile's factor: 1.0 puts the floor at chance, where 0.3 on 4 classes passes
    assert not model_floors(_manifest({"vgg_bnn": 0.3}, factor=1.0))["vgg_bnn"]["below"]
    assert model_floors(_manifest({"vgg_bnn": 0.3}))["vgg_bnn"]["below"]
    # classes from the data's class names, or the source's ImageNet head, else not checked
    m = _manifest({"vgg_bnn": 0.3}, num_classes=None)
    assert not model_floors(m)["vgg_bnn"]["below"]
    assert model_floors(m)["vgg_bnn"]["num_classes"] is None
    assert "Accuracy floor not checked for" in render_report(_table(True), m)
    m["data"] = {"class_names": ["a", "b", "c", "d"]}
    assert model_floors(m)["vgg_bnn"]["below"]
    m = _manifest({"vgg_bnn": 0.001}, num_classes=None)
    m["models"]["vgg_bnn"]["source"] = "larq-zoo"
    assert model_floors(m)["vgg_bnn"]["floor"] == pytest.approx(0.002)
    assert paper_claims(_table(True)) == paper_claims(_table(True), manifest=None)


def test_profile_accuracy_floor_factor_is_validated():
    smoke = load_profile("smoke")
    assert smoke.accuracy_floor_factor == 2.0
    assert with_overrides(smoke, accuracy_floor_factor=3.0).accuracy_floor_factor == 3.0
    with pytest.raises(BinsalError, match=r"\[report\] accuracy_floor_factor"):
        with_overrides(smoke, accuracy_floor_factor=0.0)


# ---- claims declared in data, per pair and per family, missing inputs --------------------------


def test_the_papers_claims_are_declared_in_the_shipped_toml():
    claims = load_claims()
    assert [c.id for c in claims] == [1, 2, 3] and CLAIMS == {c.id: c.text for c in claims}
    assert [len(c.measures) for c in claims] == [4, 3, 4]
    kinds = [m.kind for m in claims[0].measures]
    assert kinds == ["fp_fp_reference", "chance", "method_vs_method", "method_vs_method"]
    entropy = claims[1].measures[0]
    assert (entropy.step, entropy.step_name, entropy.prediction) == (20.0, "sigma", "bnn > fp")
    assert claims[0].measures[0].prediction == ALIKE
    # the declared step can be overridden by its name
    ent = next(
        c for c in paper_claims(_table(True), entropy_sigma=5) if "entropy at" in c["measure"]
    )
    assert "sigma = 5 %" in ent["measure"] and ent["step"] == 5.0


BAD_CLAIMS = {
    "not toml": ("[[claim]\n", "not valid TOML"),
    "no claim": ("title = 'x'\n", "unknown key 'title'"),
    "empty": ("", r"no \[\[claim\]\] table"),
    "no measure": ("[[claim]]\nid = 9\ntext = 't'\n", r"\[claim 9\] has no \[\[claim.measure\]\]"),
    "unknown key": (
        "[[claim]]\nid = 9\ntext = 't'\n[[claim.measure]]\ntext = 'm'\nbenchmark = 'b'\n"
        "metric = 'x'\nmetrik = 'y'\n",
        r"\[claim 9 measure 1\] unknown key 'metrik'",
    ),
    "bad expected": (
        "[[claim]]\nid = 9\ntext = 't'\n[[claim.measure]]\ntext = 'm'\nbenchmark = 'b'\n"
        "metric = 'x'\nexpected = 'bigger'\n",
        "expected must be one of 'bnn > fp'",
    ),
    "no benchmark": (
        "[[claim]]\nid = 9\ntext = 't'\n[[claim.measure]]\ntext = 'm'\nmetric = 'x'\n",
        "benchmark is required",
    ),
    "no reference method": (
        "[[claim]]\nid = 9\ntext = 't'\n[[claim.measure]]\ntext = 'm'\nbenchmark = 'b'\n"
        "metric = 'x'\nkind = 'method_vs_method'\nmethod = 'gradcam'\n",
        "needs method and reference_method",
    ),
    "bad template": (
        "[[claim]]\nid = 9\ntext = 't'\n[[claim.measure]]\ntext = 'm at {sigma}'\n"
        "benchmark = 'b'\nmetric = 'x'\n",
        "text 'm at {sigma}' is not a template",
    ),
    "negative margin": (
        "[[claim]]\nid = 9\ntext = 't'\n[[claim.measure]]\ntext = 'm'\nbenchmark = 'b'\n"
        "metric = 'x'\nexpected = 'alike'\nmargin = -0.1\n",
        "margin must be a number > 0",
    ),
    "step of a pairwise kind": (
        "[[claim]]\nid = 9\ntext = 't'\n[[claim.measure]]\ntext = 'm'\nbenchmark = 'b'\n"
        "metric = 'x'\nkind = 'chance'\nstep = 5\n",
        "step is only for kind 'fp_vs_bnn'",
    ),
    "the paper's id": (
        "[[claim]]\nid = 2\ntext = 't'\n[[claim.measure]]\ntext = 'm'\nbenchmark = 'b'\n"
        "metric = 'x'\n",
        "claim id 2 is already declared",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CLAIMS))
def test_a_bad_claims_file_is_one_line_error(case, tmp_path):
    text, match = BAD_CLAIMS[case]
    path = tmp_path / "mine.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(BinsalError, match=match) as err:
        load_claims(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_a_missing_claims_file_is_one_line_error(tmp_path):
    with pytest.raises(BinsalError, match="cannot read it"):
        load_claims(tmp_path / "absent.toml")


USER_CLAIMS = """
[[claim]]
id = 4
text = "Gradient localizes worse on BNNs"

[[claim.measure]]
text = "Gradient relevance mass in the object mask"
benchmark = "localization"
metric = "relevance_mass"
method = "gradient"
expected = "bnn < fp"
"""


def _with_localization(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with Gradient relevance-mass rows (FP 0.7, BNN 0.3) for every pair's models."""
    rows = [
        _row(
            "localization", m, fam, pair, "gradient", "relevance_mass", 0.7 if fam == "FP" else 0.3
        )
        for pair, ms in PAIRS.items()
        for m, fam in zip(ms, ("FP", "BNN"), strict=True)
    ]
    return pd.concat([df, pd.DataFrame(rows, columns=RESULT_COLUMNS)], ignore_index=True)


def test_a_user_claims_file_adds_a_claim_to_the_output_and_the_report(tmp_path):
    from binsal.cli import main

    path = tmp_path / "mine.toml"
    path.write_text(USER_CLAIMS, encoding="utf-8")
    df = _with_localization(_table(True))
    claims = paper_claims(df, claims_file=path)
    mine = [c for c in claims if c["claim_id"] == 4]
    assert sorted(c["pair"] for c in mine) == sorted(PAIRS)
    assert all(
        c["verdict"] == "supported" and c["source"] == "localization/relevance_mass" for c in mine
    )
    assert claim_verdicts(claims) == {
        1: "supported",
        2: "supported",
        3: "supported",
        4: "supported",
    }
    assert [c for c in claims if c["claim_id"] != 4] == paper_claims(df)  # the paper's unchanged
    # binsal report RUN_DIR --claims FILE
    from binsal.reports.synthetic import synthetic_manifest

    run = tmp_path / "run"
    run.mkdir()
    df.to_csv(run / "results.csv", index=False)
    (run / "manifest.json").write_text(json.dumps(synthetic_manifest("r1")), encoding="utf-8")
    assert main(["report", str(run), "--claims", str(path)]) == 0
    page = (run / "report.html").read_text(encoding="utf-8")
    assert "Claim 4</b>: Gradient localizes worse on BNNs" in page
    assert "Gradient relevance mass in the object mask" in page
    bad = tmp_path / "bad.toml"
    bad.write_text("[[claim]]\nid = 1\n", encoding="utf-8")
    assert main(["report", str(run), "--claims", str(bad)]) == 2


def _unpaired(spread: float = 0.2) -> pd.DataFrame:
    """The paper-holds table without pair names; the resnet models' values shifted by
    ``spread`` so that the two models of a family differ."""
    df = _table(True).assign(pair="")
    df = df[df["model"] != "all FP"].reset_index(drop=True)
    resnet = df["model"].str.startswith("resnet")
    for col in ("value", "ci_low", "ci_high"):
        df.loc[resnet, col] += spread
    return df


def test_family_level_without_pairs_models_as_the_unit():
    from scipy.stats import t as student_t

    df = _unpaired(0.2)
    assert matched_pairs(df) == {}
    fams = family_members(df)
    assert set(fams["FP"]) == {"vgg_fp", "resnet_fp"} and set(fams["BNN"]) == {
        "vgg_bnn",
        "resnet_bnn",
    }
    claims = paper_claims(df)
    assert (
        claims
        and {c["level"] for c in claims} == {"family"}
        and {c["pair"] for c in claims} == {""}
    )
    ent = next(c for c in claims if "entropy at" in c["measure"])
    assert (ent["fp_model"], ent["bnn_model"]) == ("all FP", "all BNN")
    assert set(ent["fp_models"]) == {"vgg_fp", "resnet_fp"}
    # each side: the mean over the family's two models, Student-t 95 % interval over models
    half = student_t.ppf(0.975, 1) * np.std([5.0, 5.2], ddof=1) / math.sqrt(2)
    assert ent["fp"] == pytest.approx(5.1)
    assert ent["fp_ci"] == pytest.approx([5.1 - half, 5.1 + half])
    assert ent["fp_ci_over"] == "t interval over 2 models"
    assert (ent["n"], ent["unit"]) == (2, "models")
    # two models a side: the t interval is wide, 5.1 vs 5.6 is not decided
    assert ent["verdict"] == "inconclusive" and ent["reason"] == ""
    assert ent["n_needed"] is not None  # the plan is in models
    # claim 1 over model pairs: every FP-BNN row of two models of the families
    grad = next(c for c in claims if "above chance" in c["measure"])
    assert grad["unit"] == "model pairs" and grad["bnn"] == pytest.approx(0.7)
    # models that agree exactly: not a zero-width interval, the mean of their own CIs
    same = next(c for c in paper_claims(_unpaired(0.0)) if "entropy at" in c["measure"])
    assert same["fp_ci"] == pytest.approx([4.95, 5.05]) and "widened" in same["fp_ci_over"]
    assert same["verdict"] == "supported"
    # the report names the level
    page = claims_section(df)
    assert (
        "<th class=l>level</th>" in page
        and ">family</td>" in page
        and "2 <span class=muted>models" in page
    )
    assert ">pair vgg</td>" in claims_section(_table(True))


def test_family_level_with_one_model_per_family_keeps_its_own_ci():
    df = _unpaired()
    df = df[df["model"].isin(["vgg_fp", "resnet_bnn", "vgg_fp|resnet_bnn"])]
    df = pd.concat(
        [
            df,
            pd.DataFrame(
                [
                    _row(
                        "rank_correlation",
                        "vgg_fp|resnet_bnn",
                        "FP-BNN",
                        "",
                        "gradient",
                        "spearman",
                        0.5,
                    )
                ],
                columns=RESULT_COLUMNS,
            ),
        ],
        ignore_index=True,
    )
    claims = paper_claims(df)
    assert {c["level"] for c in claims} == {"family"}
    blank = next(c for c in claims if c["source"] == "gradcam_pathologies/blank_share")
    assert (blank["fp"], blank["fp_ci"]) == (0.05, [0.0, pytest.approx(0.1)])
    assert blank["fp_ci_over"] == blank["bnn_ci_over"] == "one model: its own CI over images"
    assert (blank["n"], blank["unit"]) == (32, "images") and blank["verdict"] == "supported"
    ref = next(c for c in claims if c["expected"] == ALIKE)  # one FP model: no FP-FP reference
    assert ref["verdict"] == "inconclusive" and "no FP-FP reference" in ref["reason"]
    chance = next(c for c in claims if "above chance" in c["measure"])
    assert chance["bnn"] == 0.5 and chance["verdict"] == "supported"


def test_one_pair_without_rank_correlation_and_missing_benchmarks():
    # `binsal run --models vgg_fp,vgg_bnn` without rank_correlation: the report said "Claims could
    # not be evaluated: KeyError('value')". Root cause: a row mask built with Series.map on no
    # rows (one FP model: no FP-FP row) is an empty object-dtype Series, which df[mask] reads as
    # a list of column labels: a frame without columns, then KeyError on 'value' or 'model'. Row
    # masks are NumPy booleans now (claims._mask), and a side without rows says why.
    df = _table(True)
    df = df[df["model"].str.startswith("vgg") & (df["benchmark"] != "rank_correlation")]
    assert matched_pairs(df) == {"vgg": PAIRS["vgg"]}
    claims = paper_claims(df)
    assert {(c["level"], c["pair"]) for c in claims} == {("pair", "vgg")}
    c1 = [c for c in claims if c["claim_id"] == 1]
    assert len(c1) == 4 and all(c["verdict"] == "inconclusive" for c in c1)
    assert {c["reason"] for c in c1} == {"benchmark rank_correlation not in this run"}
    assert all(c["verdict"] == "supported" for c in claims if c["claim_id"] != 1)
    assert claim_verdicts(claims) == {1: "inconclusive", 2: "supported", 3: "supported"}
    page = claims_section(df)
    assert "could not be evaluated" not in page and "class=err" not in page
    assert "(benchmark rank_correlation not in this run)" in page
    # one FP model, rank correlation present: no FP-FP reference, said so
    one = _table(True)
    one = one[one["model"].str.startswith("vgg") & (one["family"] != "FP-FP")]
    ref = next(c for c in paper_claims(one) if c["expected"] == ALIKE)
    assert ref["verdict"] == "inconclusive"
    assert (
        ref["reason"]
        == "no FP-FP reference: rank_correlation has no row of two FP networks with vgg_fp"
    )
    # a benchmark without a metric, no pair and no family at all
    part = _table(True)
    part = part[part["metric"] != "blank_share"]
    blank = next(c for c in paper_claims(part) if c["source"].endswith("blank_share"))
    assert blank["reason"] == "metric blank_share of gradcam_pathologies not in this run"
    assert paper_claims(_table(True)[lambda d: d["family"] == "FP"]) == []
    assert "no FP and BNN models to compare" in claims_section(
        _table(True)[lambda d: d["family"] == "FP"]
    )
    # a table with only the claims' benchmarks absent: inconclusive entries, never an exception
    other = pd.DataFrame(
        [
            _row("localization", m, f, "vgg", "gradient", "x", 0.5)
            for m, f in (("vgg_fp", "FP"), ("vgg_bnn", "BNN"))
        ],
        columns=RESULT_COLUMNS,
    )
    every = paper_claims(other)
    assert len(every) == 11 and {c["verdict"] for c in every} == {"inconclusive"}
    assert all(c["reason"].endswith("not in this run") for c in every)


def test_family_level_leaves_models_below_their_floor_out():
    df = _unpaired(0.2)
    claims = paper_claims(df, manifest=_manifest({"resnet_bnn": 0.1}))
    ent = next(c for c in claims if "entropy at" in c["measure"])
    assert ent["left_out"] == ["resnet_bnn"] and ent["bnn_models"] == ["vgg_bnn"]
    assert ent["bnn"] == 5.5 and ent["bnn_ci_over"] == "one model: its own CI over images"
    assert ent["verdict"] != NOT_EVALUABLE and ent["below_floor"] == []
    both = paper_claims(df, manifest=_manifest({"vgg_bnn": 0.1, "resnet_bnn": 0.1}))
    assert {c["verdict"] for c in both} == {NOT_EVALUABLE}
    assert claim_verdicts(both) == {1: NOT_EVALUABLE, 2: NOT_EVALUABLE, 3: NOT_EVALUABLE}
