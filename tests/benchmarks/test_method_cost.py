"""The cost benchmark: declared passes and measured CPU time and memory per map, tidy rows."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from binsal.benchmarks.method_cost import MethodCost, measure


def test_measure_sees_cpu_time_and_memory():
    with measure() as m:
        block = np.ones((64, 1024, 1024), dtype=np.float32)  # 256 MB, touched
        total = float(np.sqrt(block).sum())
        del block
    assert total > 0 and m.cpu_seconds > 0
    assert m.peak_bytes > 100 * 1024**2


def test_cost_rows_per_model_and_method(tiny_ctx):
    tiny_ctx.profile = dataclasses.replace(
        tiny_ctx.profile,
        benchmark_options={
            "method_cost": {
                "models": ["tiny_vgg_fp", "tiny_vgg_bnn"],
                "methods": ["gradient", "smoothgrad", "guided_backprop", "sobel"],
                "n_images": 4,
                "repeats": 2,
            }
        },
    )
    rows = MethodCost().run(tiny_ctx)
    by = {(r.model, r.method, r.metric): r for r in rows}
    samples = tiny_ctx.profile.saliency.smoothgrad_samples
    assert by[("tiny_vgg_fp", "smoothgrad", "forward_passes")].value == samples
    assert by[("tiny_vgg_bnn", "gradient", "backward_passes")].value == 1
    assert by[("tiny_vgg_fp", "sobel", "forward_passes")].value == 0
    assert ("tiny_vgg_bnn", "guided_backprop", "forward_passes") not in by  # not defined there
    cpu = by[("tiny_vgg_fp", "smoothgrad", "cpu_seconds_per_map")]
    assert cpu.n == 2 and cpu.value > 0 and cpu.direction == "lower"
    mem = by[("tiny_vgg_fp", "gradient", "peak_memory_mb")]
    assert mem.n == 2 and mem.value >= 0
    assert json.loads(cpu.params)["n_images"] == 4
    assert all(r.direction == "lower" for r in rows)


@pytest.mark.parametrize("metric", ["forward_passes", "cpu_seconds_per_map"])
def test_cost_declares_lower_is_better(metric):
    assert MethodCost.direction(metric) == "lower"


def test_timed_calls_are_not_served_from_the_noisy_pass_cache(tiny_model, tiny_batch):
    from binsal.saliency import METHODS, engine_tf, forget_results

    x, t = tiny_batch
    METHODS["smoothgrad"](samples=3).explain(tiny_model, x, t)
    assert engine_tf._FAMILY_CACHE  # SmoothGrad's noisy passes, kept for its siblings
    forget_results()
    assert not engine_tf._FAMILY_CACHE
