"""Train matched pairs on the synthetic data, cached on disk by config, data, seed and versions."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from binsal.core.cache import config_key, file_lock, verify_entry, write_entry
from binsal.core.environment import cache_versions
from binsal.core.errors import CorruptCacheError
from binsal.models.spec import LoadedModel, ModelSpec


class TrainArrays(Protocol):
    """What training reads: the training images and labels."""

    @property
    def x_train(self) -> np.ndarray: ...

    @property
    def y_train(self) -> np.ndarray: ...


class TrainData(TrainArrays, Protocol):
    x_test: np.ndarray
    y_test: np.ndarray
    config_name: str
    version: str


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained. ``permute_labels`` gives the data-randomization baseline
    (Adebayo et al. 2018): the same architecture trained on randomly permuted labels."""

    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 2e-3
    seed: int = 0
    permute_labels: bool = False
    augment: bool = True  # random flips and 90-degree rotations (the classes are invariant)


def op_determinism() -> bool:
    """Whether TensorFlow op determinism is on (``binsal.models.determinism``): part of every
    model cache key, so a model trained without it is never served to a deterministic run."""
    from tensorflow.python.framework import config as tf_config

    return bool(tf_config.is_op_determinism_enabled())


def cache_key_parts(spec: ModelSpec, data: TrainData, train: TrainConfig) -> dict[str, Any]:
    return {
        "model": spec.config(),
        "data": {"config": data.config_name, "version": data.version},
        "train": asdict(train),
        "versions": cache_versions(),
        "op_determinism": op_determinism(),
    }


def model_cache_dir(cache_root: Path, spec: ModelSpec, data: TrainData, train: TrainConfig) -> Path:
    key = config_key(cache_key_parts(spec, data, train))
    tag = "permuted" if train.permute_labels else "trained"
    return Path(cache_root) / "models" / f"{spec.name}-{tag}-{key}"


# --- Shipped weights: trained models that come with the package ------------------------------
#
# ``binsal/models/weights/`` mirrors the model cache (``<cache>/models/...``): entries written by
# this module's own training code (``binsal run --retrain --export-weights DIR``), each with the
# SHA-256 of its files in its meta.json. On a cache miss an entry with the same key (model,
# data, training config, library versions, op determinism) is checked and copied into the
# cache instead of training; ``binsal run --retrain`` ($BINSAL_SHIPPED_WEIGHTS=0) trains anyway.

SHIPPED_DIR = Path(__file__).parent / "weights"
SHIPPED_ENV = "BINSAL_SHIPPED_WEIGHTS"
USED_ENTRIES: dict[Path, Path] = {}  # cache entry -> its cache root, for --export-weights


def shipped_enabled() -> bool:
    return os.environ.get(SHIPPED_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def from_shipped(entry: Path, cache_root: Path) -> bool:
    """Copy the shipped entry with ``entry``'s key into the cache (checksums verified first);
    False when none is shipped, shipping is off, or the shipped copy fails its checksums."""
    if entry.exists() or not shipped_enabled():
        return False
    source = SHIPPED_DIR / Path(entry).relative_to(cache_root)  # models/...
    if not source.is_dir():
        return False
    try:
        verify_entry(source)
    except CorruptCacheError as exc:
        warnings.warn(f"shipped weights: {exc}; training instead", stacklevel=2)
        return False
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
    shutil.copytree(source, tmp, dirs_exist_ok=True)
    meta = json.loads((tmp / "meta.json").read_text())
    meta["shipped"] = True
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    try:
        os.replace(tmp, entry)
    except OSError:  # another process put it there first
        shutil.rmtree(tmp, ignore_errors=True)
    return True


def _used(entry: Path, cache_root: Path) -> None:
    USED_ENTRIES[Path(entry)] = Path(cache_root)


def export_used_entries(out: str | os.PathLike) -> list[Path]:
    """Copy every model cache entry this process trained or loaded into ``out`` (the layout of
    :data:`SHIPPED_DIR`), meta.json with its checksums included; returns the copies."""
    written = []
    for entry, root in sorted(USED_ENTRIES.items()):
        if not entry.is_dir():
            continue
        target = Path(out) / entry.relative_to(root)
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(entry, target, ignore=shutil.ignore_patterns("*.tmp"))
        meta = json.loads((target / "meta.json").read_text())
        meta.pop("shipped", None)
        (target / "meta.json").write_text(json.dumps(meta, indent=2))
        written.append(target)
    return written


def prepared(spec: ModelSpec, x: np.ndarray) -> np.ndarray:
    """Raw images -> the model's inputs (``spec.preprocess``, identity if none): what training
    and evaluation feed a model, as ``LoadedModel.prepare`` does for saliency."""
    return x if spec.preprocess is None else spec.preprocess(np.asarray(x, np.float32))


def evaluate_accuracy(model: Any, x: np.ndarray, y: np.ndarray, batch_size: int = 256) -> float:
    """Top-1 accuracy of ``model`` on ``x`` (already preprocessed, see :func:`prepared`)."""
    logits = model.predict(x, batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(logits, axis=1) == y))


def training_dataset(x: np.ndarray, y: np.ndarray, train: TrainConfig) -> Any:
    """Seeded shuffled batches; with ``augment``, random flips and 90-degree rotations
    (shape classes and masks are invariant under the dihedral group, so labels stay valid)."""
    import tensorflow as tf

    # np.asarray: no copy of float32 images (8,000 at 64 px are 393 MB) before the tensor's own
    ds = tf.data.Dataset.from_tensor_slices((np.asarray(x, np.float32), y.astype(np.int64)))
    ds = ds.shuffle(len(y), seed=train.seed, reshuffle_each_iteration=True)
    if train.augment:

        def aug(img: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            img = tf.image.random_flip_left_right(img, seed=train.seed)
            k = tf.random.uniform((), 0, 4, dtype=tf.int32, seed=train.seed + 1)
            return tf.image.rot90(img, k), label

        ds = ds.map(aug, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(train.batch_size).prefetch(tf.data.AUTOTUNE)
    threads = tf.config.threading.get_intra_op_parallelism_threads()
    if threads > 0:  # the input pipeline on the process's threads, not on one per machine core
        options = tf.data.Options()
        options.threading.private_threadpool_size = threads
        ds = ds.with_options(options)
    return ds


def _fit(spec: ModelSpec, data: TrainArrays, train: TrainConfig, progress: Any = None) -> Any:
    import tensorflow as tf

    tf.keras.utils.set_random_seed(train.seed)
    model = spec.build(**spec.build_kwargs)
    y = np.asarray(data.y_train)
    if train.permute_labels:
        y = np.random.default_rng(train.seed + 7919).permutation(y)
    steps = int(np.ceil(len(y) / train.batch_size)) * train.epochs
    schedule = tf.keras.optimizers.schedules.CosineDecay(train.learning_rate, steps)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(schedule),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    callbacks = []
    if progress is not None:
        # one bar over every batch of every epoch: it moves per batch and ends at 100 %
        bar = progress.counter(total=steps, desc=f"train {spec.name}", unit="batch")
        per_epoch = steps // train.epochs

        class _Tick(tf.keras.callbacks.Callback):
            def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None):
                bar.update(1)

            def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
                bar.n = (epoch + 1) * per_epoch  # exact, whatever batches Keras reported
                acc = (logs or {}).get("accuracy", float("nan"))
                bar.set_postfix_str(f"epoch {epoch + 1}/{train.epochs}, acc {acc:.3f}")

            def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
                bar.close()

        callbacks.append(_Tick())
    history = model.fit(
        training_dataset(prepared(spec, data.x_train), y, train),
        epochs=train.epochs,
        verbose=0,
        callbacks=callbacks,
    )
    return model, {k: [float(v) for v in vals] for k, vals in history.history.items()}


def train_or_load(
    spec: ModelSpec,
    data: TrainData,
    train: TrainConfig,
    *,
    cache_root: Path,
    progress: Any = None,
) -> LoadedModel:
    """Return the trained model from the cache, training (and caching) it on a miss.

    A corrupt entry (checksum mismatch, unreadable weights) is reported and retrained. Two
    processes that miss the same entry take turns (:func:`binsal.core.cache.file_lock`): the
    second loads what the first trained.
    """
    entry = model_cache_dir(cache_root, spec, data, train)
    with file_lock(entry.parent / f".{entry.name}.build.lock"):
        from_shipped(entry, Path(cache_root))
        _used(entry, Path(cache_root))
        if entry.exists():
            try:
                meta = verify_entry(entry)
                model = spec.build(**spec.build_kwargs)
                model.load_weights(str(entry / "weights.h5"))
                how = "shipped" if meta.get("shipped") else "hit"
                return LoadedModel(spec, model, meta["test_accuracy"], {**meta, "cache": how})
            except (CorruptCacheError, OSError, ValueError, KeyError) as exc:
                warnings.warn(f"{exc}; retraining {spec.name}", stacklevel=2)
        start = time.perf_counter()
        model, history = _fit(spec, data, train, progress)
        seconds = time.perf_counter() - start
        acc = evaluate_accuracy(model, prepared(spec, data.x_test), data.y_test)
        meta = {
            "model": spec.name,
            "test_accuracy": acc,
            "train_accuracy_final": history.get("accuracy", [float("nan")])[-1],
            "train_seconds": seconds,
            "n_train": int(len(data.y_train)),
            "n_test": int(len(data.y_test)),
            "key": json.loads(json.dumps(cache_key_parts(spec, data, train), default=str)),
            "history": history,
        }
        write_entry(entry, {"weights.h5": lambda p: model.save_weights(str(p))}, meta)
        return LoadedModel(spec, model, acc, {**meta, "cache": "miss"})


# --- Training on arbitrary arrays (ROAR's degraded data sets), cached like ``train_or_load`` ---


@dataclass(frozen=True, eq=False)
class _ArrayData:
    x_train: np.ndarray
    y_train: np.ndarray


def arrays_key_parts(spec: ModelSpec, train: TrainConfig, key_extra: Any) -> dict[str, Any]:
    """Cache key of a model trained on arrays: the arrays enter only through ``key_extra``, a
    JSON-able identity of the data (e.g. data set version + subset + degradation), so a cache
    lookup needs no data at all."""
    return {
        "model": spec.config(),
        "data": key_extra,
        "train": asdict(train),
        "versions": cache_versions(),
        "op_determinism": op_determinism(),
    }


def arrays_cache_dir(
    cache_root: Path, spec: ModelSpec, train: TrainConfig, key_extra: Any, *, tag: str = "arrays"
) -> Path:
    key = config_key(json.loads(json.dumps(arrays_key_parts(spec, train, key_extra), default=str)))
    return Path(cache_root) / "models" / tag / f"{spec.name}-{key}"


def load_arrays_fit(entry: Path) -> dict[str, Any] | None:
    """Meta of a cached :func:`train_on_arrays` entry, with ``test_correct`` (per test image 0/1)
    read back when it was evaluated; None on a miss or a corrupt entry (reported)."""
    root = Path(entry).parents[2]  # <cache>/models/<tag>/<entry>
    from_shipped(entry, root)
    if not entry.exists():
        return None
    _used(entry, root)
    try:
        meta = verify_entry(entry)
        if (entry / "test_correct.npy").exists():
            meta["test_correct"] = np.load(entry / "test_correct.npy")
        return {**meta, "cache": "shipped" if meta.get("shipped") else "hit"}
    except (CorruptCacheError, OSError, ValueError) as exc:
        warnings.warn(f"{exc}; retraining", stacklevel=2)
        return None


def train_on_arrays(
    spec: ModelSpec,
    x_train: np.ndarray | Callable[[], np.ndarray],
    y_train: np.ndarray,
    train: TrainConfig,
    *,
    cache_root: Path,
    key_extra: Any,
    x_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    tag: str = "arrays",
    progress: Any = None,
    load_model: bool = True,
) -> tuple[Any, dict[str, Any]]:
    """Train ``spec`` from scratch on (x_train, y_train) with ``train`` (same recipe as
    :func:`train_or_load`), evaluate on (x_test, y_test) and cache weights, meta and the per-image
    test correctness under :func:`arrays_cache_dir` (``x_train`` may be a function giving the
    images, called only when the entry must be trained). Returns (keras model or None when the entry
    was a hit and ``load_model`` is False, meta with ``test_accuracy`` and ``test_correct``).
    Concurrent processes take turns on one entry, as in :func:`train_or_load`."""
    entry = arrays_cache_dir(cache_root, spec, train, key_extra, tag=tag)
    with file_lock(entry.parent / f".{entry.name}.build.lock"):
        meta = load_arrays_fit(entry)
        if meta is not None:
            if not load_model:
                return None, meta
            try:
                model = spec.build(**spec.build_kwargs)
                model.load_weights(str(entry / "weights.h5"))
                return model, meta
            except (OSError, ValueError) as exc:
                warnings.warn(f"{exc}; retraining {spec.name}", stacklevel=2)
        start = time.perf_counter()
        images = x_train() if callable(x_train) else x_train
        model, history = _fit(
            spec, _ArrayData(np.asarray(images), np.asarray(y_train)), train, progress
        )
        seconds = time.perf_counter() - start
        correct = None
        if x_test is not None and y_test is not None:
            logits = model.predict(prepared(spec, x_test), batch_size=256, verbose=0)
            correct = (np.argmax(logits, axis=1) == np.asarray(y_test)).astype(np.float32)
        meta = {
            "model": spec.name,
            "test_accuracy": float(correct.mean()) if correct is not None else float("nan"),
            "train_accuracy_final": history.get("accuracy", [float("nan")])[-1],
            "train_seconds": seconds,
            "n_train": int(len(y_train)),
            "n_test": int(len(correct)) if correct is not None else 0,
            "key": json.loads(json.dumps(arrays_key_parts(spec, train, key_extra), default=str)),
            "history": history,
        }
        files: dict[str, Any] = {"weights.h5": lambda p: model.save_weights(str(p))}
        if correct is not None:
            files["test_correct.npy"] = lambda p: np.save(p, correct)
        write_entry(entry, files, meta)
        _used(entry, Path(cache_root))
        out = {**meta, "cache": "miss"}
        if correct is not None:
            out["test_correct"] = correct
        return model, out
