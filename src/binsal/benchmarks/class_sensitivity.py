"""Class sensitivity (Nie et al. 2018; Oramas et al. 2019): does the map change
when the explained class changes?

Backpropagation-based visualisations can act as edge detectors that show the same picture
whatever class is asked for (Nie et al. 2018 found this for DeconvNet and guided backprop); such
explanations ignore the class and fail this check.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from binsal.benchmarks.base import (
    BENCHMARKS,
    Benchmark,
    BenchmarkOptions,
    MethodChoice,
    PlotSpec,
    RunContext,
    Score,
    log,
)
from binsal.core.schema import ScoreRow
from binsal.metrics import similarity
from binsal.models.spec import LoadedModel
from binsal.saliency import is_defined


def class_slots(
    logits: np.ndarray, *, max_other_classes: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Targets to explain, as slots: row 0 the predicted class (argmax logit) of each image, rows
    1.. the other classes. With at most ``max_other_classes`` other classes every other class
    is a slot (in class order); otherwise ``max_other_classes`` distinct other classes are drawn
    per image (seeded by (seed, image index)) and the least-likely class is appended as one more
    slot when it was not drawn.

    Returns (targets (S, N) int64, is_other (S, N) bool: slot counts towards the mean over other
    classes, least_likely_slot (N,) int: the slot of each image's least-likely class, the argmin
    logit among the classes other than the predicted one).
    """
    logits = np.asarray(logits, dtype=np.float64)
    n, c = logits.shape
    if c < 2:
        raise ValueError(f"class sensitivity needs at least 2 classes, got {c}")
    pred = np.argmax(logits, axis=1)
    masked = logits.copy()
    masked[np.arange(n), pred] = np.inf
    least = np.argmin(masked, axis=1)
    if c - 1 <= max_other_classes:
        others = np.stack([np.delete(np.arange(c), p) for p in pred], axis=1)  # (C-1, N)
        targets = np.concatenate([pred[None], others])
        is_other = np.ones(targets.shape, dtype=bool)
        is_other[0] = False
        ll_slot = np.argmax(targets == least[None], axis=0)
        return targets.astype(np.int64), is_other, ll_slot
    k = int(max_other_classes)
    drawn = np.stack(
        [
            np.random.default_rng([seed, i]).choice(np.delete(np.arange(c), pred[i]), k, False)
            for i in range(n)
        ],
        axis=1,
    )  # (k, N)
    targets = np.concatenate([pred[None], drawn, least[None]])
    is_other = np.ones(targets.shape, dtype=bool)
    is_other[0] = False
    in_drawn = (drawn == least[None]).any(axis=0)
    is_other[-1] = ~in_drawn  # the least-likely class counts once
    ll_slot = np.where(in_drawn, 1 + np.argmax(drawn == least[None], axis=0), k + 1)
    return targets.astype(np.int64), is_other, ll_slot


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    v = np.where(mask, values, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN images stay NaN
        return np.nanmean(v, axis=0)


def class_sensitivity_scores(
    maps: np.ndarray, is_other: np.ndarray, ll_slot: np.ndarray
) -> dict[str, np.ndarray]:
    """Per image: mean Spearman (abs) and SSIM (abs) between the predicted-class map (slot 0) and
    the other classes' maps, and Spearman (abs) with the least-likely class's map.

    ``maps``: (S, N, H, W) maps per slot. NaN where undefined (a constant map)."""
    first = maps[0]
    spear = np.stack([similarity.spearman(first, m, use_abs=True) for m in maps[1:]])
    ssim = np.stack([similarity.ssim(first, m, use_abs=True) for m in maps[1:]])
    n = first.shape[0]
    return {
        "spearman_abs": _masked_mean(spear, is_other[1:]),
        "ssim": _masked_mean(ssim, is_other[1:]),
        "spearman_abs_least_likely": spear[ll_slot - 1, np.arange(n)],
    }


@BENCHMARKS.add("class_sensitivity")
class ClassSensitivity(Benchmark):
    """Class sensitivity (Nie et al. 2018; the sanity check of Oramas et al. 2019).

    For each model and method, the map of each evaluation image for its predicted class (the
    model's argmax, i.e. the class the model's decision is explained for) is compared with the
    maps of the same image for the other classes: metric spearman_abs is, per image, the mean
    over the other classes of the Spearman rank correlation of the abs maps, ssim the mean SSIM
    of the abs maps, and spearman_abs_least_likely the Spearman correlation with the map of the
    least-likely class (lowest logit), the most contrasting target. With more than
    max_other_classes other classes (ImageNet) that many other classes are drawn per image,
    seeded. Direction "lower": an explanation that looks the same whatever class it explains
    ignores the class and fails. Random and Sobel are class-independent by construction and
    score 1: they are the reference rows. Undefined method/model combinations are skipped.
    A constant map (a GradCAM that is blank for a class, common for the least-likely one) makes
    the correlations undefined: such pairs are left out and n counts the images with a value.
    """

    name: ClassVar[str] = "class_sensitivity"
    title: ClassVar[str] = "Class sensitivity"
    description: ClassVar[str] = __doc__ or ""
    order: ClassVar[int] = 40
    plots: ClassVar[tuple[PlotSpec, ...]] = (
        PlotSpec(
            "spearman_abs",
            title="Spearman of abs maps, predicted vs other classes (mean over other classes)",
            ylabel="Spearman rho (abs)",
        ),
        PlotSpec("ssim", title="SSIM of abs maps, predicted vs other classes", ylabel="SSIM"),
        PlotSpec(
            "spearman_abs_least_likely",
            title="Spearman of abs maps, predicted vs least-likely class",
            ylabel="Spearman rho (abs)",
        ),
    )
    scores: ClassVar[Mapping[str, Score]] = {
        "spearman_abs": Score(
            "lower", "Spearman of abs maps, predicted vs other classes (mean over them)"
        ),
        "ssim": Score("lower", "SSIM of abs maps, predicted vs other classes (mean over them)"),
        "spearman_abs_least_likely": Score(
            "lower", "Spearman of abs maps, predicted vs least-likely class"
        ),
    }

    @dataclass(frozen=True)
    class Options(BenchmarkOptions):
        """``[benchmarks.class_sensitivity]``. Every other class multiplies a method's cost:
        methods that cost many passes per map (SmoothGrad-squared, VarGrad, Integrated
        Gradients, Score-CAM) are worth leaving out on a CPU; gradcam_inverted scores the same
        as gradcam_signed (its abs map is the same)."""

        # "profile": every method of the profile (controls included); or a list of them
        methods: MethodChoice = field(default="profile", metadata={"known": "method"})
        n_images: int | None = field(default=None, metadata={"min": 1})  # None: all
        # other classes per image: all of them up to this many, else this many drawn (seeded)
        max_other_classes: int = field(default=16, metadata={"min": 1})

    def run(self, ctx: RunContext) -> list[ScoreRow]:
        opts = self.Options.from_profile(ctx.profile, self.name)
        allowed = opts.methods
        methods = [m for m in ctx.methods if allowed == "profile" or m in set(allowed)]
        n = len(ctx.images) if opts.n_images is None else int(opts.n_images)
        n = min(n, len(ctx.images))
        images = ctx.images[:n]
        k = int(opts.max_other_classes)
        rows: list[ScoreRow] = []
        for model_name, loaded in ctx.models.items():
            logits = self._logits(loaded, images)
            if logits.shape[1] < 2:
                log(ctx, f"class sensitivity: skip {model_name}, it has one class")
                continue
            targets, is_other, ll_slot = class_slots(logits, max_other_classes=k, seed=ctx.seed)
            n_other = int(is_other[:, 0].sum())
            for m in ctx.progress.bar(methods, desc=f"class sensitivity {model_name}"):
                ok, why = is_defined(m, loaded, engine=ctx.maps.engine)
                if not ok:
                    log(ctx, f"class sensitivity: skip {m} on {model_name}: {why}")
                    continue
                method = ctx.method(m)
                maps = np.stack([ctx.maps.get(loaded, method, images, t) for t in targets])
                params = {
                    **method.params(),
                    "target": "predicted",
                    "others": "all" if loaded.spec.num_classes - 1 <= k else f"{k} drawn",
                    "n_other_classes": n_other,
                    "n_images": n,
                }
                for metric, values in class_sensitivity_scores(maps, is_other, ll_slot).items():
                    rows.append(
                        self.row(
                            values,
                            model=model_name,
                            family=loaded.family,
                            pair=loaded.spec.pair,
                            method=m,
                            metric=metric,
                            seed=ctx.seed,
                            params=params,
                            n_boot=ctx.profile.n_boot,
                        )
                    )
        return rows

    @staticmethod
    def _logits(loaded: LoadedModel, images: np.ndarray) -> np.ndarray:
        return np.asarray(loaded.model.predict(loaded.prepare(images), batch_size=128, verbose=0))
