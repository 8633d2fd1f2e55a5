"""Localization against ground-truth object masks: does the map point at the object?

On the synthetic data the object is, by construction, the only evidence for the class, so a good
map of the true class concentrates on the object's pixel mask. For every model and every method
of the profile (Random and Sobel controls included as reference rows, repeated per model; model x
method combinations for which a method is not defined, e.g. guided backprop through larq's sign,
are skipped), against the evaluation masks:

"pointing_game": 1 if the map's maximum lies in the mask, tied maxima scoring the share of them
inside (Zhang et al. 2016); "relevance_mass": the share of relevance inside the mask (Arras et
al. 2022); "relevance_rank_accuracy": the share of the K = |mask| top-ranked pixels that lie in the
mask (Arras et al. 2022); "iou": intersection over union of {min-max normalised map >= t} with the
mask as a curve over thresholds t (step = t) and "iou_auc", its area (Oramas et al. 2019). All
direction "higher", n = images with a non-empty mask (and, for relevance mass, a non-zero map).

Pixel-attribution methods (gradients, SmoothGrad, Integrated Gradients, controls) are scored on
the abs map. CAM-family maps (GradCAM, its signed and inverted variants, GradCAM++, Score-CAM) are
ranked by their signed value, as they are displayed: relevance is their positive part, so the
signed and inverted GradCAM variants (the paper's "remove the ReLU and invert") are compared with
GradCAM on equal terms. The choice is recorded as ``use_abs`` in each row's params. Without masks
(e.g. the paper's photos) this benchmark emits no rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from binsal.benchmarks.base import (
    BENCHMARKS,
    Benchmark,
    BenchmarkOptions,
    PlotSpec,
    RunContext,
    Score,
    explained_targets,
)
from binsal.benchmarks.entropy_vs_noise import TARGET
from binsal.core.schema import ScoreRow
from binsal.metrics.curves import curve_auc
from binsal.metrics.localization import (
    DEFAULT_THRESHOLDS,
    IoUAUC,
    PointingGame,
    RelevanceMass,
    RelevanceRankAccuracy,
    iou_curve,
    pointing_game,
    relevance_mass,
    relevance_rank_accuracy,
)
from binsal.saliency import METHODS, is_defined


def ranks_signed(method: str) -> bool:
    """True for methods whose maps are ranked by signed value, their positive part being the
    relevance (the CAM family: the method class's ``ranking`` trait)."""
    return METHODS[method].ranking == "signed"


def localization_scores(
    maps: np.ndarray,
    masks: np.ndarray,
    *,
    use_abs: bool = True,
    thresholds: np.ndarray = DEFAULT_THRESHOLDS,
    tolerance_px: int = 0,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-image scalar scores {metric: (N,)} and the (N, T) IoU curve of ``maps`` vs ``masks``."""
    t = np.asarray(thresholds, dtype=np.float64)
    curve = iou_curve(maps, masks, thresholds=t, use_abs=use_abs)
    scalars = {
        "pointing_game": pointing_game(maps, masks, use_abs=use_abs, tolerance_px=tolerance_px),
        "relevance_mass": relevance_mass(maps, masks, use_abs=use_abs),
        "relevance_rank_accuracy": relevance_rank_accuracy(maps, masks, use_abs=use_abs),
        "iou_auc": curve_auc(t, curve),
    }
    return scalars, curve


@BENCHMARKS.add("localization")
class Localization(Benchmark):
    name: ClassVar[str] = "localization"
    title: ClassVar[str] = "Localization against ground-truth object masks"
    description: ClassVar[str] = __doc__ or ""
    order: ClassVar[int] = 20
    plots: ClassVar[tuple[PlotSpec, ...]] = (
        PlotSpec("relevance_mass", title="Relevance mass inside the object mask (higher = better)"),
        PlotSpec("pointing_game", title="Pointing game hit rate (higher = better)"),
        PlotSpec("iou_auc", title="Area under the IoU-vs-threshold curve (higher = better)"),
        PlotSpec(
            "iou",
            kind="curve",
            title="IoU of the thresholded map with the object mask",
            xlabel="threshold on the min-max normalised map",
            ylabel="IoU",
        ),
    )
    scores: ClassVar[Mapping[str, Score]] = {
        PointingGame.name: Score(
            PointingGame.direction, "whether the map's maximum lies in the object mask"
        ),
        RelevanceMass.name: Score(RelevanceMass.direction, "share of relevance inside the mask"),
        RelevanceRankAccuracy.name: Score(
            RelevanceRankAccuracy.direction, "share of the |mask| top-ranked pixels in the mask"
        ),
        IoUAUC.name: Score(IoUAUC.direction, "area under the IoU-vs-threshold curve"),
        "iou": Score(IoUAUC.direction, "IoU of {min-max normalised map >= t} with the mask"),
    }

    @dataclass(frozen=True)
    class Options(BenchmarkOptions):
        """``[benchmarks.localization]``."""

        # thresholds t on the min-max normalised map for the IoU curve
        thresholds: tuple[float, ...] = field(
            default=tuple(DEFAULT_THRESHOLDS.tolist()),
            metadata={"min": 0, "max": 1, "min_items": 1},
        )
        tolerance_px: int = field(default=0, metadata={"min": 0})  # pointing game
        n_images: int | None = field(default=None, metadata={"min": 1})  # None: all
        # scored besides the profile's methods
        extra_methods: tuple[str, ...] = field(default=(), metadata={"known": "method"})

    def run(self, ctx: RunContext) -> list[ScoreRow]:
        if ctx.masks is None:
            return []
        opts = self.Options.from_profile(ctx.profile, self.name)
        thresholds = np.asarray(opts.thresholds, dtype=np.float64)
        n = len(ctx.images) if opts.n_images is None else int(opts.n_images)
        n = max(1, min(n, len(ctx.images)))
        images, masks = ctx.images[:n], np.asarray(ctx.masks)[:n]
        methods = list(dict.fromkeys([*ctx.methods, *opts.extra_methods]))
        engine = ctx.maps.engine
        grid = [
            (model, method)
            for model in ctx.models
            for method in methods
            if is_defined(method, ctx.models[model], engine=engine)[0]
        ]
        rows: list[ScoreRow] = []
        for model, method_name in ctx.progress.bar(grid, desc="localization"):
            lm = ctx.models[model]
            method = ctx.method(method_name)
            targets = explained_targets(ctx, model)[:n]
            maps = ctx.maps.get(lm, method, images, targets)
            use_abs = not ranks_signed(method_name)
            scalars, curve = localization_scores(
                maps,
                masks,
                use_abs=use_abs,
                thresholds=thresholds,
                tolerance_px=int(opts.tolerance_px),
            )
            params = {
                **method.params(),
                "use_abs": use_abs,
                "tolerance_px": int(opts.tolerance_px),
                "iou_normalization": "minmax",
                "n_thresholds": int(thresholds.size),
                "target": TARGET,
            }
            common: dict[str, Any] = {
                "model": model,
                "family": lm.family,
                "pair": lm.spec.pair,
                "method": method_name,
                "seed": ctx.seed,
                "params": params,
                "n_boot": ctx.profile.n_boot,
            }
            for metric, values in scalars.items():
                rows.append(self.row(values, metric=metric, **common))
            for j, thr in enumerate(thresholds):
                rows.append(self.row(curve[:, j], metric="iou", step=float(thr), **common))
        return rows
