"""The binarization ladder end to end on tiny models: every rung trained (cached) with one
recipe, rows per rung and per ladder step with n, CI and direction; no verdict for a rung that
did not learn; skipped without training data."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pytest

from binsal.benchmarks.binarization_ladder import BinarizationLadder
from binsal.core.progress import StageTimer
from binsal.core.schema import DIRECTIONS
from binsal.models.ladder import RUNG_NAMES, ladder_edges
from tests.conftest import TINY_CLASSES, TINY_SHAPE, TinyTrainData


def _ladder_ctx(ctx, floor_factor: float, **options):
    rng = np.random.default_rng(5)
    ctx.data = TinyTrainData(
        rng.random((64, *TINY_SHAPE), dtype=np.float32),
        rng.integers(0, TINY_CLASSES, 64),
        rng.random((24, *TINY_SHAPE), dtype=np.float32),
        rng.integers(0, TINY_CLASSES, 24),
    )
    ctx.profile = dataclasses.replace(
        ctx.profile,
        accuracy_floor_factor=floor_factor,
        benchmark_options={"binarization_ladder": {"epochs": 1, **options}},
    )
    return ctx


@pytest.mark.slow
def test_ladder_rows_per_rung_and_step(tiny_ctx):
    # a floor every trained model passes: every rung counts as learned, every step is scored
    ctx = _ladder_ctx(tiny_ctx, 1e-6, methods=["gradient", "gradcam"], n_train=48)
    rows = BinarizationLadder().run(ctx)
    assert rows and all(r.n >= 1 and r.direction in DIRECTIONS for r in rows)
    per_rung = [r for r in rows if r.family in ("FP", "QNN", "BNN")]
    assert [r.model for r in per_rung if r.metric == "test_accuracy"] == [
        f"vgg: {rung}" for rung in RUNG_NAMES
    ]
    acc = next(r for r in per_rung if r.metric == "test_accuracy")
    assert acc.n == 24 and acc.direction == "none" and acc.ci_method == "wilson"
    for metric in ("relevance_mass", "pointing_game", "iou_auc", "entropy_normalized"):
        got = [r for r in per_rung if r.metric == metric and r.method == "gradient"]
        assert len(got) == len(RUNG_NAMES)
        assert all(r.n == 6 and np.isfinite(r.ci_low) for r in got if metric != "pointing_game")
    assert BinarizationLadder.direction("relevance_mass") == "higher"
    assert BinarizationLadder.direction("entropy_normalized") == "lower"
    spear = {
        r.model: r for r in per_rung if r.metric == "spearman_vs_fp" and r.method == "gradient"
    }
    assert "vgg: fp32" not in spear and len(spear) == len(RUNG_NAMES) - 1  # not against itself
    assert all(-1.0 <= r.value <= 1.0 for r in spear.values())
    params = json.loads(next(r for r in per_rung if r.model == "vgg: w4a4").params)
    assert (params["weight_bits"], params["activation_bits"]) == (4, 4)
    assert params["epochs"] == 1 and params["n_train"] == 48 and params["accuracy_floor"] < 0.01
    assert "DoReFa k=4" in params["quantizer"]
    # one change row per ladder step, measure and method; the largest step named per measure
    steps = {r.model for r in rows if r.family == "ladder" and "largest" not in r.model}
    assert steps == {f"vgg: {a} -> {b}" for a, b in ladder_edges(RUNG_NAMES)}
    largest = [r for r in rows if "largest" in r.model]
    keys = {(r.method, r.metric) for r in largest}
    assert ("gradient", "change_relevance_mass") in keys
    assert ("(model)", "change_test_accuracy") in keys
    assert len(keys) == len(largest)  # one per (method, measure)
    for r in largest:
        p = json.loads(r.params)
        same = [
            s
            for s in rows
            if s.model == f"vgg: {p['from']} -> {p['to']}"
            and (s.method, s.metric) == (r.method, r.metric)
        ]
        assert same and same[0].value == pytest.approx(r.value)
        others = [
            s for s in rows if s.family == "ladder" and (s.method, s.metric) == (r.method, r.metric)
        ]
        assert abs(r.value) == pytest.approx(
            max(abs(s.value) for s in others if np.isfinite(s.value))
        )
    # cached: a second run trains nothing and gives the same rows
    again = BinarizationLadder().run(ctx)
    assert [r.value for r in again] == pytest.approx([r.value for r in rows], nan_ok=True)


@pytest.mark.slow
def test_a_rung_that_did_not_learn_gets_no_step(tiny_ctx):
    # floor factor 2.9 on 3 classes: capped at (1 + 1/3) / 2 = 0.67, above what one epoch on
    # random labels reaches
    ctx = _ladder_ctx(tiny_ctx, 2.9, methods=["gradient"], rungs=["fp32", "binary"], n_train=48)
    rows = BinarizationLadder().run(ctx)
    accs = [r for r in rows if r.metric == "test_accuracy"]
    assert len(accs) == 2
    assert all(r.value < json.loads(r.params)["accuracy_floor"] for r in accs)
    assert not [r for r in rows if r.family == "ladder"]


def test_ladder_is_off_with_no_rungs_and_without_training_data(tiny_ctx):
    ctx = _ladder_ctx(tiny_ctx, 2.0, rungs=[])
    assert BinarizationLadder().run(ctx) == []
    bare = SimpleNamespace(data=None, progress=StageTimer(quiet=True), profile=ctx.profile)
    assert BinarizationLadder().run(bare) == []


@pytest.mark.slow
def test_ladder_rows_of_two_seeds_merge_into_one_with_both_seeds(tiny_ctx):
    from binsal.core.replicates import Replicate, merge_replicates
    from binsal.core.schema import collect_units, rows_frame

    ctx = _ladder_ctx(tiny_ctx, 1e-6, methods=["gradient"], rungs=["fp32", "binary"], n_train=48)
    reps = []
    for seed in (0, 1):  # what the pipeline does per training-seed replicate
        ctx.profile = dataclasses.replace(ctx.profile, seed=seed)
        with collect_units() as units:
            rows = BinarizationLadder().run(ctx)
        reps.append(Replicate(seed, rows_frame(rows), dict(units)))
    merged = merge_replicates(reps, seed=0, n_boot=200)
    assert len(merged) == len(reps[0].frame)  # every row found its twin on the other seed
    per_rung = merged[merged["family"] != "ladder"]
    assert (per_rung["n_groups"] == 2).all()
    acc = merged[merged["metric"] == "test_accuracy"]
    assert (acc["n"] == 48).all()  # 24 test images x 2 seeds
