"""Deterministic TensorFlow: the same tiny model trained twice gets identical weights, and two
runs from fresh caches give identical results."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pytest

from binsal.models.determinism import configure
from binsal.models.training import TrainConfig, _fit
from tests.conftest import TINY_CLASSES, TINY_SHAPE, tiny_spec


@dataclass(frozen=True)
class _Arrays:
    x_train: np.ndarray
    y_train: np.ndarray


def test_training_twice_gives_identical_weights():
    record = configure(True)
    assert record["op_determinism"]
    rng = np.random.default_rng(0)
    data = _Arrays(
        rng.random((96, *TINY_SHAPE), dtype=np.float32), rng.integers(0, TINY_CLASSES, 96)
    )
    train = TrainConfig(epochs=2, batch_size=32, seed=5)
    for binary in (False, True):
        spec = tiny_spec("vgg", binary)
        w1 = _fit(spec, data, train)[0].get_weights()
        w2 = _fit(spec, data, train)[0].get_weights()
        assert len(w1) == len(w2)
        for a, b in zip(w1, w2, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_two_runs_from_fresh_caches_give_identical_values(tmp_path):
    from binsal.core.profile import load_profile
    from binsal.core.schema import RESULT_COLUMNS
    from binsal.pipeline import run_suite

    p = load_profile("smoke")
    profile = replace(
        p,
        models=("vgg_fp", "vgg_bnn"),
        saliency=replace(p.saliency, methods=("gradient", "smoothgrad", "gradcam", "random")),
        benchmarks=("rank_correlation", "localization", "deletion_insertion"),
    )
    tables = []
    for i in range(2):  # nothing shared: each run trains its models from scratch
        run = run_suite(
            profile, results_dir=tmp_path / f"r{i}", cache_dir=tmp_path / f"c{i}", quiet=True
        )
        tables.append(pd.read_csv(run / "results.csv")[RESULT_COLUMNS])
    a, b = tables
    assert len(a) > 100
    pd.testing.assert_frame_equal(a.drop(columns="params"), b.drop(columns="params"))
