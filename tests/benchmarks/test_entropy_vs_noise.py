"""Entropy vs SmoothGrad noise: known answers for the scores and the arg-optimum, tidy rows."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from binsal.benchmarks import BENCHMARKS
from binsal.benchmarks.entropy_vs_noise import (
    SIGMAS_PERCENT,
    EntropyVsNoise,
    arg_optimum_sigma,
    score_maps,
)
from binsal.core.profile import load_profile

SIGMAS = np.array([1.0, 5.0, 20.0, 50.0])


def test_registered_with_order_and_docstring():
    assert BENCHMARKS["entropy_vs_noise"] is EntropyVsNoise
    assert EntropyVsNoise.order == 60
    assert "Smilkov et al. 2017" in EntropyVsNoise.description
    assert {p.metric for p in EntropyVsNoise.plots} >= {"entropy_normalized", "relevance_mass"}


def test_options_per_profile():
    bench = EntropyVsNoise()
    smoke = EntropyVsNoise.Options.from_profile(load_profile("smoke"), bench.name)
    default = EntropyVsNoise.Options.from_profile(load_profile("default"), bench.name)
    full = EntropyVsNoise.Options.from_profile(load_profile("full"), bench.name)
    assert default.sigmas == SIGMAS_PERCENT == full.sigmas
    assert len(smoke.sigmas) < len(default.sigmas) and 20 in smoke.sigmas
    assert smoke.samples is not None and default.samples is not None and full.samples
    assert smoke.samples < default.samples < full.samples
    assert smoke.n_images is not None and default.n_images is not None
    assert smoke.n_images < default.n_images


def test_score_maps_known_answers():
    n, h, w = 3, 8, 8
    masks = np.zeros((n, h, w), dtype=bool)
    masks[:, 2:5, 3:6] = True
    uniform = np.ones((n, h, w))
    one_pixel = np.zeros((n, h, w))
    one_pixel[:, 3, 4] = -2.0  # inside the mask; abs is part of the definition
    s_uniform = score_maps(uniform, masks)
    s_pixel = score_maps(one_pixel, masks)
    np.testing.assert_allclose(s_uniform["entropy"], np.log(h * w))
    np.testing.assert_allclose(s_uniform["entropy_normalized"], 1.0)
    np.testing.assert_allclose(s_pixel["entropy"], 0.0, atol=1e-12)
    np.testing.assert_allclose(s_pixel["relevance_mass"], 1.0)
    np.testing.assert_allclose(s_pixel["pointing_game"], 1.0)
    s_mask = score_maps(masks.astype(float), masks)
    np.testing.assert_allclose(s_mask["relevance_mass"], 1.0)
    np.testing.assert_allclose(s_mask["pointing_game"], 1.0)
    assert set(score_maps(uniform, None)) == {"entropy", "entropy_normalized"}


def test_arg_optimum_known_answer_and_degenerate_ci():
    # every image has its minimum at sigma = 20 and maximum at 50: no bootstrap uncertainty
    values = np.array([[3.0, 2.0, 1.0, 4.0], [5.0, 4.0, 0.5, 6.0], [2.0, 1.5, 1.0, 2.5]])
    assert arg_optimum_sigma(values, SIGMAS, mode="min", n_boot=200) == (20.0, 20.0, 20.0, 3)
    assert arg_optimum_sigma(values, SIGMAS, mode="max", n_boot=200) == (50.0, 50.0, 50.0, 3)


def test_arg_optimum_ties_nans_and_bootstrap_ci():
    tie = np.array([[1.0, 1.0, 2.0, 2.0]])
    assert arg_optimum_sigma(tie, SIGMAS, mode="min")[0] == 1.0  # ties: smallest sigma
    with_nan = np.array([[np.nan, 2.0, 3.0, 4.0], [np.nan, np.nan, np.nan, np.nan]])
    best, lo, hi, n = arg_optimum_sigma(with_nan, SIGMAS, mode="min")
    assert (best, n) == (5.0, 1)  # an all-NaN sigma never wins, an all-NaN image is dropped
    assert np.isnan(arg_optimum_sigma(np.full((2, 4), np.nan), SIGMAS, mode="min")[0])
    rng = np.random.default_rng(0)
    noisy = rng.normal(size=(40, 4)) + np.array([0.0, -0.3, -0.2, 0.5])
    best, lo, hi, n = arg_optimum_sigma(noisy, SIGMAS, mode="min", n_boot=300, seed=1)
    assert n == 40
    assert lo <= best <= hi
    assert {lo, hi, best} <= set(SIGMAS.tolist())  # grid values
    assert arg_optimum_sigma(noisy, SIGMAS, mode="min", n_boot=300, seed=1) == (best, lo, hi, n)
    with pytest.raises(ValueError, match="mode"):
        arg_optimum_sigma(noisy, SIGMAS, mode="median")


def _check_tidy(rows):
    for r in rows:
        assert r.benchmark == "entropy_vs_noise" and r.method == "smoothgrad"
        assert r.n > 0
        assert r.ci_low <= r.value + 1e-12 and r.value <= r.ci_high + 1e-12
        expected = {
            "entropy": "lower",
            "entropy_normalized": "lower",
            "relevance_mass": "higher",
            "pointing_game": "higher",
            "argmin_entropy_sigma": "none",
            "argmax_localization_sigma": "none",
        }[r.metric]
        assert r.direction == expected


def test_rows_cache_and_no_masks_on_tiny_ctx(tiny_ctx):
    # one test, so the four tiny models are built and traced once
    ctx = tiny_ctx
    rows = EntropyVsNoise().run(ctx)
    _check_tidy(rows)
    opts = EntropyVsNoise.Options.from_profile(ctx.profile, "entropy_vs_noise")  # smoke's
    sigmas = sorted(opts.sigmas)
    for model in [*ctx.models, "all FP", "all BNN"]:
        mine = [r for r in rows if r.model == model]
        for metric in ("entropy", "entropy_normalized", "relevance_mass", "pointing_game"):
            steps = sorted(r.step for r in mine if r.metric == metric)
            assert steps == sigmas, (model, metric)
        for metric in ("argmin_entropy_sigma", "argmax_localization_sigma"):
            (opt,) = [r for r in mine if r.metric == metric]
            assert np.isnan(opt.step) and opt.value in sigmas
            assert opt.ci_low in sigmas and opt.ci_high in sigmas
            assert opt.n == opts.n_images
    h, w = ctx.images.shape[1:3]
    for r in rows:
        if r.metric == "entropy":
            assert 0.0 <= r.value <= np.log(h * w) + 1e-9
        if r.metric == "entropy_normalized":
            assert 0.0 <= r.value <= 1.0 + 1e-9
    fam = {r.model: r.family for r in rows}
    assert fam["all FP"] == "FP" and fam["all BNN"] == "BNN"
    assert {r.pair for r in rows if r.model == "tiny_vgg_bnn"} == {"tiny_vgg"}

    # maps go through the MapStore: one file per model and sigma, read back on a rerun
    files = sorted(p.name for p in ctx.maps.folder.iterdir())
    assert len(files) == len(ctx.models) * len(sigmas)
    ctx.maps._memory.clear()
    again = EntropyVsNoise().run(ctx)
    assert sorted(p.name for p in ctx.maps.folder.iterdir()) == files
    np.testing.assert_allclose([r.value for r in again], [r.value for r in rows])

    # no masks (e.g. the paper's photos): entropy only; profile options override the defaults
    ctx.masks = None
    ctx.profile = dataclasses.replace(
        ctx.profile, benchmark_options={"entropy_vs_noise": {"sigmas": [2, 10], "n_images": 3}}
    )
    rows = EntropyVsNoise().run(ctx)
    _check_tidy(rows)
    assert {r.metric for r in rows} == {"entropy", "entropy_normalized", "argmin_entropy_sigma"}
    assert {r.step for r in rows if r.metric == "entropy"} == {2.0, 10.0}
    assert all(r.n == 3 for r in rows)


def test_targets_fall_back_on_the_models_prediction_where_unlabelled():
    from types import SimpleNamespace

    from binsal.benchmarks.base import explained_targets as eval_targets

    ctx = SimpleNamespace(labels=np.array([1, -1, 2]), predictions={"m": np.array([0, 0, 0])})
    np.testing.assert_array_equal(eval_targets(ctx, "m"), [1, 0, 2])
    ctx.labels = np.array([1, 2, 0])
    np.testing.assert_array_equal(eval_targets(ctx, "m"), [1, 2, 0])
