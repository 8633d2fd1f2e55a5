"""Data-randomization test on tiny models: a permuted-label model trained (and cached) with the
profile's settings, tidy rows; no rows without training data."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

from binsal.benchmarks.data_randomization import DataRandomization
from binsal.core.progress import StageTimer
from tests.conftest import TINY_CLASSES, TINY_SHAPE, TinyTrainData


def _with_options(ctx, bench: str, profile_methods=None, **options):
    """``ctx`` with the profile's methods replaced and a TOML-like section for ``bench``."""
    profile = ctx.profile
    if profile_methods is not None:
        profile = dataclasses.replace(
            profile, saliency=dataclasses.replace(profile.saliency, methods=tuple(profile_methods))
        )
    profile = dataclasses.replace(
        profile, benchmark_options={**profile.benchmark_options, bench: options}
    )
    ctx.profile = profile
    return ctx


@pytest.mark.slow
def test_data_randomization_trains_a_permuted_model_and_emits_rows(tiny_ctx):
    rng = np.random.default_rng(3)
    tiny_ctx.data = TinyTrainData(
        rng.random((96, *TINY_SHAPE), dtype=np.float32),
        rng.integers(0, TINY_CLASSES, 96),
        rng.random((48, *TINY_SHAPE), dtype=np.float32),
        rng.integers(0, TINY_CLASSES, 48),
    )
    _with_options(tiny_ctx, "data_randomization", models=["tiny_vgg_bnn"], epochs=1)
    rows = DataRandomization().run(tiny_ctx)
    metrics = {(r.method, r.metric) for r in rows}
    assert ("(model)", "permuted_test_accuracy") in metrics
    for m in ("gradient", "smoothgrad", "gradcam"):
        assert {(m, "spearman_abs"), (m, "ssim"), (m, "hog_pearson")} <= metrics
    acc = next(r for r in rows if r.metric == "permuted_test_accuracy")
    assert acc.n == 48 and 0.0 <= acc.value <= 1.0 and acc.direction == "none"
    assert all(r.direction == "lower" for r in rows if r.method != "(model)")
    assert {r.model for r in rows} == {"tiny_vgg_bnn"}
    # cached: a second run trains nothing and gives the same rows
    again = DataRandomization().run(tiny_ctx)
    assert [r.value for r in again] == pytest.approx([r.value for r in rows], nan_ok=True)


def test_data_randomization_skips_without_training_data():
    ctx = SimpleNamespace(data=None, progress=StageTimer(quiet=True))  # e.g. the paper profile
    assert DataRandomization().run(ctx) == []
