"""Class sensitivity: target slots, known answers (class-independent maps score 1, a linear
model's class-dependent gradient less) and tidy rows on the tiny models."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from binsal.benchmarks import MapStore, RunContext
from binsal.benchmarks.class_sensitivity import ClassSensitivity, class_slots
from binsal.core.profile import load_profile
from binsal.core.progress import StageTimer
from binsal.models.spec import LoadedModel, ModelSpec
from tests.conftest import TINY_CLASSES, TINY_SHAPE


def test_slots_all_other_classes_and_least_likely():
    logits = np.array([[3.0, 1.0, 2.0], [0.0, 5.0, -1.0]])
    targets, is_other, ll_slot = class_slots(logits, max_other_classes=16, seed=0)
    np.testing.assert_array_equal(targets, [[0, 1], [1, 0], [2, 2]])
    assert is_other.tolist() == [[False, False], [True, True], [True, True]]
    np.testing.assert_array_equal(targets[ll_slot, [0, 1]], [1, 2])


def test_slots_drawn_when_many_classes():
    logits = np.random.default_rng(0).normal(size=(20, 50))
    targets, is_other, ll_slot = class_slots(logits, max_other_classes=3, seed=1)
    pred, least = logits.argmax(1), logits.argmin(1)
    assert targets.shape == (5, 20)
    np.testing.assert_array_equal(targets[0], pred)
    for i in range(20):
        others = targets[1:, i][is_other[1:, i]]
        assert pred[i] not in others
        assert len(set(others)) == len(others) >= 3
        assert targets[ll_slot[i], i] == least[i]
    again = class_slots(logits, max_other_classes=3, seed=1)[0]
    np.testing.assert_array_equal(targets, again)  # seeded


def _linear_ctx(tmp_path) -> RunContext:
    """One linear model (flatten -> dense, no bias): d logit_c / dx = W[:, c]."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    inputs = tf.keras.Input(TINY_SHAPE)
    logits = tf.keras.layers.Dense(TINY_CLASSES, use_bias=False)(tf.keras.layers.Flatten()(inputs))
    model = tf.keras.Model(inputs, logits)
    spec = ModelSpec(
        name="linear",
        family="FP",
        build=lambda: model,
        input_shape=TINY_SHAPE,
        num_classes=TINY_CLASSES,
        gradcam_layer="features",  # absent: GradCAM is not defined and is skipped
    )
    profile = load_profile("smoke")
    profile = dataclasses.replace(
        profile,
        saliency=dataclasses.replace(
            profile.saliency, methods=("gradient", "gradcam", "random", "sobel")
        ),
    )
    images = np.random.default_rng(1).random((8, *TINY_SHAPE), dtype=np.float32)
    return RunContext(
        profile=profile,
        models={"linear": LoadedModel(spec, model)},
        images=images,
        labels=np.zeros(8, dtype=np.int64),
        masks=None,
        class_names=[f"c{i}" for i in range(TINY_CLASSES)],
        maps=MapStore(tmp_path / "maps"),
        progress=StageTimer(quiet=True),
        run_dir=tmp_path,
        cache_root=tmp_path / "cache",
    )


def test_class_independent_maps_score_one_linear_gradient_less(tmp_path):
    rows = ClassSensitivity().run(_linear_ctx(tmp_path))
    by = {(r.method, r.metric): r for r in rows}
    assert {r.method for r in rows} == {"gradient", "random", "sobel"}  # gradcam undefined
    for control in ("random", "sobel"):
        for metric in ("spearman_abs", "ssim", "spearman_abs_least_likely"):
            assert by[(control, metric)].value == pytest.approx(1.0)
    grad = by[("gradient", "spearman_abs")]
    assert grad.n == 8 and grad.value < 0.5
    assert by[("gradient", "ssim")].value < 0.9
    assert by[("gradient", "spearman_abs_least_likely")].value < 0.5
    assert all(r.direction == "lower" for r in rows)
    assert all('"target": "predicted"' in r.params for r in rows)


def test_rows_are_tidy_on_tiny_models(tiny_ctx):
    methods = ("gradient", "smoothgrad", "gradcam", "guided_backprop", "random", "sobel")
    smoke_methods = ClassSensitivity().opts(tiny_ctx.profile).methods  # the smoke profile's
    assert smoke_methods != "profile" and set(methods) <= set(smoke_methods)
    tiny_ctx.profile = dataclasses.replace(
        tiny_ctx.profile, saliency=dataclasses.replace(tiny_ctx.profile.saliency, methods=methods)
    )
    rows = ClassSensitivity().run(tiny_ctx)
    assert {r.model for r in rows} == set(tiny_ctx.models)
    assert {r.method for r in rows} == set(methods)
    guided = {r.model for r in rows if r.method == "guided_backprop"}
    assert guided <= {"tiny_vgg_fp", "tiny_resnet_fp"}  # not defined through larq's sign
    for r in rows:
        assert r.benchmark == "class_sensitivity" and r.direction == "lower"
        assert r.n <= len(tiny_ctx.images)
        if r.n > 0:
            assert r.ci_low - 1e-12 <= r.value <= r.ci_high + 1e-12
            assert -1.0 <= r.value <= 1.0
        assert np.isnan(r.step)
    grad = [r for r in rows if r.method == "gradient" and r.metric == "spearman_abs"]
    assert all(r.value < 1.0 for r in grad)
