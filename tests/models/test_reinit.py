"""BNN-aware re-initialisation on tiny models: signs flipped by a symmetric re-draw (not by a
positive fill or a permutation), depthwise / separable kernels, layers switched and restored on a
clone while the loaded model stays untouched."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from binsal.core.stats import wilson_ci
from binsal.models.reinit import LayerRandomizer, sign_flips
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
