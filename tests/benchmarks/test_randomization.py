"""Model- and data-randomization sanity checks on tiny models: BNN-aware re-initialisation,
the cached model left untouched, known answers at step 0 and for a model-blind method."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import SimpleNamespace
from typing import ClassVar

import numpy as np
import pytest

from binsal.benchmarks.randomization import (
    DataRandomization,
    LayerRandomizer,
    ModelRandomization,
    model_randomization_rows,
    sign_flips,
    wilson_interval,
)
from binsal.core.progress import StageTimer
from binsal.models.spec import LoadedModel
from binsal.saliency import SaliencyMethod, SobelMap
from tests.conftest import TINY_CLASSES, TINY_SHAPE, build_tiny


def _with_options(ctx, bench: str, profile_methods=None, **options):
    """``ctx`` with the profile's methods replaced and a TOML-like section for ``bench``."""
    profile = ctx.profile
    if profile_methods is not None:
        profile = dataclasses.replace(
            profile, saliency=dataclasses.replace(profile.saliency, methods=tuple(profile_methods))
        )
    profile = dataclasses.replace(profile, options={**profile.options, bench: options})
    ctx.profile = profile
    return ctx


@pytest.mark.parametrize("binary", [True, False], ids=["bnn", "fp"])
def test_redraw_flips_about_half_the_signs(binary):
    loaded = build_tiny("vgg", binary)
    rand = LayerRandomizer(loaded, seed=0)
    conv2 = next(x for x in rand.layers if x.name == "conv2")
    assert conv2.n_weights >= 1000
    assert conv2.kind == ("binarized" if binary else "real")
    flips = rand.sign_flips("conv2")
    assert flips.size == conv2.n_weights
    assert 0.4 <= flips.mean() <= 0.6
    new = rand.randomized["conv2"]["kernel"]
    assert abs(np.mean(new > 0) - 0.5) < 0.1  # symmetric around zero, not a positive fill
    if binary:
        assert np.abs(new).max() <= 1.0  # larq's weight_clip on the latent kernel
    # the layers are ordered from the top: logits first
    assert rand.layers[0].name == "logits" and rand.layers[0].index == 1


def test_depthwise_and_separable_kernels_are_redrawn_with_their_own_initializers():
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    inputs = tf.keras.Input(TINY_SHAPE)
    x = tf.keras.layers.DepthwiseConv2D(3, depth_multiplier=8, name="dw")(inputs)
    x = tf.keras.layers.SeparableConv2D(32, 3, name="sep")(x)
    x = tf.keras.layers.Dense(TINY_CLASSES, name="logits")(tf.keras.layers.Flatten()(x))
    spec = dataclasses.replace(build_tiny("vgg", False).spec, name="dw_net")
    rand = LayerRandomizer(LoadedModel(spec, tf.keras.Model(inputs, x)), seed=0)
    assert [i.name for i in rand.layers] == ["logits", "sep", "dw"]
    assert set(rand.randomized["sep"]) == {"depthwise_kernel", "pointwise_kernel", "bias"}
    flips = rand.sign_flips("sep")
    assert flips.size == 3 * 3 * 24 + 24 * 32
    assert 0.4 <= flips.mean() <= 0.6


def test_sign_flip_metric_catches_a_positive_fill_and_a_permutation():
    rng = np.random.default_rng(0)
    old = {"kernel": np.abs(rng.normal(size=(3, 3, 8, 16)))}  # all positive
    permuted = {"kernel": rng.permutation(old["kernel"].ravel()).reshape(old["kernel"].shape)}
    filled = {"kernel": np.full_like(old["kernel"], 0.1)}
    assert sign_flips(old, permuted).mean() == 0.0
    assert sign_flips(old, filled).mean() == 0.0
    lo, hi = wilson_interval(500, 1000)
    assert lo < 0.5 < hi and hi - lo < 0.07


def test_randomizer_switches_layers_and_restores_them():
    loaded = build_tiny("resnet", True)
    rand = LayerRandomizer(loaded, seed=1, max_layers=3)
    x = np.random.default_rng(0).random((4, *TINY_SHAPE), dtype=np.float32)
    before = loaded.model(x).numpy()
    np.testing.assert_array_equal(rand.loaded.model(x).numpy(), before)
    rand.set_randomized([x.name for x in rand.layers])
    assert not np.allclose(rand.loaded.model(x).numpy(), before)
    rand.set_randomized(())
    np.testing.assert_array_equal(rand.loaded.model(x).numpy(), before)
    np.testing.assert_array_equal(loaded.model(x).numpy(), before)


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
        assert r["benchmark"] == "model_randomization"
        assert r["direction"] in {"lower", "none"}
        assert r["n"] > 0 or np.isnan(r["value"])  # n = 0: every randomized map went blank
        if np.isfinite(r["value"]):
            assert r["ci_low"] <= r["value"] + 1e-12 and r["value"] <= r["ci_high"] + 1e-12
    methods = {r["method"] for r in rows}
    assert {"gradient", "smoothgrad", "gradcam", "(weights)"} <= methods
    assert not {"random", "sobel"} & methods
    # guided backprop is not defined through larq's sign: no rows for the BNNs
    guided = {r["model"] for r in rows if r["method"] == "guided_backprop"}
    assert guided == {"tiny_vgg_fp"}
    step0 = [r for r in rows if r["step"] == 0 and r["metric"].startswith("cascading_")]
    assert {r["metric"] for r in step0} >= {"cascading_spearman_abs", "cascading_ssim"}
    for r in step0:
        if r["metric"] in ("cascading_spearman_abs", "cascading_ssim") and r["n"]:
            assert r["value"] == pytest.approx(1.0, abs=1e-4), r
    steps = {r["step"] for r in rows if r["metric"] == "independent_spearman_abs"}
    assert steps == {1.0, 2.0, 3.0}
    flips = [r for r in rows if r["metric"] == "sign_flip_fraction" and np.isfinite(r["step"])]
    assert len(flips) == 2 * 3
    big = [r for r in flips if r["n"] >= 1000]
    assert big and all(0.4 <= r["value"] <= 0.6 for r in big)


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
    blind = [r for r in rows if r["method"] == "model_blind_sobel"]
    assert blind
    for r in blind:
        if r["metric"].endswith(("spearman_abs", "spearman_signed", "ssim")):
            assert r["value"] == pytest.approx(1.0), r
    full = [
        r
        for r in rows
        if r["method"] == "gradient"
        and r["metric"] == "cascading_spearman_abs"
        and not np.isfinite(r["step"])
    ]
    assert len(full) == 1 and full[0]["value"] < 0.9


@pytest.mark.slow
def test_data_randomization_trains_a_permuted_model_and_emits_rows(tiny_ctx):
    @dataclass
    class TinyData:
        x_train: np.ndarray
        y_train: np.ndarray
        x_test: np.ndarray
        y_test: np.ndarray
        config_name: str = "tiny"
        version: str = "0"

    rng = np.random.default_rng(3)
    tiny_ctx.data = TinyData(
        rng.random((96, *TINY_SHAPE), dtype=np.float32),
        rng.integers(0, TINY_CLASSES, 96),
        rng.random((48, *TINY_SHAPE), dtype=np.float32),
        rng.integers(0, TINY_CLASSES, 48),
    )
    _with_options(tiny_ctx, "data_randomization", models=["tiny_vgg_bnn"], epochs=1)
    rows = DataRandomization().run(tiny_ctx)
    metrics = {(r["method"], r["metric"]) for r in rows}
    assert ("(model)", "permuted_test_accuracy") in metrics
    for m in ("gradient", "smoothgrad", "gradcam"):
        assert {(m, "spearman_abs"), (m, "ssim"), (m, "hog_pearson")} <= metrics
    acc = next(r for r in rows if r["metric"] == "permuted_test_accuracy")
    assert acc["n"] == 48 and 0.0 <= acc["value"] <= 1.0 and acc["direction"] == "none"
    assert all(r["direction"] == "lower" for r in rows if r["method"] != "(model)")
    assert {r["model"] for r in rows} == {"tiny_vgg_bnn"}
    # cached: a second run trains nothing and gives the same rows
    again = DataRandomization().run(tiny_ctx)
    assert [r["value"] for r in again] == pytest.approx([r["value"] for r in rows], nan_ok=True)


def test_data_randomization_skips_without_training_data():
    ctx = SimpleNamespace(data=None, progress=StageTimer(quiet=True))  # e.g. the paper profile
    assert DataRandomization().run(ctx) == []
