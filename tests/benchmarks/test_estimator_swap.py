"""Estimator swap: the swapped clone's forward pass is the model's, its backward pass is the named
estimator's (checked against gradients built independently, layer by layer); the dead-gradient
share follows the STE's clipping; the benchmark's rows on the tiny models."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from binsal.benchmarks import BENCHMARKS
from binsal.benchmarks.estimator_swap import EstimatorSwap, zero_gradient_share
from binsal.models.estimators import (
    ESTIMATOR_STEPS,
    ESTIMATORS,
    dead_gradient_shares,
    quantized_layers,
    swap_estimator,
    trained_estimator,
)
from binsal.models.spec import LoadedModel, ModelSpec
from binsal.saliency import engine_tf
from tests.conftest import TINY_CLASSES, TINY_SHAPE, build_tiny


@pytest.fixture(scope="module", params=["vgg", "resnet"])
def tiny_bnn(request: pytest.FixtureRequest) -> LoadedModel:
    return build_tiny(request.param, True, seed=3)


@pytest.fixture(scope="module")
def batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    return rng.random((4, *TINY_SHAPE), dtype=np.float32), rng.integers(0, TINY_CLASSES, 4)


def _reference_gradients(
    loaded: LoadedModel, x: np.ndarray, t: np.ndarray, surrogate: str
) -> np.ndarray:
    """d logit[t] / dx of the model, computed without larq's quantizers or binsal's swap: the
    model's layers are called one by one (its functional graph walked here), and at every
    ``QuantConv2D`` the binarized input is written as ``s(x) + stop_gradient(sign(x) - s(x))``
    (forward: larq's sign; backward: ds/dx), then convolved with the layer's binarized kernel.
    ``surrogate`` "identity": s(x) = x; "ste": s(x) = clip(x, -1, 1) (derivative 1 on |x| < 1)."""
    import larq as lq
    import tensorflow as tf

    model = loaded.model

    def binarize(v: tf.Tensor) -> tf.Tensor:
        s = v if surrogate == "identity" else tf.clip_by_value(v, -1.0, 1.0)
        return s + tf.stop_gradient(tf.sign(tf.sign(v) + 0.1) - s)

    def quant_conv(layer: lq.layers.QuantConv2D, v: tf.Tensor) -> tf.Tensor:
        kernel = tf.sign(tf.sign(tf.convert_to_tensor(layer.kernel.latent_variable)) + 0.1)
        return tf.nn.conv2d(binarize(v), kernel, strides=1, padding="SAME")

    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        values = {id(model.inputs[0]): xt}
        for layer in model.layers[1:]:
            node = layer.inbound_nodes[0]
            ins = [values[id(k)] for k in tf.nest.flatten(node.input_tensors)]
            arg = ins if len(ins) > 1 else ins[0]
            if isinstance(layer, lq.layers.QuantConv2D):
                out = quant_conv(layer, arg)
            else:
                out = layer(arg, training=False)
            values[id(layer.output)] = out
        logits = values[id(model.outputs[0])]
        score = tf.reduce_sum(tf.gather(logits, tf.constant(t), axis=1, batch_dims=1))
    return tape.gradient(score, xt).numpy()


def test_trained_estimator_and_layers(tiny_bnn):
    layers, skipped = quantized_layers(tiny_bnn.model)
    assert layers and not skipped
    assert trained_estimator(tiny_bnn.model) == "ste"
    assert trained_estimator(build_tiny("vgg", False).model) == ""


@pytest.mark.parametrize("estimator", list(ESTIMATORS))
def test_swapped_forward_is_bit_equal(tiny_bnn, batch, estimator):
    x, _ = batch
    swapped = swap_estimator(tiny_bnn, estimator)
    assert swapped.name == f"{tiny_bnn.name}@{estimator}"
    assert swapped.meta["swapped_layers"] == [
        lay.name for lay in quantized_layers(tiny_bnn.model)[0]
    ]
    assert swapped.model is not tiny_bnn.model
    ref = tiny_bnn.model(x, training=False).numpy()
    np.testing.assert_array_equal(swapped.model(x, training=False).numpy(), ref)
    # the original model's quantizers are untouched
    assert all(
        type(lay.input_quantizer).__name__ == "SteSign"
        for lay in quantized_layers(tiny_bnn.model)[0]
    )


def test_identity_estimator_equals_identity_surrogate_gradient(tiny_bnn, batch):
    """The must-show: with the identity estimator, the BNN's input gradient equals the gradient
    of the same network with every sign's backward pass replaced by the identity, built here
    independently of larq's quantizers and of the swap."""
    x, t = batch
    swapped = swap_estimator(tiny_bnn, "identity")
    got = engine_tf.gradients(swapped.model, x, t)
    want = _reference_gradients(tiny_bnn, x, t, "identity")
    assert np.abs(want).max() > 0
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())
    # and it is not the trained (clipped) gradient: the test can tell them apart
    trained = engine_tf.gradients(tiny_bnn.model, x, t)
    assert not np.allclose(trained, want, rtol=1e-3, atol=1e-5 * np.abs(want).max())


def test_ste_estimator_equals_larq_and_clipped_surrogate(tiny_bnn, batch):
    x, t = batch
    swapped = swap_estimator(tiny_bnn, "ste")
    got = engine_tf.gradients(swapped.model, x, t)
    np.testing.assert_array_equal(got, engine_tf.gradients(tiny_bnn.model, x, t))
    want = _reference_gradients(tiny_bnn, x, t, "ste")
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())


def _one_sign_model(units: int = 5) -> LoadedModel:
    """x -> QuantDense(ste_sign input, identity kernel) -> logits: the input quantizer's inputs
    are the raw inputs themselves."""
    import larq as lq
    import tensorflow as tf

    inputs = tf.keras.Input((units,))
    dense = lq.layers.QuantDense(
        units,
        input_quantizer="ste_sign",
        kernel_quantizer=None,
        use_bias=False,
        name="qdense",
    )
    model = tf.keras.Model(inputs, dense(inputs))
    dense.set_weights([np.eye(units, dtype=np.float32)])
    spec = ModelSpec(
        name="one_sign",
        family="BNN",
        build=lambda **_: model,
        input_shape=(units,),  # type: ignore[arg-type]
        num_classes=units,
        gradcam_layer="qdense",
    )
    return LoadedModel(spec, model)


def test_dead_share_follows_the_ste_clip():
    """The must-show: 0 for inputs inside [-1, 1], 1 outside, and the STE's gradient agrees."""
    import tensorflow as tf

    loaded = _one_sign_model()
    inside = np.array([[-1.0, -0.5, 0.0, 0.3, 1.0]], np.float32)
    outside = np.array([[-3.0, -1.001, 1.001, 2.0, 50.0]], np.float32)
    mixed = np.array([[-3.0, 0.2, 0.9, 2.0, 1.5]], np.float32)
    names, shares, clips = dead_gradient_shares(loaded, np.concatenate([inside, outside, mixed]))
    assert names == ["qdense"] and clips == [1.0]
    np.testing.assert_allclose(shares[0], [0.0, 1.0, 0.6])
    for x, dead in ((inside, 0.0), (outside, 1.0), (mixed, 0.6)):
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = tf.reduce_sum(loaded.model(xt, training=False))
        g = tape.gradient(y, xt).numpy()
        assert np.mean(g == 0) == pytest.approx(dead)  # the gradient is dead exactly there


def test_estimator_derivatives_on_one_sign():
    """Each estimator's backward pass through one sign, against its formula."""
    import tensorflow as tf

    loaded = _one_sign_model()
    x = np.array([[-2.0, -0.75, 0.0, 0.5, 1.5]], np.float32)
    beta_x = lambda b: b * x  # noqa: E731
    swish = lambda b: b * (2 - beta_x(b) * np.tanh(beta_x(b) / 2)) / (1 + np.cosh(beta_x(b)))  # noqa: E731
    inside = (np.abs(x) <= 1).astype(np.float32)
    want = {
        "ste": inside,
        "approx_sign": 2 * (1 - np.abs(x)) * inside,
        "swish_sign_b10": swish(10.0),
        "swish_sign_b5": swish(5.0),
        "swish_sign_b1": swish(1.0),
        "magnitude_aware": np.abs(x).mean() * inside,
        "identity": np.ones_like(x),
    }
    assert set(want) == set(ESTIMATORS)
    for name, expected in want.items():
        swapped = swap_estimator(loaded, name)
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = tf.reduce_sum(swapped.model(xt, training=False))
        np.testing.assert_allclose(tape.gradient(y, xt).numpy(), expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(swapped.model(xt).numpy(), np.where(x >= 0, 1.0, -1.0))


def test_zero_gradient_share():
    g = np.zeros((2, 2, 2, 3))
    g[0, 0, 0, 1] = 1.0  # one of four pixels of image 0 has a gradient
    np.testing.assert_allclose(zero_gradient_share(g), [0.75, 1.0])


def test_registered():
    assert BENCHMARKS["estimator_swap"] is EstimatorSwap
    for source in ("Liu et al. 2018", "Darabi et al. 2018", "Courbariaux et al. 2016"):
        assert source in EstimatorSwap.description
    # the description lists every estimator at its step
    text = " ".join(EstimatorSwap.description.split())
    assert "0 the model as trained" in text and ESTIMATOR_STEPS["trained"] == 0
    for name, step in ESTIMATOR_STEPS.items():
        assert step == 0 or f"{step} {name}" in text, name


def test_rows_on_tiny_models(tiny_ctx):
    options = {**tiny_ctx.profile.benchmark_options}
    options["estimator_swap"] = {"estimators": list(ESTIMATORS), "methods": ["gradient", "gradcam"]}
    tiny_ctx.profile = replace(tiny_ctx.profile, benchmark_options=options)
    rows = EstimatorSwap().run(tiny_ctx)
    assert rows
    bnns = {"tiny_vgg_bnn", "tiny_resnet_bnn"}
    for r in rows:
        assert (
            r.benchmark == "estimator_swap"
            and r.n >= 1
            and r.direction
            in (
                "higher",
                "lower",
                "none",
            )
        )
        assert r.direction == EstimatorSwap.scores[r.metric].direction
        assert math.isfinite(r.value) and math.isfinite(r.ci_low) and math.isfinite(r.ci_high)
        assert r.ci_low <= r.value <= r.ci_high
        assert r.model.split("|")[-1] in bnns
    metrics = {r.metric for r in rows}
    assert metrics == set(EstimatorSwap.scores)
    by = {}
    for r in rows:
        p = json.loads(r.params)
        by[(r.model, r.method, r.metric, p.get("estimator"), p.get("layer"))] = r
    # swapping in the STE the models were trained with changes nothing; the identity does
    for model in bnns:
        assert by[(model, "gradient", "spearman_vs_trained", "ste", None)].value == pytest.approx(1)
        assert by[(model, "gradient", "spearman_vs_trained", "identity", None)].value < 0.999
        # GradCAM at the last feature map passes no sign: unchanged by every estimator
        for est in ESTIMATORS:
            r = by[(model, "gradcam", "spearman_vs_trained", est, None)]
            assert r.value == pytest.approx(1) and r.step == ESTIMATOR_STEPS[est]
        ident = by[(model, "gradient", "zero_gradient_share", "identity", None)]
        assert ident.value == 0.0
    pair = by[("tiny_vgg_fp|tiny_vgg_bnn", "gradient", "fp_bnn_spearman", "trained", None)]
    assert pair.family == "FP-BNN" and pair.pair and pair.step == 0
    dead = [r for r in rows if r.metric == "dead_share" and r.model == "tiny_vgg_bnn"]
    assert [r.step for r in dead] == [1, 2] and all(0 <= r.value <= 1 for r in dead)
    assert not any(r.model.startswith("tiny_vgg_fp") and "|" not in r.model for r in rows)
