"""What every benchmark sees (``RunContext``) and what it must provide (``Benchmark``).

A benchmark orchestrates a grid of model x method x metric and returns tidy rows built with
``binsal.core.schema.score_row``; it never renders anything (that is ``binsal.reports``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from binsal.core.profile import Profile
from binsal.core.progress import StageTimer
from binsal.models.spec import LoadedModel
from binsal.saliency import METHODS, SaliencyMethod


def make_method(name: str, profile: Profile, **overrides: Any) -> SaliencyMethod:
    """Instantiate a registered method with the profile's settings (seed, samples, noise,
    chunk size) for the options it has, then ``overrides``."""
    cls = METHODS[name]
    fields = {f.name for f in dataclasses.fields(cls)}
    sal = profile.saliency
    defaults = {
        "seed": profile.seed,
        "samples": sal.smoothgrad_samples,
        "noise_level": sal.smoothgrad_noise,
        "chunk_size": sal.chunk_size,
    }
    kwargs = {k: v for k, v in defaults.items() if k in fields}
    kwargs.update(overrides)
    return cls(**kwargs)


class MapStore:
    """Saliency maps computed once per (model, method options, images, targets) and kept on disk
    under the run folder, so benchmarks share them and an interrupted run resumes."""

    def __init__(self, folder: Path, engine: str = "tf"):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.engine = engine
        self._memory: dict[str, np.ndarray] = {}

    def key(
        self, model: LoadedModel, method: SaliencyMethod, images: np.ndarray, targets: Any
    ) -> str:
        h = hashlib.sha256()
        h.update(
            json.dumps(
                [model.name, method.name, method.params(), self.engine], sort_keys=True, default=str
            ).encode()
        )
        h.update(np.ascontiguousarray(images).tobytes())
        if targets is not None:
            h.update(np.ascontiguousarray(targets).astype(np.int64).tobytes())
        return f"{model.name}__{method.name}__{h.hexdigest()[:16]}"

    def get(
        self, model: LoadedModel, method: SaliencyMethod, images: np.ndarray, targets: Any
    ) -> np.ndarray:
        key = self.key(model, method, images, targets)
        if key in self._memory:
            return self._memory[key]
        path = self.folder / f"{key}.npy"
        maps = None
        if path.exists():
            try:
                maps = np.load(path)
                if maps.shape != images.shape[:3] or not np.all(np.isfinite(maps)):
                    maps = None
            except (OSError, ValueError):
                maps = None  # corrupt: recompute
        if maps is None:
            maps = method.explain(model, images, targets, engine=self.engine)
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, maps)
            tmp.replace(path)
        self._memory[key] = maps
        return maps


def explained_targets(ctx: Any, model: str) -> np.ndarray:
    """True labels; where an image has none (label -1, e.g. unlabeled photos in the paper
    profile) the model's own top-1 prediction is explained instead. ``ctx`` needs ``labels``
    and, optionally, ``predictions`` (model -> (N,) argmax)."""
    labels = np.asarray(ctx.labels).astype(np.int64)
    predictions = getattr(ctx, "predictions", None) or {}
    if (labels >= 0).all() or model not in predictions:
        return labels
    return np.where(labels >= 0, labels, np.asarray(predictions[model])).astype(np.int64)


@dataclass
class RunContext:
    profile: Profile
    models: dict[str, LoadedModel]
    images: np.ndarray  # (N, H, W, C) evaluation images, raw
    labels: np.ndarray  # (N,) true classes
    masks: np.ndarray | None  # (N, H, W) ground-truth object masks where the data has them
    class_names: list[str]
    maps: MapStore
    progress: StageTimer
    run_dir: Path
    cache_root: Path
    predictions: dict[str, np.ndarray] = field(default_factory=dict)  # model -> (N,) argmax
    data: Any = None  # the full data set (for benchmarks that retrain, e.g. ROAR)

    @property
    def seed(self) -> int:
        return self.profile.seed

    @property
    def methods(self) -> list[str]:
        return list(self.profile.saliency.methods)

    def method(self, name: str, **overrides: Any) -> SaliencyMethod:
        return make_method(name, self.profile, **overrides)

    def maps_for(self, model: str, method: str | SaliencyMethod, targets: Any = None) -> np.ndarray:
        """Maps of ``model`` on the evaluation images for ``targets`` (default: true labels)."""
        m = self.method(method) if isinstance(method, str) else method
        t = self.targets_for(model) if targets is None else targets
        return self.maps.get(self.models[model], m, self.images, t)

    def targets_for(self, model: str) -> np.ndarray:
        """The classes explained for ``model`` (see :func:`explained_targets`)."""
        return explained_targets(self, model)

    def is_defined(self, model: str, method: str) -> tuple[bool, str]:
        """Whether ``method`` is defined on ``model`` (e.g. guided backprop is not on a BNN)."""
        from binsal.saliency import is_defined

        return is_defined(method, self.models[model], engine=self.maps.engine)

    def defined_methods(self, model: str, methods: list[str] | None = None) -> list[str]:
        return [m for m in (methods or self.methods) if self.is_defined(model, m)[0]]

    def family_models(self, family: str) -> list[str]:
        return [n for n, m in self.models.items() if m.family == family]


@dataclass(frozen=True)
class PlotSpec:
    """A declarative figure for the report: the benchmark says *what* to plot, reports draw it.

    ``kind="curve"``: ``metric`` against ``step`` with 95 % CI bands, one panel per method, one
    line per ``hue`` value; ``kind="points"``: one marker per (method, model) with its CI.
    """

    metric: str
    kind: str = "points"  # "points" | "curve"
    title: str = ""
    xlabel: str = "step"
    ylabel: str = ""
    hue: str = "model"


class Benchmark:
    """Subclass, set ``name``/``title``/``description`` and implement ``run`` -> tidy rows.

    Subclasses in any module of ``binsal.benchmarks`` are registered automatically.
    ``options`` holds defaults per profile name ("smoke", "default", "full", ...; key "*" for
    all); a profile TOML section named after the benchmark overrides them (see ``options_for``).
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""
    plots: ClassVar[tuple[PlotSpec, ...]] = ()
    order: ClassVar[int] = 100  # position in the report
    options: ClassVar[dict[str, dict[str, Any]]] = {}

    def options_for(self, profile: Profile) -> dict[str, Any]:
        out = dict(self.options.get("*", {}))
        out.update(self.options.get(profile.name, self.options.get("default", {})))
        out.update(profile.options.get(self.name, {}))
        return out

    def run(self, ctx: RunContext) -> list[dict[str, Any]]:
        raise NotImplementedError
