"""The paper's three claims on crafted results tables: verdicts decided by CI overlap."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from binsal.benchmarks import BENCHMARKS
from binsal.core.schema import RESULT_COLUMNS
from binsal.reports.claims import (
    CLAIMS,
    claim_verdicts,
    matched_pairs,
    paper_claims,
    verdict,
)

KEYS = {"claim", "measure", "fp", "fp_ci", "bnn", "bnn_ci", "verdict", "n"}
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


def test_verdict_rule_by_ci_overlap():
    fp = (1.0, 0.9, 1.1, 10)
    assert verdict(fp, (2.0, 1.8, 2.2, 10), "bnn > fp") == "supported"
    assert verdict(fp, (2.0, 1.8, 2.2, 10), "bnn < fp") == "not supported"
    assert verdict(fp, (0.5, 0.4, 0.6, 10), "bnn < fp") == "supported"
    assert verdict(fp, (1.05, 1.0, 1.3, 10), "bnn > fp") == "inconclusive"  # overlap
    assert verdict(fp, (1.05, 1.0, 1.3, 10), "bnn >= fp (alike)") == "supported"
    assert verdict(fp, (2.0, 1.8, 2.2, 10), "bnn >= fp (alike)") == "supported"
    assert verdict(fp, (0.5, 0.4, 0.6, 10), "bnn >= fp (alike)") == "not supported"
    assert verdict(fp, (math.nan,) * 3 + (0,), "bnn > fp") == "inconclusive"
    assert verdict(fp, (1.1, 1.1, 1.1, 10), "bnn > fp") == "inconclusive"  # touching CIs
    with pytest.raises(ValueError, match="expected"):
        verdict(fp, fp, "bigger")


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
        assert c["rule"].startswith("by 95 % CI overlap")
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
    ordered = [c for c in claims if c["expected"] != "bnn >= fp (alike)"]
    # the chance-level reference (0, no CI) can still be decided
    decided = [c for c in ordered if c["verdict"] != "inconclusive"]
    assert all("chance" in c["measure"] for c in decided)
    assert all(c["verdict"] == "supported" for c in claims if c["expected"] == "bnn >= fp (alike)")
    assert claim_verdicts(claims)[2] == "inconclusive"


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
    assert paper_claims(unpaired) == []
    with pytest.raises(ValueError, match="lacks columns"):
        paper_claims(pd.DataFrame({"model": ["a"]}))
