"""Tiny in-process FP and BNN fixtures (seeded) shared by the tests."""

from __future__ import annotations

import ast
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


@pytest.fixture
def sigint_raises():
    """SIGINT raises KeyboardInterrupt in this test, as in a terminal, also where the suite was
    started with SIGINT ignored (a background job, as CI runs it), which Python keeps."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture(scope="session")
def tiny_batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(123)
    return rng.random((5, *TINY_SHAPE), dtype=np.float32), rng.integers(0, TINY_CLASSES, 5)


@pytest.fixture
def tiny_ctx(tmp_path):
    """A RunContext over the four tiny models and 6 random 16x16 images with square masks,
    for benchmark unit tests (no training, no data set build)."""
    return make_tiny_ctx(tmp_path)


def make_tiny_ctx(tmp_path: Path):
    """The :func:`tiny_ctx` context, its maps and caches under ``tmp_path``."""
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


# a reduced smoke run (3 benchmarks, 3 methods: ~23 cells, ROAR's retrainings among them): what
# the cell and Dask tests compare executors on
QUICK_BENCHMARKS = ("rank_correlation", "localization", "roar")
QUICK_METHODS = ("gradient", "smoothgrad", "gradcam")
QUICK = [
    "--profile",
    "smoke",
    "--benchmarks",
    ",".join(QUICK_BENCHMARKS),
    "--methods",
    ",".join(QUICK_METHODS),
]


def binsal_run(
    args: list[str], cache: Path, results: Path, *, env: dict[str, str] | None = None
) -> Path:
    """``binsal run --quiet`` in a subprocess on this cache and results folder -> its run folder."""
    out = subprocess.run(
        [sys.executable, "-m", "binsal", "run", "--quiet", "--results-dir", str(results), *args],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "BINSAL_CACHE_DIR": str(cache), **(env or {})},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return run_dir_of(results)


def run_dir_of(results: Path) -> Path:
    (run,) = [p for p in results.iterdir() if not p.is_symlink() and (p / "state.json").is_file()]
    return run


def warm_models(source: Path, target: Path) -> Path:
    """A cache holding ``source``'s data and the run's trained models only: not the models
    benchmarks train (ROAR's, the permuted-label pair, ladder rungs: their rows record whether
    they were a cache hit), nor maps or cells."""
    models = source / "models"

    def others(folder: str, names: list[str]) -> list[str]:
        return [n for n in names if "-trained-" not in n] if Path(folder) == models else []

    shutil.copytree(models, target / "models", ignore=others)
    shutil.copytree(source / "tfds", target / "tfds")
    return target


@pytest.fixture(scope="session")
def quick_reference(smoke_run, tmp_path_factory) -> tuple[Path, Path]:
    """The reduced run (``QUICK``) by the CLI in-process on a warm model cache, and that
    cache's source (the smoke run's cache)."""
    _, _, cache = smoke_run
    root = tmp_path_factory.mktemp("quick-ref")
    ref = binsal_run(QUICK, warm_models(cache, root / "cache"), root / "results")
    return ref, cache


SMOKE_FIXTURES = {"smoke_run", "quick_reference"}


def _smoke_tests() -> frozenset[str]:
    """``path::name`` of every test function that takes a smoke fixture, read from the test
    sources (under pytest-xdist the controller, which schedules, collects nothing)."""
    root = Path(__file__).parent
    found = set()
    for path in sorted(root.rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
                if SMOKE_FIXTURES & {a.arg for a in node.args.args}:
                    found.add(f"{path.relative_to(root.parent).as_posix()}::{node.name}")
    return frozenset(found)


SMOKE_TESTS = _smoke_tests()


def _function_id(nodeid: str) -> str:
    return nodeid.split("[", 1)[0]  # without the parameters


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests on the smoke run first (under pytest-xdist they are one work unit, see
    :func:`pytest_xdist_make_scheduler`: the other worker's tests then fill its time); a test
    that reaches the smoke run other than as an argument is an error (its worker would build
    the smoke run a second time)."""
    first, rest = [], []
    for item in items:
        uses = SMOKE_FIXTURES & set(getattr(item, "fixturenames", ()))
        if _function_id(item.nodeid) in SMOKE_TESTS:
            first.append(item)
            continue
        if uses:
            raise pytest.UsageError(f"{item.nodeid} reaches {sorted(uses)}: take it as an argument")
        rest.append(item)
    items[:] = first + rest


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup``: the tests on the smoke run as one work unit (one worker builds
    the session's smoke run once and runs them all), every other test its own unit.
    pytest-xdist's own ``xdist_group`` marks do not group on pytest 9.2 (pytest-xdist issue
    1386)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SmokeOnOneWorker(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "smoke" if _function_id(nodeid) in SMOKE_TESTS else nodeid

    return SmokeOnOneWorker(config, log)
