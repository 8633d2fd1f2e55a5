"""Matched pairs: same topology, binarization as the only difference; cache keys."""

from __future__ import annotations

import larq as lq
import numpy as np
import tensorflow as tf

from binsal.core.profile import load_profile
from binsal.models.pairs import FEATURES
from binsal.models.registry import MODELS
from tests.conftest import build_tiny


def _layer_kinds(model: tf.keras.Model) -> list[str]:
    return [type(layer).__name__ for layer in model.layers]


def test_pairs_share_topology_and_differ_only_in_quantization():
    for arch in ("vgg", "resnet"):
        fp, bnn = build_tiny(arch, False).model, build_tiny(arch, True).model
        assert fp.count_params() == bnn.count_params()
        assert fp.get_layer(FEATURES).output_shape == bnn.get_layer(FEATURES).output_shape
        quant = [lyr for lyr in bnn.layers if isinstance(lyr, lq.layers.QuantConv2D)]
        assert quant, "BNN has no binarized convolutions"
        for layer in quant:
            assert layer.input_quantizer.__class__.__name__ == "SteSign"
            assert layer.kernel_quantizer.__class__.__name__ == "SteSign"
            assert isinstance(layer.kernel_constraint, lq.constraints.WeightClip)
        # first and last layers stay real
        assert type(bnn.get_layer("stem_conv")) is tf.keras.layers.Conv2D
        assert type(bnn.get_layer("logits")) is tf.keras.layers.Dense
        assert not any(isinstance(lyr, lq.layers.QuantConv2D) for lyr in fp.layers)


def test_bnn_effective_kernels_are_binary():
    bnn = build_tiny("vgg", True).model
    layer = next(lyr for lyr in bnn.layers if isinstance(lyr, lq.layers.QuantConv2D))
    binary = lq.quantizers.SteSign()(tf.convert_to_tensor(layer.kernel)).numpy()
    assert set(np.unique(binary)) <= {-1.0, 1.0}


def test_registry_specs_follow_profile_image_size():
    from binsal.models.paper_arch import PAPER_ARCH_MODELS

    profile = load_profile("smoke")
    for name in MODELS.names():
        if name in PAPER_ARCH_MODELS:
            continue  # the paper's architectures trained here (>= 64 px): test_paper_arch.py
        spec = MODELS[name](profile)
        if spec.source != "synthetic":
            continue  # the paper's pretrained networks: test_paper.py
        assert spec.input_shape == (32, 32, 3)
        model = spec.build(**spec.build_kwargs)
        assert model.get_layer(spec.gradcam_layer).output_shape[1:3] == (8, 8)
        assert model.output_shape == (None, spec.num_classes)
