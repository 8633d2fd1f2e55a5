"""Deletion / insertion curves: does removing what a map ranks first hurt most?

For every model and method (the Random and Sobel controls included, as references), the pixels
of each evaluation image are ranked by its abs map for the true class, and a growing fraction t
of them is replaced by the image's per-channel mean: most relevant first (MoRF; Samek et al.
2017) or least relevant first (LeRF). Insertion (Petsiuk et al. 2018, RISE) starts from that mean
image and reveals pixels in the same orders. Curves give the target softmax probability
("*_prob") and the accuracy, argmax == target ("*_acc"), at t = 0..100 % (step = t in %); "*_auc"
is the area under the probability curve and "*_acc_auc" under the accuracy curve, both divided
by the t range. Directions: MoRF deletion "lower" (a faithful map makes the target fall fast),
LeRF deletion "higher", MoRF insertion "higher", LeRF insertion "lower"; curve rows carry the
direction of their AUC. The model is not retrained, so removal artefacts count too (see ROAR).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

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
from binsal.core.schema import ScoreRow
from binsal.metrics.curves import curve_auc
from binsal.metrics.faithfulness import (
    DeletionLeRF,
    DeletionMoRF,
    InsertionLeRF,
    InsertionMoRF,
    Mode,
    Order,
    baseline_images,
    perturbation_curve,
)
from binsal.models.spec import LoadedModel

# the AUC metrics of binsal.metrics.faithfulness: their direction is every row's of the curve
AUC_METRICS = (DeletionMoRF, DeletionLeRF, InsertionMoRF, InsertionLeRF)


def _scores() -> dict[str, Score]:
    """Per (mode, order): the curves of probability and accuracy and their AUCs, all with the
    direction of the metric class's probability AUC."""
    out: dict[str, Score] = {}
    for cls in AUC_METRICS:
        stem, what = f"{cls.mode}_{cls.order}", f"{cls.order.upper()} {cls.mode}"
        d = cls.direction
        out[f"{stem}_prob"] = Score(d, f"{what}: target probability at t % (curve)")
        out[f"{stem}_acc"] = Score(d, f"{what}: accuracy at t % (curve)")
        out[cls.name] = Score(d, f"{what}: area under the probability curve, over the t range")
        out[f"{stem}_acc_auc"] = Score(d, f"{what}: area under the accuracy curve")
    return out


def predict_fn(loaded: LoadedModel, *, batch_size: int = 256):
    """x (B, H, W, C) raw images -> softmax probabilities, through a compiled fixed-signature
    forward pass (no retracing across batch sizes), in chunks of ``batch_size``."""
    import tensorflow as tf

    from binsal.saliency import engine_tf

    logits = engine_tf.logits_fn(loaded.model)

    def fn(x: np.ndarray) -> np.ndarray:
        inp = loaded.prepare(x)
        out = [
            tf.nn.softmax(logits(tf.constant(inp[s]))).numpy()
            for s in engine_tf.chunks(len(inp), batch_size)
        ]
        return np.concatenate(out, axis=0)

    return fn


def step_rows(
    bench: type[Benchmark] | Benchmark,
    values: np.ndarray,
    steps: np.ndarray,
    *,
    metric: str,
    **row: Any,
) -> list[ScoreRow]:
    """One row of ``bench``'s score ``metric`` per column of an (N, F) curve, at step =
    ``steps[j]`` (t in %)."""
    return [
        bench.row(values[:, j], metric=metric, step=float(step), **row)
        for j, step in enumerate(steps)
    ]


def curves(
    predict,
    images: np.ndarray,
    targets: np.ndarray,
    maps: np.ndarray,
    *,
    order: Order,
    mode: Mode,
    fractions: np.ndarray,
    baseline: Any = "channel_mean",
    batch_size: int = 256,
    ends: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """:func:`perturbation_curve`, with the method-independent end points (t = 0 and t = 1 are
    the clean and the all-baseline images) taken from ``ends`` = {"clean", "baseline"}
    (probabilities (N, K)) when given, so that they are predicted once per model, not per method.
    """
    f = np.asarray(fractions, dtype=np.float64)
    if ends is None:
        return perturbation_curve(
            predict,
            images,
            targets,
            maps,
            order=order,
            mode=mode,
            fractions=f,
            baseline=baseline,
            batch_size=batch_size,
        )
    inner = (f > 0) & (f < 1)
    n = len(images)
    prob = np.empty((n, f.size))
    correct = np.empty((n, f.size))
    if inner.any():
        res = perturbation_curve(
            predict,
            images,
            targets,
            maps,
            order=order,
            mode=mode,
            fractions=f[inner],
            baseline=baseline,
            batch_size=batch_size,
        )
        prob[:, inner], correct[:, inner] = res["prob"], res["correct"]
    for value, which in ((0.0, "clean"), (1.0, "baseline")):
        if mode == "insertion":
            which = "baseline" if which == "clean" else "clean"
        out = ends[which]
        for j in np.flatnonzero(f == value):
            prob[:, j] = out[np.arange(n), targets]
            correct[:, j] = out.argmax(axis=1) == targets
    return {"fractions": f, "prob": prob, "correct": correct}


@BENCHMARKS.add("deletion_insertion")
class DeletionInsertion(Benchmark):
    name: ClassVar[str] = "deletion_insertion"
    title: ClassVar[str] = "Deletion / insertion (MoRF, LeRF)"
    description: ClassVar[str] = __doc__ or ""
    order: ClassVar[int] = 50
    scores: ClassVar[Mapping[str, Score]] = _scores()
    plots: ClassVar[tuple[PlotSpec, ...]] = (
        PlotSpec(
            "deletion_morf_prob",
            kind="curve",
            title="MoRF deletion: target probability (lower is better)",
            xlabel="fraction removed (%)",
            ylabel="target probability",
        ),
        PlotSpec(
            "deletion_morf_acc",
            kind="curve",
            title="MoRF deletion: accuracy (lower is better)",
            xlabel="fraction removed (%)",
            ylabel="accuracy",
        ),
        PlotSpec(
            "deletion_lerf_prob",
            kind="curve",
            title="LeRF deletion: target probability (higher is better)",
            xlabel="fraction removed (%)",
            ylabel="target probability",
        ),
        PlotSpec(
            "insertion_morf_prob",
            kind="curve",
            title="MoRF insertion: target probability (higher is better)",
            xlabel="fraction inserted (%)",
            ylabel="target probability",
        ),
        PlotSpec("deletion_morf_auc", title="MoRF deletion AUC (lower is better)", ylabel="AUC"),
        PlotSpec("deletion_lerf_auc", title="LeRF deletion AUC (higher is better)", ylabel="AUC"),
        PlotSpec("insertion_morf_auc", title="MoRF insertion AUC (higher is better)", ylabel="AUC"),
    )

    @dataclass(frozen=True)
    class Options(BenchmarkOptions):
        """``[benchmarks.deletion_insertion]``."""

        n_images: int | None = field(default=None, metadata={"min": 1})  # None: all
        # t in % of pixels removed (inserted)
        fractions: tuple[float, ...] = field(
            default=tuple(float(t) for t in range(0, 101, 10)),
            metadata={"min": 0, "max": 100, "min_items": 1},
        )
        modes: tuple[Mode, ...] = field(
            default=("deletion", "insertion"), metadata={"min_items": 1}
        )
        orders: tuple[Order, ...] = field(default=("morf", "lerf"), metadata={"min_items": 1})
        baseline: Literal["channel_mean", "zero"] = "channel_mean"  # per image and channel
        batch_size: int = field(default=256, metadata={"min": 1})

    def run(self, ctx: RunContext) -> list[ScoreRow]:
        opts = self.Options.from_profile(ctx.profile, self.name)
        n = len(ctx.images) if opts.n_images is None else min(opts.n_images, len(ctx.images))
        images = np.asarray(ctx.images[:n], dtype=np.float32)
        steps = np.asarray(sorted({float(f) for f in opts.fractions}))  # t in %
        fractions = steps / 100.0
        batch_size = int(opts.batch_size)
        baseline = opts.baseline
        combos: list[tuple[Mode, Order]] = [(m, o) for m in opts.modes for o in opts.orders]
        grid = [(model, method) for model in ctx.models for method in ctx.defined_methods(model)]
        rows: list[ScoreRow] = []
        ends: dict[str, dict[str, np.ndarray]] = {}
        for model, method in ctx.progress.bar(grid, desc="deletion/insertion"):
            loaded = ctx.models[model]
            predict = predict_fn(loaded, batch_size=batch_size)
            if model not in ends:
                ends[model] = {
                    "clean": predict(images),
                    "baseline": predict(np.asarray(baseline_images(images, baseline))),
                }
            maps = ctx.maps_for(model, method)[:n]
            targets = explained_targets(ctx, model)[:n]
            params = {
                **ctx.method(method).params(),
                "target": "true" if (np.asarray(ctx.labels) >= 0).all() else "true, else top-1",
                "baseline": baseline,
                "use_abs": True,
                "fractions": steps.tolist(),
                "n_images": n,
            }
            common: dict[str, Any] = {
                "model": model,
                "family": loaded.family,
                "pair": loaded.spec.pair,
                "method": method,
                "seed": ctx.seed,
                "n_boot": ctx.profile.n_boot,
            }
            for mode, order in combos:
                res = curves(
                    predict,
                    images,
                    targets,
                    maps,
                    order=order,
                    mode=mode,
                    fractions=fractions,
                    baseline=baseline,
                    batch_size=batch_size,
                    ends=ends[model],
                )
                stem = f"{mode}_{order}"
                for key, suffix in (("prob", "prob"), ("correct", "acc")):
                    rows += step_rows(
                        self, res[key], steps, metric=f"{stem}_{suffix}", params=params, **common
                    )
                    if fractions.size >= 2:
                        auc = curve_auc(fractions, res[key])
                        name = f"{stem}_auc" if key == "prob" else f"{stem}_acc_auc"
                        rows.append(self.row(auc, metric=name, params=params, **common))
        return rows
