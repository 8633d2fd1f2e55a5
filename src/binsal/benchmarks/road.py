"""ROAD, RemOve And Debias (Rong et al. 2022; DESIGN.md 6.2, the cheaper ROAR variant): deletion
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

from typing import Any, ClassVar

import numpy as np

from binsal.benchmarks.base import Benchmark, PlotSpec, RunContext, explained_targets
from binsal.benchmarks.deletion_insertion import predict_fn, step_rows
from binsal.core.schema import score_row
from binsal.metrics.curves import curve_auc
from binsal.metrics.faithfulness import road_curve
from binsal.metrics.imputation import DEFAULT_NOISE_STD
from binsal.saliency import CONTROLS

DIRECTIONS = {"morf": "lower", "lerf": "higher"}
ORDER_SALT = {"morf": 0, "lerf": 1}


class ROAD(Benchmark):
    name: ClassVar[str] = "road"
    title: ClassVar[str] = "ROAD: deletion with noisy linear imputation (no retraining)"
    description: ClassVar[str] = __doc__ or ""
    order: ClassVar[int] = 57
    options: ClassVar[dict[str, dict[str, Any]]] = {
        "*": {"noise_std": DEFAULT_NOISE_STD, "batch_size": 256, "orders": ["morf", "lerf"]},
        "smoke": {"methods": ["gradient"], "n_images": None, "fractions": [0, 50, 90]},
        # imputation costs ~10-30 ms per image and fraction on one core (more pixels removed,
        # more cost): 64 images x 5 fractions x 2 orders x 6 methods x 4 models ~ 2-3 min
        "default": {
            "methods": ["gradient", "smoothgrad", "gradcam", "integrated_gradients"],
            "n_images": 64,
            "fractions": [0, 10, 30, 50, 70, 90],
        },
        # 224 px: measured ~0.13 s (30 % removed) to ~0.75 s (90 %) per image and fraction on
        # one core, so fewer fractions: ~5 x 3 x 2 x 5 x 10 imputations ~ 6-8 min on a CPU
        "paper": {"methods": "profile", "n_images": None, "fractions": [0, 25, 50, 75]},
        "full": {
            "methods": "profile",
            "n_images": None,
            "fractions": [0, 10, 20, 30, 40, 50, 60, 70, 80, 90],
        },
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

    def run(self, ctx: RunContext) -> list[dict[str, Any]]:
        opts = self.options_for(ctx.profile)
        n = len(ctx.images) if opts.get("n_images") is None else opts["n_images"]
        n = min(int(n), len(ctx.images))
        images = np.asarray(ctx.images[:n], dtype=np.float32)
        steps = np.asarray(sorted({float(f) for f in opts["fractions"]}))  # t in %
        fractions = steps / 100.0
        noise_std = float(opts["noise_std"])
        batch_size = int(opts["batch_size"])
        orders = list(opts["orders"])
        wanted = opts.get("methods", "profile")
        profile_methods = [m for m in ctx.methods if m not in CONTROLS]
        chosen = profile_methods if wanted in (None, "profile", "all") else list(wanted)
        # the chosen methods the run computes anyway, plus the controls
        candidates = dict.fromkeys([*chosen, *CONTROLS])
        methods = [m for m in candidates if m in ctx.methods or m in CONTROLS]
        grid = [(model, m) for model in ctx.models for m in ctx.defined_methods(model, methods)]
        rows: list[dict[str, Any]] = []
        for model, method in ctx.progress.bar(grid, desc="ROAD"):
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
            common = {
                "benchmark": self.name,
                "model": model,
                "family": loaded.family,
                "pair": loaded.spec.pair,
                "method": method,
                "seed": ctx.seed,
                "n_boot": ctx.profile.n_boot,
                "params": params,
            }
            aucs: dict[str, np.ndarray] = {}
            for order in orders:
                res = road_curve(
                    predict,
                    images,
                    targets,
                    maps,
                    order=order,
                    fractions=fractions,
                    noise_std=noise_std,
                    seed=[ctx.seed, ORDER_SALT[order]],
                    batch_size=batch_size,
                )
                direction = DIRECTIONS[order]
                for key, suffix in (("prob", "prob"), ("correct", "acc")):
                    metric = f"road_{order}_{suffix}"
                    rows += step_rows(res[key], steps, metric=metric, direction=direction, **common)
                if fractions.size >= 2:
                    aucs[order] = curve_auc(fractions, res["prob"])
                    rows.append(
                        score_row(
                            aucs[order], metric=f"road_{order}_auc", direction=direction, **common
                        )
                    )
            if {"morf", "lerf"} <= set(aucs):
                gap = aucs["lerf"] - aucs["morf"]
                rows.append(score_row(gap, metric="road_gap", direction="higher", **common))
        return rows
