"""Model-randomization sanity check on tiny models: tidy rows, known answers at step 0 and for a
model-blind method, the cached models left untouched."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

from binsal.benchmarks.model_randomization import ModelRandomization, model_randomization_rows
from binsal.saliency import SaliencyMethod, SobelMap


def _with_options(ctx, bench: str, profile_methods=None, **options):
    """``ctx`` with the profile's methods replaced and a TOML-like section for ``bench``."""
    profile = ctx.profile
    if profile_methods is not None:
        profile = dataclasses.replace(
            profile, saliency=dataclasses.replace(profile.saliency, methods=tuple(profile_methods))
        )
    profile = dataclasses.replace(
        profile, benchmark_options={**profile.benchmark_options, bench: options}
    )
    ctx.profile = profile
    return ctx


def test_benchmark_rows_tidy_step0_one_and_models_untouched(tiny_ctx):
    ctx = _with_options(
        tiny_ctx,
        "model_randomization",
        profile_methods=["gradient", "smoothgrad", "gradcam", "guided_backprop", "random", "sobel"],
        models=["tiny_vgg_fp", "tiny_vgg_bnn"],
        methods="profile",
        n_images=6,
        max_layers=3,
    )
    weights = {n: [w.copy() for w in m.model.get_weights()] for n, m in ctx.models.items()}
    rows = ModelRandomization().run(ctx)
    for name, m in ctx.models.items():
        for a, b in zip(weights[name], m.model.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    assert rows
    for r in rows:
        assert r.benchmark == "model_randomization"
        assert r.direction in {"lower", "none"}
        assert r.n > 0 or np.isnan(r.value)  # n = 0: every randomized map went blank
        if np.isfinite(r.value):
            assert r.ci_low <= r.value + 1e-12 and r.value <= r.ci_high + 1e-12
    methods = {r.method for r in rows}
    assert {"gradient", "smoothgrad", "gradcam", "(weights)"} <= methods
    assert not {"random", "sobel"} & methods
    # guided backprop is not defined through larq's sign: no rows for the BNNs
    guided = {r.model for r in rows if r.method == "guided_backprop"}
    assert guided == {"tiny_vgg_fp"}
    step0 = [r for r in rows if r.step == 0 and r.metric.startswith("cascading_")]
    assert {r.metric for r in step0} >= {"cascading_spearman_abs", "cascading_ssim"}
    for r in step0:
        if r.metric in ("cascading_spearman_abs", "cascading_ssim") and r.n:
            assert r.value == pytest.approx(1.0, abs=1e-4), r
    steps = {r.step for r in rows if r.metric == "independent_spearman_abs"}
    assert steps == {1.0, 2.0, 3.0}
    flips = [r for r in rows if r.metric == "sign_flip_fraction" and np.isfinite(r.step)]
    assert len(flips) == 2 * 3
    big = [r for r in flips if r.n >= 1000]
    assert big and all(0.4 <= r.value <= 0.6 for r in big)


@dataclass(frozen=True)
class ModelBlindSobel(SaliencyMethod):
    """A broken 'explanation': claims to need the model, returns the Sobel edges of the image."""

    name: ClassVar[str] = "model_blind_sobel"

    def _explain(self, model, x, t, engine):
        return SobelMap()._explain(None, x, t, engine)


def test_model_blind_method_survives_randomization_gradient_does_not(tiny_ctx):
    loaded = tiny_ctx.models["tiny_vgg_bnn"]
    methods = {"model_blind_sobel": ModelBlindSobel(), "gradient": tiny_ctx.method("gradient")}
    rows = model_randomization_rows(tiny_ctx, loaded, methods, modes=("cascading", "independent"))
    blind = [r for r in rows if r.method == "model_blind_sobel"]
    assert blind
    for r in blind:
        if r.metric.endswith(("spearman_abs", "spearman_signed", "ssim")):
            assert r.value == pytest.approx(1.0), r
    full = [
        r
        for r in rows
        if r.method == "gradient"
        and r.metric == "cascading_spearman_abs"
        and not np.isfinite(r.step)
    ]
    assert len(full) == 1 and full[0].value < 0.9


def test_declared_scores_cover_both_modes_and_the_sign_flips():
    scores = ModelRandomization.scores
    for mode in ("cascading", "independent"):
        for metric in ("spearman_abs", "spearman_signed", "ssim", "hog_pearson"):
            assert scores[f"{mode}_{metric}"].direction == "lower"
        assert scores[f"{mode}_blank_share"].direction == "none"
    assert scores["sign_flip_fraction"].direction == "none"
    decl = ModelRandomization.declaration()
    assert decl["name"] == "model_randomization" and decl["order"] == 30
    assert decl["scores"]["cascading_ssim"]["direction"] == "lower"
    assert decl["plots"][0]["metric"] == "cascading_spearman_abs"
