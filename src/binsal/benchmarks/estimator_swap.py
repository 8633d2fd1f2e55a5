"""Estimator swap: how much of a BNN's explanation is its straight-through estimator?

The paper blames, without testing, the sign function's pseudo-gradient for what SmoothGrad and
GradCAM do on BNNs. For every BNN of the run whose inputs are binarized by a sign (larq
``SteSign``, ``ApproxSign``, ``SwishSign``), each gradient-based method is recomputed with the
backward pass of every sign input quantizer replaced, forward pass and weights unchanged
(``binsal.models.estimators``: a clone whose outputs are bit-equal to the model's): the clipped
STE (Courbariaux et al. 2016), Bi-Real Net's ``approx_sign`` (Liu et al. 2018), BNN+'s SignSwish
at beta 10, 5 and 1 (Darabi et al. 2018), a magnitude-aware STE (the backward pass of Bi-Real
Net's magnitude-aware sign, Liu et al. 2018 sec. 3.3, scaled per image and channel) and the
identity (no clipping). Kernel quantizers are kept: their backward pass never reaches an input
gradient. Each row's ``step`` is the estimator, named in ``estimator``: 0 the model as trained (its
own estimator named in ``trained_estimator``), 1 ste, 2 approx_sign, 3 swish_sign_b10,
4 swish_sign_b5, 5 swish_sign_b1, 6 magnitude_aware, 7 identity. Per image, on the first
``n_images`` evaluation images, for the true class (the model's top-1 where an image has none):

"spearman_vs_trained": Spearman rank correlation of the abs maps against the maps of the model as
trained (1 = the estimator leaves the map's ranking unchanged); direction "none" (how far an
estimator moves the maps is descriptive). "fp_bnn_spearman": Spearman of the abs maps against the
matched FP model's maps (the pair partner; model "fp|bnn", family "FP-BNN"), as in
``rank_correlation``; "higher". "relevance_mass" (Arras et al. 2022) and "pointing_game" (Zhang
et al. 2016) against the object masks, abs maps for pixel attributions and the positive part for
GradCAM, as in ``localization``; "higher". "map_entropy": Shannon entropy of the normalised abs
map divided by log(pixels), as in ``entropy_vs_noise``; "lower".

Dead-gradient profile. "zero_gradient_share" (method "gradient"): per image, the share of input
pixels whose gradient is exactly zero in every channel, per estimator; "none". "dead_share"
(method "gradient", ``step`` the sign-quantized layer in forward order, named in ``layer``): per
image, the share of the layer's input-quantizer inputs whose clipped-STE gradient is zero
(|x| > clip, the layer's clip value, larq's 1 by default); "none".

GradCAM at the last feature map passes no sign on its way from the logits (binsal's pairs end in
BatchNorm, pooling and a real classifier), so its maps cannot depend on the estimator: its rows
are a control that the swap changes nothing else (Spearman 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from binsal.benchmarks.base import (
    BENCHMARKS,
    Benchmark,
    BenchmarkOptions,
    ModelChoice,
    PlotSpec,
    RunContext,
    Score,
    chosen_models,
    explained_targets,
    free_derived_models,
    log,
)
from binsal.benchmarks.entropy_vs_noise import TARGET
from binsal.benchmarks.localization import ranks_signed
from binsal.core.errors import InvalidInputError
from binsal.core.lazy import lazy_module
from binsal.core.schema import ScoreRow
from binsal.metrics import similarity
from binsal.metrics.entropy import MapEntropy, map_entropy
from binsal.metrics.localization import PointingGame, RelevanceMass, pointing_game, relevance_mass
from binsal.models.estimators import (
    ESTIMATOR_STEPS,
    ESTIMATORS,
    TRAINED,
    EstimatorName,
    dead_gradient_shares,
    has_sign_inputs,
    swap_estimator,
    trained_estimator,
)
from binsal.models.spec import LoadedModel
from binsal.saliency import SaliencyMethod

if TYPE_CHECKING:
    from binsal.saliency import engine_tf
else:  # TensorFlow loads when a gradient is taken, not on import
    engine_tf = lazy_module("binsal.saliency.engine_tf")

# the x axis of the per-estimator curves (the steps are listed in the description)
ESTIMATOR_AXIS = "estimator (0 = as trained, 7 = identity)"


def zero_gradient_share(grads: np.ndarray) -> np.ndarray:
    """Per image, the share of pixels whose gradient is exactly 0 in every channel:
    (N, H, W, C) -> (N,)."""
    g = np.asarray(grads)
    if g.ndim != 4:
        raise InvalidInputError(f"gradients must be (N, H, W, C), got shape {g.shape}")
    return (g == 0).all(axis=-1).reshape(len(g), -1).mean(axis=1)


def partner_of(ctx: RunContext, model: str) -> str | None:
    """The matched FP model of a BNN (same non-empty ``pair``), None where the run has none."""
    pair = ctx.models[model].spec.pair
    if not pair:
        return None
    for name in ctx.family_models("FP"):
        if ctx.models[name].spec.pair == pair:
            return name
    return None


@BENCHMARKS.add("estimator_swap")
class EstimatorSwap(Benchmark):
    name: ClassVar[str] = "estimator_swap"
    title: ClassVar[str] = "Estimator swap: the BNN's maps under other sign backward passes"
    description: ClassVar[str] = __doc__ or ""
    order: ClassVar[int] = 70
    plots: ClassVar[tuple[PlotSpec, ...]] = (
        PlotSpec(
            "spearman_vs_trained",
            kind="curve",
            title="Spearman of the maps against the maps as trained, per sign estimator",
            xlabel=ESTIMATOR_AXIS,
            ylabel="Spearman rho",
        ),
        PlotSpec(
            "fp_bnn_spearman",
            kind="curve",
            title="FP vs BNN Spearman (matched pair), per estimator of the BNN",
            xlabel=ESTIMATOR_AXIS,
            ylabel="Spearman rho",
        ),
        PlotSpec(
            "relevance_mass",
            kind="curve",
            title="Relevance mass in the object mask, per estimator (higher = better)",
            xlabel=ESTIMATOR_AXIS,
            ylabel="relevance mass",
        ),
        PlotSpec(
            "zero_gradient_share",
            kind="curve",
            title="Share of input pixels with zero gradient, per estimator",
            xlabel=ESTIMATOR_AXIS,
            ylabel="share of pixels",
        ),
        PlotSpec(
            "dead_share",
            kind="curve",
            title="Dead-gradient profile: share of sign inputs with |x| > clip, per layer",
            xlabel="sign-quantized layer (forward order)",
            ylabel="share of inputs",
        ),
    )
    scores: ClassVar[Mapping[str, Score]] = {
        "spearman_vs_trained": Score(
            "none", "Spearman of the abs maps, swapped estimator vs the model as trained"
        ),
        "fp_bnn_spearman": Score(
            "higher", "Spearman of the abs maps, matched FP model vs the BNN with this estimator"
        ),
        "relevance_mass": Score(RelevanceMass.direction, "share of relevance inside the mask"),
        "pointing_game": Score(PointingGame.direction, "whether the map's maximum is in the mask"),
        "map_entropy": Score(
            MapEntropy.direction, "entropy of the normalised abs map / log(pixels)"
        ),
        "zero_gradient_share": Score(
            "none", "share of input pixels whose gradient is 0 in every channel"
        ),
        "dead_share": Score(
            "none", "share of a layer's sign inputs whose clipped-STE gradient is 0 (|x| > clip)"
        ),
    }

    @dataclass(frozen=True)
    class Options(BenchmarkOptions):
        """``[benchmarks.estimator_swap]``: ``smoothgrad_samples`` / ``ig_steps`` None take the
        profile's (the method's) setting."""

        n_images: int = field(default=32, metadata={"min": 1})
        models: ModelChoice = "all"  # the BNNs among them with sign inputs are swapped
        methods: tuple[str, ...] = field(
            default=("gradient", "smoothgrad", "integrated_gradients", "gradcam"),
            metadata={"known": "method", "min_items": 1},
        )
        estimators: tuple[EstimatorName, ...] = tuple(ESTIMATORS)  # type: ignore[assignment]
        smoothgrad_samples: int | None = field(default=None, metadata={"min": 1})
        ig_steps: int | None = field(default=None, metadata={"min": 1})

    def _method(self, ctx: RunContext, name: str, opts: Options) -> SaliencyMethod:
        overrides: dict[str, Any] = {}
        if name == "smoothgrad" and opts.smoothgrad_samples is not None:
            overrides["samples"] = int(opts.smoothgrad_samples)
        if name == "integrated_gradients" and opts.ig_steps is not None:
            overrides["steps"] = int(opts.ig_steps)
        return ctx.method(name, **overrides)

    def run(self, ctx: RunContext) -> list[ScoreRow]:
        opts = self.Options.from_profile(ctx.profile, self.name)
        n = max(1, min(int(opts.n_images), len(ctx.images)))
        images = ctx.images[:n]
        masks = None if ctx.masks is None else np.asarray(ctx.masks)[:n]
        bnns = [
            m
            for m in chosen_models(ctx, opts.models)
            if ctx.models[m].family == "BNN" and has_sign_inputs(ctx.models[m])
        ]
        rows: list[ScoreRow] = []
        for model in ctx.progress.bar(bnns, desc="estimator swap"):
            rows.extend(self._model_rows(ctx, opts, model, images, masks))
            free_derived_models(ctx)  # this model's estimator-swapped clones
        return rows

    def _model_rows(
        self,
        ctx: RunContext,
        opts: Options,
        model: str,
        images: np.ndarray,
        masks: np.ndarray | None,
    ) -> list[ScoreRow]:
        n = len(images)
        lm = ctx.models[model]
        targets = explained_targets(ctx, model)[:n]
        partner = partner_of(ctx, model)
        trained = trained_estimator(lm.model)
        variants: dict[str, LoadedModel] = {TRAINED: lm}
        variants |= {e: swap_estimator(lm, e) for e in opts.estimators}
        base = {"trained_estimator": trained, "target": TARGET, "n_images": n}
        rows: list[ScoreRow] = []

        def add(values: Any, metric: str, method: str, est: str, extra: Mapping[str, Any]) -> None:
            pair_row = metric == "fp_bnn_spearman"
            est_params = {"estimator": TRAINED} if est == TRAINED else ESTIMATORS[est].params()
            rows.append(
                self.row(
                    values,
                    model=f"{partner}|{model}" if pair_row else model,
                    family="FP-BNN" if pair_row else lm.family,
                    pair=lm.spec.pair,
                    method=method,
                    metric=metric,
                    step=ESTIMATOR_STEPS[est],
                    seed=ctx.seed,
                    params={**base, **est_params, **extra},
                    n_boot=ctx.profile.n_boot,
                )
            )

        # the dead-gradient profile: per layer (STE clipping), per estimator (input pixels)
        layers, dead, clips = dead_gradient_shares(
            lm, images, chunk_size=ctx.profile.saliency.chunk_size
        )
        for i, (layer, clip) in enumerate(zip(layers, clips, strict=True)):
            rows.append(
                self.row(
                    dead[i],
                    model=model,
                    family=lm.family,
                    pair=lm.spec.pair,
                    method="gradient",
                    metric="dead_share",
                    step=i + 1,
                    seed=ctx.seed,
                    params={**base, "layer": layer, "clip": clip, "n_layers": len(layers)},
                    n_boot=ctx.profile.n_boot,
                )
            )
        x = lm.prepare(images)
        for est, variant in variants.items():
            grads = engine_tf.gradients(
                variant.model, x, targets, chunk_size=ctx.profile.saliency.chunk_size
            )
            add(zero_gradient_share(grads), "zero_gradient_share", "gradient", est, {})

        for method_name in opts.methods:
            ok, why = ctx.is_defined(model, method_name)
            if not ok:
                log(ctx, f"estimator swap: {method_name} skipped on {model}: {why}")
                continue
            method = self._method(ctx, method_name, opts)
            use_abs = not ranks_signed(method_name)
            extra = {**method.params(), "use_abs": use_abs}
            reference = ctx.maps.get(lm, method, images, targets)
            fp_maps = None
            if partner is not None and ctx.is_defined(partner, method_name)[0]:
                fp_targets = explained_targets(ctx, partner)[:n]
                fp_maps = ctx.maps.get(ctx.models[partner], method, images, fp_targets)
            for est, variant in variants.items():
                maps = (
                    reference if est == TRAINED else ctx.maps.get(variant, method, images, targets)
                )
                if est != TRAINED:
                    rho = similarity.spearman(maps, reference, use_abs=True)
                    add(rho, "spearman_vs_trained", method_name, est, extra)
                if fp_maps is not None:
                    rho_fp = similarity.spearman(fp_maps, maps, use_abs=True)
                    add(rho_fp, "fp_bnn_spearman", method_name, est, extra)
                if masks is not None:
                    add(
                        relevance_mass(maps, masks, use_abs=use_abs),
                        "relevance_mass",
                        method_name,
                        est,
                        extra,
                    )
                    add(
                        pointing_game(maps, masks, use_abs=use_abs),
                        "pointing_game",
                        method_name,
                        est,
                        extra,
                    )
                add(
                    map_entropy(maps, normalized_by_log_n=True),
                    "map_entropy",
                    method_name,
                    est,
                    extra,
                )
        return rows
