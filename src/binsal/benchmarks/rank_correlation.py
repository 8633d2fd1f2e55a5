"""FP vs BNN rank correlation: do an FP and a BNN explain the same image alike?

For every FP x BNN pair of models (matched pairs flagged in ``pair``) and every model-dependent
method, the maps of the same evaluation image for the same target (its true class) are compared
by Spearman and Kendall rank correlation of the abs maps, Spearman of the signed maps and the
top-10 % overlap (the paper's Fig. 1-3 comparison, quantified). FP x FP and BNN x BNN pairs are
reported too, as the reference for how alike two *different* networks of one family are.
Direction "higher": a method whose maps survive binarization scores higher.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations, product
from typing import ClassVar

import numpy as np

from binsal.benchmarks.base import BENCHMARKS, Benchmark, PlotSpec, RunContext, Score
from binsal.core.schema import ScoreRow
from binsal.metrics import similarity
from binsal.saliency import CONTROLS

TOP_FRACTION = 0.1


def _scores(a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "spearman": similarity.spearman(a, b, use_abs=True),
        "kendall": similarity.kendall(a, b, use_abs=True),
        "spearman_signed": similarity.spearman(a, b, use_abs=False),
        "top10_overlap": similarity.topk_overlap(a, b, fraction=TOP_FRACTION, use_abs=True),
    }


def model_pairs(ctx: RunContext) -> list[tuple[str, str, str, str]]:
    """(model_a, model_b, family label, matched pair name or "")."""
    fps, bnns = ctx.family_models("FP"), ctx.family_models("BNN")
    out = []
    for a, b in product(fps, bnns):
        pa, pb = ctx.models[a].spec.pair, ctx.models[b].spec.pair
        out.append((a, b, "FP-BNN", pa if pa and pa == pb else ""))
    for fam, names in (("FP-FP", fps), ("BNN-BNN", bnns)):
        out.extend((a, b, fam, "") for a, b in combinations(names, 2))
    return out


@BENCHMARKS.add("rank_correlation")
class RankCorrelation(Benchmark):
    name: ClassVar[str] = "rank_correlation"
    title: ClassVar[str] = "FP vs BNN rank correlation"
    description: ClassVar[str] = __doc__ or ""
    order: ClassVar[int] = 10
    plots: ClassVar[tuple[PlotSpec, ...]] = (
        PlotSpec("spearman", title="Spearman rho of abs maps, same image and target"),
        PlotSpec("top10_overlap", title="top-10 % pixel overlap"),
    )
    scores: ClassVar[Mapping[str, Score]] = {
        "spearman": Score("higher", "Spearman rank correlation of the abs maps, model A vs B"),
        "kendall": Score("higher", "Kendall rank correlation of the abs maps, model A vs B"),
        "spearman_signed": Score("higher", "Spearman rank correlation of the signed maps"),
        "top10_overlap": Score("higher", "overlap of the top-10 % pixels of the abs maps"),
        "undefined_share": Score(
            "none", "share of images where a map is constant (rank correlation undefined)"
        ),
    }

    def run(self, ctx: RunContext) -> list[ScoreRow]:
        rows: list[ScoreRow] = []
        methods = [m for m in ctx.methods if m not in CONTROLS]
        pairs = model_pairs(ctx)
        for method, (a, b, fam, pair) in ctx.progress.bar(
            list(product(methods, pairs)), desc="rank correlation"
        ):
            if not (ctx.is_defined(a, method)[0] and ctx.is_defined(b, method)[0]):
                continue  # e.g. guided backprop through larq's sign; listed in the manifest
            ma, mb = ctx.maps_for(a, method), ctx.maps_for(b, method)
            params = {**ctx.method(method).params(), "top_fraction": TOP_FRACTION, "target": "true"}
            scores = _scores(ma, mb)
            # share of image pairs where a map is constant (rank correlation undefined)
            scores["undefined_share"] = np.isnan(scores["spearman"]).astype(float)
            for metric, values in scores.items():
                rows.append(
                    self.row(
                        values,
                        model=f"{a}|{b}",
                        family=fam,
                        pair=pair,
                        method=method,
                        metric=metric,
                        seed=ctx.seed,
                        params=params,
                        n_boot=ctx.profile.n_boot,
                    )
                )
        return rows
