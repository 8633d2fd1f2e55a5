"""Matched FP/BNN pairs: the same topology twice, once full precision, once binarized.

Binarization follows the larq recipe (Courbariaux et al. 2016; Bethge et al. 2019 "Back to
simplicity"; Bannink et al. 2021 QuickNet): every hidden convolution becomes a ``QuantConv2D``
with ``ste_sign`` input and kernel quantizers and ``weight_clip(1)`` on the latent kernel; the
first convolution (stem), the real-valued transitions and the last (classifier) layer stay real.
The full-precision twin uses ReLU where the BNN has the sign of its input, and an unquantized
kernel; everything else (widths, BN, pooling, shortcuts, names) is identical, so the pair isolates
binarization as the only difference. The GradCAM target is the layer named ``features``: the last
spatial feature map before global pooling.
"""

from __future__ import annotations

from typing import Any

import larq as lq
import tensorflow as tf

from binsal.models.registry import FEATURES


def _conv(x: Any, filters: int, *, binary: bool, name: str, kernel_size: int = 3) -> Any:
    """A hidden 3x3 convolution: ReLU -> Conv (FP) or sign -> sign(W) conv (BNN)."""
    if binary:
        return lq.layers.QuantConv2D(
            filters,
            kernel_size,
            padding="same",
            use_bias=False,
            input_quantizer="ste_sign",
            kernel_quantizer="ste_sign",
            kernel_constraint="weight_clip",
            kernel_initializer="glorot_normal",
            name=name,
        )(x)
    x = tf.keras.layers.Activation("relu", name=f"{name}_relu")(x)
    return tf.keras.layers.Conv2D(
        filters,
        kernel_size,
        padding="same",
        use_bias=False,
        kernel_initializer="glorot_normal",
        name=name,
    )(x)


def _stem(inputs: Any, filters: int, pool: bool) -> Any:
    """Real-valued 3x3 stem (+ 2x2 max-pool when ``pool``, to keep CPU training cheap)."""
    x = tf.keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = tf.keras.layers.BatchNormalization(momentum=0.9, name="stem_bn")(x)
    return tf.keras.layers.MaxPooling2D(2, name="stem_pool")(x) if pool else x


def _head(x: Any, num_classes: int) -> Any:
    x = tf.keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return tf.keras.layers.Dense(num_classes, name="logits")(x)


def build_vgg(
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    binary: bool,
    widths: tuple[int, ...] = (64, 128, 128),
    stem_pool: bool = False,
    name: str = "vgg",
) -> tf.keras.Model:
    """VGG-style: real stem, then (conv -> BN -> maxpool) per width; last conv unpooled."""
    inputs = tf.keras.Input(input_shape, name="image")
    x = _stem(inputs, widths[0] // 2, stem_pool)
    for i, width in enumerate(widths):
        x = _conv(x, width, binary=binary, name=f"conv{i + 1}")
        last = i == len(widths) - 1
        bn_name = FEATURES if last else f"bn{i + 1}"
        x = tf.keras.layers.BatchNormalization(momentum=0.9, name=bn_name)(x)
        if not last:
            x = tf.keras.layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)
    return tf.keras.Model(inputs, _head(x, num_classes), name=name)


def build_resnet(
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    binary: bool,
    widths: tuple[int, ...] = (32, 64, 128),
    blocks_per_stage: int = 2,
    stem_pool: bool = False,
    name: str = "resnet",
) -> tf.keras.Model:
    """ResNet/QuickNet-style: x + BN(conv(act(x))) blocks with real shortcuts (Bi-Real Net,
    Liu et al. 2018), real-valued transitions (avg-pool + 1x1 conv, as in QuickNet)."""
    inputs = tf.keras.Input(input_shape, name="image")
    x = _stem(inputs, widths[0], stem_pool)
    n_stages = len(widths)
    for s, width in enumerate(widths):
        if s > 0:
            x = tf.keras.layers.AveragePooling2D(2, name=f"trans{s}_pool")(x)
            x = tf.keras.layers.Conv2D(1 * width, 1, use_bias=False, name=f"trans{s}_conv")(x)
            x = tf.keras.layers.BatchNormalization(momentum=0.9, name=f"trans{s}_bn")(x)
        for b in range(blocks_per_stage):
            tag = f"s{s + 1}b{b + 1}"
            y = _conv(x, width, binary=binary, name=f"{tag}_conv")
            y = tf.keras.layers.BatchNormalization(momentum=0.9, name=f"{tag}_bn")(y)
            last = s == n_stages - 1 and b == blocks_per_stage - 1
            x = tf.keras.layers.Add(name=FEATURES if last else f"{tag}_add")([x, y])
    return tf.keras.Model(inputs, _head(x, num_classes), name=name)


ARCHITECTURES = {"vgg": build_vgg, "resnet": build_resnet}
