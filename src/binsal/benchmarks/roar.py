"""ROAR, RemOve And Retrain (Hooker et al. 2019): is what a map ranks first
information the task needs, once removal artefacts are trained away?

For each selected method (Random and Sobel controls always included), every training image of a
seeded subset and every test image is ranked by that method's abs map for its true class,
computed on the model of the same architecture trained on clean data; the top t % of pixels
(MoRF) are replaced by the per-channel mean of the training subset. A fresh model of the same
architecture is trained from scratch on the degraded training set and its accuracy measured on
the degraded test set ("roar_accuracy", step = t in %). The t = 0 model sees clean data: it is
trained once per (model, repeat) and shared by every method's curve. Repeats use training seeds
profile seed + r. Unit of the bootstrap CI: one test image, its correctness averaged over the
repeats (n = test images). "roar_auc" is the per-image area under accuracy vs t (divided by the
t range). Direction "lower" for both: a ranking that finds the evidence degrades accuracy
faster than Random. Retrained models and their per-image test results are cached on disk, keyed
by model spec, ranking (base model weights, method and options), t, data version and subset,
training recipe and library versions, so a warm run trains nothing and computes no map.

Fill (option ``baseline``): Hooker et al. replace removed pixels by the per-channel mean
("train_channel_mean"). But the shape of the removed region can itself reveal the class (Rong
et al. 2022): on the synthetic shapes, a ranking that covers the object leaves a flat
silhouette of the same shape, which a retrained model classified better than the cluttered
original (accuracy above the t = 0 model). The default is therefore ROAD's noisy linear
imputation ("noisy_linear", :mod:`binsal.metrics.imputation`, ~10-20 ms per 64 px image and
fraction), which removed that effect here; the ``road`` benchmark measures the same without
any retraining.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

import numpy as np

from binsal.benchmarks.base import (
    BENCHMARKS,
    Benchmark,
    BenchmarkOptions,
    MethodChoice,
    ModelChoice,
    PlotSpec,
    RunContext,
    Score,
    chosen_models,
    has_training_data,
    log,
    make_method,
)
from binsal.core.errors import InvalidInputError
from binsal.core.profile import Engine, Profile
from binsal.core.schema import ScoreRow
from binsal.metrics.curves import curve_auc
from binsal.metrics.faithfulness import degrade_by_ranking
from binsal.metrics.imputation import DEFAULT_NOISE_STD
from binsal.models.spec import LoadedModel
from binsal.models.training import (
    TrainConfig,
    arrays_cache_dir,
    load_arrays_fit,
    train_on_arrays,
)
from binsal.saliency import CONTROLS, METHODS, SaliencyMethod, is_defined

CACHE_TAG = "roar"
Baseline = Literal["train_channel_mean", "noisy_linear"]
BASELINES: tuple[str, ...] = get_args(Baseline)
UNIT = "test image (correctness averaged over repeats)"


def weights_digest(model: Any) -> str:
    """Content hash of a Keras model's weights: the identity of the ranking model."""
    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()[:16]


def _index_digest(idx: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(idx, dtype=np.int64).tobytes()).hexdigest()[:16]


def subset(n_total: int, n: int | None, seed: int, salt: int) -> np.ndarray:
    """Sorted seeded subset of ``n`` of ``range(n_total)`` (all when n is None or too large)."""
    if n is None or n >= n_total:
        return np.arange(n_total)
    return np.sort(np.random.default_rng([seed, salt]).choice(n_total, int(n), replace=False))


@BENCHMARKS.add("roar")
class ROAR(Benchmark):
    name: ClassVar[str] = "roar"
    title: ClassVar[str] = "ROAR: remove and retrain"
    description: ClassVar[str] = __doc__ or ""
    order: ClassVar[int] = 55
    scores: ClassVar[Mapping[str, Score]] = {
        "roar_accuracy": Score(
            "lower", "test accuracy of a model retrained on data with the top t % removed"
        ),
        "roar_auc": Score("lower", "area under ROAR accuracy vs t, divided by the t range"),
    }
    plots: ClassVar[tuple[PlotSpec, ...]] = (
        PlotSpec(
            "roar_accuracy",
            kind="curve",
            title="ROAR: test accuracy after retraining on degraded data (lower is better)",
            xlabel="fraction removed (%)",
            ylabel="accuracy",
        ),
        PlotSpec(
            "roar_auc", title="ROAR: area under accuracy vs t (lower is better)", ylabel="AUC"
        ),
    )

    @dataclass(frozen=True)
    class Options(BenchmarkOptions):
        """``[benchmarks.roar]``. Every (model, method, t > 0, repeat) is one training from
        scratch: on a CPU keep the models, fractions and training set small."""

        models: ModelChoice = field(default="all", metadata={"known": "model"})
        # ranking methods; the Random and Sobel controls are always added. "profile": the
        # profile's model-dependent methods
        methods: MethodChoice = field(
            default=("gradient", "smoothgrad", "gradcam"), metadata={"known": "method"}
        )
        # t in % of pixels removed; t = 0 (the clean model) is always included
        fractions: tuple[float, ...] = field(
            default=(0.0, 10.0, 30.0, 50.0, 70.0, 90.0),
            metadata={"min": 0, "max": 100, "min_items": 1},
        )
        repeats: int = field(default=1, metadata={"min": 1})  # training seeds seed + r
        # None: the profile's [train] epochs for the model's family / batch size / rate
        epochs: int | None = field(default=None, metadata={"min": 1})
        batch_size: int | None = field(default=None, metadata={"min": 1})
        learning_rate: float | None = field(default=None, metadata={"gt": 0})
        # seeded subsets of the training / test set; None: all of it
        n_train: int | None = field(default=None, metadata={"min": 1})
        n_test: int | None = field(default=None, metadata={"min": 1})
        smoothgrad_samples: int | None = field(default=None, metadata={"min": 1})  # None: profile's
        # "noisy_linear" (ROAD, Rong et al. 2022: removed pixels imputed from their
        # neighbours, so the mask's shape does not leak) or "train_channel_mean" (Hooker et
        # al.'s constant fill). Measured on the default profile (vgg_fp, accuracy at 90 %,
        # clean 0.64): with the constant fill GradCAM 0.70 and Sobel 0.78 rose ABOVE the
        # clean model (the flat silhouette of the object gives the class away); with
        # noisy_linear 0.39 and 0.28, Random 0.32.
        baseline: Baseline = "noisy_linear"
        # noisy_linear only, in units of the image range
        noise_std: float = field(default=DEFAULT_NOISE_STD, metadata={"min": 0})

    def method_for(self, ctx: RunContext, name: str, opts: Options) -> SaliencyMethod:
        fields = {f.name for f in dataclasses.fields(METHODS[name])}
        overrides = {}
        if opts.smoothgrad_samples is not None and "samples" in fields:
            overrides["samples"] = int(opts.smoothgrad_samples)
        return make_method(name, ctx.profile, **overrides)

    def train_config(
        self, ctx: RunContext, loaded: LoadedModel, opts: Options, r: int
    ) -> TrainConfig:
        t = ctx.profile.train
        epochs = opts.epochs
        if epochs is None:
            epochs = t.epochs_bnn if loaded.family == "BNN" else t.epochs_fp
        return TrainConfig(
            epochs=int(epochs),
            batch_size=int(opts.batch_size or t.batch_size),
            learning_rate=float(opts.learning_rate or t.learning_rate),
            seed=ctx.seed + r,
        )

    @staticmethod
    def _grid(opts: Options, profile_methods: Sequence[str]) -> tuple[list[str], list[float]]:
        """The ranking methods (the controls always added) and the fractions (0 included)."""
        if opts.methods == "profile":
            chosen = [m for m in profile_methods if m not in CONTROLS]
        else:
            chosen = list(opts.methods)
        methods = list(dict.fromkeys([*chosen, *CONTROLS]))
        return methods, sorted({0.0, *(float(f) for f in opts.fractions)})

    def _setup(self, ctx: RunContext) -> _Setup | None:
        """What every retraining of this run shares; None when the run has no training data."""
        data = ctx.data
        if not has_training_data(data):
            return None
        opts = self.Options.from_profile(ctx.profile, self.name)
        methods, fractions = self._grid(opts, ctx.methods)
        baseline_params: dict[str, Any] = {"baseline": opts.baseline}
        if opts.baseline == "noisy_linear":
            baseline_params["noise_std"] = float(opts.noise_std)
        tr = subset(len(data.y_train), opts.n_train, ctx.seed, 0)
        te = subset(len(data.y_test), opts.n_test, ctx.seed, 1)
        split = _Split(
            x_train=lambda: np.asarray(data.x_train[tr], np.float32),
            y_train=np.asarray(data.y_train[tr]).astype(np.int64),
            x_test=np.asarray(data.x_test[te], np.float32),
            y_test=np.asarray(data.y_test[te]).astype(np.int64),
        )
        data_id = {
            "config": getattr(data, "config_name", ""),
            "version": getattr(data, "version", ""),
            "train_subset": _index_digest(tr),
            "test_subset": _index_digest(te),
            **baseline_params,
        }
        return _Setup(opts, methods, fractions, baseline_params, split, data_id, len(tr), len(te))

    def _clean_key(self, setup: _Setup) -> dict[str, Any]:
        # the clean model does not depend on how pixels would be removed: one for all fills
        clean_id = {k: v for k, v in setup.data_id.items() if k not in setup.baseline_params}
        return {"data": clean_id, "t": 0.0, "ranking": None}

    def _ranking(
        self, ctx: RunContext, loaded: LoadedModel, method_name: str, setup: _Setup
    ) -> tuple[SaliencyMethod, dict[str, Any], _Degrader]:
        """A ranking method, its cache identity and the degrader of the split by it."""
        method = self.method_for(ctx, method_name, setup.opts)
        ranking = {
            "model": weights_digest(loaded.model) if method.needs_model else None,
            "method": method_name,
            "params": method.key_params(),
            "engine": ctx.maps.engine,
            "order": "morf",
            "use_abs": True,
            "target": "true",
        }
        degrade = _Degrader(
            method,
            loaded,
            setup.split,
            ctx.maps.engine,
            baseline=setup.opts.baseline,
            noise_std=float(setup.opts.noise_std),
            seed=ctx.seed,
            store=Path(ctx.cache_root) / "roar_rankings",
            key={"ranking": ranking, "data": setup.data_id},
        )
        return method, ranking, degrade

    def subcells(self, profile: Profile, models: Sequence[str]) -> list[str]:
        """One cell per retraining of a run on ``models``: ``model/clean/0/r`` (the t = 0
        model, shared by every method) and ``model/method/t/r`` (t > 0); ``r`` the repeat.
        :meth:`run_subcell` trains one into the cache, after which :meth:`run` trains
        nothing. A method not defined on its model is planned and then skipped there.
        Fraction by fraction, every method within one: cells that start side by side (on a
        cluster, in this order) rank by different methods, where two fractions of one method
        would have the second wait for the first one's ranking maps (a file lock)."""
        opts = self.Options.from_profile(profile, self.name)
        chosen = list(models) if opts.models == "all" else [m for m in opts.models if m in models]
        methods, fractions = self._grid(opts, profile.saliency.methods)
        out = []
        for model in chosen:
            for r in range(int(opts.repeats)):
                out.append(f"{model}/clean/0/{r}")
                out += [f"{model}/{m}/{t:g}/{r}" for t in fractions[1:] for m in methods]
        return out

    def run_subcell(self, ctx: RunContext, label: str) -> str:
        """Train (or find in the cache) the retraining ``label`` of :meth:`subcells`; returns
        "hit", "computed", "undefined" (method not defined on the model) or "skipped"."""
        model_name, method_name, t, r = label.split("/")
        setup = self._setup(ctx)
        loaded = ctx.models.get(model_name)
        if setup is None or loaded is None:
            return "skipped"
        retrain = _Retrainer(
            ctx, loaded.spec, [self.train_config(ctx, loaded, setup.opts, int(r))], setup.split
        )
        if method_name == "clean":
            return retrain.warm(self._clean_key(setup), lambda: setup.split)
        if not is_defined(method_name, loaded, engine=ctx.maps.engine)[0]:
            return "undefined"
        _, ranking, degrade = self._ranking(ctx, loaded, method_name, setup)
        key = {"data": setup.data_id, "t": float(t), "ranking": ranking}
        return retrain.warm(key, partial(degrade, float(t)))

    def run(self, ctx: RunContext) -> list[ScoreRow]:
        setup = self._setup(ctx)
        if setup is None:
            log(ctx, "roar: skipped, this run has no training data to retrain on")
            return []
        opts, methods, fractions = setup.opts, setup.methods, setup.fractions
        models = chosen_models(ctx, opts.models)
        repeats = int(opts.repeats)
        baseline_params = setup.baseline_params
        split, data_id = setup.split, setup.data_id

        rows: list[ScoreRow] = []
        for model_name in models:
            loaded = ctx.models[model_name]
            configs = [self.train_config(ctx, loaded, opts, r) for r in range(repeats)]
            retrain = _Retrainer(ctx, loaded.spec, configs, split)
            clean = retrain(self._clean_key(setup), lambda: split)
            grid = [m for m in methods if is_defined(m, loaded, engine=ctx.maps.engine)[0]]
            for method_name in ctx.progress.bar(grid, desc=f"ROAR {model_name}"):
                method, ranking, degrade = self._ranking(ctx, loaded, method_name, setup)
                curves = [clean]
                for t in fractions[1:]:
                    key = {"data": data_id, "t": t, "ranking": ranking}
                    curves.append(retrain(key, partial(degrade, t)))
                per_image = np.stack(curves, axis=-1).mean(axis=0)  # (n_test, F)
                params = {
                    **method.params(),
                    "ranking_model": model_name,
                    "target": "true",
                    "order": "morf",
                    **baseline_params,
                    "fractions": fractions,
                    "repeats": repeats,
                    "train_seeds": [c.seed for c in configs],
                    "epochs": configs[0].epochs,
                    "n_train": setup.n_train,
                    "n_test": setup.n_test,
                    "unit": UNIT,
                }
                common: dict[str, Any] = {
                    "model": model_name,
                    "family": loaded.family,
                    "pair": loaded.spec.pair,
                    "method": method_name,
                    "seed": ctx.seed,
                    "n_boot": ctx.profile.n_boot,
                }
                for j, t in enumerate(fractions):
                    shared = {"shared_baseline": True} if t == 0 else {}
                    rows.append(
                        self.row(
                            per_image[:, j],
                            metric="roar_accuracy",
                            step=t,
                            params={**params, **shared},
                            **common,
                        )
                    )
                if len(fractions) >= 2:
                    auc = curve_auc(np.asarray(fractions) / 100.0, per_image)
                    rows.append(self.row(auc, metric="roar_auc", params=params, **common))
        return rows


@dataclass(frozen=True, eq=False)
class _Setup:
    """What every retraining of one ROAR run shares (:meth:`ROAR._setup`)."""

    opts: ROAR.Options
    methods: list[str]
    fractions: list[float]
    baseline_params: dict[str, Any]
    split: _Split
    data_id: dict[str, Any]
    n_train: int
    n_test: int


class _Split:
    """Training and test images and labels. ``x_train`` may be given as a function: the clean
    split's training images are then read only when a retraining or a ranking needs them (a run
    whose retrained models are all cached never decodes the training set)."""

    def __init__(
        self,
        x_train: np.ndarray | Callable[[], np.ndarray],
        y_train: np.ndarray,
        x_test: np.ndarray,
        y_test: np.ndarray,
    ) -> None:
        self._x_train = x_train
        self.y_train, self.x_test, self.y_test = y_train, x_test, y_test

    @property
    def x_train(self) -> np.ndarray:
        if callable(self._x_train):
            self._x_train = self._x_train()
        return self._x_train

    @property
    def fill(self) -> np.ndarray:
        """The replacement value: per-channel mean of the training subset (Hooker et al.)."""
        return self.x_train.mean(axis=(0, 1, 2)).astype(np.float32)


class _Degrader:
    """Degraded copies of a split by one method's ranking; maps computed lazily, once, only when
    some retrained model is missing from the cache."""

    def __init__(
        self,
        method: SaliencyMethod,
        loaded: LoadedModel,
        split: _Split,
        engine: Engine,
        *,
        baseline: str = "train_channel_mean",
        noise_std: float = DEFAULT_NOISE_STD,
        seed: int = 0,
        store: Path | None = None,
        key: Any = None,
    ):
        if baseline not in BASELINES:
            raise InvalidInputError(
                f"unknown ROAR baseline {baseline!r}; known baselines: {', '.join(BASELINES)}"
            )
        self.method, self.loaded, self.split = method, loaded, split
        self.engine: Engine = engine
        self.baseline, self.noise_std, self.seed = baseline, noise_std, seed
        self.store, self.key = store, key
        self._maps: tuple[np.ndarray, np.ndarray] | None = None

    def _compute(self) -> tuple[np.ndarray, np.ndarray]:
        s = self.split
        return (
            self.method.explain(self.loaded, s.x_train, s.y_train, engine=self.engine),
            self.method.explain(self.loaded, s.x_test, s.y_test, engine=self.engine),
        )

    def ranking_maps(self) -> tuple[np.ndarray, np.ndarray]:
        """The ranking maps of the training and test split, computed once. With a ``store``
        (``<cache>/roar_rankings``) also once across processes: the retrainings of one method
        at several fractions may run as separate cells, and the second takes the first one's
        maps (a file lock makes it wait while they are computed)."""
        if self._maps is None and self.store is None:
            self._maps = self._compute()
        if self._maps is None:
            from binsal.core.cache import config_key, file_lock

            assert self.store is not None
            path = self.store / f"{config_key(self.key, length=24)}.npz"
            with file_lock(self.store / f".{path.name}.lock"):
                try:
                    with np.load(path) as z:
                        self._maps = (z["train"], z["test"])
                except (OSError, ValueError, KeyError, EOFError):
                    self._maps = self._compute()
                    tmp = path.with_name(f".{path.stem}.tmp.npz")
                    np.savez(tmp, train=self._maps[0], test=self._maps[1])
                    tmp.replace(path)
        return self._maps

    def __call__(self, t: float) -> _Split:
        s = self.split
        maps = self.ranking_maps()
        if self.baseline == "noisy_linear":  # ROAD; the noise seeded per split and t
            step = int(round(t * 100))
            noise = {"baseline": "noisy_linear", "noise_std": self.noise_std}
            kw = [{**noise, "seed": [self.seed, k, step]} for k in (0, 1)]
        else:
            kw = [{"baseline": s.fill}] * 2
        x_tr, x_te = (
            degrade_by_ranking(x, m, t / 100.0, order="morf", **k)
            for x, m, k in zip((s.x_train, s.x_test), maps, kw, strict=True)
        )
        return _Split(x_tr, s.y_train, x_te, s.y_test)


class _Retrainer:
    """(repeats, n_test) per-image test correctness of models trained from scratch on a (lazily
    built) split, one per training config; cache hits need neither the data nor a model."""

    def __init__(self, ctx: RunContext, spec: Any, configs: list[TrainConfig], split: _Split):
        self.ctx, self.spec, self.configs, self.split = ctx, spec, configs, split

    def _cached(self, cfg: TrainConfig, key_extra: dict[str, Any]) -> dict[str, Any] | None:
        entry = arrays_cache_dir(self.ctx.cache_root, self.spec, cfg, key_extra, tag=CACHE_TAG)
        meta = load_arrays_fit(entry)
        return meta if meta is not None and "test_correct" in meta else None

    def __call__(self, key_extra: dict[str, Any], make: Callable[[], _Split]) -> np.ndarray:
        out, data = [], None
        for cfg in self.configs:
            meta = self._cached(cfg, key_extra)
            if meta is None:
                if data is None:
                    data = make()
                _, meta = train_on_arrays(
                    self.spec,
                    data.x_train,
                    data.y_train,
                    cfg,
                    cache_root=self.ctx.cache_root,
                    key_extra=key_extra,
                    x_test=data.x_test,
                    y_test=data.y_test,
                    tag=CACHE_TAG,
                    progress=self.ctx.progress,
                )
            out.append(np.asarray(meta["test_correct"], dtype=np.float64))
        return np.stack(out)

    def warm(self, key_extra: dict[str, Any], make: Callable[[], _Split]) -> str:
        """Train what :meth:`__call__` would; "hit" when all of it was cached, else "computed"."""
        if all(self._cached(c, key_extra) is not None for c in self.configs):
            return "hit"
        self(key_extra, make)
        return "computed"
