"""Localization benchmark: a map equal to the mask wins, through the helper and the run path."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

from binsal.benchmarks import BENCHMARKS
from binsal.benchmarks.base import MapStore
from binsal.benchmarks.localization import Localization, localization_scores, ranks_signed
from binsal.metrics.localization import DEFAULT_THRESHOLDS
from binsal.saliency import METHODS, SaliencyMethod, is_defined


@dataclass(frozen=True)
class MaskOracle(SaliencyMethod):
    """Test-only method: the map is the image's first channel (the tests put the mask there)."""

    name: ClassVar[str] = "mask_oracle"
    needs_model: ClassVar[bool] = False

    def _explain(self, model, x, t, engine):
        return x[..., 0]


def _masks(n=4, h=16, w=16):
    masks = np.zeros((n, h, w), dtype=bool)
    masks[:, 4:10, 5:11] = True
    return masks


def test_registered_with_order_and_sources():
    assert BENCHMARKS["localization"] is Localization
    assert Localization.order == 20
    for source in ("Zhang et al. 2016", "Arras et al. 2022", "Oramas et al. 2019"):
        assert source in Localization.description


def test_helper_map_equal_to_mask_scores_perfectly():
    masks = _masks()
    scalars, curve = localization_scores(masks.astype(float), masks)
    for metric in ("pointing_game", "relevance_mass", "relevance_rank_accuracy"):
        np.testing.assert_allclose(scalars[metric], 1.0, err_msg=metric)
    share = masks[0].sum() / masks[0].size
    # min-max normalised mask: every pixel selected at t = 0, exactly the mask above
    np.testing.assert_allclose(curve[:, 0], share)
    np.testing.assert_allclose(curve[:, 1:], 1.0)
    step = DEFAULT_THRESHOLDS[1] - DEFAULT_THRESHOLDS[0]
    np.testing.assert_allclose(scalars["iou_auc"], 1.0 - step / 2 * (1.0 - share))


def test_helper_signed_ranking_and_outside_map():
    masks = _masks()
    outside = (~masks).astype(float)
    scalars, _ = localization_scores(outside, masks)
    np.testing.assert_allclose(scalars["relevance_mass"], 0.0)
    np.testing.assert_allclose(scalars["pointing_game"], 0.0)
    # a negative blob in the mask: abs ranking points at it, signed ranking does not
    signed = np.where(masks, -2.0, 0.5)
    by_abs, _ = localization_scores(signed, masks, use_abs=True)
    by_sign, _ = localization_scores(signed, masks, use_abs=False)
    np.testing.assert_allclose(by_abs["pointing_game"], 1.0)
    np.testing.assert_allclose(by_sign["pointing_game"], 0.0)
    np.testing.assert_allclose(by_sign["relevance_mass"], 0.0)
    assert ranks_signed("gradcam") and ranks_signed("gradcam_inverted")
    assert ranks_signed("gradcam_signed") and ranks_signed("gradcam_pp")
    assert ranks_signed("scorecam")
    assert not ranks_signed("gradient") and not ranks_signed("sobel")
    assert not ranks_signed("smoothgrad") and not ranks_signed("integrated_gradients")


def test_benchmark_path_on_tiny_ctx(tiny_ctx, monkeypatch, tmp_path):
    ctx = tiny_ctx
    ctx.models = {k: v for k, v in ctx.models.items() if k.startswith("tiny_vgg")}  # one pair
    # 1. the profile's methods on the tiny pair: tidy rows, controls included
    rows = Localization().run(ctx)
    models, methods = set(ctx.models), set(ctx.methods)
    defined = {(m, k) for m in models for k in methods if is_defined(k, ctx.models[m])[0]}
    assert {(r.model, r.method) for r in rows} == defined
    assert {("tiny_vgg_fp", "random"), ("tiny_vgg_bnn", "sobel")} <= defined
    n_thr = len(DEFAULT_THRESHOLDS)
    for r in rows:
        assert r.benchmark == "localization" and r.direction == "higher"
        assert r.n > 0
        assert r.ci_low <= r.value + 1e-12 and r.value <= r.ci_high + 1e-12
        assert 0.0 <= r.value <= 1.0
    per_combo = [r for r in rows if r.model == "tiny_vgg_bnn" and r.method == "gradcam"]
    assert sorted(r.metric for r in per_combo if np.isnan(r.step)) == [
        "iou_auc",
        "pointing_game",
        "relevance_mass",
        "relevance_rank_accuracy",
    ]
    steps = [r.step for r in per_combo if r.metric == "iou"]
    np.testing.assert_allclose(sorted(steps), DEFAULT_THRESHOLDS)
    assert len(steps) == n_thr
    assert '"use_abs": false' in per_combo[0].params
    assert all('"use_abs": true' in r.params for r in rows if r.method == "gradient")

    # 2. a registered-for-the-test oracle method whose map is the mask, beside the controls;
    #    guided backprop is scored only where it is defined (not through larq's sign)
    monkeypatch.setitem(METHODS._items, MaskOracle.name, MaskOracle)
    ctx.images = ctx.images.copy()
    ctx.images[..., 0] = ctx.masks
    ctx.maps = MapStore(tmp_path / "maps2")
    ctx.profile = dataclasses.replace(
        ctx.profile,
        saliency=dataclasses.replace(ctx.profile.saliency, methods=("mask_oracle", "random")),
        benchmark_options={"localization": {"extra_methods": ["guided_backprop"]}},
    )
    rows = Localization().run(ctx)
    oracle = [r for r in rows if r.method == "mask_oracle" and np.isnan(r.step)]
    assert len(oracle) == 4 * len(models)
    for r in oracle:
        if r.metric != "iou_auc":
            # 6 of 6 images perfect: a Wilson interval (6/6: [0.61, 1]), never a collapsed one
            assert (r.value, r.ci_high, r.n, r.ci_method) == (1.0, 1.0, 6, "wilson"), r
            assert r.ci_low == pytest.approx(0.6097, abs=1e-4), r
    rand = {r.metric: r.value for r in rows if r.method == "random"}
    assert rand["relevance_mass"] < 0.5
    guided = {r.model for r in rows if r.method == "guided_backprop"}
    assert guided == {m for m in models if ctx.models[m].family == "FP"}

    # 3. no masks: no rows
    ctx.masks = None
    assert Localization().run(ctx) == []
