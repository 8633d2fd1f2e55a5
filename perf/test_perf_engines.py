"""Engine comparison: tf-keras-vis ("tfkv", the reference) vs the suite's batched tf.function
engine ("tf"), seconds per image for Gradient, SmoothGrad (20 samples) and GradCAM on one FP and
one BNN model of the default profile (64x64, batch 8). The summary at the end prints s/image."""

from __future__ import annotations

import numpy as np
import pytest
from perfkit import BATCH, batch

from binsal.saliency import METHODS, forget_results

CASES = {
    "gradient": {},
    "smoothgrad": {"samples": 20, "noise_level": 0.2, "seed": 0},
    "gradcam": {},
}


@pytest.mark.parametrize("engine", ["tf", "tfkv"])
@pytest.mark.parametrize("method", list(CASES))
def test_engine_seconds_per_image(benchmark, default_model, method, engine):
    sal = METHODS[method](**CASES[method])
    images, targets = batch(default_model)
    sal.explain(default_model, images, targets, engine=engine)  # warm-up: tracing, model build
    benchmark.group = f"engine {method} {default_model.name}"
    benchmark.extra_info.update(
        engine=engine, method=method, model=default_model.name, images=BATCH
    )

    def fresh() -> tuple[tuple, dict]:
        # SmoothGrad keeps its noisy pass for its siblings (SmoothGrad-squared, VarGrad): a
        # round that found the warm-up's pass there would time a cache lookup
        forget_results()
        return (default_model, images, targets), {"engine": engine}

    maps = benchmark.pedantic(sal.explain, setup=fresh, rounds=3, iterations=1)
    assert maps.shape == images.shape[:3] and np.isfinite(maps).all()
