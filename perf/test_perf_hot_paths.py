"""Hot paths: one batch of maps per method per model (smoke size), and one metric evaluation."""

from __future__ import annotations

import numpy as np
import pytest
from perfkit import BATCH, batch

from binsal.benchmarks import make_method
from binsal.core.profile import load_profile

METHODS = ["gradient", "smoothgrad", "gradcam", "random", "sobel"]


@pytest.mark.parametrize("method", METHODS)
def test_map_per_method_per_model(benchmark, smoke_model, method):
    profile = load_profile("smoke")
    sal = make_method(method, profile)
    images, targets = batch(smoke_model)
    sal.explain(smoke_model, images, targets)  # trace the tf.function outside the timing
    benchmark.group = f"map {method}"
    benchmark.extra_info.update(images=BATCH, size=images.shape[1], family=smoke_model.family)
    maps = benchmark.pedantic(
        sal.explain, args=(smoke_model, images, targets), rounds=5, iterations=1
    )
    assert maps.shape == images.shape[:3] and np.isfinite(maps).all()


def test_metric_rank_correlation(benchmark):
    """Spearman of abs maps for 128 map pairs of 64x64 (the rank-correlation benchmark's core)."""
    from binsal.metrics import similarity

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 128, 64, 64))
    benchmark.group = "metric"
    rho = benchmark(similarity.spearman, a, b, use_abs=True)
    assert rho.shape == (128,)


def test_metric_relevance_mass(benchmark):
    from binsal.metrics import localization

    rng = np.random.default_rng(0)
    maps = rng.normal(size=(128, 64, 64))
    masks = np.zeros_like(maps, dtype=bool)
    masks[:, 16:40, 20:44] = True
    benchmark.group = "metric"
    out = benchmark(localization.relevance_mass, maps, masks)
    assert np.asarray(out).shape == (128,)
