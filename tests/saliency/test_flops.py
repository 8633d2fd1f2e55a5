"""forward_flops: 2 FLOPs per multiply-accumulate of the conv / dense layers, counted by hand."""

from __future__ import annotations

import larq as lq
import tensorflow as tf

from binsal.saliency.base import forward_flops


def _tiny(quantized: bool) -> tf.keras.Model:
    conv = (
        lq.layers.QuantConv2D(8, 3, padding="same", kernel_quantizer="ste_sign", use_bias=False)
        if quantized
        else tf.keras.layers.Conv2D(8, 3, padding="same")
    )
    x = tf.keras.Input((8, 8, 3))
    h = conv(x)
    h = tf.keras.layers.BatchNormalization()(h)
    h = tf.keras.layers.DepthwiseConv2D(3, strides=2, padding="same")(h)  # 4x4x8 out
    h = tf.keras.layers.MaxPooling2D()(h)  # 2x2x8
    h = tf.keras.layers.Flatten()(h)
    return tf.keras.Model(x, tf.keras.layers.Dense(10)(h))


def test_forward_flops_by_hand() -> None:
    macs = 8 * 8 * 8 * (3 * 3 * 3) + 4 * 4 * 8 * (3 * 3) + 32 * 10
    for quantized in (False, True):
        assert forward_flops(_tiny(quantized)) == 2 * macs


def test_forward_flops_counts_nested_models() -> None:
    inner = _tiny(False)
    x = tf.keras.Input((8, 8, 3))
    outer = tf.keras.Model(x, tf.keras.layers.Dense(4)(inner(x)))
    assert forward_flops(outer) == forward_flops(inner) + 2 * 10 * 4
