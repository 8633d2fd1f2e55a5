"""The saliency interface and the agreement of the two engines on tiny FP and BNN models."""

from __future__ import annotations

import numpy as np
import pytest

from binsal.core.errors import InvalidInputError, UnknownNameError
from binsal.saliency import METHODS, GradCAM, Gradient, RandomMap, SmoothGrad, SobelMap, engine_tf


@pytest.mark.parametrize(
    "method",
    [Gradient(), SmoothGrad(samples=4), GradCAM(), RandomMap(), SobelMap()],
    ids=lambda m: m.name,
)
def test_interface_returns_finite_signed_maps(tiny_model, tiny_batch, method):
    x, t = tiny_batch
    maps = method.explain(tiny_model, x, t)
    assert maps.shape == x.shape[:3]
    assert maps.dtype == np.float32
    assert np.all(np.isfinite(maps))


def test_gradient_is_signed_and_not_constant(tiny_model, tiny_batch):
    maps = Gradient().explain(tiny_model, *tiny_batch)
    assert maps.min() < 0 < maps.max()


def test_engines_agree_gradient(tiny_model, tiny_batch):
    x, t = tiny_batch
    ours = Gradient().explain(tiny_model, x, t, engine="tf")
    ref = Gradient().explain(tiny_model, x, t, engine="tfkv")
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())


@pytest.mark.parametrize("relu", [True, False])
def test_engines_agree_gradcam(tiny_model, tiny_batch, relu):
    x, t = tiny_batch
    ours = GradCAM(relu=relu).explain(tiny_model, x, t, engine="tf")
    ref = GradCAM(relu=relu).explain(tiny_model, x, t, engine="tfkv")
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5 * max(np.abs(ref).max(), 1e-12))


@pytest.mark.parametrize("per_sample_abs", [False, True])
def test_engines_agree_smoothgrad_with_same_draws(tiny_model, tiny_batch, per_sample_abs):
    x, t = tiny_batch
    method = SmoothGrad(samples=6, noise_level=0.2, seed=3, per_sample_abs=per_sample_abs)
    ours = method.explain(tiny_model, x, t, engine="tf")
    ref = method.explain(tiny_model, x, t, engine="tfkv")
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())


def test_smoothgrad_seeded_and_chunk_invariant(tiny_model, tiny_batch):
    x, t = tiny_batch
    a = SmoothGrad(samples=5, seed=1, chunk_size=256).explain(tiny_model, x, t)
    b = SmoothGrad(samples=5, seed=1, chunk_size=7).explain(tiny_model, x, t)
    c = SmoothGrad(samples=5, seed=2).explain(tiny_model, x, t)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * np.abs(a).max())
    assert not np.allclose(a, c)


def test_smoothgrad_zero_noise_is_gradient(tiny_model, tiny_batch):
    x, t = tiny_batch
    sg = SmoothGrad(samples=3, noise_level=0.0).explain(tiny_model, x, t)
    np.testing.assert_allclose(sg, Gradient().explain(tiny_model, x, t), rtol=1e-5, atol=1e-7)


def test_gradcam_relu_is_clipped_signed(tiny_model, tiny_batch):
    x, t = tiny_batch
    signed = GradCAM(relu=False).explain(tiny_model, x, t)
    inverted = GradCAM(relu=False, invert=True).explain(tiny_model, x, t)
    relu = GradCAM().explain(tiny_model, x, t)
    np.testing.assert_allclose(inverted, -signed, atol=1e-6)
    assert relu.min() >= 0
    low = GradCAM().cam_lowres(tiny_model, x, t)
    expected = engine_tf.upsample(np.maximum(low, 0), x.shape[1:3])  # ReLU before upsampling
    np.testing.assert_allclose(relu, expected, atol=1e-6 * max(np.abs(expected).max(), 1e-12))


def test_bad_inputs_raise_clear_errors(tiny_model, tiny_batch):
    x, t = tiny_batch
    with pytest.raises(InvalidInputError, match="NaN"):
        bad = x.copy()
        bad[0, 0, 0, 0] = np.nan
        Gradient().explain(tiny_model, bad, t)
    with pytest.raises(InvalidInputError, match="do not fit"):
        Gradient().explain(tiny_model, x[:, :8], t)
    with pytest.raises(InvalidInputError, match="targets"):
        Gradient().explain(tiny_model, x, t[:2])
    with pytest.raises(InvalidInputError, match=r"\[0, 3\)"):
        Gradient().explain(tiny_model, x, t + 10)
    with pytest.raises(InvalidInputError, match="engine"):
        Gradient().explain(tiny_model, x, t, engine="torch")
    with pytest.raises(InvalidInputError, match="empty batch"):
        Gradient().explain(tiny_model, x[:0], t[:0])
    with pytest.raises(InvalidInputError, match="needs a model, got None"):
        Gradient().explain(None, x, t)
    with pytest.raises(InvalidInputError, match="must be a tf.keras.Model"):
        Gradient().explain("a model", x, t)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", [Gradient(), GradCAM()], ids=["gradient", "gradcam"])
def test_targets_none_explains_the_predicted_class(tiny_model, tiny_batch, method):
    x, _ = tiny_batch
    predicted = np.argmax(tiny_model.model.predict(tiny_model.prepare(x), verbose=0), axis=1)
    np.testing.assert_array_equal(
        method.explain(tiny_model, x, None), method.explain(tiny_model, x, predicted)
    )


def test_unknown_method_lists_known_names():
    with pytest.raises(UnknownNameError) as err:
        METHODS["gradcamm"]
    assert "gradient" in str(err.value) and "smoothgrad" in str(err.value)
