"""Data-randomization test (Adebayo et al. 2018): an explanation that looks the
same for a model that learned nothing but noise labels does not explain what the model learned.
The similarity measures are shared with the model-randomization check
(``_randomization_common``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from binsal.benchmarks._randomization_common import (
    SIMILARITY_METRICS,
    hog_cell,
    resolve_methods,
    similarity_scores,
)
from binsal.benchmarks.base import (
    BENCHMARKS,
    Benchmark,
    BenchmarkOptions,
    MethodChoice,
    ModelChoice,
    PlotSpec,
    RunContext,
    Score,
    chosen_models,
    explained_targets,
    has_training_data,
    log,
)
from binsal.core.schema import ScoreRow
from binsal.models.spec import LoadedModel
from binsal.models.training import TrainConfig
from binsal.saliency import is_defined

MODEL_LEVEL = "(model)"  # ``method`` of rows that describe the permuted-label model


def permuted_train_config(
    ctx: RunContext, loaded: LoadedModel, epochs: int | None = None
) -> TrainConfig:
    """The profile's training settings for this model (as ``binsal.pipeline.load_models`` builds
    them), with ``permute_labels=True``."""
    t = ctx.profile.train
    default_epochs = t.epochs_bnn if loaded.family == "BNN" else t.epochs_fp
    return TrainConfig(
        epochs=int(epochs) if epochs is not None else default_epochs,
        batch_size=t.batch_size,
        learning_rate=t.learning_rate,
        seed=ctx.profile.seed,
        permute_labels=True,
    )


@BENCHMARKS.add("data_randomization")
class DataRandomization(Benchmark):
    """Data-randomization test (Adebayo et al. 2018): the same architecture trained on randomly
    permuted training labels, with the profile's training settings (epochs, batch size, learning
    rate, seed), cached like every trained model.

    Its maps of the evaluation images for their true class are compared with the properly trained
    model's maps for the same images and targets by Spearman of abs maps, Spearman of signed
    maps, SSIM and HOG-Pearson (abs). Direction "lower": a method whose maps look the same for a
    model that learned nothing transferable fails. The permuted model's test accuracy
    (permuted_test_accuracy, per test image, should be near chance) and final training accuracy
    (permuted_train_accuracy, how far it memorised the noise labels) are reported with direction
    "none". Skipped (no rows) when the run has no training data, e.g. with pretrained networks.
    """

    name: ClassVar[str] = "data_randomization"
    title: ClassVar[str] = "Data-randomization test"
    description: ClassVar[str] = __doc__ or ""
    order: ClassVar[int] = 35
    scores: ClassVar[Mapping[str, Score]] = {
        **{
            m: Score("lower", what.replace("before vs after", "trained vs permuted-label model"))
            for m, what in SIMILARITY_METRICS.items()
        },
        "permuted_test_accuracy": Score(
            "none", "test accuracy of the permuted-label model (per test image; near chance)"
        ),
        "permuted_train_accuracy": Score(
            "none", "final training accuracy of the permuted-label model (memorised noise)"
        ),
    }
    plots: ClassVar[tuple[PlotSpec, ...]] = (
        PlotSpec(
            "spearman_abs",
            title="Spearman of abs maps, trained vs permuted-label model",
            ylabel="Spearman rho (abs)",
        ),
        PlotSpec("ssim", title="SSIM of abs maps, trained vs permuted-label model", ylabel="SSIM"),
        PlotSpec(
            "hog_pearson", title="HOG-Pearson, trained vs permuted-label model", ylabel="Pearson"
        ),
    )

    @dataclass(frozen=True)
    class Options(BenchmarkOptions):
        """``[benchmarks.data_randomization]``. Each model listed is trained once more, on
        permuted labels (cached): name the models of the run worth it, e.g. one matched pair."""

        models: ModelChoice = field(default="all", metadata={"known": "model"})
        # "profile": the profile's model-dependent methods; or a list of them
        methods: MethodChoice = field(default="profile", metadata={"known": "method"})
        # None: the profile's [train] epochs for the model's family; recorded in every row
        epochs: int | None = field(default=None, metadata={"min": 1})
        n_images: int | None = field(default=None, metadata={"min": 1})  # None: all

    def run(self, ctx: RunContext) -> list[ScoreRow]:
        from binsal.models.training import train_or_load

        if not has_training_data(ctx.data):
            log(ctx, "data randomization: skipped, this run has no training data")
            return []
        opts = self.Options.from_profile(ctx.profile, self.name)
        names = resolve_methods(ctx, opts.methods)
        n = len(ctx.images) if opts.n_images is None else int(opts.n_images)
        n = min(n, len(ctx.images))
        images = ctx.images[:n]
        engine = ctx.maps.engine
        rows: list[ScoreRow] = []
        models = chosen_models(ctx, opts.models)
        if not models:
            wanted = opts.models if opts.models == "all" else list(opts.models)
            log(ctx, f"data randomization: none of {wanted} in this run; skipped")
        for model_name in models:
            trained = ctx.models[model_name]
            if trained.spec.source != "synthetic":
                log(ctx, f"data randomization: skip {model_name} (pretrained, not trained here)")
                continue
            train = permuted_train_config(ctx, trained, opts.epochs)
            with ctx.progress.stage(f"permuted-label model {model_name}"):
                permuted = train_or_load(
                    trained.spec, ctx.data, train, cache_root=ctx.cache_root, progress=ctx.progress
                )
            base: dict[str, Any] = {
                "model": model_name,
                "family": trained.family,
                "pair": trained.spec.pair,
                "seed": ctx.seed,
                "n_boot": ctx.profile.n_boot,
            }
            train_params = {
                "epochs": train.epochs,
                "permute_labels": True,
                "train_seed": train.seed,
                "trained_test_accuracy": trained.test_accuracy,
                "cache": permuted.meta.get("cache", ""),
            }
            correct = self._test_correct(permuted, ctx.data)
            rows.append(
                self.row(
                    correct,
                    **base,
                    method=MODEL_LEVEL,
                    metric="permuted_test_accuracy",
                    params={**train_params, "chance": 1.0 / trained.spec.num_classes},
                )
            )
            train_acc = permuted.meta.get("train_accuracy_final", float("nan"))
            rows.append(
                self.row(
                    [train_acc],
                    **base,
                    method=MODEL_LEVEL,
                    metric="permuted_train_accuracy",
                    params={**train_params, "unit": "final epoch (one value)"},
                )
            )
            for m in ctx.progress.bar(names, desc=f"data randomization {model_name}"):
                ok, why = is_defined(m, trained, engine=engine)
                if not ok:
                    log(ctx, f"data randomization: skip {m} on {model_name}: {why}")
                    continue
                method = ctx.method(m)
                targets = explained_targets(ctx, model_name)
                original = ctx.maps.get(trained, method, ctx.images, targets)[:n]
                maps = method.explain(permuted, images, targets[:n], engine=engine)
                params = {
                    **method.params(),
                    **train_params,
                    "target": "true",
                    "n_images": n,
                    "hog_pixels_per_cell": hog_cell(images.shape[1:3]),
                }
                for metric, values in similarity_scores(original, maps).items():
                    rows.append(self.row(values, **base, method=m, metric=metric, params=params))
        return rows

    @staticmethod
    def _test_correct(loaded: LoadedModel, data: Any) -> np.ndarray:
        logits = loaded.model.predict(loaded.prepare(data.x_test), batch_size=256, verbose=0)
        return (np.argmax(logits, axis=1) == np.asarray(data.y_test)).astype(np.float64)
