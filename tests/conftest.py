"""Tiny in-process FP and BNN fixtures (seeded) shared by the tests."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from binsal.models.registry import pair_member_spec
from binsal.models.spec import LoadedModel, ModelSpec

TINY_SHAPE = (16, 16, 3)
TINY_CLASSES = 3


@dataclass(frozen=True, eq=False)
class TinyTrainData:
    """In-memory training and test arrays with the data identity training caches key on."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    config_name: str = "tiny"
    version: str = "0"


def tiny_spec(arch: str, binary: bool) -> ModelSpec:
    """A tiny member of a matched pair, from the factory of the registered pairs."""
    return pair_member_spec(
        arch,
        binary,
        image_size=TINY_SHAPE[0],
        widths=(8, 16),
        num_classes=TINY_CLASSES,
        prefix="tiny_",
    )


def build_tiny(arch: str, binary: bool, seed: int = 0) -> LoadedModel:
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    spec = tiny_spec(arch, binary)
    model = spec.build(**spec.build_kwargs)
    # give BatchNorm non-trivial statistics so inference differs from identity
    x = np.random.default_rng(seed).random((32, *TINY_SHAPE), dtype=np.float32)
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            k = layer.moving_mean.shape[0]
            layer.moving_mean.assign(np.random.default_rng(seed).normal(0, 0.1, k))
    model(x, training=False)
    return LoadedModel(spec, model, float("nan"))


@pytest.fixture(
    scope="session",
    params=[("vgg", False), ("vgg", True), ("resnet", False), ("resnet", True)],
    ids=["vgg_fp", "vgg_bnn", "resnet_fp", "resnet_bnn"],
)
def tiny_model(request: pytest.FixtureRequest) -> LoadedModel:
    return build_tiny(*request.param)


@pytest.fixture(scope="session")
def tiny_batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(123)
    return rng.random((5, *TINY_SHAPE), dtype=np.float32), rng.integers(0, TINY_CLASSES, 5)


@pytest.fixture
def tiny_ctx(tmp_path):
    """A RunContext over the four tiny models and 6 random 16x16 images with square masks,
    for benchmark unit tests (no training, no data set build)."""
    from binsal.benchmarks import MapStore, RunContext
    from binsal.core.profile import load_profile
    from binsal.core.progress import StageTimer

    profile = load_profile("smoke")
    rng = np.random.default_rng(7)
    images = rng.random((6, *TINY_SHAPE), dtype=np.float32)
    masks = np.zeros(images.shape[:3], dtype=bool)
    masks[:, 4:10, 5:11] = True
    labels = rng.integers(0, TINY_CLASSES, 6)
    models = {
        m.name: m for m in (build_tiny(a, b) for a in ("vgg", "resnet") for b in (False, True))
    }
    ctx = RunContext(
        profile=profile,
        models=models,
        images=images,
        labels=labels,
        masks=masks,
        class_names=[f"c{i}" for i in range(TINY_CLASSES)],
        maps=MapStore(tmp_path / "maps"),
        progress=StageTimer(quiet=True),
        run_dir=tmp_path,
        cache_root=tmp_path / "cache",
    )
    for name, m in models.items():
        ctx.predictions[name] = np.argmax(m.model.predict(images, verbose=0), axis=1)
    return ctx


def all_declarations() -> dict[str, dict]:
    """Every registered benchmark's declaration, as the pipeline writes it into the manifest."""
    from binsal.benchmarks import BENCHMARKS

    return {n: BENCHMARKS[n].declaration() for n in BENCHMARKS.names()}


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The smoke profile run once in this process on a fresh cache, as the CLI runs it:
    (run folder, results folder, cache folder); shared by the pipeline and Dask tests."""
    from binsal.core.profile import load_profile
    from binsal.pipeline import run_suite

    root = tmp_path_factory.mktemp("smoke")
    results, cache = root / "results", root / "cache"
    run_dir = run_suite(load_profile("smoke"), results_dir=results, cache_dir=cache, quiet=True)
    return run_dir, results, cache
