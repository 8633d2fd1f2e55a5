"""The further saliency methods: known answers on linear models, completeness of Integrated
Gradients, engine agreement for Grad-CAM++ / Score-CAM, guided backprop's definedness, and
determinism / chunk-size invariance of every batched method on the tiny FP and BNN fixtures."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from binsal.core.errors import InvalidInputError, MethodNotDefinedError, UnknownNameError
from binsal.models.spec import LoadedModel, ModelSpec
from binsal.saliency import (
    METHODS,
    GradCAM,
    GradCAMInverted,
    GradCAMPlusPlus,
    GradCAMSigned,
    Gradient,
    GuidedBackprop,
    IntegratedGradients,
    ScoreCAM,
    SmoothGradSquared,
    VarGrad,
    engine_tf,
    is_defined,
)
from binsal.saliency.base import block_bounds, current_map_block, set_map_block
from binsal.saliency.guided import guided_model

NEW_METHODS = {
    "smoothgrad_sq": SmoothGradSquared,
    "vargrad": VarGrad,
    "integrated_gradients": IntegratedGradients,
    "gradcam_pp": GradCAMPlusPlus,
    "scorecam": ScoreCAM,
    "guided_backprop": GuidedBackprop,
    "gradcam_signed": GradCAMSigned,
    "gradcam_inverted": GradCAMInverted,
}
LIN_SHAPE = (6, 5, 1)
LIN_CLASSES = 3


def _loaded(model: tf.keras.Model, name: str, shape: tuple[int, int, int], k: int) -> LoadedModel:
    spec = ModelSpec(
        name=name,
        family="FP",
        build=lambda **_: model,
        input_shape=shape,
        num_classes=k,
        gradcam_layer="no_such_layer",  # a dummy: these models have no spatial feature map
    )
    return LoadedModel(spec, model)


@pytest.fixture(scope="module")
def linear() -> tuple[LoadedModel, np.ndarray, np.ndarray]:
    """Input(6, 5, 1) -> Flatten -> Dense(3) with known weights W (30, 3) and bias b."""
    rng = np.random.default_rng(7)
    w = rng.normal(size=(int(np.prod(LIN_SHAPE)), LIN_CLASSES)).astype(np.float32)
    b = rng.normal(size=LIN_CLASSES).astype(np.float32)
    inp = tf.keras.Input(LIN_SHAPE)
    out = tf.keras.layers.Dense(LIN_CLASSES, name="logits")(tf.keras.layers.Flatten()(inp))
    model = tf.keras.Model(inp, out)
    model.get_layer("logits").set_weights([w, b])
    return _loaded(model, "linear", LIN_SHAPE, LIN_CLASSES), w, b


@pytest.fixture(scope="module")
def linear_batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    return rng.random((4, *LIN_SHAPE), dtype=np.float32), np.array([0, 1, 2, 1])


def _weight_maps(w: np.ndarray, t: np.ndarray) -> np.ndarray:
    return w[:, t].T.reshape(len(t), *LIN_SHAPE[:2])


def _logit(model: LoadedModel, images: np.ndarray, t: np.ndarray) -> np.ndarray:
    logits = model.model(model.prepare(images), training=False).numpy().astype(np.float64)
    return logits[np.arange(len(t)), t]


def _close(a: np.ndarray, b: np.ndarray, rel: float = 1e-5) -> None:
    np.testing.assert_allclose(a, b, rtol=rel, atol=rel * max(float(np.abs(b).max()), 1e-12))


# ------------------------------------------------------------------------------ registry


def test_new_methods_are_registered():
    for name, cls in NEW_METHODS.items():
        assert METHODS[name] is cls and cls.name == name
    assert GradCAMSigned() == GradCAMSigned(relu=False, invert=False)
    assert GradCAMInverted().relu is False and GradCAMInverted().invert is True
    assert GradCAMPlusPlus.engines == ("tf", "tfkv") and ScoreCAM.engines == ("tf", "tfkv")
    assert SmoothGradSquared.engines == VarGrad.engines == ("tf",)


def test_is_defined_answers_and_explains(linear, tiny_model):
    lin = linear[0]
    assert is_defined("gradient", lin) == (True, "")
    assert is_defined("random", None) == (True, "")
    ok, why = is_defined("gradcam_pp", lin)
    assert not ok and "no_such_layer" in why
    ok, why = is_defined("vargrad", tiny_model, engine="tfkv")
    assert not ok and "engine" in why
    assert is_defined("scorecam", tiny_model, engine="tfkv") == (True, "")
    with pytest.raises(UnknownNameError, match="guided_backprop"):
        is_defined("guided_backprob", tiny_model)


def test_bad_options_raise():
    with pytest.raises(ValueError, match="baseline"):
        IntegratedGradients(baseline="mean")
    with pytest.raises(ValueError, match="steps"):
        IntegratedGradients(steps=0)
    with pytest.raises(ValueError, match="rule"):
        IntegratedGradients(rule="left")
    with pytest.raises(ValueError, match="max_channels"):
        ScoreCAM(max_channels=0)
    with pytest.raises(ValueError):
        VarGrad(samples=0)


# --------------------------------------------------------------------- linear known answers


def test_linear_gradient_is_the_weight_vector(linear, linear_batch):
    lin, w, _ = linear
    x, t = linear_batch
    np.testing.assert_array_equal(Gradient().explain(lin, x, t), _weight_maps(w, t))
    # no ReLU anywhere: guided backprop is the plain gradient
    np.testing.assert_array_equal(GuidedBackprop().explain(lin, x, t), _weight_maps(w, t))


@pytest.mark.parametrize("rule", ["trapezoid", "right"])
def test_linear_integrated_gradients_is_input_times_weight(linear, linear_batch, rule):
    lin, w, _ = linear
    x, t = linear_batch
    ig = IntegratedGradients(baseline="zero", steps=7, rule=rule).explain(lin, x, t)
    _close(ig, x[..., 0] * _weight_maps(w, t), rel=1e-6)


@pytest.mark.parametrize("baseline", ["zero", "channel_mean", 0.5, -1.0])
def test_linear_integrated_gradients_is_complete(linear, linear_batch, baseline):
    lin, _, _ = linear
    x, t = linear_batch
    method = IntegratedGradients(baseline=baseline, steps=3)
    ig = method.explain(lin, x, t)
    gap = _logit(lin, x, t) - _logit(lin, method.baseline_images(x), t)
    np.testing.assert_allclose(ig.sum(axis=(1, 2)), gap, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------- SmoothGrad family


def test_smoothgrad_sq_and_vargrad_are_nonnegative_and_seeded(tiny_model, tiny_batch):
    x, t = tiny_batch
    for cls in (SmoothGradSquared, VarGrad):
        a = cls(samples=5, seed=1).explain(tiny_model, x, t)
        assert a.min() >= 0 and a.max() > 0
        np.testing.assert_array_equal(a, cls(samples=5, seed=1).explain(tiny_model, x, t))
        assert not np.allclose(a, cls(samples=5, seed=2).explain(tiny_model, x, t))


def test_zero_noise_vargrad_is_zero_and_smoothgrad_sq_is_squared_gradient(tiny_model, tiny_batch):
    x, t = tiny_batch
    vg = VarGrad(samples=4, noise_level=0.0).explain(tiny_model, x, t)
    g = engine_tf.gradients(tiny_model.model, tiny_model.prepare(x), t)
    np.testing.assert_allclose(vg, 0.0, atol=1e-6 * float((g**2).max()))
    sq = SmoothGradSquared(samples=3, noise_level=0.0).explain(tiny_model, x, t)
    _close(sq, (g**2).sum(axis=-1))


def test_mean_square_is_mean_squared_plus_variance(tiny_model, tiny_batch):
    x, t = tiny_batch
    kw = dict(samples=6, noise_level=0.3, seed=4)
    inp = tiny_model.prepare(x)
    agg = {
        a: engine_tf.noisy_gradients(tiny_model.model, inp, t, aggregate=a, **kw)
        for a in ("mean", "mean_sq", "var")
    }
    _close(agg["mean_sq"], agg["mean"] ** 2 + agg["var"], rel=1e-4)


# -------------------------------------------------------------------- Integrated Gradients


def test_integrated_gradients_completeness_shrinks_with_steps(tiny_model, tiny_batch):
    if tiny_model.family == "BNN":
        pytest.skip(
            "completeness needs the true gradient; a BNN is piecewise constant and larq's "
            "straight-through estimator is not its gradient"
        )
    x, t = tiny_batch
    gap = _logit(tiny_model, x, t) - _logit(tiny_model, np.zeros_like(x), t)
    errors = []
    for steps in (4, 16, 64):
        ig = IntegratedGradients(steps=steps).explain(tiny_model, x, t)
        err = np.abs(ig.sum(axis=(1, 2)) - gap).max()
        assert err <= np.abs(gap).max() / steps, (steps, err)
        errors.append(err)
    assert errors[-1] < errors[0]


# ----------------------------------------------------------------------------- CAM family


def test_gradcam_signed_and_inverted(tiny_model, tiny_batch):
    x, t = tiny_batch
    signed = METHODS["gradcam_signed"]().explain(tiny_model, x, t)
    inverted = METHODS["gradcam_inverted"]().explain(tiny_model, x, t)
    np.testing.assert_array_equal(signed, GradCAM(relu=False).explain(tiny_model, x, t))
    np.testing.assert_allclose(inverted, -signed, atol=1e-7)
    low = GradCAM().cam_lowres(tiny_model, x, t)
    relu = GradCAM().explain(tiny_model, x, t)
    relu_of_inverted = engine_tf.upsample(np.maximum(-low, 0), x.shape[1:3])
    _close(relu, engine_tf.upsample(np.maximum(low, 0), x.shape[1:3]))
    # the positive and the "inverted" parts split the signed map
    _close(signed, relu - relu_of_inverted, rel=1e-5)


@pytest.mark.parametrize("relu", [True, False])
def test_engines_agree_gradcam_pp(tiny_model, tiny_batch, relu):
    x, t = tiny_batch
    ours = GradCAMPlusPlus(relu=relu).explain(tiny_model, x, t, engine="tf")
    ref = GradCAMPlusPlus(relu=relu).explain(tiny_model, x, t, engine="tfkv")
    assert np.abs(ref).max() > 0
    _close(ours, ref, rel=1e-4)
    if relu:
        assert ours.min() >= 0


def test_gradcam_pp_exp_score_is_a_positive_scale(tiny_model, tiny_batch):
    x, t = tiny_batch
    with_exp = GradCAMPlusPlus(relu=False).cam_lowres(tiny_model, x, t)
    without = GradCAMPlusPlus(relu=False, exp_score=False).cam_lowres(tiny_model, x, t)
    scale = np.exp(_logit(tiny_model, x, t)).reshape(-1, 1, 1)
    _close(with_exp, scale * without, rel=1e-4)


def test_engines_agree_scorecam(tiny_model, tiny_batch):
    x, t = tiny_batch
    ours = ScoreCAM(relu=False).explain(tiny_model, x, t, engine="tf")
    ref = ScoreCAM(relu=False).explain(tiny_model, x, t, engine="tfkv")
    _close(ours, ref, rel=1e-5)
    with pytest.raises(InvalidInputError, match="max_channels"):
        ScoreCAM(max_channels=2).explain(tiny_model, x, t, engine="tfkv")


def test_scorecam_maps_weights_and_channel_subsampling(tiny_model, tiny_batch):
    x, t = tiny_batch
    maps = ScoreCAM().explain(tiny_model, x, t)
    assert maps.shape == x.shape[:3] and np.all(np.isfinite(maps)) and maps.min() >= 0
    feats = engine_tf.features(tiny_model.model, "features", tiny_model.prepare(x))
    k = feats.shape[-1]
    units = np.array([(i, c) for i in range(len(x)) for c in range(k)])
    probs = engine_tf.masked_target_probabilities(
        tiny_model.model, tiny_model.prepare(x), t, feats, units, chunk_size=11
    )
    assert probs.shape == (len(x) * k,) and probs.min() >= 0 and probs.max() <= 1
    _close(ScoreCAM(max_channels=k).explain(tiny_model, x, t), maps)
    top = ScoreCAM(relu=False, max_channels=3).cam_lowres(tiny_model, x, t)
    order = np.argsort(-feats.mean(axis=(1, 2)), axis=1, kind="stable")[:, :3]
    weights = probs.reshape(len(x), k)
    expected = np.stack(
        [feats[i][..., order[i]] @ weights[i, order[i]] for i in range(len(x))]
    ).astype(np.float64)
    _close(top, expected, rel=1e-5)


# ------------------------------------------------------------------------- Guided Backprop


def test_guided_backprop_known_answer_on_a_small_relu_net():
    """Dense(relu) and ReLU(max_value) layers; guided gradient computed by hand."""
    rng = np.random.default_rng(3)
    shape = (2, 2, 1)
    inp = tf.keras.Input(shape)
    h = tf.keras.layers.Flatten()(inp)
    h = tf.keras.layers.Dense(6, activation="relu", name="d1")(h)
    h = tf.keras.layers.Dense(5, name="d2")(h)
    h = tf.keras.layers.ReLU(max_value=0.5, name="relu6ish")(h)
    model = tf.keras.Model(inp, tf.keras.layers.Dense(2, name="d3")(h))
    for name in ("d1", "d2", "d3"):
        layer = model.get_layer(name)
        layer.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in layer.weights])
    lm = _loaded(model, "small_relu", shape, 2)
    x = rng.normal(size=(8, *shape)).astype(np.float32)
    t = rng.integers(0, 2, 8)
    # the guided clone computes the same function
    np.testing.assert_allclose(guided_model(model)(x).numpy(), model(x).numpy(), rtol=1e-6)
    (w1, b1), (w2, b2), (w3, _) = (model.get_layer(n).get_weights() for n in ("d1", "d2", "d3"))
    expected = []
    for xi, ti in zip(x.reshape(len(x), -1).astype(np.float64), t, strict=True):
        z1 = xi @ w1 + b1
        z2 = np.maximum(z1, 0) @ w2 + b2
        g = w3[:, ti].astype(np.float64)
        g = g * ((z2 > 0) & (z2 < 0.5) & (g > 0))
        g = w2 @ g
        g = g * ((z1 > 0) & (g > 0))
        expected.append((w1 @ g).reshape(shape[:2]))
    guided = GuidedBackprop().explain(lm, x, t)
    np.testing.assert_allclose(guided, np.stack(expected), rtol=1e-5, atol=1e-6)
    assert not np.allclose(guided, Gradient().explain(lm, x, t))


def test_guided_backprop_defined_on_fp_and_refused_on_bnn(tiny_model, tiny_batch):
    x, t = tiny_batch
    ok, why = is_defined("guided_backprop", tiny_model)
    if tiny_model.family == "FP":
        assert ok and why == ""
        maps = GuidedBackprop().explain(tiny_model, x, t)
        assert np.all(np.isfinite(maps)) and np.abs(maps).max() > 0
        return
    assert not ok and "larq" in why and "straight-through" in why
    with pytest.raises(MethodNotDefinedError, match="straight-through") as err:
        GuidedBackprop().explain(tiny_model, x, t)
    assert isinstance(err.value, InvalidInputError)


def test_guided_backprop_refuses_other_nonlinearities():
    inp = tf.keras.Input((4, 4, 1))
    h = tf.keras.layers.Conv2D(2, 3, activation="swish")(inp)
    model = tf.keras.Model(inp, tf.keras.layers.Dense(2)(tf.keras.layers.Flatten()(h)))
    lm = _loaded(model, "swishy", (4, 4, 1), 2)
    ok, why = is_defined("guided_backprop", lm)
    assert not ok and "swish" in why
    with pytest.raises(MethodNotDefinedError, match="swish"):
        GuidedBackprop().explain(lm, np.zeros((1, 4, 4, 1), np.float32), np.array([0]))


# ------------------------------------------------------------ every method, every fixture


@pytest.mark.parametrize("name", list(NEW_METHODS))
def test_every_new_method_is_finite_and_deterministic(tiny_model, tiny_batch, name):
    x, t = tiny_batch
    method = METHODS[name]()
    ok, why = is_defined(name, tiny_model)
    if not ok:
        assert name == "guided_backprop" and tiny_model.family == "BNN", why
        with pytest.raises(MethodNotDefinedError):
            method.explain(tiny_model, x, t)
        return
    maps = method.explain(tiny_model, x, t)
    assert maps.shape == x.shape[:3] and maps.dtype == np.float32
    assert np.all(np.isfinite(maps))
    np.testing.assert_array_equal(maps, method.explain(tiny_model, x, t))


BATCHED = [
    SmoothGradSquared(samples=4, seed=5),
    VarGrad(samples=4, seed=5),
    IntegratedGradients(steps=6),
    IntegratedGradients(steps=6, baseline="channel_mean", rule="right"),
    GradCAMPlusPlus(),
    ScoreCAM(relu=False),
    ScoreCAM(max_channels=5),
]


@pytest.mark.parametrize("method", BATCHED, ids=lambda m: m.name)
def test_batched_methods_are_chunk_size_invariant(tiny_model, tiny_batch, method):
    x, t = tiny_batch
    a = method.explain(tiny_model, x, t)
    b = type(method)(**{**method.params(), "chunk_size": 3}).explain(tiny_model, x, t)
    _close(b, a, rel=1e-5)


def test_smoothgrad_family_shares_one_noisy_pass(tiny_model, tiny_batch, monkeypatch):
    """SmoothGrad, SmoothGrad-squared and VarGrad with the same options cost one pass of noisy
    gradients, and give the maps a separate pass gives; other weights are another pass."""
    from binsal.saliency import SmoothGrad, release_traced

    x, t = tiny_batch
    before = current_map_block()
    set_map_block(4)  # several blocks of the tiny batch: one pass each
    release_traced()
    fresh = {cls.name: cls(samples=5, seed=9).explain(tiny_model, x, t) for cls in (VarGrad,)}
    release_traced()
    calls = []
    real = engine_tf._noisy_aggregates

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(engine_tf, "_noisy_aggregates", counting)
    maps = {
        cls.name: cls(samples=5, seed=9).explain(tiny_model, x, t)
        for cls in (SmoothGrad, SmoothGradSquared, VarGrad)
    }
    blocks = len(block_bounds(0, len(x)))  # one pass per block of images (MAP_BLOCK)
    assert blocks > 1 and len(calls) == blocks
    np.testing.assert_array_equal(maps["vargrad"], fresh["vargrad"])
    SmoothGrad(samples=5, seed=10).explain(tiny_model, x, t)  # another seed: another pass
    assert len(calls) == 2 * blocks
    weights = tiny_model.model.get_weights()
    try:
        tiny_model.model.set_weights([w * 0.5 for w in weights])  # changed in place
        SmoothGrad(samples=5, seed=9).explain(tiny_model, x, t)
        assert len(calls) == 3 * blocks
    finally:
        tiny_model.model.set_weights(weights)
        release_traced()
        set_map_block(before)


def test_release_traced_keeps_the_models_asked_for(tiny_model, tiny_batch):
    """After a benchmark the pipeline drops what the engines traced for its clones and
    permuted-label models (``release_traced(keep=...)``) and keeps the run's own models',
    their guided-ReLU clones included, so the next benchmark does not trace them again."""
    import gc

    from binsal.saliency import GuidedBackprop, release_traced
    from binsal.saliency.guided import _CLONES

    x, t = tiny_batch
    release_traced()
    other = LoadedModel(tiny_model.spec, tf.keras.models.clone_model(tiny_model.model))
    other.model.set_weights(tiny_model.model.get_weights())
    for m in (tiny_model, other):
        Gradient().explain(m, x, t)
        if GuidedBackprop().defined_for(m)[0]:
            GuidedBackprop().explain(m, x, t)
    assert {id(tiny_model.model), id(other.model)} <= {id(k) for k in engine_tf._GRAD_FNS}
    release_traced(keep=[tiny_model.model])
    gc.collect()
    traced = {id(k) for k in engine_tf._GRAD_FNS.keys()}
    assert id(tiny_model.model) in traced and id(other.model) not in traced
    if tiny_model.model in _CLONES:
        assert id(_CLONES[tiny_model.model]) in traced
    release_traced()
    assert len(engine_tf._GRAD_FNS) == 0


def test_noise_draws_are_kept_for_the_same_images_and_forgotten_on_request(monkeypatch):
    """The SmoothGrad family's noise of the same images and seed is drawn once (model
    randomization recomputes the same maps' noise at every step): the kept draws equal fresh
    ones, are read-only, stay under their byte bound and go with ``forget_results``."""
    from binsal.saliency import forget_results

    forget_results()
    a = engine_tf.standard_normal_draws(3, 4, (8, 8, 3), seed=5, offset=2)
    assert engine_tf.standard_normal_draws(3, 4, (8, 8, 3), seed=5, offset=2) is a
    assert not a.flags.writeable
    fresh = np.stack(
        [
            np.random.default_rng([5, 2 + i]).standard_normal((4, 8, 8, 3), dtype=np.float32)
            for i in range(3)
        ],
        axis=1,
    )
    np.testing.assert_array_equal(a, fresh)
    monkeypatch.setattr(engine_tf, "_DRAWS_MAX_BYTES", 1)
    engine_tf.standard_normal_draws(3, 4, (8, 8, 3), seed=6)
    assert len(engine_tf._DRAWS) == 1  # the bound: only the most recent is kept
    forget_results()
    assert not engine_tf._DRAWS
