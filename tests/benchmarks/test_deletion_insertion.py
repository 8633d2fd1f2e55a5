"""Deletion / insertion benchmark: known answer on a one-pixel model, tidy rows on tiny models."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from binsal.benchmarks import BENCHMARKS, MapStore, RunContext
from binsal.benchmarks.deletion_insertion import DeletionInsertion, curves, predict_fn
from binsal.core.profile import load_profile
from binsal.core.progress import StageTimer
from binsal.metrics.faithfulness import baseline_images, perturbation_curve
from binsal.models.spec import LoadedModel, ModelSpec

SIZE = 16
PIXEL = (5, 9)


def build_one_pixel(**_: object):
    """Logits depend only on channel 0 of pixel PIXEL: class 0 iff that value > 0.75."""
    import tensorflow as tf

    r, c = PIXEL
    inputs = tf.keras.Input((SIZE, SIZE, 3), name="image")
    x = tf.keras.layers.Cropping2D(((r, SIZE - r - 1), (c, SIZE - c - 1)))(inputs)
    x = tf.keras.layers.Flatten()(x)
    dense = tf.keras.layers.Dense(2, name="logits")
    out = dense(x)
    dense.set_weights([np.array([[20.0, -20.0], [0, 0], [0, 0]]), np.array([-15.0, 15.0])])
    return tf.keras.Model(inputs, out, name="one_pixel")


@pytest.fixture(scope="module")
def one_pixel_model() -> LoadedModel:
    spec = ModelSpec(
        name="one_pixel",
        family="FP",
        build=build_one_pixel,
        input_shape=(SIZE, SIZE, 3),
        num_classes=2,
        gradcam_layer="features",  # absent: GradCAM is not defined and must be skipped
    )
    return LoadedModel(spec, build_one_pixel(), float("nan"))


def one_pixel_ctx(model: LoadedModel, tmp_path, n: int = 24) -> RunContext:
    rng = np.random.default_rng(0)
    images = rng.uniform(0.0, 0.6, (n, SIZE, SIZE, 3)).astype(np.float32)
    images[:, PIXEL[0], PIXEL[1], 0] = 1.0  # every image is class 0, with p(class 0) ~ 1
    base = load_profile("smoke")
    profile = dataclasses.replace(
        base,
        saliency=dataclasses.replace(
            base.saliency, methods=("gradient", "gradcam", "random", "sobel")
        ),
        benchmark_options={"deletion_insertion": {"fractions": list(range(0, 101, 10))}},
    )
    return RunContext(
        profile=profile,
        models={model.name: model},
        images=images,
        labels=np.zeros(n, dtype=np.int64),
        masks=None,
        class_names=["on", "off"],
        maps=MapStore(tmp_path / "maps"),
        progress=StageTimer(quiet=True),
        run_dir=tmp_path,
        cache_root=tmp_path / "cache",
    )


def _value(rows, method, metric, step=None):
    (row,) = [
        r
        for r in rows
        if r.method == method and r.metric == metric and (step is None or np.isclose(r.step, step))
    ]
    return row


def test_registered_with_order_and_plots():
    cls = BENCHMARKS["deletion_insertion"]
    assert cls is DeletionInsertion and cls.order == 50 and cls.description
    assert any(p.kind == "curve" for p in cls.plots)
    expected = {
        ("deletion", "morf"): "lower",
        ("deletion", "lerf"): "higher",
        ("insertion", "morf"): "higher",
        ("insertion", "lerf"): "lower",
    }
    for (mode, order), direction in expected.items():
        for suffix in ("prob", "acc", "auc", "acc_auc"):
            assert cls.direction(f"{mode}_{order}_{suffix}") == direction
    assert len(cls.scores) == 4 * 4


def test_perfect_ranking_on_one_pixel_model_drops_at_first_step(one_pixel_model, tmp_path):
    """The gradient of the one-pixel model is non-zero at that pixel only: a perfect ranking."""
    ctx = one_pixel_ctx(one_pixel_model, tmp_path)
    maps = ctx.maps_for("one_pixel", "gradient")
    assert np.all(np.abs(maps).reshape(len(maps), -1).argmax(axis=1) == PIXEL[0] * SIZE + PIXEL[1])
    rows = DeletionInsertion().run(ctx)

    assert {r.method for r in rows} == {"gradient", "random", "sobel"}  # gradcam undefined
    prob = [_value(rows, "gradient", "deletion_morf_prob", s).value for s in range(0, 101, 10)]
    acc = [_value(rows, "gradient", "deletion_morf_acc", s).value for s in range(0, 101, 10)]
    assert prob[0] > 0.99 and acc[0] == 1.0
    assert max(prob[1:]) < 0.01 and max(acc[1:]) == 0.0  # gone after the first step (10 %)
    # LeRF deletion keeps the pixel until the very end; MoRF insertion restores it at once
    lerf = [_value(rows, "gradient", "deletion_lerf_acc", s).value for s in range(0, 91, 10)]
    assert min(lerf) == 1.0 and _value(rows, "gradient", "deletion_lerf_acc", 100).value == 0
    ins = [_value(rows, "gradient", "insertion_morf_acc", s).value for s in range(10, 101, 10)]
    assert _value(rows, "gradient", "insertion_morf_acc", 0).value == 0 and min(ins) == 1.0

    perfect = _value(rows, "gradient", "deletion_morf_auc")
    random = _value(rows, "random", "deletion_morf_auc")
    assert perfect.value == pytest.approx(0.05, abs=0.01)  # trapezoid 1 -> 0 over [0, 0.1]
    assert perfect.ci_high < random.ci_low
    assert random.value > 0.3  # the pixel sits at a uniform random rank


def test_rows_are_tidy_with_n_ci_and_direction(tiny_ctx):
    methods = ("gradient", "gradcam", "guided_backprop", "random", "sobel")
    sal = dataclasses.replace(tiny_ctx.profile.saliency, methods=methods)
    tiny_ctx.profile = dataclasses.replace(tiny_ctx.profile, saliency=sal)
    rows = DeletionInsertion().run(tiny_ctx)
    steps = DeletionInsertion().opts(tiny_ctx.profile).fractions  # the smoke profile's
    per_pair = 4 * (2 * len(steps) + 2)  # 4 curves: a prob and an acc row per step, 2 AUCs
    # guided backprop is not defined through larq's sign: skipped on the two BNNs
    assert len(rows) == (len(tiny_ctx.models) * len(methods) - 2) * per_pair
    bnn_methods = {r.method for r in rows if r.family == "BNN"}
    assert bnn_methods == {"gradient", "gradcam", "random", "sobel"}
    assert {r.method for r in rows if r.family == "FP"} == set(methods)
    for r in rows:
        assert r.benchmark == "deletion_insertion"
        assert r.n == len(tiny_ctx.images)
        assert r.ci_low - 1e-9 <= r.value <= r.ci_high + 1e-9
        assert 0.0 <= r.value <= 1.0
        mode, order = r.metric.split("_")[:2]
        assert r.direction == DeletionInsertion.scores[f"{mode}_{order}_auc"].direction
        if r.metric.endswith("auc"):
            assert np.isnan(r.step)
        else:
            assert r.step in steps


def test_shared_end_points_equal_the_direct_curve(tiny_model, tiny_batch):
    images, targets = tiny_batch
    maps = np.random.default_rng(1).normal(size=images.shape[:3])
    predict = predict_fn(tiny_model, batch_size=7)
    fractions = np.linspace(0, 1, 6)
    ends = {
        "clean": predict(images),
        "baseline": predict(np.asarray(baseline_images(images, "channel_mean"))),
    }
    for mode in ("deletion", "insertion"):
        for order in ("morf", "lerf"):
            direct = perturbation_curve(
                predict, images, targets, maps, order=order, mode=mode, fractions=fractions
            )
            shared = curves(
                predict, images, targets, maps, order=order, mode=mode, fractions=fractions,
                ends=ends,
            )  # fmt: skip
            np.testing.assert_allclose(shared["prob"], direct["prob"], rtol=1e-5, atol=1e-6)
            np.testing.assert_array_equal(shared["correct"], direct["correct"])


def test_predict_fn_is_softmax_of_the_logits(tiny_model, tiny_batch):
    images, _ = tiny_batch
    probs = predict_fn(tiny_model, batch_size=2)(images)
    logits = tiny_model.model.predict(images, verbose=0)
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, expected, rtol=1e-4, atol=1e-6)


def test_road_perfect_ranking_on_one_pixel_model(one_pixel_model, tmp_path):
    """ROAD imputes the one pixel from its neighbours (all < 0.75): gone at the first MoRF step,
    kept by LeRF until it is the last one left; the gap beats Random's."""
    from binsal.benchmarks.road import ROAD

    ctx = one_pixel_ctx(one_pixel_model, tmp_path)
    steps = [0, 10, 50, 90]
    ctx.profile = dataclasses.replace(ctx.profile, benchmark_options={"road": {"fractions": steps}})
    rows = ROAD().run(ctx)
    assert {r.method for r in rows} == {"gradient", "random", "sobel"}  # gradcam undefined
    morf = [_value(rows, "gradient", "road_morf_acc", s).value for s in steps]
    lerf = [_value(rows, "gradient", "road_lerf_acc", s).value for s in steps]
    assert morf == [1.0, 0.0, 0.0, 0.0] and lerf == [1.0, 1.0, 1.0, 1.0]
    gap = _value(rows, "gradient", "road_gap")
    random_gap = _value(rows, "random", "road_gap")
    assert gap.value > 0.85 and gap.ci_low > random_gap.ci_high
    for r in rows:
        assert r.benchmark == "road" and r.n == len(ctx.images)
        assert r.ci_low - 1e-9 <= r.value <= r.ci_high + 1e-9
        expected = "higher" if ("lerf" in r.metric or r.metric == "road_gap") else "lower"
        assert r.direction == expected
        assert json.loads(r.params)["imputation"].startswith("noisy_linear")


def test_road_registered_and_runs_on_tiny_fp_and_bnn_models(tiny_ctx):
    from binsal.benchmarks.road import ROAD

    assert BENCHMARKS["road"] is ROAD and any(p.kind == "curve" for p in ROAD.plots)
    rows = ROAD().run(tiny_ctx)
    assert {r.family for r in rows} == {"FP", "BNN"}
    assert {"gradient", "random", "sobel"} <= {r.method for r in rows}
    metrics = {r.metric for r in rows}
    assert {"road_morf_prob", "road_lerf_acc", "road_morf_auc", "road_gap"} <= metrics
    assert all(np.isfinite(r.value) for r in rows)


def test_road_imputes_the_controls_once_for_every_model(one_pixel_model, tmp_path, monkeypatch):
    """The Random and Sobel maps do not depend on the model: a second model's ROAD takes their
    imputed images from the first's, and its rows equal those of a run on that model alone."""
    from binsal.benchmarks import road
    from binsal.models.spec import LoadedModel

    twin = LoadedModel(
        dataclasses.replace(one_pixel_model.spec, name="twin"),
        one_pixel_model.model,
        one_pixel_model.test_accuracy,
    )
    ctx = one_pixel_ctx(one_pixel_model, tmp_path / "both")
    ctx.models = {one_pixel_model.name: one_pixel_model, "twin": twin}
    steps = [0, 50, 90]
    ctx.profile = dataclasses.replace(ctx.profile, benchmark_options={"road": {"fractions": steps}})
    calls: list[str] = []
    real = road.road_images
    monkeypatch.setattr(road, "road_images", lambda *a, **k: calls.append("x") or real(*a, **k))
    rows = road.ROAD().run(ctx)
    assert len(calls) == 2 * 2  # (random, sobel) x (morf, lerf), for both models
    alone = one_pixel_ctx(twin, tmp_path / "alone")
    alone.profile = ctx.profile
    expected = {(r.method, r.metric, r.step): r.value for r in road.ROAD().run(alone)}
    got = {(r.method, r.metric, r.step): r.value for r in rows if r.model == "twin"}
    assert got == expected
