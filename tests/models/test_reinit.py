"""BNN-aware re-initialisation on tiny models: signs flipped by a symmetric re-draw (not by a
positive fill or a permutation), depthwise / separable kernels, layers switched and restored on a
clone while the loaded model stays untouched; fixed layers left alone; the ten paper networks."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from binsal.core.stats import wilson_ci
from binsal.models import paper
from binsal.models.reinit import (
    FIXED_REASON,
    REINIT_ATTRS,
    LayerRandomizer,
    SkippedLayer,
    fixed_reason,
    kernel_layers,
    redraw_layer,
    sign_flips,
)
from binsal.models.spec import LoadedModel
from tests.conftest import TINY_CLASSES, TINY_SHAPE, build_tiny


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
    lo, hi = wilson_ci(500, 1000)
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


def _blur(shape: Any, dtype: Any = None) -> np.ndarray:
    """A fixed [1, 2, 1] x [1, 2, 1] / 16 blur per channel (as larq-zoo's blurpool)."""
    k = np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0]) / 16.0
    return np.tile(k[:, :, None, None], (1, 1, shape[2], shape[3])).astype(np.float32)


def _numpy_normal(shape: Any, dtype: Any = None) -> np.ndarray:
    """A plain-function initializer drawing from NumPy's global generator."""
    return np.random.standard_normal(shape).astype(np.float32)


def _fixed_layer_net() -> Any:
    import tensorflow as tf

    inputs = tf.keras.Input(TINY_SHAPE)
    x = tf.keras.layers.DepthwiseConv2D(
        3, depthwise_initializer=_blur, trainable=False, use_bias=False, name="blur"
    )(inputs)
    x = tf.keras.layers.DepthwiseConv2D(3, depthwise_initializer=_numpy_normal, name="dw_fn")(x)
    x = tf.keras.layers.Conv2D(8, 3, name="conv")(x)
    x = tf.keras.layers.Dense(TINY_CLASSES, name="logits")(tf.keras.layers.Flatten()(x))
    return tf.keras.Model(inputs, x)


def test_fixed_layers_are_left_alone_and_function_initializers_called_seeded():
    import tensorflow as tf

    spec = dataclasses.replace(
        build_tiny("vgg", False).spec, name="fixed_net", build=_fixed_layer_net, build_kwargs={}
    )
    tf.keras.utils.set_random_seed(0)
    loaded = LoadedModel(spec, _fixed_layer_net())
    blur = loaded.model.get_layer("blur").depthwise_kernel.numpy()
    rand = LayerRandomizer(loaded, seed=0)
    assert [i.name for i in rand.layers] == ["logits", "conv", "dw_fn"]
    assert rand.skipped == [SkippedLayer("blur", "DepthwiseConv2D", FIXED_REASON)]
    assert "blur" not in rand.randomized
    rand.set_randomized([i.name for i in rand.layers])
    np.testing.assert_array_equal(rand.loaded.model.get_layer("blur").depthwise_kernel, blur)
    # the plain function is the layer's own initializer, called with the layer's seed
    dw = next(i for i in rand.layers if i.name == "dw_fn")
    np.random.seed(dw.seed + REINIT_ATTRS.index("depthwise_kernel"))  # per-weight seed offset
    expected = np.random.standard_normal((3, 3, 3, 1)).astype(np.float32)
    np.testing.assert_array_equal(rand.randomized["dw_fn"]["depthwise_kernel"], expected)
    np.random.seed(123)
    state = np.random.get_state()[1].copy()
    redraw_layer(rand.loaded.model.get_layer("dw_fn"), dw.seed)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # global generator restored
    again = LayerRandomizer(loaded, seed=0)
    other = LayerRandomizer(loaded, seed=1)
    for name in ("dw_fn", "conv", "logits"):
        for attr, value in rand.randomized[name].items():
            np.testing.assert_array_equal(again.randomized[name][attr], value)
    new, old = other.randomized["dw_fn"], rand.randomized["dw_fn"]
    assert not np.array_equal(new["depthwise_kernel"], old["depthwise_kernel"])


# fixed layers (no trainable weights) of each paper network: QuickNet's three blur-pool convs
PAPER_FIXED = {"quicknet": 3}


@pytest.mark.slow
@pytest.mark.parametrize("arch", paper.PAPER_MODELS)
def test_paper_network_layers_are_redrawn_or_left_alone(arch):
    """Each of the ten networks builds with weights=None; every layer with a kernel is either
    re-drawn with its own initializer (depthwise, separable, larq, dense, conv) or, with no
    trainable weights, left alone; its top 8 layers are switched and restored."""
    import tensorflow as tf

    from binsal.core.profile import load_profile
    from binsal.datasets.images import load_photos
    from binsal.models.registry import MODELS

    tf.keras.utils.set_random_seed(0)
    spec = MODELS[arch](load_profile("paper"))
    loaded = LoadedModel(spec, spec.build(**{**spec.build_kwargs, "weights": None}))
    fixed = 0
    for layer in kernel_layers(loaded.model):
        if not layer.trainable_weights:
            assert fixed_reason(layer) == FIXED_REASON
            fixed += 1
            continue
        new = redraw_layer(layer, 7)
        trainable = {id(v) for v in layer.trainable_weights}
        attrs = [a for a in REINIT_ATTRS if id(getattr(layer, a, None)) in trainable]
        assert list(new) == attrs and any(a != "bias" for a in attrs), layer.name
        for attr, value in new.items():
            assert value.shape == tuple(getattr(layer, attr).shape), (layer.name, attr)
            assert np.all(np.isfinite(value)), (layer.name, attr)
        kernel = next(a for a in attrs if a != "bias")
        assert not np.array_equal(new[kernel], getattr(layer, kernel).numpy()), layer.name
    assert fixed == PAPER_FIXED.get(arch, 0)

    rand = LayerRandomizer(loaded, seed=0, max_layers=8)
    assert len(rand.layers) == 8 and len(rand.skipped) == fixed
    assert {s.layer_type for s in rand.skipped} <= {"DepthwiseConv2D"}
    images, _, _ = load_photos(224, 1)
    x = loaded.prepare(images)
    before = rand.loaded.model(x).numpy()
    rand.set_randomized([i.name for i in rand.layers])
    after = rand.loaded.model(x).numpy()
    assert np.all(np.isfinite(after))
    assert np.abs(after - before).max() > 1e-3 * np.abs(before).max()
    rand.set_randomized(())
    np.testing.assert_array_equal(rand.loaded.model(x).numpy(), before)
    for info in rand.layers:  # the same seed, the same draw
        drawn = redraw_layer(rand.loaded.model.get_layer(info.name), info.seed)
        for attr, value in drawn.items():
            np.testing.assert_array_equal(rand.randomized[info.name][attr], value)
