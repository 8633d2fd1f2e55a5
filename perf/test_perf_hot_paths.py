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


@pytest.mark.parametrize("workers", [1, 2])
def test_imputation_throughput(benchmark, monkeypatch, workers):
    """ROAD's noisy linear imputation of 64 images of 64x64 with half their pixels removed (the
    road/roar hot path), on 1 and 2 threads (SuperLU releases the GIL)."""
    from binsal.metrics.imputation import noisy_linear_impute

    monkeypatch.setenv("BINSAL_IMPUTE_WORKERS", str(workers))
    rng = np.random.default_rng(0)
    images = rng.random((64, 64, 64, 3), dtype=np.float32)
    removed = rng.random((64, 64, 64)) < 0.5
    benchmark.group = "imputation (64 images, 50 % removed)"
    benchmark.extra_info.update(workers=workers, images=64)
    out = benchmark.pedantic(
        noisy_linear_impute, args=(images, removed), kwargs={"seed": 1}, rounds=3, iterations=1
    )
    assert out.shape == images.shape


def test_smoothgrad_family_one_pass(benchmark, default_model):
    """SmoothGrad, SmoothGrad-squared and VarGrad on the same 16 images (what the maps stage
    runs): one pass of noisy gradients serves all three."""
    from binsal.saliency import forget_results

    profile = load_profile("default")
    methods = [make_method(m, profile) for m in ("smoothgrad", "smoothgrad_sq", "vargrad")]
    images, targets = batch(default_model, n=16)
    methods[0].explain(default_model, images[:1], targets[:1])  # trace outside the timing

    def family() -> list[np.ndarray]:
        forget_results()  # every round starts without the shared pass
        return [m.explain(default_model, images, targets) for m in methods]

    benchmark.group = "smoothgrad family (3 methods, 16 images)"
    maps = benchmark.pedantic(family, rounds=3, iterations=1)
    assert all(m.shape == images.shape[:3] for m in maps)


def test_deletion_curve_mobilenet(benchmark):
    """A deletion curve as xplique's Deletion metric computes it: 16 images, 96 steps, MoRF with
    a channel-mean baseline, on MobileNetV2 (keras.applications, untrained, 64 px, 10
    classes); batches of 256 model inputs."""
    import tensorflow as tf

    from binsal.benchmarks.deletion_insertion import predict_fn
    from binsal.metrics import forget_results
    from binsal.metrics.faithfulness import perturbation_curve
    from binsal.models.own import wrap_model
    from binsal.models.spec import LoadedModel

    tf.keras.utils.set_random_seed(0)
    net = tf.keras.applications.MobileNetV2(input_shape=(64, 64, 3), weights=None, classes=10)
    loaded: LoadedModel = wrap_model(net, quiet=True)
    rng = np.random.default_rng(0)
    images = rng.random((16, 64, 64, 3), dtype=np.float32)
    targets = rng.integers(0, 10, 16)
    maps = rng.random((16, 64, 64), dtype=np.float32)
    predict = predict_fn(loaded, batch_size=256)
    fractions = np.linspace(0.0, 1.0, 96)
    kwargs = {"order": "morf", "mode": "deletion", "fractions": fractions}
    perturbation_curve(predict, images[:2], targets[:2], maps[:2], **kwargs)  # trace
    benchmark.group = "deletion curve (MobileNetV2 64 px, 16 images, 96 steps)"
    benchmark.extra_info.update(images=16, steps=96)

    def fresh() -> tuple[tuple, dict]:
        forget_results()  # every round ranks the maps itself
        return (predict, images, targets, maps), kwargs

    out = benchmark.pedantic(perturbation_curve, setup=fresh, rounds=3)
    assert out["prob"].shape == (16, 96)
