"""claim_robustness: the claims' benchmarks re-run under each combination of analysis choices,
and the report's robustness table built from its rows."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from binsal.benchmarks import BENCHMARKS
from binsal.benchmarks.claim_robustness import ClaimRobustness, sub_context
from binsal.models.gradcam_rules import toolkit_default_layer
from binsal.reports.robustness import robustness, robustness_html
from tests.conftest import make_tiny_ctx

GRID = {
    "per_sample_abs": [False],
    "channel_reduce": ["sum", "max_abs"],
    "normalize": ["none"],
    "gradcam_layer": ["last_feature_map", "toolkit_default"],
    "smoothgrad_noise": [0.2],
    "n_images": 4,
}


def with_grid(tiny_ctx):
    """The tiny context with a small grid of analysis choices."""
    prof = tiny_ctx.profile
    tables = {**prof.benchmark_options, "claim_robustness": GRID}
    tables["entropy_vs_noise"] = {"sigmas": [0.0, 20.0], "samples": 2}
    sal = dataclasses.replace(prof.saliency, smoothgrad_samples=2)
    return dataclasses.replace(
        tiny_ctx, profile=dataclasses.replace(prof, saliency=sal, benchmark_options=tables)
    )


@pytest.fixture(scope="module")
def robust_ctx(tmp_path_factory):
    """Built once for the module's tests, which only read it and its rows."""
    return with_grid(make_tiny_ctx(tmp_path_factory.mktemp("robust")))


@pytest.fixture(scope="module")
def robust_rows(robust_ctx):
    return pd.DataFrame([r.as_dict() for r in ClaimRobustness().run(robust_ctx)])


def test_each_benchmark_runs_once_per_distinct_setting_that_reaches_it(robust_rows):
    params = robust_rows["params"].map(json.loads)
    methods = robust_rows["method"]
    runs = {
        (p["of"], m, json.dumps(p["setting"], sort_keys=True))
        for p, m in zip(params, methods, strict=True)
    }
    by_bench = pd.Series([b for b, _, _ in runs]).value_counts().to_dict()
    # rank correlation: Gradient and SmoothGrad once per reduction, GradCAM once per layer rule;
    # entropy: once per reduction; pathologies: once per layer rule
    assert by_bench == {"rank_correlation": 6, "entropy_vs_noise": 2, "gradcam_pathologies": 2}
    settings = {(m, k) for _, m, k in runs if m == "gradcam"}
    assert all("channel_reduce" not in k for _, k in settings)
    assert set(robust_rows["metric"].str.split("/").str[0]) == set(by_bench)
    assert (robust_rows["n"] <= 4).all()


def test_rows_equal_the_benchmark_run_on_the_same_images_and_settings(robust_ctx, robust_rows):
    setting = {"gradcam_layer": "toolkit_default"}
    direct = BENCHMARKS["gradcam_pathologies"]().run(sub_context(robust_ctx, setting, 4))
    ours = robust_rows[robust_rows["params"].map(lambda p: json.loads(p)["setting"] == setting)]
    assert len(ours) == len(direct)
    for row in direct:
        metric = f"{row.benchmark}/{row.metric}"
        match = ours[(ours["model"] == row.model) & (ours["metric"] == metric)]
        assert len(match) == 1
        np.testing.assert_equal(match["value"].iloc[0], row.value)
        layer = json.loads(match["params"].iloc[0])["layer"]
        assert layer == toolkit_default_layer(robust_ctx.models[row.model].model)


def test_robustness_table_has_every_combination_and_a_label_per_claim(robust_rows):
    per_combo, summary = robustness(robust_rows)
    assert len(per_combo) == 4  # 2 reductions x 2 layer rules (single-valued choices fixed)
    assert {s["claim_id"] for s in summary} == {1, 2, 3}
    for s in summary:
        assert s["n_settings"] == 4 and sum(s["counts"].values()) == 4
        label = s["robustness"]
        assert label.endswith(" under all") or label in (
            "survives all",
            "flips",
            "holds only under the paper's settings",
            "varies",
        )
    page = robustness_html(robust_rows, None, "Claim robustness")
    assert "<h2 id='claim_robustness'>" in page and page.count("<tr>") >= 3 + 4


def test_labels_follow_the_verdicts(monkeypatch, robust_rows):
    from binsal.reports import robustness as rb

    verdicts = iter(["supported", "not supported", "supported", "supported"])

    def claim_1_only(entries):  # claim 1 reaches every choice: evaluated once per setting
        return {1: next(verdicts)} if entries and entries[0]["claim_id"] == 1 else {}

    monkeypatch.setattr(rb.cl, "claim_verdicts", claim_1_only)
    _, summary = rb.robustness(robust_rows)
    assert summary[0]["robustness"] == "flips"
    verdicts = iter(["supported"] * 4)
    _, summary = rb.robustness(robust_rows)
    assert summary[0]["robustness"] == "survives all"
    verdicts = iter(["inconclusive"] * 4)
    _, summary = rb.robustness(robust_rows)
    assert summary[0]["robustness"] == "inconclusive under all"
    verdicts = iter(["supported", "inconclusive", "inconclusive", "inconclusive"])
    _, summary = rb.robustness(robust_rows)
    assert summary[0]["robustness"] in ("holds only under the paper's settings", "varies")


def test_each_claim_is_evaluated_once_per_setting_of_the_choices_that_reach_it(
    monkeypatch, robust_rows
):
    from binsal.reports import robustness as rb

    calls: list = []
    real = rb.cl.evaluate_claims
    monkeypatch.setattr(
        rb.cl,
        "evaluate_claims",
        lambda df, specs, **kw: calls.append([s.id for s in specs]) or real(df, specs, **kw),
    )
    per_combo, _ = rb.robustness(robust_rows)
    # claim 1 reads every choice (4 settings), claim 2 the reductions (2), claim 3 the layers (2);
    # a combination's claims not yet decided are evaluated together: one pass per combination
    assert sorted(i for ids in calls for i in ids) == [1, 1, 1, 1, 2, 2, 3, 3]
    assert len(calls) == len(per_combo) == 4


def test_no_rows_no_table():
    assert robustness(pd.DataFrame({"benchmark": ["rank_correlation"]})) == ([], [])


def test_robustness_rows_are_not_ranked_in_the_leaderboard(robust_rows):
    from binsal.reports.leaderboard import leaderboard

    assert leaderboard(robust_rows).empty


def test_re_runs_never_file_units_under_the_benchmarks_own_keys(tiny_ctx):
    """A replicate merge reads each benchmark's per-image values by row key: the re-runs' values
    must come back under the claim_robustness rows, never replace rank_correlation's own."""
    from binsal.core.schema import collect_units, key_of

    robust_ctx = with_grid(tiny_ctx)  # a fresh context: nothing computed before
    with collect_units() as own:
        rc_rows = BENCHMARKS["rank_correlation"]().run(robust_ctx)
    with collect_units() as robust:
        cr_rows = ClaimRobustness().run(robust_ctx)
    assert own and robust and not set(own) & set(robust)
    assert {key_of(r) for r in cr_rows if r.n > 0} <= set(robust)
    assert all(key[0] == "claim_robustness" for key in robust)
    assert all(len(own[key_of(r)]) == len(robust_ctx.images) for r in rc_rows if r.n > 0)
