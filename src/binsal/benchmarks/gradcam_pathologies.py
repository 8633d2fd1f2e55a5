"""GradCAM pathologies: blank maps, evidence lost to the ReLU, inverted maps.

GradCAM (Selvaraju et al. 2019) is ReLU(sum_k alpha_k A^k) at the last spatial feature map,
upsampled to the image. The paper saw BNN GradCAM maps that were blank or lit up the background,
and maps closer to the FP ones after removing the ReLU and inverting. Per model, for the true
class of each evaluation image (a model's own top-1 prediction where an image has no label), one
signed low-resolution CAM c (before the ReLU) is computed with the suite's tf engine, and from it
the standard map upsample(ReLU(c)) and the inverted map upsample(ReLU(-c)):

"blank_share": 1 where the ReLU'd CAM is blank, i.e. c has no positive value above 1e-6 of its
largest magnitude (or c is ~0 everywhere), measured on the low-resolution pre-ReLU CAM; direction
"lower". "blank_share_upsampled": the same for the upsampled standard map a user sees (which can
only be all zeros, the absolute test); "lower". "negative_mass_share": sum max(-c, 0) / sum |c|,
the share of the signed evidence the ReLU discards; "none" (descriptive).

Where the data has object masks: "relevance_mass_standard" / "relevance_mass_inverted", the
share of each map's relevance inside the mask (Arras et al. 2022; a blank map puts no relevance
in the mask and counts as 0), and "pointing_game_standard" / "pointing_game_inverted"
(Zhang et al. 2016; a blank map scores chance, |mask| / (H W)); direction "higher". Per image 1/0 of
"inverted_better_relevance_mass" (relevance mass of the inverted map > that of the standard map)
and "inverted_better_pointing_game" (a strictly better pointing-game score); their means are the
share of images where inverting helps; direction "none". Every row has method "gradcam".

"blank_or_constant_share_<rule>", for each GradCAM layer rule of the ``layer_rules`` option
(``last_feature_map``, ``toolkit_default``: see ``binsal.models.gradcam_rules``): 1 where the
ReLU'd CAM at the layer that rule picks is blank or constant (max - min of the ReLU'd low-resolution
CAM <= rel_eps of its largest magnitude), i.e. blank as tf-keras-vis shows it after min-max
normalisation; a 1x1 layer always scores 1. Direction "lower"; params name the layer and its size.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

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
from binsal.core.lazy import lazy_module
from binsal.core.profile import LayerRule
from binsal.core.schema import ScoreRow
from binsal.metrics.gradcam import BlankMap, NegativeMassShare, blank_map, negative_mass_share
from binsal.metrics.localization import PointingGame, RelevanceMass, pointing_game, relevance_mass
from binsal.models.gradcam_rules import LAYER_RULES, resolve_layer
from binsal.saliency import GradCAM, validate_batch

if TYPE_CHECKING:
    from binsal.saliency import engine_tf
else:  # TensorFlow loads when a map is upsampled, not on import
    engine_tf = lazy_module("binsal.saliency.engine_tf")

SCORES: dict[str, Score] = {
    "blank_share": Score(BlankMap.direction, "share of blank ReLU'd CAMs (low resolution)"),
    "blank_share_upsampled": Score(BlankMap.direction, "share of blank upsampled GradCAM maps"),
    "negative_mass_share": Score(
        NegativeMassShare.direction, "share of the signed CAM evidence the ReLU discards"
    ),
    "relevance_mass_standard": Score(
        RelevanceMass.direction, "relevance mass in the object mask, standard GradCAM"
    ),
    "relevance_mass_inverted": Score(
        RelevanceMass.direction, "relevance mass in the object mask, inverted map ReLU(-c)"
    ),
    "pointing_game_standard": Score(PointingGame.direction, "pointing game, standard GradCAM"),
    "pointing_game_inverted": Score(PointingGame.direction, "pointing game, inverted map"),
    "inverted_better_relevance_mass": Score(
        "none", "share of images where the inverted map has more relevance mass in the mask"
    ),
    "inverted_better_pointing_game": Score(
        "none", "share of images where the inverted map scores better in the pointing game"
    ),
}
for _rule in LAYER_RULES:
    SCORES[f"blank_or_constant_share_{_rule}"] = Score(
        BlankMap.direction, f"share of blank or constant GradCAM maps at the {_rule} layer"
    )


def blank_or_constant(cams: np.ndarray, *, rel_eps: float, abs_eps: float) -> np.ndarray:
    """1.0 per image where ReLU(cam) is blank (:func:`blank_map`) or constant over its pixels
    (then min-max normalisation, as tf-keras-vis applies, makes it blank), else 0.0."""
    cams = np.asarray(cams, dtype=np.float64)
    relu = np.maximum(cams, 0.0)
    scale = np.abs(cams).max(axis=(1, 2))
    spread = relu.max(axis=(1, 2)) - relu.min(axis=(1, 2))
    constant = spread <= rel_eps * scale
    return np.maximum(blank_map(cams, rel_eps=rel_eps, abs_eps=abs_eps), constant * 1.0)


def pathology_scores(
    cams: np.ndarray,
    size: tuple[int, int],
    masks: np.ndarray | None,
    *,
    rel_eps: float = 1e-6,
    abs_eps: float = 1e-12,
) -> dict[str, np.ndarray]:
    """Per-image scores {metric: (N,)} from signed low-resolution CAMs (N, h, w)."""
    cams = np.asarray(cams, dtype=np.float64)
    standard = engine_tf.upsample(np.maximum(cams, 0.0), size)
    inverted = engine_tf.upsample(np.maximum(-cams, 0.0), size)
    out = {
        "blank_share": blank_map(cams, rel_eps=rel_eps, abs_eps=abs_eps),
        "blank_share_upsampled": blank_map(standard, rel_eps=rel_eps, abs_eps=abs_eps),
        "negative_mass_share": negative_mass_share(cams),
    }
    if masks is None:
        return out
    no_truth = ~np.asarray(masks, dtype=bool).any(axis=(1, 2))
    rm_std = relevance_mass(standard, masks, use_abs=False)
    rm_inv = relevance_mass(inverted, masks, use_abs=False)
    # a map with no relevance at all (NaN) puts none in the mask: 0, unless there is no mask
    rm_std = np.where(no_truth, np.nan, np.nan_to_num(rm_std, nan=0.0))
    rm_inv = np.where(no_truth, np.nan, np.nan_to_num(rm_inv, nan=0.0))
    pg_std = pointing_game(standard, masks, use_abs=False)
    pg_inv = pointing_game(inverted, masks, use_abs=False)
    out.update(
        relevance_mass_standard=rm_std,
        relevance_mass_inverted=rm_inv,
        pointing_game_standard=pg_std,
        pointing_game_inverted=pg_inv,
        inverted_better_relevance_mass=np.where(no_truth, np.nan, (rm_inv > rm_std) * 1.0),
        inverted_better_pointing_game=np.where(no_truth, np.nan, (pg_inv > pg_std) * 1.0),
    )
    return out


@BENCHMARKS.add("gradcam_pathologies")
class GradCAMPathologies(Benchmark):
    name: ClassVar[str] = "gradcam_pathologies"
    title: ClassVar[str] = "GradCAM pathologies: blank maps, negative evidence, inverted maps"
    description: ClassVar[str] = __doc__ or ""
    order: ClassVar[int] = 65
    plots: ClassVar[tuple[PlotSpec, ...]] = (
        PlotSpec("blank_share", title="Share of blank GradCAM maps (lower = better)"),
        PlotSpec("negative_mass_share", title="Share of signed CAM evidence removed by the ReLU"),
        PlotSpec(
            "inverted_better_relevance_mass",
            title="Share of images where the inverted map has more relevance mass in the mask",
        ),
    )
    scores: ClassVar[Mapping[str, Score]] = SCORES

    @dataclass(frozen=True)
    class Options(BenchmarkOptions):
        """``[benchmarks.gradcam_pathologies]``: blank = no positive CAM value above ``rel_eps``
        of its largest magnitude, or every magnitude below ``abs_eps``."""

        n_images: int | None = field(default=None, metadata={"min": 1})  # None: all
        rel_eps: float = field(default=1e-6, metadata={"gt": 0, "lt": 1})
        abs_eps: float = field(default=1e-12, metadata={"min": 0})
        # GradCAM layer rules whose blank-or-constant share is scored (binsal.models.gradcam_rules)
        layer_rules: tuple[LayerRule, ...] = LAYER_RULES

    def run(self, ctx: RunContext) -> list[ScoreRow]:
        opts = self.Options.from_profile(ctx.profile, self.name)
        n = len(ctx.images) if opts.n_images is None else int(opts.n_images)
        n = max(1, min(n, len(ctx.images)))
        images = ctx.images[:n]
        masks = None if ctx.masks is None else np.asarray(ctx.masks)[:n]
        cam = ctx.method("gradcam")
        if not isinstance(cam, GradCAM):  # pragma: no cover - registry misconfiguration
            raise TypeError(f"method 'gradcam' is {type(cam).__name__}, not GradCAM")
        rows: list[ScoreRow] = []
        for model in ctx.progress.bar(list(ctx.models), desc="gradcam pathologies"):
            lm = ctx.models[model]
            if not cam.defined_for(lm)[0]:
                continue
            x, t = validate_batch(lm, images, explained_targets(ctx, model)[:n])
            if t is None:  # pragma: no cover - targets were given, validate_batch keeps them
                raise TypeError("validate_batch dropped the targets")
            cams = cam.cam_lowres(lm, x, t)
            scores = pathology_scores(
                cams,
                (int(images.shape[1]), int(images.shape[2])),
                masks,
                rel_eps=float(opts.rel_eps),
                abs_eps=float(opts.abs_eps),
            )
            params = {
                **cam.params(),
                "layer": cam.layer or lm.gradcam_layer,
                "cam_resolution": list(cams.shape[1:]),
                "rel_eps": float(opts.rel_eps),
                "abs_eps": float(opts.abs_eps),
                "engine": "tf",
                "target": TARGET,
                "relevance": "positive part; blank map counts 0",
            }
            by_rule = {}
            for rule in opts.layer_rules:
                layer = resolve_layer(lm, rule)
                at = cams if layer == params["layer"] else GradCAM(layer=layer).cam_lowres(lm, x, t)
                key = f"blank_or_constant_share_{rule}"
                scores[key] = blank_or_constant(at, rel_eps=opts.rel_eps, abs_eps=opts.abs_eps)
                by_rule[key] = {**params, "layer_rule": rule, "layer": layer}
                by_rule[key]["cam_resolution"] = list(at.shape[1:])
            for metric, values in scores.items():
                rows.append(
                    self.row(
                        values,
                        model=model,
                        family=lm.family,
                        pair=lm.spec.pair,
                        method="gradcam",
                        metric=metric,
                        seed=ctx.seed,
                        params=by_rule.get(metric, params),
                        n_boot=ctx.profile.n_boot,
                    )
                )
        return rows
