"""GradCAM pathologies (DESIGN.md 6.6): blank maps, evidence lost to the ReLU, inverted maps.

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
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from binsal.benchmarks.base import Benchmark, PlotSpec, RunContext, explained_targets
from binsal.benchmarks.entropy_vs_noise import TARGET
from binsal.core.schema import score_row
from binsal.metrics.gradcam import blank_map, negative_mass_share
from binsal.metrics.localization import pointing_game, relevance_mass
from binsal.saliency import GradCAM, validate_batch
from binsal.saliency.engine_tf import upsample

DIRECTIONS: dict[str, str] = {
    "blank_share": "lower",
    "blank_share_upsampled": "lower",
    "negative_mass_share": "none",
    "relevance_mass_standard": "higher",
    "relevance_mass_inverted": "higher",
    "pointing_game_standard": "higher",
    "pointing_game_inverted": "higher",
    "inverted_better_relevance_mass": "none",
    "inverted_better_pointing_game": "none",
}


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
    standard = upsample(np.maximum(cams, 0.0), size)
    inverted = upsample(np.maximum(-cams, 0.0), size)
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
    options: ClassVar[dict[str, dict[str, Any]]] = {
        # n_images None: every evaluation image
        "*": {"n_images": None, "rel_eps": 1e-6, "abs_eps": 1e-12},
    }

    def run(self, ctx: RunContext) -> list[dict[str, Any]]:
        opts = self.options_for(ctx.profile)
        n = len(ctx.images) if opts.get("n_images") is None else int(opts["n_images"])
        n = max(1, min(n, len(ctx.images)))
        images = ctx.images[:n]
        masks = None if ctx.masks is None else np.asarray(ctx.masks)[:n]
        cam = ctx.method("gradcam")
        if not isinstance(cam, GradCAM):  # pragma: no cover - registry misconfiguration
            raise TypeError(f"method 'gradcam' is {type(cam).__name__}, not GradCAM")
        rows: list[dict[str, Any]] = []
        for model in ctx.progress.bar(list(ctx.models), desc="gradcam pathologies"):
            lm = ctx.models[model]
            if not cam.defined_for(lm)[0]:
                continue
            x, t = validate_batch(lm, images, explained_targets(ctx, model)[:n])
            cams = cam.cam_lowres(lm, x, t)
            scores = pathology_scores(
                cams,
                images.shape[1:3],
                masks,
                rel_eps=float(opts["rel_eps"]),
                abs_eps=float(opts["abs_eps"]),
            )
            params = {
                **cam.params(),
                "layer": cam.layer or lm.gradcam_layer,
                "cam_resolution": list(cams.shape[1:]),
                "rel_eps": float(opts["rel_eps"]),
                "abs_eps": float(opts["abs_eps"]),
                "engine": "tf",
                "target": TARGET,
                "relevance": "positive part; blank map counts 0",
            }
            for metric, values in scores.items():
                rows.append(
                    score_row(
                        values,
                        benchmark=self.name,
                        model=model,
                        family=lm.family,
                        pair=lm.spec.pair,
                        method="gradcam",
                        metric=metric,
                        direction=DIRECTIONS[metric],  # type: ignore[arg-type]
                        seed=ctx.seed,
                        params=params,
                        n_boot=ctx.profile.n_boot,
                    )
                )
        return rows
