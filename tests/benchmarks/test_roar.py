"""ROAR on tiny data: rows for every method and the controls, a shared t = 0 model, cache reuse."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

from binsal.benchmarks import BENCHMARKS, MapStore, RunContext
from binsal.benchmarks.roar import ROAR, subset
from binsal.core.profile import load_profile
from binsal.core.progress import StageTimer
from binsal.models import training
from binsal.models.pairs import build_vgg
from binsal.models.spec import LoadedModel, ModelSpec
from binsal.models.training import TrainConfig, arrays_cache_dir, train_on_arrays

TINY_SHAPE = (16, 16, 3)
TINY_CLASSES = 3

ROAR_OPTIONS = {
    "models": ["tiny_vgg_fp"],
    "methods": ["gradient"],
    "fractions": [0, 50],
    "repeats": 1,
    "epochs": 1,
    "n_train": None,
    "n_test": None,
    "batch_size": 50,
}


def tiny_data(n_train: int = 200, n_test: int = 40, seed: int = 0) -> SimpleNamespace:
    """Noise images whose class is the channel of one bright 4x4 patch at a random place."""

    def split(n: int, salt: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([seed, salt])
        x = rng.uniform(0.0, 0.4, (n, *TINY_SHAPE)).astype(np.float32)
        y = rng.integers(0, TINY_CLASSES, n)
        for i, (r, c) in enumerate(rng.integers(0, TINY_SHAPE[0] - 4, (n, 2))):
            x[i, r : r + 4, c : c + 4, y[i]] = 1.0
        return x, y

    x_train, y_train = split(n_train, 0)
    x_test, y_test = split(n_test, 1)
    return SimpleNamespace(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        config_name=f"tiny_patches_{n_train}_{n_test}_{seed}",
        version="0.0.1",
    )


SPEC = ModelSpec(
    name="tiny_vgg_fp",
    family="FP",
    build=build_vgg,
    input_shape=TINY_SHAPE,
    num_classes=TINY_CLASSES,
    gradcam_layer="features",
    pair="tiny_vgg",
    build_kwargs={
        "input_shape": TINY_SHAPE,
        "num_classes": TINY_CLASSES,
        "binary": False,
        "widths": (8, 16),
    },
)


@pytest.fixture(scope="module")
def ranking_model() -> LoadedModel:
    """The 'clean' model whose maps rank the pixels (untrained: ROAR only needs a ranking)."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    return LoadedModel(SPEC, SPEC.build(**SPEC.build_kwargs))


@pytest.fixture
def roar_ctx(ranking_model, tmp_path) -> RunContext:
    data = tiny_data()
    profile = dataclasses.replace(
        load_profile("smoke"), benchmark_options={"roar": dict(ROAR_OPTIONS)}
    )
    return RunContext(
        profile=profile,
        models={SPEC.name: ranking_model},
        images=data.x_test[:4],
        labels=data.y_test[:4],
        masks=None,
        class_names=[f"c{i}" for i in range(TINY_CLASSES)],
        maps=MapStore(tmp_path / "maps"),
        progress=StageTimer(quiet=True),
        run_dir=tmp_path,
        cache_root=tmp_path / "cache",
        data=data,
    )


def test_registered_with_order_and_plots():
    cls = BENCHMARKS["roar"]
    assert cls is ROAR and cls.order == 55 and cls.description
    assert any(p.kind == "curve" and p.metric == "roar_accuracy" for p in cls.plots)
    full = ROAR.Options.from_profile(load_profile("full"), "roar")
    assert full.fractions == (0, 10, 30, 50, 70, 90) and full.repeats == 3
    assert ROAR.direction("roar_accuracy") == ROAR.direction("roar_auc") == "lower"


def test_skips_without_training_data(roar_ctx):
    roar_ctx.data = None
    assert ROAR().run(roar_ctx) == []


def test_subset_is_seeded_sorted_and_complete_when_none():
    a, b = subset(100, 10, 0, 0), subset(100, 10, 0, 0)
    np.testing.assert_array_equal(a, b)
    assert len(set(a)) == 10 and np.all(np.diff(a) > 0)
    np.testing.assert_array_equal(subset(5, None, 0, 0), np.arange(5))


@pytest.mark.slow
def test_rows_shared_baseline_and_cache_reuse(roar_ctx, monkeypatch):
    calls = []
    real_fit = training._fit

    def counting_fit(spec, data, train, progress=None):
        calls.append(len(data.y_train))
        return real_fit(spec, data, train, progress)

    monkeypatch.setattr(training, "_fit", counting_fit)
    rows = ROAR().run(roar_ctx)

    methods = ["gradient", "random", "sobel"]
    assert len(calls) == 1 + len(methods)  # one shared t = 0 model, one per method at t = 50
    assert all(n == 200 for n in calls)
    assert sorted({r.method for r in rows}) == methods
    assert {r.model for r in rows} == {"tiny_vgg_fp"}
    acc = [r for r in rows if r.metric == "roar_accuracy"]
    assert sorted({r.step for r in acc}) == [0.0, 50.0]
    baseline = {r.value for r in acc if r.step == 0}
    assert len(baseline) == 1  # the same clean model for every method
    for r in rows:
        assert r.benchmark == "roar" and r.direction == "lower"
        assert r.n == 40
        assert r.ci_low - 1e-9 <= r.value <= r.ci_high + 1e-9
        assert 0.0 <= r.value <= 1.0
    aucs = [r for r in rows if r.metric == "roar_auc"]
    assert len(aucs) == len(methods) and all(np.isnan(r.step) for r in aucs)

    def no_fit(*args, **kwargs):
        raise AssertionError("a cached ROAR model was retrained")

    monkeypatch.setattr(training, "_fit", no_fit)
    again = ROAR().run(roar_ctx)
    key = ("method", "metric", "value", "ci_low", "ci_high", "n")
    assert [[getattr(r, k) for k in key] for r in again] == [
        [getattr(r, k) for k in key] for r in rows
    ]

    # another fill retrains the degraded models only: the clean one is shared
    calls.clear()
    monkeypatch.setattr(training, "_fit", counting_fit)
    options = {"roar": {**ROAR_OPTIONS, "baseline": "train_channel_mean"}}
    roar_ctx.profile = dataclasses.replace(roar_ctx.profile, benchmark_options=options)
    mean_fill = ROAR().run(roar_ctx)
    assert len(calls) == len(methods)
    clean = {r.value for r in mean_fill if r.metric == "roar_accuracy" and r.step == 0}
    assert clean == baseline
    assert all('"baseline": "train_channel_mean"' in r.params for r in mean_fill)


@pytest.mark.slow
def test_train_on_arrays_caches_weights_and_test_results(tmp_path, monkeypatch):
    data = tiny_data(n_train=64, n_test=16)
    spec = SPEC
    cfg = TrainConfig(epochs=1, batch_size=32, seed=3)
    key = {"data": "tiny", "t": 0}
    model, meta = train_on_arrays(
        spec, data.x_train, data.y_train, cfg, cache_root=tmp_path, key_extra=key,
        x_test=data.x_test, y_test=data.y_test, tag="t",
    )  # fmt: skip
    assert meta["cache"] == "miss" and meta["test_correct"].shape == (16,)
    assert meta["test_accuracy"] == pytest.approx(meta["test_correct"].mean())
    assert (arrays_cache_dir(tmp_path, spec, cfg, key, tag="t") / "weights.h5").exists()

    monkeypatch.setattr(training, "_fit", lambda *a, **k: pytest.fail("retrained"))
    again, meta2 = train_on_arrays(
        spec, data.x_train, data.y_train, cfg, cache_root=tmp_path, key_extra=key,
        x_test=data.x_test, y_test=data.y_test, tag="t",
    )  # fmt: skip
    assert meta2["cache"] == "hit"
    np.testing.assert_array_equal(meta2["test_correct"], meta["test_correct"])
    for a, b in zip(model.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert arrays_cache_dir(tmp_path, spec, cfg, {**key, "t": 50}, tag="t") != arrays_cache_dir(
        tmp_path, spec, cfg, key, tag="t"
    )


def test_ranking_sample_count_is_an_option(roar_ctx):
    three = ROAR.Options(smoothgrad_samples=3)
    sg = ROAR().method_for(roar_ctx, "smoothgrad", three)
    assert sg.samples == 3 and sg.params()["samples"] == 3
    # not set: the profile's (smoke: 4)
    assert ROAR().method_for(roar_ctx, "smoothgrad", ROAR.Options()).samples == 4
    assert ROAR().method_for(roar_ctx, "gradient", three).name == "gradient"


def test_unknown_baseline_lists_the_known_ones(roar_ctx):
    from binsal.core.errors import BinsalError

    roar_ctx.profile = dataclasses.replace(
        roar_ctx.profile, benchmark_options={"roar": {**ROAR_OPTIONS, "baseline": "blur"}}
    )
    with pytest.raises(
        BinsalError,
        match=r"\[benchmarks.roar\] baseline must be one of 'train_channel_mean', 'noisy_linear'",
    ):
        ROAR().run(roar_ctx)


def test_noisy_linear_degrader_imputes_seeded_and_differs_from_the_mean_fill(ranking_model):
    from binsal.benchmarks.roar import _Degrader, _Split
    from binsal.saliency import METHODS

    data = tiny_data(n_train=8, n_test=4)
    split = _Split(data.x_train, data.y_train, data.x_test, data.y_test)
    method = METHODS["sobel"]()
    road = _Degrader(method, ranking_model, split, "tf", baseline="noisy_linear", seed=5)
    a, b = road(50.0), road(50.0)
    np.testing.assert_array_equal(a.x_train, b.x_train)  # seeded
    mean = _Degrader(method, ranking_model, split, "tf")(50.0)
    changed_road = a.x_train != split.x_train
    changed_mean = mean.x_train != split.x_train
    # the same pixels removed (same ranking), other values: the mean fill is one constant per
    # channel, the imputation varies with the neighbourhood
    np.testing.assert_array_equal(changed_road.any(-1), changed_mean.any(-1))
    assert np.unique(mean.x_train[changed_mean.any(-1)][:, 0]).size == 1
    assert np.unique(a.x_train[changed_road.any(-1)][:, 0]).size > 100
    np.testing.assert_array_equal(a.y_train, split.y_train)
    with pytest.raises(Exception, match="known baselines"):
        _Degrader(method, ranking_model, split, "tf", baseline="nope")


def test_subcells_name_every_retraining():
    profile = dataclasses.replace(
        load_profile("smoke"),
        benchmark_options={"roar": {**ROAR_OPTIONS, "fractions": [0, 50, 90], "repeats": 2}},
    )
    labels = ROAR().subcells(profile, ["tiny_vgg_fp", "other"])
    # per repeat: the shared t = 0 model, then (50, 90) x (gradient + the two controls):
    # the cells that start side by side rank by different methods
    per_repeat = ["clean/0"] + [
        f"{m}/{t}" for t in (50, 90) for m in ("gradient", "random", "sobel")
    ]
    assert labels == [f"tiny_vgg_fp/{x}/{r}" for r in (0, 1) for x in per_repeat]
    assert ROAR().subcells(profile, ["other"]) == []  # the chosen model is not in the run


@pytest.mark.slow
def test_subcells_fill_the_cache_run_then_trains_nothing(roar_ctx, monkeypatch):
    """What the cells train is exactly what ``run`` needs: after every sub-cell (each in a
    fresh benchmark object, as on a worker), ``run`` fits nothing and its rows equal a plain
    run's on a fresh cache."""
    labels = ROAR().subcells(roar_ctx.profile, list(roar_ctx.models))
    assert [ROAR().run_subcell(roar_ctx, label) for label in labels] == ["computed"] * 4
    assert [ROAR().run_subcell(roar_ctx, label) for label in labels] == ["hit"] * 4
    # the ranking maps were computed once per method and kept for its other fractions
    assert len(list((roar_ctx.cache_root / "roar_rankings").glob("*.npz"))) == 3

    def no_fit(*args, **kwargs):
        raise AssertionError("run() trained a model the sub-cells should have trained")

    monkeypatch.setattr(training, "_fit", no_fit)
    rows = ROAR().run(roar_ctx)
    monkeypatch.undo()
    plain = dataclasses.replace(roar_ctx, cache_root=roar_ctx.cache_root.parent / "plain")
    for a, b in zip(rows, ROAR().run(plain), strict=True):
        np.testing.assert_equal(a.as_dict(), b.as_dict())
