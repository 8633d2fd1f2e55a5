"""Helpers of the performance suite: untrained suite models at a profile's size, seeded batches."""

from __future__ import annotations

import numpy as np

BATCH = 8


def build(name: str, profile_name: str):
    import tensorflow as tf

    from binsal.core.profile import load_profile
    from binsal.models.registry import MODELS
    from binsal.models.spec import LoadedModel

    tf.keras.utils.set_random_seed(0)
    spec = MODELS[name](load_profile(profile_name))
    return LoadedModel(spec, spec.build(**spec.build_kwargs))


def batch(model, n: int = BATCH) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    shape = model.spec.input_shape
    return rng.random((n, *shape), dtype=np.float32), rng.integers(0, model.spec.num_classes, n)
