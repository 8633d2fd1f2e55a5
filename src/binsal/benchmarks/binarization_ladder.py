"""Binarization ladder: at which step from FP to BNN do the explanations change?

A matched pair's topology is trained at every rung of precision (``binsal.models.ladder``):
"fp32" (the pair's FP model), "w8a8", "w4a4", "w2a2" (weights and activations at k bits, larq's
DoReFa quantizer), "binary_weights" (1-bit weights, real ReLU activations), "binary_activations"
(sign activations, real weights) and "binary" (the pair's BNN), every rung with the same recipe
(training code, data subset, epochs, batch size, learning rate, seed) and cached like every
trained model. On each training-seed replicate of the run the rungs are trained with that seed.

Per rung (rows with model "<pair>: <rung>", in ladder order): "test_accuracy" (per test image);
and per method on the evaluation images for their true class: localization against the object
masks ("relevance_mass", "pointing_game", "iou_auc", as the localization benchmark scores
them), "entropy_normalized" (Shannon entropy of the abs map over log of the pixel count, as in
the entropy-vs-noise benchmark: for SmoothGrad at the profile's noise, the paper's noisiness
claim) and "spearman_vs_fp" (Spearman of the abs maps against the fp32 rung's maps of the same
images and targets; not at fp32 itself).

Per step of the ladder (a rung to a next less precise one: fp32 -> w8a8 -> w4a4 -> w2a2 ->
binary, fp32 -> binary_weights -> binary, fp32 -> binary_activations -> binary), rows with model
"<pair>: <from> -> <to>" and metric "change_<measure>": the paired per-image difference
(to minus from) of each measure. Per method and measure, the step with the largest absolute
mean change is repeated under model "<pair>: largest <measure> change, <from> -> <to>": which
step changes the explanations most, and whether the weights or the activations do. A rung below
the accuracy floor (the profile's factor x chance, as for the claims; ``accuracy_floor`` in its
rows' params) did not learn: no step to or from it is scored on that seed. Directions:
localization "higher", entropy "lower", the rest descriptive ("none").
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
    PlotSpec,
    RunContext,
    Score,
    free_derived_models,
    has_training_data,
    log,
)
from binsal.benchmarks.localization import localization_scores, ranks_signed
from binsal.benchmarks.roar import _index_digest as index_digest
from binsal.benchmarks.roar import subset
from binsal.core.schema import ScoreRow
from binsal.core.stats import accuracy_floor
from binsal.metrics.entropy import map_entropy
from binsal.metrics.similarity import spearman
from binsal.models.ladder import RUNG_NAMES, RUNGS, Rung, ladder_edges, ladder_spec
from binsal.models.registry import PAIR_WIDTHS, pair_widths
from binsal.models.spec import LoadedModel
from binsal.models.training import TrainConfig
from binsal.saliency import is_defined

MODEL_LEVEL = "(model)"  # ``method`` of the test-accuracy rows
CACHE_TAG = "ladder"
MAP_MEASURES = ("relevance_mass", "pointing_game", "iou_auc", "entropy_normalized")
MEASURES = (*MAP_MEASURES, "spearman_vs_fp", "test_accuracy")
SCALE_UNIT = "image (test image for test_accuracy)"


@BENCHMARKS.add("binarization_ladder")
class BinarizationLadder(Benchmark):
    name: ClassVar[str] = "binarization_ladder"
    title: ClassVar[str] = "Binarization ladder: from FP to BNN one step at a time"
    description: ClassVar[str] = __doc__ or ""
    order: ClassVar[int] = 70
    scores: ClassVar[Mapping[str, Score]] = {
        "test_accuracy": Score("none", "test accuracy of the rung (per test image)"),
        "relevance_mass": Score("higher", "share of relevance inside the object mask"),
        "pointing_game": Score("higher", "whether the map's maximum lies in the object mask"),
        "iou_auc": Score("higher", "area under the IoU-vs-threshold curve"),
        "entropy_normalized": Score("lower", "entropy of the abs map / log(pixels)"),
        "spearman_vs_fp": Score("none", "Spearman of the abs maps, rung vs the fp32 rung"),
        **{
            f"change_{m}": Score(
                "none", f"per-image change of {m} over one ladder step (to - from)"
            )
            for m in MEASURES
        },
    }
    plots: ClassVar[tuple[PlotSpec, ...]] = (
        PlotSpec(
            "relevance_mass",
            title="Relevance mass per rung, FP to BNN (higher = better)",
            ylabel="relevance mass",
        ),
        PlotSpec(
            "entropy_normalized",
            title="Map entropy per rung, FP to BNN (lower = focused)",
            ylabel="entropy / log(pixels)",
        ),
        PlotSpec(
            "spearman_vs_fp",
            title="Spearman of each rung's maps vs the fp32 rung's",
            ylabel="Spearman rho (abs)",
        ),
        PlotSpec("test_accuracy", title="Test accuracy per rung", ylabel="accuracy"),
    )

    @dataclass(frozen=True)
    class Options(BenchmarkOptions):
        """``[benchmarks.binarization_ladder]``. Every rung of every pair is one training (fp32
        and binary are the run's own models when the recipe is the profile's: ``n_train`` and
        ``epochs`` unset). ``rungs = []`` turns the benchmark off."""

        pairs: tuple[str, ...] = field(default=("vgg",), metadata={"min_items": 1})
        rungs: tuple[Rung, ...] = RUNG_NAMES
        methods: tuple[str, ...] = field(
            default=("gradient", "smoothgrad", "gradcam"), metadata={"known": "method"}
        )
        # None: the profile's [train] epochs, epochs_fp for fp32 and epochs_bnn for every
        # quantized rung (the pair's recipe); a number: that many for every rung
        epochs: int | None = field(default=None, metadata={"min": 1})
        # seeded subsets of the training / test set; None: all of it
        n_train: int | None = field(default=None, metadata={"min": 1})
        n_test: int | None = field(default=None, metadata={"min": 1})
        n_images: int | None = field(default=None, metadata={"min": 1})  # None: all

    def run(self, ctx: RunContext) -> list[ScoreRow]:
        opts = self.Options.from_profile(ctx.profile, self.name)
        data = ctx.data
        if not has_training_data(data):
            log(ctx, "binarization ladder: skipped, this run has no training data")
            return []
        if ctx.masks is None:
            log(ctx, "binarization ladder: skipped, the data has no object masks")
            return []
        rungs = [r for r in RUNG_NAMES if r in opts.rungs]  # always in ladder order
        rows: list[ScoreRow] = []
        for pair in opts.pairs:
            if pair not in PAIR_WIDTHS:
                log(ctx, f"binarization ladder: no matched pair {pair!r}; skipped")
                continue
            if rungs:
                rows.extend(self._pair_rows(ctx, opts, pair, rungs))
        return rows

    def train_config(self, ctx: RunContext, opts: Options, rung: str) -> TrainConfig:
        t = ctx.profile.train
        epochs = opts.epochs or (t.epochs_fp if rung == "fp32" else t.epochs_bnn)
        return TrainConfig(
            epochs=int(epochs),
            batch_size=t.batch_size,
            learning_rate=t.learning_rate,
            seed=ctx.seed,
        )

    def _pair_rows(
        self, ctx: RunContext, opts: Options, pair: str, rungs: list[str]
    ) -> list[ScoreRow]:
        data = ctx.data
        tr = subset(len(data.y_train), opts.n_train, ctx.seed, 0)
        te = subset(len(data.y_test), opts.n_test, ctx.seed, 1)
        n = len(ctx.images) if opts.n_images is None else min(int(opts.n_images), len(ctx.images))
        images, masks = ctx.images[:n], np.asarray(ctx.masks)[:n]
        targets = np.asarray(ctx.labels[:n]).astype(np.int64)
        engine = ctx.maps.engine
        base: dict[str, Any] = {"pair": pair, "seed": ctx.seed, "n_boot": ctx.profile.n_boot}

        per_rung: dict[str, dict[tuple[str, str], np.ndarray]] = {}  # rung -> (method, measure)
        learned: dict[str, bool] = {}
        fp_maps: dict[str, np.ndarray] = {}
        rows: list[ScoreRow] = []
        for rung in rungs:
            spec = ladder_spec(
                pair,
                rung,
                image_size=int(ctx.images.shape[1]),
                widths=pair_widths(pair, ctx.profile.train.widths_scale),
                num_classes=len(ctx.class_names),
            )
            cfg = self.train_config(ctx, opts, rung)
            with ctx.progress.stage(f"ladder {pair} {rung}"):
                loaded, correct, meta = _train_rung(ctx, spec, cfg, tr, te)
            floor = accuracy_floor(spec.num_classes, ctx.profile.accuracy_floor_factor)
            learned[rung] = bool(np.mean(correct) >= floor)
            w_bits, a_bits = RUNGS[rung]
            params: dict[str, Any] = {
                "rung": rung,
                "weight_bits": w_bits,
                "activation_bits": a_bits,
                "quantizer": _quantizer_text(w_bits, a_bits),
                "epochs": cfg.epochs,
                "batch_size": cfg.batch_size,
                "learning_rate": cfg.learning_rate,
                "train_seed": cfg.seed,
                "n_train": int(len(tr)),
                "n_test": int(len(te)),
                "accuracy_floor": floor,
                "cache": meta.get("cache", ""),
            }
            family = "FP" if rung == "fp32" else "BNN" if rung == "binary" else "QNN"
            common = {**base, "model": f"{pair}: {rung}", "family": family}
            measures = {(MODEL_LEVEL, "test_accuracy"): correct}
            rows.append(
                self.row(
                    correct, **common, method=MODEL_LEVEL, metric="test_accuracy", params=params
                )
            )
            for m in opts.methods:
                ok, why = is_defined(m, loaded, engine=engine)
                if not ok:
                    log(ctx, f"binarization ladder: skip {m} on {pair} {rung}: {why}")
                    continue
                method = ctx.method(m)
                maps = ctx.maps.get(loaded, method, images, targets)
                use_abs = not ranks_signed(m)
                scalars, _ = localization_scores(maps, masks, use_abs=use_abs)
                values = {k: scalars[k] for k in ("relevance_mass", "pointing_game", "iou_auc")}
                values["entropy_normalized"] = map_entropy(maps, normalized_by_log_n=True)
                if rung == "fp32":
                    fp_maps[m] = maps
                elif m in fp_maps:
                    values["spearman_vs_fp"] = spearman(maps, fp_maps[m], use_abs=True)
                p = {
                    **method.params(),
                    **params,
                    "use_abs": use_abs,
                    "n_images": n,
                    "target": "true",
                }
                for metric, v in values.items():
                    measures[(m, metric)] = v
                    rows.append(self.row(v, **common, method=m, metric=metric, params=p))
            per_rung[rung] = measures
            # the maps stay in the map store; one rung's model (and its traced functions) in
            # memory at a time: each rung held ~80-100 MB more until the benchmark's end
            del loaded
            free_derived_models(ctx)
        rows.extend(self._change_rows(ctx, pair, per_rung, learned, base))
        return rows

    def _change_rows(
        self,
        ctx: RunContext,
        pair: str,
        per_rung: dict[str, dict[tuple[str, str], np.ndarray]],
        learned: dict[str, bool],
        base: dict[str, Any],
    ) -> list[ScoreRow]:
        rows: list[ScoreRow] = []
        largest: dict[tuple[str, str], tuple[float, str, str, np.ndarray]] = {}
        for a, b in ladder_edges(list(per_rung)):
            if not (learned[a] and learned[b]):
                log(
                    ctx,
                    f"binarization ladder: step {a} -> {b} of {pair} not scored (a rung "
                    "below the accuracy floor did not learn)",
                )
                continue
            for key, va in per_rung[a].items():
                vb = per_rung[b].get(key)
                if vb is None:
                    continue
                method, measure = key
                delta = np.asarray(vb, np.float64) - np.asarray(va, np.float64)
                params = {
                    "from": a,
                    "to": b,
                    "from_bits": list(RUNGS[a]),
                    "to_bits": list(RUNGS[b]),
                    "unit": SCALE_UNIT,
                }
                row = self.row(
                    delta,
                    **base,
                    model=f"{pair}: {a} -> {b}",
                    family="ladder",
                    method=method,
                    metric=f"change_{measure}",
                    params=params,
                )
                rows.append(row)
                size = abs(row.value) if np.isfinite(row.value) else -1.0
                if size > largest.get(key, (-1.0,))[0]:
                    largest[key] = (size, a, b, delta)
        for (method, measure), (_, a, b, delta) in largest.items():
            rows.append(
                self.row(
                    delta,
                    **base,
                    model=f"{pair}: largest {measure} change, {a} -> {b}",
                    family="ladder",
                    method=method,
                    metric=f"change_{measure}",
                    params={"from": a, "to": b, "largest": True, "unit": SCALE_UNIT},
                )
            )
        return rows


def _quantizer_text(w_bits: int, a_bits: int) -> str:
    def one(bits: int) -> str:
        return "real" if bits == 32 else "ste_sign" if bits == 1 else f"DoReFa k={bits}"

    return f"weights {one(w_bits)}, activations {one(a_bits)}"


def _train_rung(
    ctx: RunContext, spec: Any, cfg: TrainConfig, tr: np.ndarray, te: np.ndarray
) -> tuple[LoadedModel, np.ndarray, dict[str, Any]]:
    """The rung trained (or loaded from the model cache) and its per-test-image correctness.
    On the whole training set this is the pipeline's own training (same cache entry: fp32 and
    binary are the run's models under the profile's recipe); on a subset, training on arrays
    keyed by the data's identity and the subset (as ROAR's retrainings are)."""
    from binsal.models.training import train_on_arrays, train_or_load

    data = ctx.data
    if len(tr) == len(data.y_train):
        loaded = train_or_load(spec, data, cfg, cache_root=ctx.cache_root, progress=ctx.progress)
        x_test, y_test = data.x_test[te], np.asarray(data.y_test)[te]
        logits = loaded.model.predict(loaded.prepare(x_test), batch_size=256, verbose=0)
        correct = (np.argmax(logits, axis=1) == y_test).astype(np.float64)
        return loaded, correct, loaded.meta
    key_extra = {
        "config": getattr(data, "config_name", ""),
        "version": getattr(data, "version", ""),
        "train_subset": index_digest(tr),
        "test_subset": index_digest(te),
    }
    model, meta = train_on_arrays(
        spec,
        lambda: data.x_train[tr],  # decoded only if the rung must be trained
        np.asarray(data.y_train)[tr],
        cfg,
        cache_root=ctx.cache_root,
        key_extra=key_extra,
        x_test=data.x_test[te],
        y_test=np.asarray(data.y_test)[te],
        tag=CACHE_TAG,
        progress=ctx.progress,
    )
    loaded = LoadedModel(spec, model, float(meta["test_accuracy"]), dict(meta))
    return loaded, np.asarray(meta["test_correct"], np.float64), meta
