"""The default profile's cold run only evaluates: every model it would train is shipped.

A model the default profile trains but the package does not ship costs a user 15-25 minutes of
training on a 2-core machine on their first ``tox -e bench``. The cache keys are those a run
computes (op determinism on, as ``binsal run`` sets it), on the pinned stack this test runs on.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from binsal.benchmarks.binarization_ladder import BinarizationLadder
from binsal.benchmarks.data_randomization import DataRandomization, permuted_train_config
from binsal.core.profile import load_profile
from binsal.core.replicates import replicate_seeds
from binsal.datasets.synthetic import CLASS_NAMES, BinsalShapes, make_config
from binsal.models import training
from binsal.models.ladder import ladder_spec
from binsal.models.registry import MODELS, pair_widths

ROOT = Path("/cache")  # any root: the shipped set mirrors the cache below it


@pytest.fixture
def default(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(training, "op_determinism", lambda: True)  # as in every run
    profile = load_profile("default")
    d = profile.data
    data = SimpleNamespace(
        config_name=make_config(d.image_size, profile.seed, d.n_train, d.n_test).name,
        version=str(BinsalShapes.VERSION),
    )
    return profile, data


def _shipped(spec, data, train) -> bool:
    entry = training.model_cache_dir(ROOT, spec, data, train)
    return (training.SHIPPED_DIR / entry.relative_to(ROOT) / "meta.json").is_file()


def test_every_trained_model_and_permuted_baseline_is_shipped(default):
    profile, data = default
    opts = DataRandomization.Options.from_profile(profile, "data_randomization")
    missing = []
    for seed in replicate_seeds(profile.seed, profile.train.replicates):
        p = replace(profile, seed=seed)
        t = p.train
        for name in p.models:
            spec = MODELS[name](p)
            train = training.TrainConfig(
                epochs=t.epochs_bnn if spec.family == "BNN" else t.epochs_fp,
                batch_size=t.batch_size,
                learning_rate=t.learning_rate,
                seed=seed,
            )
            if not _shipped(spec, data, train):
                missing.append(f"{name} seed {seed}")
            if name in opts.models:
                loaded = SimpleNamespace(family=spec.family)
                ctx = SimpleNamespace(profile=p)
                cfg = permuted_train_config(ctx, loaded, opts.epochs)  # type: ignore[arg-type]
                if not _shipped(spec, data, cfg):
                    missing.append(f"{name} permuted-label seed {seed}")
    assert not missing, f"not shipped: {missing}"


def test_every_ladder_rung_is_shipped(default):
    profile, data = default
    bench = BinarizationLadder()
    opts = BinarizationLadder.Options.from_profile(profile, "binarization_ladder")
    assert opts.rungs and opts.pairs, "the default profile climbs the ladder"
    n_seeds = opts.replicates or profile.train.replicates
    missing = []
    for seed in replicate_seeds(profile.seed, n_seeds):
        ctx = SimpleNamespace(profile=replace(profile, seed=seed), seed=seed)
        for pair in opts.pairs:
            for rung in opts.rungs:
                spec = ladder_spec(
                    pair,
                    rung,
                    image_size=profile.data.image_size,
                    widths=pair_widths(pair, profile.train.widths_scale),
                    num_classes=len(CLASS_NAMES),
                )
                if not _shipped(spec, data, bench.train_config(ctx, opts, rung)):  # type: ignore[arg-type]
                    missing.append(f"{pair} {rung} seed {seed}")
    assert not missing, f"not shipped: {missing}"
