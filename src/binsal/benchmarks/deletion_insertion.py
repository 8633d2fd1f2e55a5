"""Deletion / insertion curves (DESIGN.md 6.2): does removing what a map ranks first hurt most?

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

from typing import Any, ClassVar

import numpy as np

from binsal.benchmarks.base import Benchmark, PlotSpec, RunContext, explained_targets
from binsal.core.schema import score_row
from binsal.metrics.curves import curve_auc
from binsal.metrics.faithfulness import (
    DeletionLeRF,
    DeletionMoRF,
    InsertionLeRF,
    InsertionMoRF,
    baseline_images,
    perturbation_curve,
)
from binsal.models.spec import LoadedModel

DIRECTIONS: dict[tuple[str, str], str] = {
    (cls.mode, cls.order): cls.direction
    for cls in (DeletionMoRF, DeletionLeRF, InsertionMoRF, InsertionLeRF)
}


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
    values: np.ndarray, steps: np.ndarray, *, metric: str, direction: str, **row: Any
) -> list[dict[str, Any]]:
    """One score row per column of an (N, F) curve, at step = ``steps[j]`` (t in %)."""
    return [
        score_row(values[:, j], metric=metric, direction=direction, step=float(step), **row)
        for j, step in enumerate(steps)
    ]


def curves(
    predict,
    images: np.ndarray,
    targets: np.ndarray,
    maps: np.ndarray,
    *,
    order: str,
    mode: str,
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


class DeletionInsertion(Benchmark):
    name: ClassVar[str] = "deletion_insertion"
    title: ClassVar[str] = "Deletion / insertion (MoRF, LeRF)"
    description: ClassVar[str] = __doc__ or ""
    order: ClassVar[int] = 50
    options: ClassVar[dict[str, dict[str, Any]]] = {
        "*": {
            "modes": ["deletion", "insertion"],
            "orders": ["morf", "lerf"],
            "baseline": "channel_mean",  # per image and channel; or "zero"
            "batch_size": 256,
        },
        "smoke": {"n_images": None, "fractions": [0, 25, 50, 75, 100]},
        "default": {"n_images": 64, "fractions": list(range(0, 101, 10))},
        "full": {"n_images": None, "fractions": list(range(0, 101, 5))},
    }
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

    def run(self, ctx: RunContext) -> list[dict[str, Any]]:
        opts = self.options_for(ctx.profile)
        n = (
            len(ctx.images)
            if opts.get("n_images") is None
            else min(opts["n_images"], len(ctx.images))
        )
        images = np.asarray(ctx.images[:n], dtype=np.float32)
        steps = np.asarray(sorted({float(f) for f in opts["fractions"]}))  # t in %
        fractions = steps / 100.0
        batch_size = int(opts["batch_size"])
        baseline = opts["baseline"]
        combos = [(mode, order) for mode in opts["modes"] for order in opts["orders"]]
        grid = [(model, method) for model in ctx.models for method in ctx.defined_methods(model)]
        rows: list[dict[str, Any]] = []
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
            common = {
                "benchmark": self.name,
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
                direction = DIRECTIONS[(mode, order)]
                stem = f"{mode}_{order}"
                for key, suffix in (("prob", "prob"), ("correct", "acc")):
                    rows += step_rows(
                        res[key],
                        steps,
                        metric=f"{stem}_{suffix}",
                        direction=direction,
                        params=params,
                        **common,
                    )
                    if fractions.size >= 2:
                        auc = curve_auc(fractions, res[key])
                        name = f"{stem}_auc" if key == "prob" else f"{stem}_acc_auc"
                        rows.append(
                            score_row(
                                auc, metric=name, direction=direction, params=params, **common
                            )
                        )
        return rows
