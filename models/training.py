"""Train matched pairs on the synthetic data, cached on disk by config, data, seed and versions."""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from binsal.cache import config_key, verify_entry, write_entry
from binsal.environment import cache_versions
from binsal.errors import CorruptCacheError
from binsal.models.spec import LoadedModel, ModelSpec


class TrainData(Protocol):
    x_train: np.ndarray
    y_train: np.ndarray
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


def cache_key_parts(spec: ModelSpec, data: TrainData, train: TrainConfig) -> dict[str, Any]:
    return {
        "model": spec.config(),
        "data": {"config": data.config_name, "version": data.version},
        "train": asdict(train),
        "versions": cache_versions(),
    }


def model_cache_dir(cache_root: Path, spec: ModelSpec, data: TrainData, train: TrainConfig) -> Path:
    key = config_key(cache_key_parts(spec, data, train))
    tag = "permuted" if train.permute_labels else "trained"
    return Path(cache_root) / "models" / f"{spec.name}-{tag}-{key}"


def evaluate_accuracy(model: Any, x: np.ndarray, y: np.ndarray, batch_size: int = 256) -> float:
    logits = model.predict(x, batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(logits, axis=1) == y))


def _fit(spec: ModelSpec, data: TrainData, train: TrainConfig, progress: Any = None) -> Any:
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
        bar = progress.bar(range(train.epochs), desc=f"train {spec.name}", total=train.epochs)
        it = iter(bar)

        class _Tick(tf.keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
                next(it, None)
                if hasattr(bar, "set_postfix") and logs:
                    bar.set_postfix(acc=f"{logs.get('accuracy', float('nan')):.3f}")

            def on_train_end(self, logs: dict | None = None) -> None:
                if hasattr(bar, "close"):
                    bar.close()

        callbacks.append(_Tick())
    history = model.fit(
        data.x_train,
        y,
        batch_size=train.batch_size,
        epochs=train.epochs,
        shuffle=True,
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

    A corrupt entry (checksum mismatch, unreadable weights) is reported and retrained.
    """
    entry = model_cache_dir(cache_root, spec, data, train)
    if entry.exists():
        try:
            meta = verify_entry(entry)
            model = spec.build(**spec.build_kwargs)
            model.load_weights(str(entry / "weights.h5"))
            return LoadedModel(spec, model, meta["test_accuracy"], {**meta, "cache": "hit"})
        except (CorruptCacheError, OSError, ValueError, KeyError) as exc:
            warnings.warn(f"{exc}; retraining {spec.name}", stacklevel=2)
    start = time.perf_counter()
    model, history = _fit(spec, data, train, progress)
    seconds = time.perf_counter() - start
    acc = evaluate_accuracy(model, data.x_test, data.y_test)
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
