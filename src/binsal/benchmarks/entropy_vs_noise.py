"""Map entropy versus SmoothGrad noise level: is the "optimal noise" of a BNN lower?

SmoothGrad (Smilkov et al. 2017) averages gradients over noisy copies of the input with noise
sigma given as a fraction of the input range, sigma = s * (max - min) per image (Smilkov et al.
recommend s = 10-20 %); the paper finds BNN maps clearest at 2-6 %. For each model, SmoothGrad is
run over a sweep of s (default 1, 2, 5, 10, 15, 20, 30, 40, 50 %) with the same seeded noise draws
at every s (common random numbers: only the scale changes), for the true class.

Scores per s (curve rows, step = s in percent): "entropy", the Shannon entropy -sum p log p of
the normalised abs map p = |m| / sum |m| (natural log), and "entropy_normalized", that entropy
divided by log(H W) (1 = uniform map, 0 = one pixel); direction "lower" (a focused map). Where the
data has ground-truth object masks: "relevance_mass", the share of |m| inside the mask (Arras et
al. 2022), and "pointing_game", whether the maximum of |m| lies in the mask (Zhang et al. 2016);
direction "higher".

Per model, "argmin_entropy_sigma" is the s (in %) that minimises the mean entropy over images and
"argmax_localization_sigma" the s that maximises mean relevance mass (ties: the smallest s);
direction "none" (descriptive). Their 95 % CI is a percentile bootstrap over images: resample the
images with replacement, recompute the arg-optimum of the resampled mean curve, take the 2.5 and
97.5 percentiles of those s values (grid values), widened if needed to contain the full-sample
estimate; n is the number of images. Rows with model "all FP" / "all BNN" aggregate a family:
per image the mean over the family's models, then the same scores and bootstrap over images.
"""

from __future__ import annotations

import dataclasses
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
    make_method,
)
from binsal.core.schema import ScoreRow
from binsal.metrics.entropy import MapEntropy, map_entropy
from binsal.metrics.localization import PointingGame, RelevanceMass, pointing_game, relevance_mass

SIGMAS_PERCENT: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0)
ENTROPY_METRICS = ("entropy", "entropy_normalized")
LOCALIZATION_METRICS = ("relevance_mass", "pointing_game")
FAMILY_LABEL = "all {family}"
TARGET = "true label (the model's top-1 where an image has none)"


def arg_optimum_sigma(
    values: np.ndarray,
    sigmas: np.ndarray,
    *,
    mode: str,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[float, float, float, int]:
    """(best sigma, CI low, CI high, n) for an (N images, S sigmas) table of per-image scores.

    ``mode`` "min" or "max": the sigma whose mean over images (NaNs ignored) is smallest/largest,
    ties to the smallest sigma. The CI is a percentile bootstrap over images (rows): for each
    resample, the arg-optimum of the resampled mean curve; percentiles taken on the grid
    (``method="lower"``/``"higher"``) and widened to contain the full-sample estimate.
    n counts images with at least one finite score; NaNs everywhere if there is none.
    """
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    v = np.asarray(values, dtype=np.float64)
    s = np.asarray(sigmas, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != s.size:
        raise ValueError(f"values must be (N, {s.size}), got shape {v.shape}")
    v = v[np.isfinite(v).any(axis=1)]
    n = int(v.shape[0])
    if n == 0:
        return float("nan"), float("nan"), float("nan"), 0

    def best(curves: np.ndarray) -> np.ndarray:
        # curves (..., S) of means with NaN for no data; NaN never wins
        fill = np.inf if mode == "min" else -np.inf
        c = np.where(np.isfinite(curves), curves, fill)
        return s[np.argmin(c, axis=-1) if mode == "min" else np.argmax(c, axis=-1)]

    finite = np.isfinite(v)
    sums, counts = np.where(finite, v, 0.0), finite.astype(np.float64)

    def means(rows: np.ndarray) -> np.ndarray:
        tot, cnt = sums[rows].sum(axis=-2), counts[rows].sum(axis=-2)
        out = np.full(tot.shape, np.nan)
        np.divide(tot, cnt, out=out, where=cnt > 0)
        return out

    estimate = float(best(means(np.arange(n))))
    if n == 1:
        return estimate, estimate, estimate, n
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    boot = best(means(idx))
    lo = float(np.percentile(boot, 100 * alpha / 2, method="lower"))
    hi = float(np.percentile(boot, 100 * (1 - alpha / 2), method="higher"))
    return estimate, min(lo, estimate), max(hi, estimate), n


def _nanmean(stack: np.ndarray) -> np.ndarray:
    """Mean over axis 0 ignoring NaNs; NaN (without a warning) where all are NaN."""
    finite = np.isfinite(stack)
    cnt = finite.sum(axis=0)
    out = np.full(stack.shape[1:], np.nan)
    np.divide(np.where(finite, stack, 0.0).sum(axis=0), cnt, out=out, where=cnt > 0)
    return out


def score_maps(maps: np.ndarray, masks: np.ndarray | None) -> dict[str, np.ndarray]:
    """Per-image scores of one map batch: entropies, and localization where ``masks`` exist."""
    out = {
        "entropy": map_entropy(maps),
        "entropy_normalized": map_entropy(maps, normalized_by_log_n=True),
    }
    if masks is not None:
        out["relevance_mass"] = relevance_mass(maps, masks, use_abs=True)
        out["pointing_game"] = pointing_game(maps, masks, use_abs=True)
    return out


@BENCHMARKS.add("entropy_vs_noise")
class EntropyVsNoise(Benchmark):
    name: ClassVar[str] = "entropy_vs_noise"
    title: ClassVar[str] = "SmoothGrad map entropy and localization versus noise level"
    description: ClassVar[str] = __doc__ or ""
    order: ClassVar[int] = 60
    plots: ClassVar[tuple[PlotSpec, ...]] = (
        PlotSpec(
            "entropy_normalized",
            kind="curve",
            title="Entropy of |SmoothGrad| / log(HW) vs noise (lower = more focused)",
            xlabel="noise sigma (% of input range)",
            ylabel="normalised entropy",
        ),
        PlotSpec(
            "relevance_mass",
            kind="curve",
            title="Relevance mass inside the object mask vs noise (higher = better)",
            xlabel="noise sigma (% of input range)",
            ylabel="relevance mass",
        ),
        PlotSpec(
            "argmin_entropy_sigma",
            title="Entropy-minimising noise level per model (bootstrap CI over images)",
            ylabel="sigma (%)",
        ),
        PlotSpec(
            "argmax_localization_sigma",
            title="Localization-maximising noise level per model (bootstrap CI over images)",
            ylabel="sigma (%)",
        ),
    )
    scores: ClassVar[Mapping[str, Score]] = {
        "entropy": Score(MapEntropy.direction, "Shannon entropy of the normalised abs map"),
        "entropy_normalized": Score(
            MapEntropy.direction, "entropy / log(H W): 1 = uniform map, 0 = one pixel"
        ),
        "relevance_mass": Score(RelevanceMass.direction, "share of |map| inside the object mask"),
        "pointing_game": Score(PointingGame.direction, "whether max |map| lies in the object mask"),
        "argmin_entropy_sigma": Score(
            "none", "noise level (%) minimising the mean entropy (bootstrap CI over images)"
        ),
        "argmax_localization_sigma": Score(
            "none", "noise level (%) maximising the mean relevance mass (bootstrap CI)"
        ),
    }

    @dataclass(frozen=True)
    class Options(BenchmarkOptions):
        """``[benchmarks.entropy_vs_noise]``."""

        # SmoothGrad noise sigma in % of the input range
        sigmas: tuple[float, ...] = field(
            default=SIGMAS_PERCENT, metadata={"min": 0, "max": 100, "min_items": 1}
        )
        samples: int | None = field(default=None, metadata={"min": 1})  # None: the profile's
        n_images: int | None = field(default=None, metadata={"min": 1})  # None: all

    def run(self, ctx: RunContext) -> list[ScoreRow]:
        opts = self.Options.from_profile(ctx.profile, self.name)
        sigmas = np.asarray(sorted({float(s) for s in opts.sigmas}), dtype=np.float64)
        n = len(ctx.images) if opts.n_images is None else int(opts.n_images)
        n = max(1, min(n, len(ctx.images)))
        images = ctx.images[:n]
        masks = None if ctx.masks is None else np.asarray(ctx.masks)[:n]
        samples = opts.samples or ctx.profile.saliency.smoothgrad_samples

        # per model: metric -> (n images, n sigmas)
        tables: dict[str, dict[str, np.ndarray]] = {}
        params: dict[str, Any] = {}
        grid = [(m, j) for m in ctx.models for j in range(sigmas.size)]
        for model, j in ctx.progress.bar(grid, desc="entropy vs noise"):
            method = make_method(
                "smoothgrad",
                ctx.profile,
                noise_level=float(sigmas[j]) / 100.0,
                samples=int(samples),
            )
            targets = explained_targets(ctx, model)[:n]
            maps = ctx.maps.get(ctx.models[model], method, images, targets)
            per_model = tables.setdefault(model, {})
            for metric, values in score_maps(maps, masks).items():
                per_model.setdefault(metric, np.full((n, sigmas.size), np.nan))[:, j] = values
            params = {k: v for k, v in method.params().items() if k != "noise_level"}

        params.update(
            {
                "sigmas_percent": sigmas.tolist(),
                "n_images": n,
                "target": TARGET,
                "map": "abs",
                "entropy": "natural log",
                "argopt_ci": "percentile bootstrap over images of the arg-optimum",
            }
        )
        rows: list[ScoreRow] = []
        for model, table in tables.items():
            lm = ctx.models[model]
            rows += self._rows(ctx, model, lm.family, lm.spec.pair, table, sigmas, params)
        for family in ("FP", "BNN"):
            members = [m for m in tables if ctx.models[m].family == family]
            if not members:
                continue
            shared = [k for k in tables[members[0]] if all(k in tables[m] for m in members)]
            table = {k: _nanmean(np.stack([tables[m][k] for m in members])) for k in shared}
            fam_params = {**params, "aggregate": "per-image mean over models", "models": members}
            label = FAMILY_LABEL.format(family=family)
            rows += self._rows(ctx, label, family, "", table, sigmas, fam_params)
        return rows

    def _rows(
        self,
        ctx: RunContext,
        model: str,
        family: str,
        pair: str,
        table: dict[str, np.ndarray],
        sigmas: np.ndarray,
        params: dict[str, Any],
    ) -> list[ScoreRow]:
        common: dict[str, Any] = {
            "model": model,
            "family": family,
            "pair": pair,
            "method": "smoothgrad",
            "seed": ctx.seed,
            "n_boot": ctx.profile.n_boot,
        }
        rows: list[ScoreRow] = []
        for metric, values in table.items():
            for j, s in enumerate(sigmas):
                rows.append(
                    self.row(values[:, j], metric=metric, step=float(s), params=params, **common)
                )
        for metric, source, mode in (
            ("argmin_entropy_sigma", "entropy", "min"),
            ("argmax_localization_sigma", "relevance_mass", "max"),
        ):
            if source not in table:
                continue
            best, lo, hi, n = arg_optimum_sigma(
                table[source], sigmas, mode=mode, n_boot=ctx.profile.n_boot, seed=ctx.seed
            )
            row = self.row(
                [best],
                metric=metric,
                params={**params, "criterion": f"arg{mode} of mean {source}"},
                **common,
            )
            # the interval is arg_optimum_sigma's percentile bootstrap over the n images (its
            # values lie on the sigma grid, so all resamples may agree: zero width, untested)
            rows.append(
                dataclasses.replace(
                    row, value=best, ci_low=lo, ci_high=hi, n=n, ci_method="bootstrap"
                )
            )
        return rows
