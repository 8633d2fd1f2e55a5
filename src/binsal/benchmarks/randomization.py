"""Model- and data-randomization sanity checks (Adebayo et al. 2018; DESIGN.md 6.1).

An explanation that does not change when the model's weights are destroyed (model randomization)
or when the model learned nothing but noise labels (data randomization) does not explain the
model. Both benchmarks compare the maps of the evaluation images for their true class, before and
after, by Spearman rank correlation of the abs maps and of the signed maps, SSIM of the abs maps
and Pearson correlation of HOG descriptors of the abs maps (``binsal.metrics.similarity``).
Direction "lower": a method whose maps survive randomization fails the check.
"""

from __future__ import annotations

import sys
import warnings
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from binsal.benchmarks.base import Benchmark, PlotSpec, RunContext, explained_targets
from binsal.core.schema import score_row
from binsal.metrics import similarity
from binsal.models.spec import LoadedModel
from binsal.saliency import CONTROLS, SaliencyMethod, is_defined

# Methods run by default when the profile has them: the paper's three and the other methods
# that cost one backward pass (SmoothGrad-squared, VarGrad, Integrated Gradients and Score-CAM
# cost 20-130 passes per map and per randomization step; the "full" profile runs them all).
# gradcam_inverted is left out: all four similarities are unchanged when both maps are negated,
# so its scores equal gradcam_signed's.
DEFAULT_METHODS = (
    "gradient",
    "smoothgrad",
    "gradcam",
    "gradcam_pp",
    "gradcam_signed",
    "guided_backprop",
)
SMOKE_METHODS = ("gradient", "smoothgrad", "gradcam")
KERNEL_ATTRS = ("kernel", "depthwise_kernel", "pointwise_kernel")
REINIT_ATTRS = (*KERNEL_ATTRS, "bias")
MODES = ("cascading", "independent")
MODEL_LEVEL = "(weights)"  # ``method`` of rows that describe the weights, not a saliency method


def log(ctx: RunContext, message: str) -> None:
    if not getattr(ctx.progress, "quiet", False):
        print(f"    {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- similarity


def hog_cell(shape: Sequence[int]) -> int:
    """HOG cell size: skimage's 8 px (Adebayo et al.) where the maps hold 3x3 such cells,
    else a third of the smaller side (tiny test maps)."""
    side = min(int(shape[-2]), int(shape[-1]))
    return 8 if side >= 24 else max(1, side // 3)


def similarity_scores(
    a: np.ndarray, b: np.ndarray, metrics: Iterable[str] | None = None
) -> dict[str, np.ndarray]:
    """Per-image similarity of two (N, H, W) map batches: "spearman_abs", "spearman_signed",
    "ssim" (abs maps) and "hog_pearson" (abs maps); NaN where undefined (a constant map)."""
    cell = hog_cell(a.shape)
    fns = {
        "spearman_abs": lambda: similarity.spearman(a, b, use_abs=True),
        "spearman_signed": lambda: similarity.spearman(a, b, use_abs=False),
        "ssim": lambda: similarity.ssim(a, b, use_abs=True),
        "hog_pearson": lambda: similarity.hog_pearson(
            a, b, use_abs=True, pixels_per_cell=(cell, cell)
        ),
    }
    return {name: fns[name]() for name in (metrics or fns)}


def blank(maps: np.ndarray) -> np.ndarray:
    """Per map, 1.0 if it is constant (e.g. a GradCAM that went blank, where the correlations
    are undefined), else 0.0."""
    flat = np.asarray(maps).reshape(len(maps), -1)
    return (np.ptp(flat, axis=1) == 0).astype(np.float64)


def resolve_methods(ctx: RunContext, allowed: Any) -> list[str]:
    """The profile's model-dependent methods, restricted to ``allowed`` (a list, or "profile"
    for all of them), in the profile's order."""
    names = [m for m in ctx.methods if m not in CONTROLS]
    if allowed in (None, "profile", "all"):
        return names
    keep = set(allowed)
    return [m for m in names if m in keep]


def resolve_models(ctx: RunContext, wanted: Any) -> list[str]:
    if wanted in (None, "all"):
        return list(ctx.models)
    return [m for m in wanted if m in ctx.models]


# ---------------------------------------------------------------------- re-initialisation


def weighted_layers(model: Any) -> list[Any]:
    """Layers with a kernel (conv, dense, larq QuantConv2D / QuantDense, depthwise and
    separable convs), top (closest to the logits) first; nested models are walked into.
    BatchNormalization is not included (see ``ModelRandomization``)."""
    found: list[Any] = []

    def walk(m: Any) -> None:
        for layer in m.layers:
            if hasattr(layer, "layers") and not any(
                getattr(layer, a, None) is not None for a in KERNEL_ATTRS
            ):
                walk(layer)
            elif any(getattr(layer, a, None) is not None for a in KERNEL_ATTRS):
                found.append(layer)

    walk(model)
    return found[::-1]


def _prefix(attr: str) -> str:
    """Keras names a weight's initializer / constraint / larq quantizer by a prefix:
    kernel_initializer, depthwise_initializer, pointwise_initializer, bias_initializer."""
    return attr if attr in ("kernel", "bias") else attr.removesuffix("_kernel")


def is_binarized(layer: Any) -> bool:
    """A larq layer whose kernel is quantized (its latent real kernel is what we re-draw)."""
    return any(
        getattr(layer, a, None) is not None
        and getattr(layer, f"{_prefix(a)}_quantizer", None) is not None
        for a in KERNEL_ATTRS
    )


def binary_sign(w: np.ndarray) -> np.ndarray:
    """Sign with larq's ``ste_sign`` convention, sign(0) = +1."""
    return np.where(np.asarray(w) >= 0, 1, -1).astype(np.int8)


def layer_seed(seed: int, model_name: str, layer_name: str) -> int:
    """A stable per-(run seed, model, layer) seed for the layer's fresh initializer."""
    tag = zlib.crc32(f"{model_name}/{layer_name}".encode())
    return int(np.random.default_rng([int(seed), tag]).integers(0, 2**31 - 1))


def seeded_initializer(init: Any, seed: int) -> Any:
    """A fresh instance of the layer's own initializer with ``seed`` (keras initializers carry
    their seed in their config; constant ones such as Zeros have none and need none)."""
    cfg = dict(init.get_config())
    if "seed" in cfg:
        cfg["seed"] = int(seed)
    return type(init).from_config(cfg)


def redraw_layer(layer: Any, seed: int) -> dict[str, np.ndarray]:
    """New values for the layer's kernel(s) and bias, drawn with the layer's own initializers
    (seeded), passed through the layer's weight constraint (larq's ``weight_clip`` keeps the
    latent kernel in [-1, 1]; clipping does not change signs). Nothing is written."""
    out: dict[str, np.ndarray] = {}
    for i, attr in enumerate(REINIT_ATTRS):
        var = getattr(layer, attr, None)
        if var is None:
            continue
        init = getattr(layer, f"{_prefix(attr)}_initializer", None)
        if init is None:
            raise ValueError(
                f"layer {layer.name!r} has {attr} but no {_prefix(attr)}_initializer to re-draw it"
            )
        value = seeded_initializer(init, seed + i)(tuple(var.shape), dtype=var.dtype)
        constraint = getattr(layer, f"{_prefix(attr)}_constraint", None)
        if constraint is not None:
            value = constraint(value)
        out[attr] = np.asarray(value)
    return out


def sign_flips(old: Mapping[str, np.ndarray], new: Mapping[str, np.ndarray]) -> np.ndarray:
    """Per kernel weight, whether its sign (as ``ste_sign`` binarizes it) flipped; bias excluded."""
    parts = [(binary_sign(old[a]) != binary_sign(new[a])).ravel() for a in KERNEL_ATTRS if a in old]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score 95 % interval of a binomial proportion (Wilson 1927)."""
    if n == 0:
        return float("nan"), float("nan")
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def clone_loaded(loaded: LoadedModel) -> LoadedModel:
    """A copy of the model with its own variables (the cached model is never touched).

    ``tf.keras.models.clone_model`` rebuilds functional models from their layer configs (larq
    layers included, in-process); other models are rebuilt from their spec.
    """
    import tensorflow as tf

    try:
        clone = tf.keras.models.clone_model(loaded.model)
    except (ValueError, TypeError, NotImplementedError):
        clone = loaded.spec.build(**loaded.spec.build_kwargs)
    clone.set_weights(loaded.model.get_weights())
    return LoadedModel(loaded.spec, clone, loaded.test_accuracy, {**loaded.meta, "clone": True})


@dataclass(frozen=True)
class LayerInfo:
    index: int  # 1 = top (the logits layer)
    name: str
    kind: str  # "binarized" (larq latent kernel) or "real"
    n_weights: int  # kernel weights (bias excluded)
    seed: int


class LayerRandomizer:
    """A clone of a loaded model whose weighted layers can be switched between their original
    weights and a fixed, seeded re-draw (the same draw in cascading and independent mode)."""

    def __init__(self, loaded: LoadedModel, *, seed: int, max_layers: int | None = None):
        self.loaded = clone_loaded(loaded)
        layers = weighted_layers(self.loaded.model)
        self.n_weighted_layers = len(layers)
        if max_layers is not None:
            layers = layers[: int(max_layers)]
        self._layers = {layer.name: layer for layer in layers}
        self.layers: list[LayerInfo] = []
        self.original: dict[str, dict[str, np.ndarray]] = {}
        self.randomized: dict[str, dict[str, np.ndarray]] = {}
        for i, layer in enumerate(layers, start=1):
            s = layer_seed(seed, loaded.name, layer.name)
            self.original[layer.name] = {
                a: getattr(layer, a).numpy()
                for a in REINIT_ATTRS
                if getattr(layer, a, None) is not None
            }
            self.randomized[layer.name] = redraw_layer(layer, s)
            n = sum(
                self.original[layer.name][a].size
                for a in KERNEL_ATTRS
                if a in self.original[layer.name]
            )
            kind = "binarized" if is_binarized(layer) else "real"
            self.layers.append(LayerInfo(i, layer.name, kind, int(n), s))
        self.state: frozenset[str] = frozenset()

    def set_randomized(self, names: Iterable[str]) -> None:
        """Randomize exactly the layers ``names``; every other listed layer gets its original
        weights back. Variables are assigned in place, so compiled saliency functions of the
        clone stay valid."""
        target = frozenset(names)
        unknown = target - set(self._layers)
        if unknown:
            raise KeyError(f"unknown layers {sorted(unknown)}; known: {list(self._layers)}")
        for name in target ^ self.state:
            values = self.randomized[name] if name in target else self.original[name]
            for attr, value in values.items():
                getattr(self._layers[name], attr).assign(value)
        self.state = target

    def sign_flips(self, name: str) -> np.ndarray:
        return sign_flips(self.original[name], self.randomized[name])


# --------------------------------------------------------------------- model randomization


def _steps(
    layers: Sequence[LayerInfo], modes: Sequence[str]
) -> list[tuple[str, int, str, frozenset]]:
    """(mode, step, layer name, randomized set): cascading step k has the top k layers
    randomized (step 0 = none, the clone as loaded); independent step k only the k-th layer."""
    out: list[tuple[str, int, str, frozenset]] = []
    for mode in modes:
        if mode == "cascading":
            out.append((mode, 0, "", frozenset()))
            for k, info in enumerate(layers, start=1):
                out.append((mode, k, info.name, frozenset(x.name for x in layers[:k])))
        elif mode == "independent":
            out.extend((mode, info.index, info.name, frozenset({info.name})) for info in layers)
        else:
            raise ValueError(f"unknown randomization mode {mode!r}; known: {', '.join(MODES)}")
    return out


def model_randomization_rows(
    ctx: RunContext,
    loaded: LoadedModel,
    methods: Mapping[str, SaliencyMethod],
    *,
    n_images: int | None = None,
    max_layers: int | None = None,
    modes: Sequence[str] = MODES,
    benchmark: str = "model_randomization",
) -> list[dict[str, Any]]:
    """Rows of the model-randomization check for one model and the given method instances.

    Original maps come from ``ctx.maps`` (the pipeline's maps of the evaluation images for their
    true class); randomized maps are computed with ``method.explain`` on a clone (never through
    ``ctx.maps``, whose keys name only the model).
    """
    n = len(ctx.images) if n_images is None else min(int(n_images), len(ctx.images))
    all_targets = explained_targets(ctx, loaded.name)
    images, targets = ctx.images[:n], all_targets[:n]
    engine = ctx.maps.engine
    runnable: dict[str, SaliencyMethod] = {}
    for name, method in methods.items():
        if engine in method.engines:
            ok, why = method.defined_for(loaded)
        else:
            ok, why = False, f"no engine {engine!r}"
        if ok:
            runnable[name] = method
        else:
            log(ctx, f"model randomization: skip {name} on {loaded.name}: {why}")
    original = {
        name: ctx.maps.get(loaded, m, ctx.images, all_targets)[:n] for name, m in runnable.items()
    }
    rand = LayerRandomizer(loaded, seed=ctx.seed, max_layers=max_layers)
    info = {x.name: x for x in rand.layers}
    cell = hog_cell(images.shape[1:3])
    common = {"target": "true", "n_images": n, "hog_pixels_per_cell": cell}
    base = {
        "benchmark": benchmark,
        "model": loaded.name,
        "family": loaded.family,
        "pair": loaded.spec.pair,
        "seed": ctx.seed,
        "n_boot": ctx.profile.n_boot,
    }
    rows: list[dict[str, Any]] = []
    scores: dict[tuple[frozenset, str], dict[str, np.ndarray]] = {}
    steps = _steps(rand.layers, modes)
    for mode, step, layer, randomized in ctx.progress.bar(
        steps, desc=f"model randomization {loaded.name}"
    ):
        for name, method in runnable.items():
            key = (randomized, name)
            if key not in scores:
                rand.set_randomized(randomized)
                maps = method.explain(rand.loaded, images, targets, engine=engine)
                scores[key] = {
                    **similarity_scores(original[name], maps),
                    "blank_share": blank(maps),
                }
            params = {
                **method.params(),
                **common,
                "mode": mode,
                "layer": layer,
                "layer_kind": info[layer].kind if layer else "",
                "layer_seed": info[layer].seed if layer else None,
                "layers_randomized": len(randomized),
            }
            for metric, values in scores[key].items():
                rows.append(
                    score_row(
                        values,
                        **base,
                        method=name,
                        metric=f"{mode}_{metric}",
                        direction="none" if metric == "blank_share" else "lower",
                        step=step,
                        params=params,
                    )
                )
    if "cascading" in modes and rand.layers:
        everything = frozenset(x.name for x in rand.layers)
        complete = rand.n_weighted_layers == len(rand.layers)
        for name, method in runnable.items():
            for metric, values in scores[(everything, name)].items():
                rows.append(
                    score_row(
                        values,
                        **base,
                        method=name,
                        metric=f"cascading_{metric}",
                        direction="none" if metric == "blank_share" else "lower",
                        params={
                            **method.params(),
                            **common,
                            "mode": "cascading",
                            "summary": "after the full cascade",
                            "layers_randomized": len(rand.layers),
                            "all_weighted_layers": complete,
                        },
                    )
                )
    rows.extend(_sign_flip_rows(rand, base))
    return rows


def _sign_flip_rows(rand: LayerRandomizer, base: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per layer (step = index from the top) and pooled over the re-drawn layers (no step):
    fraction of kernel weights whose sign flipped, n = weights, Wilson 95 % CI (the flips are
    Bernoulli draws over weights; a bootstrap over 10^5 weights would give the same interval at a
    large memory cost)."""
    rows = []
    pooled: list[np.ndarray] = []
    for info in rand.layers:
        flips = rand.sign_flips(info.name)
        pooled.append(flips)
        if info.kind == "binarized" and flips.size >= 1000 and not 0.3 <= flips.mean() <= 0.7:
            warnings.warn(
                f"re-initialising {info.name} of {base['model']} flipped only "
                f"{flips.mean():.2f} of its weight signs; the sanity check is void",
                stacklevel=2,
            )
        rows.append(
            _flip_row(
                flips,
                base,
                step=info.index,
                params={"layer": info.name, "layer_kind": info.kind, "layer_seed": info.seed},
            )
        )
    if pooled:
        kinds = sorted({x.kind for x in rand.layers})
        rows.append(
            _flip_row(
                np.concatenate(pooled),
                base,
                step=None,
                params={"layer": "all re-drawn", "layer_kind": "+".join(kinds)},
            )
        )
    return rows


def _flip_row(
    flips: np.ndarray, base: Mapping[str, Any], *, step: int | None, params: Mapping[str, Any]
) -> dict[str, Any]:
    k, n = int(flips.sum()), int(flips.size)
    row = score_row(
        [k / n] if n else [],
        **base,
        method=MODEL_LEVEL,
        metric="sign_flip_fraction",
        direction="none",
        step=step,
        params={**params, "ci": "wilson", "unit": "kernel weight", "initializer": "layer's own"},
    )
    row["n"] = n
    row["ci_low"], row["ci_high"] = wilson_interval(k, n)
    return row


class ModelRandomization(Benchmark):
    """Model-randomization sanity check (Adebayo et al. 2018), cascading and independent.

    For every model and model-dependent method (Random / Sobel controls excluded; combinations
    where a method is not defined, e.g. guided backprop through larq's sign, are skipped and
    logged), the weighted layers (conv, dense, larq QuantConv2D / QuantDense) are re-initialised
    on a clone of the model, from the logits layer down. Cascading: step k has the top k layers
    re-initialised (step 0: none); independent: step k has only the k-th layer from the top
    re-initialised. Maps of the evaluation images for their true class are compared with the
    original maps by Spearman of abs maps, Spearman of signed maps, SSIM and HOG-Pearson (abs).
    Metrics are named mode_similarity (cascading_spearman_abs, independent_ssim, ...), direction
    "lower": maps that survive randomization fail the check. mode_blank_share (direction "none")
    is the share of randomized maps that are constant (a blank GradCAM), for which the
    correlations are undefined and left out of n. The scalar rows of the table are the values
    after the full cascade (all weighted layers, or the top max_layers of them).

    Re-initialisation is BNN-aware: every kernel is re-drawn with the layer's own initializer
    (a fresh instance seeded per model and layer), symmetric around zero; for larq layers this is
    the latent real kernel, passed through its weight_clip constraint and then binarized by the
    layer's quantizer as usual. Biases are re-drawn with their own initializer (zeros).
    BatchNormalization layers keep their trained statistics and affine parameters (Adebayo et
    al. re-initialise conv and dense weights; BN would add a second, non-sign effect to the BNN
    comparison). Weights are never permuted or filled with positive values: the metric
    sign_flip_fraction (direction "none") reports per layer the fraction of kernel signs that
    flipped, n = number of weights, with a Wilson 95 % interval; a symmetric re-draw flips about
    half of them, and a re-draw that leaves a BNN's signs alone would leave it unchanged.
    """

    name: ClassVar[str] = "model_randomization"
    title: ClassVar[str] = "Model-randomization sanity check"
    description: ClassVar[str] = __doc__ or ""
    order: ClassVar[int] = 30
    plots: ClassVar[tuple[PlotSpec, ...]] = (
        PlotSpec(
            "cascading_spearman_abs",
            kind="curve",
            title="Cascading randomization: Spearman of abs maps, original vs randomized",
            xlabel="layers randomized from the top",
            ylabel="Spearman rho (abs)",
        ),
        PlotSpec(
            "cascading_ssim",
            kind="curve",
            title="Cascading randomization: SSIM of abs maps",
            xlabel="layers randomized from the top",
            ylabel="SSIM",
        ),
        PlotSpec(
            "cascading_hog_pearson",
            kind="curve",
            title="Cascading randomization: Pearson of HOG features",
            xlabel="layers randomized from the top",
            ylabel="HOG Pearson",
        ),
        PlotSpec(
            "independent_spearman_abs",
            kind="curve",
            title="Independent randomization: Spearman of abs maps",
            xlabel="randomized layer (index from the top)",
            ylabel="Spearman rho (abs)",
        ),
        PlotSpec(
            "sign_flip_fraction",
            kind="curve",
            title="Fraction of kernel signs flipped by the re-initialisation (0.5 expected)",
            xlabel="layer index from the top",
            ylabel="flipped share",
        ),
    )
    options: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {
            "models": "all",
            "methods": list(SMOKE_METHODS),
            "n_images": 8,
            "max_layers": 3,
            "modes": list(MODES),
        },
        "default": {
            "models": "all",
            "methods": list(DEFAULT_METHODS),
            "n_images": 32,
            "max_layers": None,
            "modes": list(MODES),
        },
        "full": {
            "models": "all",
            "methods": "profile",
            "n_images": 128,
            "max_layers": None,
            "modes": list(MODES),
        },
        # ten 224 px ImageNet networks with up to ~80 weighted layers: the top 8, cascading only
        "paper": {
            "models": "all",
            "methods": ["gradient", "gradcam"],
            "n_images": None,
            "max_layers": 8,
            "modes": ["cascading"],
        },
    }

    def run(self, ctx: RunContext) -> list[dict[str, Any]]:
        opts = self.options_for(ctx.profile)
        names = resolve_methods(ctx, opts.get("methods"))
        rows: list[dict[str, Any]] = []
        for model_name in resolve_models(ctx, opts.get("models")):
            loaded = ctx.models[model_name]
            methods: dict[str, SaliencyMethod] = {}
            for m in names:
                ok, why = is_defined(m, loaded, engine=ctx.maps.engine)
                if ok:
                    methods[m] = ctx.method(m)
                else:
                    log(ctx, f"model randomization: skip {m} on {model_name}: {why}")
            rows.extend(
                model_randomization_rows(
                    ctx,
                    loaded,
                    methods,
                    n_images=opts.get("n_images"),
                    max_layers=opts.get("max_layers"),
                    modes=tuple(opts.get("modes", MODES)),
                    benchmark=self.name,
                )
            )
        return rows


# ---------------------------------------------------------------------- data randomization


def permuted_train_config(ctx: RunContext, loaded: LoadedModel, epochs: int | None = None) -> Any:
    """The profile's training settings for this model (as ``binsal.pipeline.load_models`` builds
    them), with ``permute_labels=True``."""
    from binsal.models.training import TrainConfig

    t = ctx.profile.train
    default_epochs = t.epochs_bnn if loaded.family == "BNN" else t.epochs_fp
    return TrainConfig(
        epochs=int(epochs) if epochs is not None else default_epochs,
        batch_size=t.batch_size,
        learning_rate=t.learning_rate,
        seed=ctx.profile.seed,
        permute_labels=True,
    )


class DataRandomization(Benchmark):
    """Data-randomization test (Adebayo et al. 2018): the same architecture trained on randomly
    permuted training labels, with the profile's training settings (epochs, batch size, learning
    rate, seed), cached like every trained model.

    Its maps of the evaluation images for their true class are compared with the properly trained
    model's maps for the same images and targets by Spearman of abs maps, Spearman of signed
    maps, SSIM and HOG-Pearson (abs). Direction "lower": a method whose maps look the same for a
    model that learned nothing transferable fails. The permuted model's test accuracy
    (permuted_test_accuracy, per test image, should be near chance) and final training accuracy
    (permuted_train_accuracy, how far it memorised the noise labels) are reported with direction
    "none". Skipped (no rows) when the run has no training data, e.g. with pretrained networks.
    """

    name: ClassVar[str] = "data_randomization"
    title: ClassVar[str] = "Data-randomization test"
    description: ClassVar[str] = __doc__ or ""
    order: ClassVar[int] = 35
    plots: ClassVar[tuple[PlotSpec, ...]] = (
        PlotSpec(
            "spearman_abs",
            title="Spearman of abs maps, trained vs permuted-label model",
            ylabel="Spearman rho (abs)",
        ),
        PlotSpec("ssim", title="SSIM of abs maps, trained vs permuted-label model", ylabel="SSIM"),
        PlotSpec(
            "hog_pearson", title="HOG-Pearson, trained vs permuted-label model", ylabel="Pearson"
        ),
    )
    options: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {
            "models": ["vgg_fp", "vgg_bnn"],
            "methods": list(SMOKE_METHODS),
            "epochs": None,
            "n_images": None,
        },
        "default": {
            "models": ["vgg_fp", "vgg_bnn"],
            "methods": list(DEFAULT_METHODS),
            # bounded CPU budget: 6 epochs on permuted labels (not the profile's 12/30);
            # recorded in every row's params, the full profile uses the profile's epochs
            "epochs": 6,
            "n_images": None,
        },
        "full": {"models": "all", "methods": "profile", "epochs": None, "n_images": None},
    }

    def run(self, ctx: RunContext) -> list[dict[str, Any]]:
        from binsal.models.training import train_or_load

        if ctx.data is None or not hasattr(ctx.data, "x_train"):
            log(ctx, "data randomization: skipped, this run has no training data")
            return []
        opts = self.options_for(ctx.profile)
        names = resolve_methods(ctx, opts.get("methods"))
        n = len(ctx.images) if opts.get("n_images") is None else int(opts["n_images"])
        n = min(n, len(ctx.images))
        images = ctx.images[:n]
        engine = ctx.maps.engine
        rows: list[dict[str, Any]] = []
        models = resolve_models(ctx, opts.get("models"))
        if not models:
            log(ctx, f"data randomization: none of {opts.get('models')} in this run; skipped")
        for model_name in models:
            trained = ctx.models[model_name]
            if trained.spec.source != "synthetic":
                log(ctx, f"data randomization: skip {model_name} (pretrained, not trained here)")
                continue
            train = permuted_train_config(ctx, trained, opts.get("epochs"))
            with ctx.progress.stage(f"permuted-label model {model_name}"):
                permuted = train_or_load(
                    trained.spec, ctx.data, train, cache_root=ctx.cache_root, progress=ctx.progress
                )
            base = {
                "benchmark": self.name,
                "model": model_name,
                "family": trained.family,
                "pair": trained.spec.pair,
                "seed": ctx.seed,
                "n_boot": ctx.profile.n_boot,
            }
            train_params = {
                "epochs": train.epochs,
                "permute_labels": True,
                "train_seed": train.seed,
                "trained_test_accuracy": trained.test_accuracy,
                "cache": permuted.meta.get("cache", ""),
            }
            correct = self._test_correct(permuted, ctx.data)
            rows.append(
                score_row(
                    correct,
                    **base,
                    method="(model)",
                    metric="permuted_test_accuracy",
                    direction="none",
                    params={**train_params, "chance": 1.0 / trained.spec.num_classes},
                )
            )
            train_acc = permuted.meta.get("train_accuracy_final", float("nan"))
            rows.append(
                score_row(
                    [train_acc],
                    **base,
                    method="(model)",
                    metric="permuted_train_accuracy",
                    direction="none",
                    params={**train_params, "unit": "final epoch (one value)"},
                )
            )
            for m in ctx.progress.bar(names, desc=f"data randomization {model_name}"):
                ok, why = is_defined(m, trained, engine=engine)
                if not ok:
                    log(ctx, f"data randomization: skip {m} on {model_name}: {why}")
                    continue
                method = ctx.method(m)
                targets = explained_targets(ctx, model_name)
                original = ctx.maps.get(trained, method, ctx.images, targets)[:n]
                maps = method.explain(permuted, images, targets[:n], engine=engine)
                params = {
                    **method.params(),
                    **train_params,
                    "target": "true",
                    "n_images": n,
                    "hog_pixels_per_cell": hog_cell(images.shape[1:3]),
                }
                for metric, values in similarity_scores(original, maps).items():
                    rows.append(
                        score_row(
                            values,
                            **base,
                            method=m,
                            metric=metric,
                            direction="lower",
                            params=params,
                        )
                    )
        return rows

    @staticmethod
    def _test_correct(loaded: LoadedModel, data: Any) -> np.ndarray:
        logits = loaded.model.predict(loaded.prepare(data.x_test), batch_size=256, verbose=0)
        return (np.argmax(logits, axis=1) == np.asarray(data.y_test)).astype(np.float64)
