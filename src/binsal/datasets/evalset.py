"""The evaluation set a run explains: the profile's data and its seeded evaluation subset."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from binsal.core.profile import Profile


@dataclass(frozen=True)
class EvalSet:
    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray | None
    class_names: list[str]
    indices: np.ndarray
    full: Any  # the whole data set object (train/test), for benchmarks that retrain
    description: dict[str, Any]


def load_data(profile: Profile, cache_root: Path) -> EvalSet:
    """The profile's data and its seeded evaluation subset (first stage of the flow)."""
    src = profile.data.source
    if src != "synthetic":
        from binsal.datasets import images as image_sources  # paper profile sources

        return image_sources.load_eval_set(profile, cache_root)
    import tensorflow_datasets as tfds

    from binsal.datasets.synthetic import load_shapes

    tfds.disable_progress_bar()  # the "data" stage banner is the progress display
    data = load_shapes(
        image_size=profile.data.image_size,
        seed=profile.seed,
        n_train=profile.data.n_train,
        n_test=profile.data.n_test,
        data_dir=cache_root / "tfds",
    )
    n = min(profile.saliency.n_images, len(data.y_test))
    idx = np.sort(np.random.default_rng(profile.seed).choice(len(data.y_test), n, replace=False))
    return EvalSet(
        images=data.x_test[idx],
        labels=data.y_test[idx].astype(np.int64),
        masks=data.m_test[idx],
        class_names=list(data.class_names),
        indices=idx,
        full=data,
        description={
            "source": "synthetic",
            "dataset": "binsal_shapes",
            "config": data.config_name,
            "version": data.version,
            "n_train": int(len(data.y_train)),
            "n_test": int(len(data.y_test)),
            "eval_indices_seed": profile.seed,
        },
    )
