"""Model-randomization sanity check (Adebayo et al. 2018), cascading and
independent: an explanation that does not change when the model's weights are destroyed does not
explain the model. The weight surgery is :mod:`binsal.models.reinit`; the similarity measures
are shared with the data-randomization test (``_randomization_common``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from binsal.benchmarks._randomization_common import (
    SIMILARITY_METRICS,
    blank,
    hog_cell,
    resolve_methods,
    similarity_scores,
)
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
    explained_targets,
    log,
)
from binsal.core.schema import ScoreRow
from binsal.models.reinit import LayerInfo, LayerRandomizer
from binsal.models.spec import LoadedModel
from binsal.saliency import SaliencyMethod, forget_noisy_passes, is_defined

Mode = Literal["cascading", "independent"]
MODES: tuple[Mode, ...] = ("cascading", "independent")
MODEL_LEVEL = "(weights)"  # ``method`` of rows that describe the weights, not a saliency method


def _scores() -> dict[str, Score]:
    out: dict[str, Score] = {}
    for mode in MODES:
        for metric, what in SIMILARITY_METRICS.items():
            out[f"{mode}_{metric}"] = Score("lower", f"{mode} randomization: {what}")
        out[f"{mode}_blank_share"] = Score(
            "none", f"{mode} randomization: share of randomized maps that are constant"
        )
    out["sign_flip_fraction"] = Score(
        "none", "fraction of kernel weight signs flipped by the re-initialisation (Wilson CI)"
    )
    return out


def _steps(
    layers: Sequence[LayerInfo], modes: Sequence[str]
) -> list[tuple[str, int, str, frozenset[str]]]:
    """(mode, step, layer name, randomized set): cascading step k has the top k layers
    randomized (step 0 = none, the clone as loaded); independent step k only the k-th layer."""
    out: list[tuple[str, int, str, frozenset[str]]] = []
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
) -> list[ScoreRow]:
    """Rows of the model-randomization check for one model and the given method instances.

    Original maps come from ``ctx.maps`` (the pipeline's maps of the evaluation images for their
    true class); randomized maps are computed with ``method.explain`` on a clone (never through
    ``ctx.maps``, whose keys name only the model).
    """
    bench = ModelRandomization
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
    fixed = [x.note() for x in rand.skipped]
    if fixed:
        log(ctx, f"model randomization: {loaded.name}: left alone: {'; '.join(fixed)}")
    # named in the summary rows only where there are any (rows of other models keep their keys)
    left_alone: dict[str, Any] = {"fixed_layers_left_alone": fixed} if fixed else {}
    info = {x.name: x for x in rand.layers}
    cell = hog_cell(images.shape[1:3])
    common = {"target": "true", "n_images": n, "hog_pixels_per_cell": cell}
    base: dict[str, Any] = {
        "model": loaded.name,
        "family": loaded.family,
        "pair": loaded.spec.pair,
        "seed": ctx.seed,
        "n_boot": ctx.profile.n_boot,
    }
    rows: list[ScoreRow] = []
    scores: dict[tuple[frozenset[str], str], dict[str, np.ndarray]] = {}
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
                    bench.row(
                        values,
                        **base,
                        method=name,
                        metric=f"{mode}_{metric}",
                        step=step,
                        params=params,
                    )
                )
        forget_noisy_passes()  # the next step's weights differ: its calls cannot hit them
    if "cascading" in modes and rand.layers:
        everything = frozenset(x.name for x in rand.layers)
        complete = rand.n_weighted_layers == len(rand.layers)
        for name, method in runnable.items():
            for metric, values in scores[(everything, name)].items():
                rows.append(
                    bench.row(
                        values,
                        **base,
                        method=name,
                        metric=f"cascading_{metric}",
                        params={
                            **method.params(),
                            **common,
                            "mode": "cascading",
                            "summary": "after the full cascade",
                            "layers_randomized": len(rand.layers),
                            "all_weighted_layers": complete,
                            **left_alone,
                        },
                    )
                )
    rows.extend(_sign_flip_rows(rand, base, left_alone))
    return rows


def _sign_flip_rows(
    rand: LayerRandomizer, base: Mapping[str, Any], left_alone: Mapping[str, Any]
) -> list[ScoreRow]:
    """Per layer (step = index from the top) and pooled over the re-drawn layers (no step):
    fraction of kernel weights whose sign flipped, n = weights, Wilson 95 % CI (the flips are
    Bernoulli draws over weights; a bootstrap over 10^5 weights would give the same interval at a
    large memory cost). The pooled row names the fixed layers left alone (``left_alone``)."""
    rows: list[ScoreRow] = []
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
                params={"layer": "all re-drawn", "layer_kind": "+".join(kinds), **left_alone},
            )
        )
    return rows


def _flip_row(
    flips: np.ndarray, base: Mapping[str, Any], *, step: int | None, params: Mapping[str, Any]
) -> ScoreRow:
    """The share of kernel weights whose sign flipped: one 0/1 unit per weight, so the row's
    interval is Wilson's over n weights (``binsal.core.stats.mean_interval``)."""
    return ModelRandomization.row(
        np.asarray(flips, dtype=np.float64).ravel(),
        **base,
        method=MODEL_LEVEL,
        metric="sign_flip_fraction",
        step=step,
        params={**params, "ci": "wilson", "unit": "kernel weight", "initializer": "layer's own"},
    )


@BENCHMARKS.add("model_randomization")
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
    layer's quantizer as usual. Biases are re-drawn with their own initializer (zeros). A
    serializable initializer is rebuilt from its config with the layer's seed; a plain-function
    one is called as is (NumPy's global generator seeded for the call). Fixed layers, with no
    trainable weights (QuickNet's blur-pool depthwise convolutions), are not re-drawn and do not
    count as steps; the summary rows and the pooled sign_flip_fraction row name them in the
    param fixed_layers_left_alone ("layer (type): reason").
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
    scores: ClassVar[Mapping[str, Score]] = _scores()
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

    @dataclass(frozen=True)
    class Options(BenchmarkOptions):
        """``[benchmarks.model_randomization]``. Methods that cost many passes per map and per
        step (SmoothGrad-squared, VarGrad, Integrated Gradients, Score-CAM) are worth leaving
        out on a CPU; gradcam_inverted scores the same as gradcam_signed (all four similarities
        are unchanged when both maps are negated)."""

        models: ModelChoice = field(default="all", metadata={"known": "model"})
        # "profile": the profile's model-dependent methods; or a list of them
        methods: MethodChoice = field(default="profile", metadata={"known": "method"})
        n_images: int | None = field(default=None, metadata={"min": 1})  # None: all
        max_layers: int | None = field(default=None, metadata={"min": 1})  # None: every layer
        modes: tuple[Mode, ...] = field(default=MODES, metadata={"min_items": 1})

    def run(self, ctx: RunContext) -> list[ScoreRow]:
        opts = self.Options.from_profile(ctx.profile, self.name)
        names = resolve_methods(ctx, opts.methods)
        rows: list[ScoreRow] = []
        for model_name in chosen_models(ctx, opts.models):
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
                    n_images=opts.n_images,
                    max_layers=opts.max_layers,
                    modes=opts.modes,
                )
            )
        return rows
