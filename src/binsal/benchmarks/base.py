"""What every benchmark sees (``RunContext``) and what it must provide (``Benchmark``).

A benchmark orchestrates a grid of model x method x metric and returns tidy rows
(``binsal.core.schema.ScoreRow``, built with ``Benchmark.row``); it never renders anything (that
is ``binsal.reports``, which reads what a benchmark declares from the run manifest).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np

from binsal.core.errors import InvalidInputError
from binsal.core.options import build
from binsal.core.profile import Engine, Profile
from binsal.core.progress import StageTimer, notice, return_freed_memory
from binsal.core.registry import Registry
from binsal.core.schema import Direction, PlotSpec, ScoreRow, score_row
from binsal.models.spec import LoadedModel
from binsal.saliency import METHODS, SaliencyMethod, release_traced
from binsal.saliency.base import current_map_block


def make_method(name: str, profile: Profile, **overrides: Any) -> SaliencyMethod:
    """Instantiate a registered method with the profile's settings (seed, samples, noise,
    chunk size and the map settings: per-sample abs, channel reduction, normalisation) for the
    options it has, then ``overrides``."""
    cls = METHODS[name]
    fields = {f.name for f in dataclasses.fields(cls)}
    sal = profile.saliency
    maps = sal.map_settings()
    defaults = {
        "seed": profile.seed,
        "samples": sal.smoothgrad_samples,
        "noise_level": sal.smoothgrad_noise,
        "chunk_size": sal.chunk_size,
        "per_sample_abs": maps["per_sample_abs"],
        "channel_reduce": maps["channel_reduce"],
        "normalize": maps["normalize"],
    }
    kwargs = {k: v for k, v in defaults.items() if k in fields}
    kwargs.update(overrides)
    return cls(**kwargs)


class MapStore:
    """Saliency maps computed once per (model and its identity: weights, GradCAM layer,
    preprocessing, ...; method options, engine, images, targets) and kept on disk under the run
    folder, so benchmarks share them and an interrupted run resumes; a resumed run whose models
    were retrained computes new maps.

    ``shared``: a folder that outlives runs (``<cache>/maps``), where each map is also kept
    under its key plus ``environment`` (library versions, code, determinism), so that a later
    run on the same stack takes it instead of computing it (a hard link, else a copy)."""

    def __init__(
        self,
        folder: Path,
        engine: Engine = "tf",
        *,
        shared: Path | None = None,
        environment: str = "",
    ):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = engine
        self._memory: dict[str, np.ndarray] = {}
        self.shared = None if shared is None else Path(shared)
        self.environment = environment
        if self.shared is not None:
            self.shared.mkdir(parents=True, exist_ok=True)

    def _shared_path(self, key: str) -> Path | None:
        if self.shared is None:
            return None
        return self.shared / f"{key}__{self.environment}.npy"

    def key(
        self, model: LoadedModel, method: SaliencyMethod, images: np.ndarray, targets: Any
    ) -> str:
        h = hashlib.sha256()
        h.update(
            json.dumps(
                [
                    model.name,
                    model.identity(),
                    method.name,
                    method.key_params(),
                    self.engine,
                    current_map_block(),  # what explain computes in: last bits can depend on it
                ],
                sort_keys=True,
                default=str,
            ).encode()
        )
        h.update(np.ascontiguousarray(images).tobytes())
        if targets is not None:
            h.update(np.ascontiguousarray(targets).astype(np.int64).tobytes())
        return f"{model.name}__{method.name}__{h.hexdigest()[:16]}"

    def put(
        self,
        model: LoadedModel,
        method: SaliencyMethod,
        images: np.ndarray,
        targets: Any,
        maps: np.ndarray,
    ) -> None:
        """Store maps computed elsewhere (any tool) as this method's maps of ``model`` on
        ``images`` for ``targets``: benchmarks that ask for them get these instead."""
        arr = np.asarray(maps, dtype=np.float32)
        if arr.ndim == 4 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.shape != images.shape[:3]:
            raise InvalidInputError(
                f"maps of {model.name}/{method.name} have shape {arr.shape}; the images need "
                f"{images.shape[:3]} (one map per image)"
            )
        if not np.all(np.isfinite(arr)):
            raise InvalidInputError(f"maps of {model.name}/{method.name} hold NaN or inf values")
        key = self.key(model, method, images, targets)
        self._save(key, arr, shared=False)  # another tool's maps: kept to this run
        self._memory[key] = arr

    def release(self) -> None:
        """Forget the maps held in memory (they stay on disk)."""
        self._memory.clear()

    def get(
        self, model: LoadedModel, method: SaliencyMethod, images: np.ndarray, targets: Any
    ) -> np.ndarray:
        key = self.key(model, method, images, targets)
        if key in self._memory:
            return self._memory[key]
        path = self.folder / f"{key}.npy"
        maps = None
        shared = self._shared_path(key)
        if not path.exists() and shared is not None and shared.is_file():
            _link_or_copy(shared, path)
        if path.exists():
            try:
                maps = np.load(path)
                if maps.shape != images.shape[:3] or not np.all(np.isfinite(maps)):
                    maps = None
            except (OSError, ValueError, EOFError):  # EOFError: an empty or truncated file
                maps = None
            if maps is None:
                notice(
                    f"    saved maps {path.name} are incomplete or corrupt; recomputed",
                    warning=True,
                )
        if maps is None:
            maps = method.explain(model, images, targets, engine=self.engine)
            self._save(key, maps)
        self._memory[key] = maps
        return maps

    def store(
        self,
        model: LoadedModel,
        method: SaliencyMethod,
        images: np.ndarray,
        targets: Any,
        maps: np.ndarray,
    ) -> None:
        """Keep maps computed in pieces (e.g. per image shard) as ``method``'s maps of
        ``model`` on ``images`` for ``targets``: in the run folder and the shared folder, as
        :meth:`get` keeps what it computes."""
        arr = np.asarray(maps, np.float32)
        if arr.shape != images.shape[:3]:
            raise ValueError(f"maps of shape {arr.shape} for images of shape {images.shape}")
        self._save(self.key(model, method, images, targets), arr)

    def _save(self, key: str, maps: np.ndarray, shared: bool = True) -> None:
        import os

        path = self.folder / f"{key}.npy"
        # per process: two cells on two workers may compute the same maps at once
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, maps)
        tmp.replace(path)
        target = self._shared_path(key) if shared else None
        if target is not None:
            _link_or_copy(path, target)


def _link_or_copy(source: Path, target: Path) -> None:
    """Put ``source``'s file at ``target`` (a hard link, else a copy; through a temporary name,
    so a reader never sees half a file)."""
    import os
    import shutil

    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        tmp.replace(target)
    except OSError:
        tmp.unlink(missing_ok=True)  # the shared copy is an optimisation: never fail a run on it


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
class Score:
    """What a benchmark declares about one of its metrics: which way is better, and what it is."""

    direction: Direction
    description: str = ""


@dataclass(frozen=True)
class BenchmarkOptions:
    """Base of every benchmark's ``Options``: a frozen dataclass of typed fields with defaults,
    set per profile in its ``[benchmarks.<name>]`` table and checked by their type hints and
    range metadata (:mod:`binsal.core.options`). Fields with ``metadata={"known": "method"}``
    (or ``"model"``) name registered methods (models), checked by ``check_profile``.

    ``replicates``: on how many of the run's training-seed replicates the benchmark runs (0: on
    all of them; 1: on the profile's seed only, e.g. a benchmark that retrains models per
    replicate); its rows say how many they rest on (``n_groups``)."""

    replicates: int = field(default=0, metadata={"min": 0})

    @classmethod
    def from_profile(cls, profile: Profile, benchmark: str) -> Self:
        """The options of ``benchmark`` in ``profile``: its table over the defaults. Depends
        only on the table, never on the profile's name."""
        return build(
            cls,
            profile.benchmark_options.get(benchmark, {}),
            owner=f"profile {profile.name!r}",
            section=f"benchmarks.{benchmark}",
        )


# ``Options.methods``: the profile's (model-dependent) methods, or these names
MethodChoice = Literal["profile"] | tuple[str, ...]
# ``Options.models``: every model of the run, or these names (the run's models among them)
ModelChoice = Literal["all"] | tuple[str, ...]


def chosen_models(ctx: RunContext, wanted: ModelChoice) -> list[str]:
    """``"all"``: the run's models; a list: those of them that the run has, in that order."""
    if wanted == "all":
        return list(ctx.models)
    return [m for m in wanted if m in ctx.models]


def has_training_data(data: Any) -> bool:
    """Whether a run's data has labelled training and test splits (the synthetic set does, a
    user's image folder or the paper's evaluation images do not). Checked on the labels: the
    training images are decoded only when something trains (``ShapesData.x_train``)."""
    return data is not None and all(
        getattr(data, a, None) is not None for a in ("y_train", "x_test", "y_test")
    )


def free_derived_models(ctx: RunContext) -> None:
    """Free the models a benchmark derived from the run's (a ladder rung, an estimator-swapped
    clone) with the functions the engines traced for them, and give the freed heap back: for a
    benchmark that makes several in turn, so that one at a time is in memory (each held ~40-100
    MB of traced graphs until the benchmark's end). The run's models keep theirs."""
    import gc

    release_traced(keep=[m.model for m in ctx.models.values()])
    gc.collect()
    return_freed_memory()


def log(ctx: Any, message: str) -> None:
    """A note on stderr (a skipped combination and why), unless the run is quiet."""
    if not getattr(ctx.progress, "quiet", False):
        notice(f"    {message}")


class Benchmark:
    """Subclass, set ``name``/``title``/``description``/``scores``, give an ``Options`` dataclass
    (a subclass of :class:`BenchmarkOptions`) and implement ``run`` -> tidy rows, built with
    :meth:`row` so that each score's direction comes from ``scores``. Register the class with
    ``@BENCHMARKS.add(name)`` beside it; every module of ``binsal.benchmarks`` is imported on
    package import, so adding a benchmark is adding one module.
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""
    plots: ClassVar[tuple[PlotSpec, ...]] = ()
    order: ClassVar[int] = 100  # position in the report (and in "all")
    scores: ClassVar[Mapping[str, Score]] = {}  # metric -> direction and description
    Options: ClassVar[type[BenchmarkOptions]] = BenchmarkOptions

    def opts(self, profile: Profile | RunContext) -> BenchmarkOptions:
        """This benchmark's typed options in ``profile`` (or a run context's profile)."""
        p = profile.profile if isinstance(profile, RunContext) else profile
        return self.Options.from_profile(p, self.name)

    @classmethod
    def direction(cls, metric: str) -> Direction:
        try:
            return cls.scores[metric].direction
        except KeyError:
            raise ValueError(
                f"benchmark {cls.name!r} has no score {metric!r} declared; "
                f"declared: {', '.join(cls.scores)}"
            ) from None

    @classmethod
    def row(
        cls,
        values: np.ndarray | list[float],
        *,
        metric: str,
        model: str,
        family: str,
        method: str,
        seed: int,
        n_boot: int,
        pair: str = "",
        step: float | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> ScoreRow:
        """One tidy row of a declared score (:func:`binsal.core.schema.score_row`)."""
        return score_row(
            values,
            benchmark=cls.name,
            model=model,
            family=family,
            pair=pair,
            method=method,
            metric=metric,
            direction=cls.direction(metric),
            seed=seed,
            step=step,
            params=params,
            n_boot=n_boot,
        )

    @classmethod
    def declaration(cls) -> dict[str, Any]:
        """What the benchmark is, JSON-able, for the run manifest (reports read this, not the
        benchmark's module): name, title, description, order, plots and scores."""
        return {
            "name": cls.name,
            "title": cls.title,
            "description": cls.description,
            "order": cls.order,
            "plots": [p.as_dict() for p in cls.plots],
            "scores": {
                m: {"direction": s.direction, "description": s.description}
                for m, s in cls.scores.items()
            },
        }

    def run(self, ctx: RunContext) -> list[ScoreRow]:
        raise NotImplementedError

    def subcells(self, profile: Profile, models: Sequence[str]) -> list[str]:
        """Independent pieces of work that :meth:`run` would do, as labels, for an executor to
        run first and in parallel (e.g. ROAR's retrainings); each fills a content-keyed cache
        that ``run`` then only reads. Default: none (``run`` is one cell)."""
        return []

    def run_subcell(self, ctx: RunContext, label: str) -> str:
        """Do the piece ``label`` of :meth:`subcells`: "hit" (already cached), "computed", or
        another word for why nothing was done (e.g. "undefined")."""
        raise NotImplementedError(f"benchmark {self.name!r} has no sub-cells")


class BenchmarkRegistry(Registry[type[Benchmark]]):
    """The benchmark registry; names (and iteration) in report order (``Benchmark.order``)."""

    def names(self) -> list[str]:
        return sorted(super().names(), key=lambda n: self[n].order)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


BENCHMARKS = BenchmarkRegistry("benchmark")
