"""Synthetic results tables and manifests: the report, leaderboard, history and compare code
exercised without training anything (tests, demos).

Every registered benchmark gets rows for the metrics its ``PlotSpec``\\ s name (curves over five
steps for ``kind="curve"``, scalars otherwise) on two matched FP/BNN pairs and the methods
Gradient, SmoothGrad, GradCAM and the controls Random and Sobel, plus the FP-BNN / FP-FP
Spearman rows claim 1 reads. Per-image values are a fixed "truth" per image (drawn from a fixed
stream, the same whatever ``seed``) plus a small seed-dependent jitter -- what two runs over the
same images and models differ by when only the seed changes (SmoothGrad noise, the Random
control, the bootstrap). ``shift`` adds to one method's values to fake a changed method.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from binsal.core.profile import LAYER_RULES
from binsal.core.schema import Direction, PlotSpec, ScoreRow, rows_frame, score_row

MODELS = {"vgg_fp": ("FP", "vgg"), "vgg_bnn": ("BNN", "vgg")}
MODELS |= {"resnet_fp": ("FP", "resnet"), "resnet_bnn": ("BNN", "resnet")}
METHODS = ("gradient", "smoothgrad", "gradcam", "random", "sobel")
# the default profile's 13 methods: a report as crowded as a real one (figures, tables)
ALL_METHODS = METHODS[:3] + ("smoothgrad_sq", "vargrad", "integrated_gradients", "gradcam_pp")
ALL_METHODS += ("scorecam", "gradcam_signed", "gradcam_inverted", "guided_backprop") + METHODS[3:]
CONTROLS = ("random", "sobel")  # model-independent: no FP x BNN rank correlation
STEPS = (0.0, 0.25, 0.5, 0.75, 1.0)
PAIRWISE = (
    ("vgg_fp", "vgg_bnn", "FP-BNN", "vgg"),
    ("resnet_fp", "resnet_bnn", "FP-BNN", "resnet"),
    ("vgg_fp", "resnet_fp", "FP-FP", ""),
)


def _stream(*key: Any) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32("/".join(map(str, key)).encode()))


def _values(key: tuple[Any, ...], n: int, seed: int, jitter: float, shift: float) -> np.ndarray:
    truth = _stream("truth", *key)
    level = truth.uniform(0.2, 0.8)
    per_image = level + truth.normal(0.0, 0.15, n)
    noise = _stream("jitter", seed, *key).normal(0.0, jitter, n)
    return per_image + noise + shift


def _direction(metric: str) -> Direction:
    low = ("blank", "deletion", "entropy", "negative", "undefined", "sigma")
    return "lower" if any(w in metric for w in low) else "higher"


def synthetic_run(
    *,
    seed: int = 0,
    n_images: int = 32,
    jitter: float = 0.01,
    shift: Mapping[tuple[str, str], float] | None = None,
    benchmarks: list[str] | None = None,
    run_id: str | None = None,
    n_boot: int = 200,
    declarations: Mapping[str, Mapping[str, Any]] | None = None,
    methods: tuple[str, ...] = METHODS,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(results table with ``run_id``, manifest) as ``run_suite`` writes them.
    ``shift``: {(method, metric): added value} (metric "*" for every metric of the method).
    ``declarations``: what each benchmark declares (``Benchmark.declaration()``, as the pipeline
    writes into the manifest): its plots decide the metrics and curves made up here.
    ``methods``: the saliency methods scored (:data:`ALL_METHODS` for a default-profile-sized
    report); rank correlation rows for the model-dependent ones, the paper's three first."""
    shift = dict(shift or {})
    declared = dict(declarations or {})
    run_id = run_id or f"synthetic-seed{seed}"
    names = benchmarks if benchmarks is not None else list(declared)
    rows: list[ScoreRow] = []

    def add(
        bench: str,
        model: str,
        fam: str,
        pair: str,
        method: str,
        metric: str,
        step=None,
        setting: Mapping[str, Any] | None = None,
    ):
        delta = shift.get((method, metric), shift.get((method, "*"), 0.0))
        key = (bench, model, method, metric, step, *sorted((setting or {}).items()))
        params: dict[str, Any] = {"seed": seed, "synthetic": True}
        if setting is not None:  # a claim_robustness re-run: the benchmark and the setting
            params |= {"of": metric.split("/", 1)[0], "setting": dict(setting)}
        rows.append(
            score_row(
                _values(key, n_images, seed, jitter, delta),
                benchmark=bench,
                model=model,
                family=fam,
                pair=pair,
                method=method,
                metric=metric,
                direction=_direction(metric),
                seed=seed,
                step=step,
                params=params,
                n_boot=n_boot,
            )
        )

    for bench in names:
        specs = [PlotSpec(**p) for p in declared.get(bench, {}).get("plots", ())]
        if bench == "claim_robustness":  # claims 1 and 3 under two choices, 2 x 2 settings
            for abs_, rule in [(a, r) for a in (False, True) for r in LAYER_RULES]:
                for method in ("gradient", "smoothgrad", "gradcam"):
                    reach = (
                        {"gradcam_layer": rule} if method == "gradcam" else {"per_sample_abs": abs_}
                    )
                    for a, b, fam, pair in PAIRWISE:
                        add(
                            bench,
                            f"{a}|{b}",
                            fam,
                            pair,
                            method,
                            "rank_correlation/spearman",
                            None,
                            reach,
                        )
                for model, (fam, pair) in MODELS.items():
                    metric = "gradcam_pathologies/blank_share"
                    add(bench, model, fam, pair, "gradcam", metric, None, {"gradcam_layer": rule})
            continue
        if bench == "rank_correlation":
            for method in [m for m in methods if m not in CONTROLS]:
                for a, b, fam, pair in PAIRWISE:
                    for spec in specs or [None]:
                        metric = spec.metric if spec else "spearman"
                        add(bench, f"{a}|{b}", fam, pair, method, metric)
            continue
        for spec in specs or [None]:
            metric = spec.metric if spec else "score"
            curve = spec is not None and spec.kind == "curve"
            for model, (fam, pair) in MODELS.items():
                for method in methods:
                    for step in STEPS if curve else (None,):
                        add(bench, model, fam, pair, method, metric, step)
    table: pd.DataFrame = rows_frame(rows)
    table.insert(0, "run_id", run_id)
    manifest = synthetic_manifest(run_id, seed=seed)
    manifest["benchmarks"] = {b: dict(declared[b]) for b in names if b in declared}
    return table, manifest


def synthetic_manifest(run_id: str, *, seed: int = 0) -> dict[str, Any]:
    libs = {"python": "3.11", "tensorflow_runtime": "2.15.1", "larq": "0.14.0"}
    libs |= {"tf-keras-vis": "0.8.7", "larq-zoo": "2.4.0", "keras": "2.15.0"}
    return {
        "run_id": run_id,
        "profile": {"name": "synthetic", "seed": seed, "qualitative_images": 0},
        "seeds": {"profile": seed},
        "models": {
            name: {
                "family": fam,
                "pair": pair,
                "source": "synthetic",
                "description": f"synthetic {pair} ({fam})",
                "gradcam_layer": "features",
                "num_classes": 4,
                "test_accuracy": 0.9 if fam == "FP" else 0.8,
                "params": 1000,
            }
            for name, (fam, pair) in MODELS.items()
        },
        "test_accuracy": {n: 0.9 if f == "FP" else 0.8 for n, (f, _) in MODELS.items()},
        "environment": {"cpu": "synthetic", "git_commit": "0" * 40, "libraries": libs},
        "library_versions": libs,
        "stage_seconds": {},
        "wall_seconds": 0.0,
        "finished_utc": "2026-01-01T00:00:00+00:00",
    }
