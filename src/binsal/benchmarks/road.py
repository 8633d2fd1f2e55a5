"""ROAD, RemOve And Debias (Rong et al. 2022, the cheaper ROAR variant): deletion
with noisy linear imputation, on the model as it is.

A constant fill (deletion / insertion, ROAR) leaves the silhouette of the removed region, which
can itself reveal the class; ROAD imputes each removed pixel from its neighbours (weights 1/6
direct, 1/12 diagonal, removed neighbours included) plus Gaussian noise of ``noise_std`` (in
units of the image range), so the mask's shape leaks far less and no retraining is needed.
For every model and selected method (Random and Sobel always included), the pixels of each
evaluation image are ranked by its abs map for the true class; a fraction t of them is removed
most relevant first (MoRF) and least relevant first (LeRF), and the model's target softmax
probability ("road_morf_prob", "road_lerf_prob") and accuracy ("*_acc") are recorded at each t
(step = t in %). "road_morf_auc" / "road_lerf_auc" are the areas under the probability curves
divided by the t range; "road_gap" = LeRF AUC - MoRF AUC per image, ROAD's combined view (a
faithful ranking keeps the target with its least relevant pixels removed and loses it with the
most relevant ones). Directions: MoRF "lower", LeRF and gap "higher". The imputation noise of a
(t, order) is the same for every method and model (seeded by the profile seed), so methods
differ only by their ranking. Unit of the bootstrap CI: one evaluation image.
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
    MethodChoice,
    PlotSpec,
    RunContext,
    Score,
    explained_targets,
)
from binsal.benchmarks.deletion_insertion import predict_fn, step_rows
from binsal.core.schema import ScoreRow
from binsal.metrics.curves import curve_auc
from binsal.metrics.faithfulness import Order, road_curve, road_images
from binsal.metrics.imputation import DEFAULT_NOISE_STD
from binsal.saliency import CONTROLS

ORDER_SALT = {"morf": 0, "lerf": 1}


@BENCHMARKS.add("road")
class ROAD(Benchmark):
    name: ClassVar[str] = "road"
    title: ClassVar[str] = "ROAD: deletion with noisy linear imputation (no retraining)"
    description: ClassVar[str] = __doc__ or ""
    order: ClassVar[int] = 57
    scores: ClassVar[Mapping[str, Score]] = {
        "road_morf_prob": Score("lower", "target probability, most relevant t % imputed"),
        "road_morf_acc": Score("lower", "accuracy, most relevant t % imputed"),
        "road_morf_auc": Score("lower", "area under road_morf_prob vs t, over the t range"),
        "road_lerf_prob": Score("higher", "target probability, least relevant t % imputed"),
        "road_lerf_acc": Score("higher", "accuracy, least relevant t % imputed"),
        "road_lerf_auc": Score("higher", "area under road_lerf_prob vs t, over the t range"),
        "road_gap": Score("higher", "road_lerf_auc - road_morf_auc per image"),
    }
    plots: ClassVar[tuple[PlotSpec, ...]] = (
        PlotSpec(
            "road_morf_prob",
            kind="curve",
            title="ROAD MoRF: target probability (lower is better)",
            xlabel="fraction removed (%)",
            ylabel="target probability",
        ),
        PlotSpec(
            "road_lerf_prob",
            kind="curve",
            title="ROAD LeRF: target probability (higher is better)",
            xlabel="fraction removed (%)",
            ylabel="target probability",
        ),
        PlotSpec("road_morf_auc", title="ROAD MoRF AUC (lower is better)", ylabel="AUC"),
        PlotSpec("road_lerf_auc", title="ROAD LeRF AUC (higher is better)", ylabel="AUC"),
        PlotSpec(
            "road_gap", title="ROAD gap: LeRF AUC - MoRF AUC (higher is better)", ylabel="AUC gap"
        ),
    )

    @dataclass(frozen=True)
    class Options(BenchmarkOptions):
        """``[benchmarks.road]``. Imputation costs ~10-30 ms per 64 px image and fraction on one
        core (more pixels removed, more cost), ~0.13-0.75 s at 224 px."""

        # "profile": the profile's model-dependent methods; or a list of them (those the profile
        # computes); the Random and Sobel controls are always included
        methods: MethodChoice = field(default="profile", metadata={"known": "method"})
        n_images: int | None = field(default=None, metadata={"min": 1})  # None: all
        # t in % of pixels removed
        fractions: tuple[float, ...] = field(
            default=(0.0, 10.0, 30.0, 50.0, 70.0, 90.0),
            metadata={"min": 0, "max": 100, "min_items": 1},
        )
        noise_std: float = field(default=DEFAULT_NOISE_STD, metadata={"min": 0})
        batch_size: int = field(default=256, metadata={"min": 1})
        orders: tuple[Order, ...] = field(default=("morf", "lerf"), metadata={"min_items": 1})

    def run(self, ctx: RunContext) -> list[ScoreRow]:
        opts = self.Options.from_profile(ctx.profile, self.name)
        n = len(ctx.images) if opts.n_images is None else opts.n_images
        n = min(int(n), len(ctx.images))
        images = np.asarray(ctx.images[:n], dtype=np.float32)
        steps = np.asarray(sorted({float(f) for f in opts.fractions}))  # t in %
        fractions = steps / 100.0
        noise_std = float(opts.noise_std)
        batch_size = int(opts.batch_size)
        orders = list(opts.orders)
        profile_methods = [m for m in ctx.methods if m not in CONTROLS]
        chosen = profile_methods if opts.methods == "profile" else list(opts.methods)
        # the chosen methods the run computes anyway, plus the controls
        candidates = dict.fromkeys([*chosen, *CONTROLS])
        methods = [m for m in candidates if m in ctx.methods or m in CONTROLS]
        free = [m for m in methods if not ctx.method(m).needs_model]  # the controls
        grid = [
            (model, m)
            for model in ctx.models
            for m in ctx.defined_methods(model, methods)
            if m not in free
        ]
        # the model-free methods last, one at a time over every model: their maps, hence their
        # imputed images, are the same for every model, imputed once per (method, order) and
        # maps and kept only while that method is evaluated (each (method, order) holds every
        # fraction's images: ~60 MB for the default profile)
        grid += [
            (model, m) for m in free for model in ctx.models if ctx.defined_methods(model, [m])
        ]
        rows: list[ScoreRow] = []
        shared: dict[tuple[str, str], tuple[np.ndarray, list[np.ndarray]]] = {}
        for model, method in ctx.progress.bar(grid, desc="ROAD"):
            if any(key[0] != method for key in shared):
                shared.clear()  # the previous control's images: no later model needs them
            loaded = ctx.models[model]
            predict = predict_fn(loaded, batch_size=batch_size)  # compiled once per model
            maps = ctx.maps_for(model, method)[:n]
            targets = explained_targets(ctx, model)[:n]
            params = {
                **ctx.method(method).params(),
                "target": "true" if (np.asarray(ctx.labels) >= 0).all() else "true, else top-1",
                "imputation": "noisy_linear (ROAD)",
                "noise_std": noise_std,
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
                "params": params,
            }
            aucs: dict[str, np.ndarray] = {}
            model_free = not ctx.method(method).needs_model
            for order in orders:
                options = {
                    "order": order,
                    "fractions": fractions,
                    "noise_std": noise_std,
                    "seed": [ctx.seed, ORDER_SALT[order]],
                }
                imputed = None
                if model_free:
                    seen = shared.get((method, order))
                    if seen is None or not np.array_equal(seen[0], maps):
                        # float32: what the model gets (LoadedModel.prepare), at half the memory
                        kept = [x.astype(np.float32) for x in road_images(images, maps, **options)]
                        seen = (maps, kept)
                        shared[method, order] = seen
                    imputed = seen[1]
                res = road_curve(
                    predict,
                    images,
                    targets,
                    maps,
                    batch_size=batch_size,
                    imputed=imputed,
                    **options,
                )
                for key, suffix in (("prob", "prob"), ("correct", "acc")):
                    metric = f"road_{order}_{suffix}"
                    rows += step_rows(self, res[key], steps, metric=metric, **common)
                if fractions.size >= 2:
                    aucs[order] = curve_auc(fractions, res["prob"])
                    rows.append(self.row(aucs[order], metric=f"road_{order}_auc", **common))
            if {"morf", "lerf"} <= set(aucs):
                gap = aucs["lerf"] - aucs["morf"]
                rows.append(self.row(gap, metric="road_gap", **common))
        return rows
