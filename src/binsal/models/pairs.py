"""Matched FP/BNN pairs: the same topology twice, once full precision, once binarized.

Binarization follows the larq recipe (Courbariaux et al. 2016; Bethge et al. 2019 "Back to
simplicity"; Bannink et al. 2021 QuickNet): every hidden convolution becomes a ``QuantConv2D``
with ``ste_sign`` input and kernel quantizers and ``weight_clip(1)`` on the latent kernel; the
first convolution (stem), the real-valued transitions and the last (classifier) layer stay real.
The full-precision twin uses ReLU where the BNN has the sign of its input, and an unquantized
kernel; everything else (widths, BN, pooling, shortcuts, names) is identical, so the pair isolates
binarization as the only difference. The GradCAM target is the layer named ``features``: the last
spatial feature map before global pooling.

``precision=(weight_bits, activation_bits)`` builds the same topology at any rung of the
binarization ladder (``binsal.models.ladder``): 32 bits keeps the FP twin's part (ReLU, real
kernel), 1 bit the BNN's (``ste_sign``; ``weight_clip`` on a binary kernel), k bits in between
larq's DoReFa quantizer (Zhou et al. 2016: activations clipped to [0, 1], weights tanh-normalised,
both rounded to 2^k levels, straight-through gradient). ``(32, 32)`` is the FP twin and ``(1, 1)``
the BNN, layer for layer.
"""

from __future__ import annotations

from typing import Any

import larq as lq
import tensorflow as tf

from binsal.models.registry import FEATURES

Precision = tuple[int, int]  # (weight bits, activation bits); 32 = full precision
FULL: Precision = (32, 32)
BINARY: Precision = (1, 1)


def quantizer(bits: int, mode: str) -> Any:
    """larq quantizer of ``bits`` for "weights" or "activations": None at 32 bits, ``ste_sign``
    at 1 bit, DoReFa at 2-16 bits (at most 2^bits levels)."""
    if bits == 32:
        return None
    if bits == 1:
        return "ste_sign"
    if 2 <= bits <= 16:
        return lq.quantizers.DoReFa(k_bit=bits, mode=mode)
    raise ValueError(f"{mode} bits must be 1-16 or 32, got {bits}")


def _conv(
    x: Any,
    filters: int,
    *,
    binary: bool,
    name: str,
    kernel_size: int = 3,
    precision: Precision | None = None,
) -> Any:
    """A hidden 3x3 convolution: ReLU -> Conv (FP) or sign -> sign(W) conv (BNN); at another
    ``precision``, each of the weights and the activations quantized on its own."""
    bits = precision or (BINARY if binary else FULL)
    if tuple(bits) == BINARY:
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
    w_bits, a_bits = bits
    if a_bits == 32:  # real activations: the FP twin's ReLU (a quantizer replaces it otherwise)
        x = tf.keras.layers.Activation("relu", name=f"{name}_relu")(x)
    if w_bits == 32 and a_bits == 32:
        return tf.keras.layers.Conv2D(
            filters,
            kernel_size,
            padding="same",
            use_bias=False,
            kernel_initializer="glorot_normal",
            name=name,
        )(x)
    return lq.layers.QuantConv2D(
        filters,
        kernel_size,
        padding="same",
        use_bias=False,
        input_quantizer=quantizer(a_bits, "activations"),
        kernel_quantizer=quantizer(w_bits, "weights"),
        kernel_constraint="weight_clip" if w_bits == 1 else None,
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
    precision: Precision | None = None,
) -> tf.keras.Model:
    """VGG-style: real stem, then (conv -> BN -> maxpool) per width; last conv unpooled."""
    inputs = tf.keras.Input(input_shape, name="image")
    x = _stem(inputs, widths[0] // 2, stem_pool)
    for i, width in enumerate(widths):
        x = _conv(x, width, binary=binary, name=f"conv{i + 1}", precision=precision)
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
    precision: Precision | None = None,
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
            y = _conv(x, width, binary=binary, name=f"{tag}_conv", precision=precision)
            y = tf.keras.layers.BatchNormalization(momentum=0.9, name=f"{tag}_bn")(y)
            last = s == n_stages - 1 and b == blocks_per_stage - 1
            x = tf.keras.layers.Add(name=FEATURES if last else f"{tag}_add")([x, y])
    return tf.keras.Model(inputs, _head(x, num_classes), name=name)


ARCHITECTURES = {"vgg": build_vgg, "resnet": build_resnet}
