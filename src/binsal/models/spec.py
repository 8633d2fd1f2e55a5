"""The model registry entry: everything a benchmark needs to know about one network."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Family = Literal["FP", "BNN"]


@dataclass(frozen=True)
class ModelSpec:
    """One network of the suite.

    ``build(**build_kwargs)`` returns an (untrained or pretrained) ``tf.keras.Model`` whose input is
    the raw image (preprocessing, if any, is done by ``preprocess``) and whose output is the
    class *logits* (pre-softmax); saliency is taken of the logit of the target class.
    ``gradcam_layer`` names the last spatial feature map before global pooling.
    """

    name: str
    family: Family
    build: Callable[..., Any]
    input_shape: tuple[int, int, int]
    num_classes: int
    gradcam_layer: str
    pair: str = ""
    source: str = "synthetic"  # "synthetic" (trained here), "keras.applications", "larq-zoo"
    preprocess: Callable[[np.ndarray], np.ndarray] | None = None
    input_range: tuple[float, float] = (0.0, 1.0)
    description: str = ""
    build_kwargs: dict[str, Any] = field(default_factory=dict)

    def config(self) -> dict[str, Any]:
        """What identifies this model's architecture, for cache keys and the manifest."""
        return {
            "name": self.name,
            "family": self.family,
            "pair": self.pair,
            "source": self.source,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "gradcam_layer": self.gradcam_layer,
            "build_kwargs": self.build_kwargs,
        }


@dataclass
class LoadedModel:
    """A built (and trained or pretrained) model, ready for saliency."""

    spec: ModelSpec
    model: Any  # tf.keras.Model producing logits
    test_accuracy: float = float("nan")
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def family(self) -> str:
        return self.spec.family

    @property
    def gradcam_layer(self) -> str:
        return self.spec.gradcam_layer

    def weights_digest(self) -> str:
        """SHA-256 (16 hex) of the model's current weights, computed once: what makes maps of
        this model reusable (a map store keyed by name alone would serve maps of other weights
        after a model is retrained)."""
        digest = self.meta.get("weights_digest")
        if not isinstance(digest, str):
            h = hashlib.sha256()
            for w in self.model.get_weights():
                h.update(str(w.shape).encode())
                h.update(np.ascontiguousarray(w).tobytes())
            digest = h.hexdigest()[:16]
            self.meta["weights_digest"] = digest
        return digest

    def identity(self) -> dict[str, Any]:
        """What, besides the images and the method, decides this model's maps and scores: its
        weights, family, pair, GradCAM layer and preprocessing (part of map and cell keys; a
        user model's GradCAM layer or preprocessing can change between runs)."""
        pre = self.spec.preprocess
        return {
            "weights": self.weights_digest(),
            "family": self.spec.family,
            "pair": self.spec.pair,
            "gradcam_layer": self.spec.gradcam_layer,
            "preprocess": "" if pre is None else f"{pre.__module__}.{pre.__qualname__}",
        }

    def prepare(self, images: np.ndarray) -> np.ndarray:
        """Raw images -> model inputs (the spec's preprocessing, identity if none)."""
        x = np.asarray(images, dtype=np.float32)
        return x if self.spec.preprocess is None else self.spec.preprocess(x)
