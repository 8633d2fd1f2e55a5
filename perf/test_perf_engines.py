"""Engine comparison: tf-keras-vis ("tfkv", the reference) vs the suite's batched tf.function
engine ("tf"), seconds per image for Gradient, SmoothGrad (20 samples) and GradCAM on one FP and
one BNN model of the default profile (64x64, batch 8). The summary at the end prints s/image and,
for Gradient and SmoothGrad, the distance to the FLOP limit: the method's multiply-accumulate
FLOPs per image (forward + input-backward, ``binsal.saliency.base.forward_flops``) at the
float32 matrix-multiply rate this machine reaches in TensorFlow (``test_matmul_rate``)."""

from __future__ import annotations

import numpy as np
import pytest
from perfkit import BATCH, batch

from binsal.saliency import METHODS, forget_results
from binsal.saliency.base import forward_flops

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
    passes = {"gradient": 1, "smoothgrad": CASES["smoothgrad"]["samples"]}.get(method, 0)
    benchmark.extra_info.update(
        engine=engine,
        method=method,
        model=default_model.name,
        images=BATCH,
        # forward + input-backward per pass; 0 where the limit is not defined here (GradCAM
        # stops its backward pass at the feature layer)
        flops_per_image=passes * 2 * forward_flops(default_model.model),
    )

    def fresh() -> tuple[tuple, dict]:
        # SmoothGrad keeps its noisy pass for its siblings (SmoothGrad-squared, VarGrad): a
        # round that found the warm-up's pass there would time a cache lookup
        forget_results()
        return (default_model, images, targets), {"engine": engine}

    maps = benchmark.pedantic(sal.explain, setup=fresh, rounds=3, iterations=1)
    assert maps.shape == images.shape[:3] and np.isfinite(maps).all()


@pytest.mark.parametrize("n", [BATCH, 64])
def test_traced_gradient_alone(benchmark, default_model, n):
    """The floor under the engine's Gradient: the model's traced gradient function alone, on
    tensors already made (no conversion, checks or channel reduction), at batch 8 and 64: how
    far TensorFlow's own kernels and executor are from the FLOP limit on this model."""
    import tensorflow as tf

    from binsal.saliency import engine_tf

    fn = engine_tf.gradient_fn(default_model.model)
    images, targets = batch(default_model, n)
    x, t = tf.constant(images), tf.constant(targets.astype(np.int32))
    fn(x, t)  # trace
    benchmark.group = f"engine gradient {default_model.name}"
    benchmark.extra_info.update(
        engine=f"graph{n}",
        method="gradient",
        model=default_model.name,
        images=n,
        flops_per_image=2 * forward_flops(default_model.model),
    )
    out = benchmark.pedantic(lambda: fn(x, t).numpy(), rounds=10, iterations=1)
    assert out.shape == images.shape and np.isfinite(out).all()


MATMUL_N = 2048


def test_matmul_rate(benchmark):
    """The float32 matrix-multiply rate of this machine in TensorFlow (the threads TensorFlow
    takes here: every core): one 2048 x 2048 product, 2 n^3 FLOPs; the best round is the rate
    the FLOP limit assumes."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a, b = (tf.constant(rng.random((MATMUL_N, MATMUL_N), dtype=np.float32)) for _ in range(2))
    product = tf.function(lambda: tf.reduce_sum(tf.linalg.matmul(a, b)))
    product()  # trace
    benchmark.group = "machine"
    benchmark.extra_info.update(matmul_flops=2 * MATMUL_N**3)
    out = benchmark.pedantic(product, rounds=10, iterations=1)
    assert np.isfinite(float(out))
