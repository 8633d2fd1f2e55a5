"""Tiny in-process FP and BNN fixtures (seeded) shared by the tests."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from binsal.models.pairs import build_resnet, build_vgg
from binsal.models.spec import LoadedModel, ModelSpec

TINY_SHAPE = (16, 16, 3)
TINY_CLASSES = 3


def tiny_spec(arch: str, binary: bool) -> ModelSpec:
    builder = {"vgg": build_vgg, "resnet": build_resnet}[arch]
    family = "BNN" if binary else "FP"
    return ModelSpec(
        name=f"tiny_{arch}_{family.lower()}",
        family=family,
        build=builder,
        input_shape=TINY_SHAPE,
        num_classes=TINY_CLASSES,
        gradcam_layer="features",
        pair=f"tiny_{arch}",
        build_kwargs={
            "input_shape": TINY_SHAPE,
            "num_classes": TINY_CLASSES,
            "binary": binary,
            "widths": (8, 16),
        },
    )


def build_tiny(arch: str, binary: bool, seed: int = 0) -> LoadedModel:
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    spec = tiny_spec(arch, binary)
    model = spec.build(**spec.build_kwargs)
    # give BatchNorm non-trivial statistics so inference differs from identity
    x = np.random.default_rng(seed).random((32, *TINY_SHAPE), dtype=np.float32)
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            k = layer.moving_mean.shape[0]
            layer.moving_mean.assign(np.random.default_rng(seed).normal(0, 0.1, k))
    model(x, training=False)
    return LoadedModel(spec, model, float("nan"))


@pytest.fixture(
    scope="session",
    params=[("vgg", False), ("vgg", True), ("resnet", False), ("resnet", True)],
    ids=["vgg_fp", "vgg_bnn", "resnet_fp", "resnet_bnn"],
)
def tiny_model(request: pytest.FixtureRequest) -> LoadedModel:
    return build_tiny(*request.param)


@pytest.fixture(scope="session")
def tiny_batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(123)
    return rng.random((5, *TINY_SHAPE), dtype=np.float32), rng.integers(0, TINY_CLASSES, 5)
