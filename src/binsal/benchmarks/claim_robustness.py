"""Claim robustness: the claims' measures under every defensible analysis choice.

The paper's verdicts rest on choices a reader could make differently: |gradient| of every
SmoothGrad sample or not (tf-keras-vis's default ``gradient_modifier=abs``), the channel
reduction (sum, channel max of |g| as tf-keras-vis, L2), min-max normalisation of each map or
none, the GradCAM layer rule (the last spatial feature map, or tf-keras-vis's default search),
and SmoothGrad's sigma. For every combination of the values given in the options, this benchmark
re-runs the benchmarks behind the claims (``rank_correlation``, ``entropy_vs_noise``,
``gradcam_pathologies``) on the first ``n_images`` evaluation images, each on one method at a time
and only once per distinct combination of the choices that reach that method's maps (Gradient's
maps do not depend on SmoothGrad's sigma; entropy vs noise sweeps sigma itself; the pathologies
depend only on the GradCAM layer). Maps are shared through the run's map store.

Rows: the underlying benchmark's rows, with metric ``"<benchmark>/<metric>"`` and params
``of`` (the benchmark) and ``setting`` (the values of the choices that reached it). The report
evaluates every claim once per combination on these rows and tables whether each verdict
survives all combinations, holds only under the paper's settings, or flips.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from binsal import metrics

# registered before this module's scores are declared from theirs
from binsal.benchmarks import entropy_vs_noise, gradcam_pathologies, rank_correlation  # noqa: F401
from binsal.benchmarks.base import BENCHMARKS, Benchmark, BenchmarkOptions, RunContext, Score
from binsal.core.profile import LayerRule
from binsal.core.schema import ScoreRow, collect_units, key_of, units_sink
from binsal.models.gradcam_rules import LAYER_RULES, apply_rule
from binsal.models.spec import LoadedModel
from binsal.saliency import forget_noisy_passes

CHOICES: tuple[str, ...] = (
    "per_sample_abs",
    "channel_reduce",
    "normalize",
    "gradcam_layer",
    "smoothgrad_noise",
)
_GRADIENT = ("per_sample_abs", "channel_reduce", "normalize")
# the re-runs: (benchmark, the methods it is run on, the choices that reach those maps); a
# choice that does not reach a method's maps does not re-run it (Gradient's maps do not depend
# on SmoothGrad's sigma, GradCAM's on no gradient option)
RERUNS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("rank_correlation", ("gradient",), _GRADIENT),
    ("rank_correlation", ("smoothgrad",), (*_GRADIENT, "smoothgrad_noise")),
    ("rank_correlation", ("gradcam",), ("normalize", "gradcam_layer")),
    ("entropy_vs_noise", ("smoothgrad",), _GRADIENT),  # it sweeps sigma itself
    ("gradcam_pathologies", ("gradcam",), ("gradcam_layer",)),  # signed low-resolution CAMs
)
BENCHES: tuple[str, ...] = tuple(dict.fromkeys(b for b, _, _ in RERUNS))
METHODS = ("gradient", "smoothgrad", "gradcam")  # the paper's three, what the claims read


def _scores() -> dict[str, Score]:
    out: dict[str, Score] = {}
    for bench in BENCHES:
        for metric, score in BENCHMARKS[bench].scores.items():
            out[f"{bench}/{metric}"] = Score(score.direction, f"{bench}: {score.description}")
    return out


# the order the combinations are run in, slowest-varying first: the choices that reach the
# model's forward/backward passes (the GradCAM layer's traced function, SmoothGrad's noisy
# pass, kept for the next call with the same inputs) before those applied to its gradients
# afterwards, so the re-runs that share one pass come one after another
RUN_ORDER: tuple[str, ...] = (
    "gradcam_layer",
    "per_sample_abs",
    "smoothgrad_noise",
    "channel_reduce",
    "normalize",
)


def settings(opts: Any) -> list[dict[str, Any]]:
    """Every combination of the options' values, as {choice: value} (in :data:`RUN_ORDER`)."""
    values = [tuple(getattr(opts, c)) for c in RUN_ORDER]
    combos = [dict(zip(RUN_ORDER, combo, strict=True)) for combo in itertools.product(*values)]
    return [{c: combo[c] for c in CHOICES} for combo in combos]


def sub_context(
    ctx: RunContext, setting: Mapping[str, Any], n: int, methods: tuple[str, ...] = METHODS
) -> RunContext:
    """``ctx`` on its first ``n`` images and ``methods``, with the map settings of ``setting``
    (anything not in it: binsal's defaults) and each model's GradCAM layer by its rule."""
    prof = ctx.profile
    sal = dataclasses.replace(
        prof.saliency,
        methods=methods,
        preset="binsal",
        per_sample_abs=setting.get("per_sample_abs"),
        channel_reduce=setting.get("channel_reduce"),
        normalize=setting.get("normalize"),
        gradcam_layer=str(setting.get("gradcam_layer", "")),
        gradcam_layers={},
        smoothgrad_noise=float(setting.get("smoothgrad_noise", prof.saliency.smoothgrad_noise)),
    )
    tables = dict(prof.benchmark_options)
    tables["gradcam_pathologies"] = {
        **tables.get("gradcam_pathologies", {}),
        "layer_rules": [],
        "n_images": n,
    }
    tables["entropy_vs_noise"] = {**tables.get("entropy_vs_noise", {}), "n_images": n}
    rule = str(setting.get("gradcam_layer", ""))
    models = {
        name: apply_rule(LoadedModel(m.spec, m.model, m.test_accuracy, dict(m.meta)), rule)
        for name, m in ctx.models.items()
    }
    return dataclasses.replace(
        ctx,
        profile=dataclasses.replace(prof, saliency=sal, benchmark_options=tables),
        models=models,
        images=ctx.images[:n],
        labels=np.asarray(ctx.labels)[:n],
        masks=None if ctx.masks is None else np.asarray(ctx.masks)[:n],
        predictions={k: np.asarray(v)[:n] for k, v in ctx.predictions.items()},
    )


@BENCHMARKS.add("claim_robustness")
class ClaimRobustness(Benchmark):
    name: ClassVar[str] = "claim_robustness"
    title: ClassVar[str] = "Claim robustness: the verdicts under every defensible analysis choice"
    description: ClassVar[str] = __doc__ or ""
    order: ClassVar[int] = 95
    scores: ClassVar[Mapping[str, Score]] = _scores()

    @dataclass(frozen=True)
    class Options(BenchmarkOptions):
        """``[benchmarks.claim_robustness]``: the values of each choice to combine (the paper's
        settings are ``per_sample_abs = true``, ``channel_reduce = "max_abs"``, ``normalize =
        "minmax"``, ``gradcam_layer = "toolkit_default"``, ``smoothgrad_noise = 0.2``)."""

        per_sample_abs: tuple[bool, ...] = field(default=(False, True), metadata={"min_items": 1})
        channel_reduce: tuple[Literal["sum", "mean", "max_abs", "max", "l2"], ...] = field(
            default=("sum", "max_abs", "l2"), metadata={"min_items": 1}
        )
        normalize: tuple[Literal["none", "minmax"], ...] = field(
            default=("none", "minmax"), metadata={"min_items": 1}
        )
        gradcam_layer: tuple[LayerRule, ...] = field(default=LAYER_RULES, metadata={"min_items": 1})
        smoothgrad_noise: tuple[float, ...] = field(
            default=(0.1, 0.2, 0.3), metadata={"gt": 0, "max": 1, "min_items": 1}
        )
        n_images: int = field(default=32, metadata={"min": 1})

    def run(self, ctx: RunContext) -> list[ScoreRow]:
        opts = self.Options.from_profile(ctx.profile, self.name)
        assert isinstance(opts, ClaimRobustness.Options)
        n = max(1, min(int(opts.n_images), len(ctx.images)))
        runs: dict[str, tuple[str, tuple[str, ...], dict[str, Any]]] = {}
        for bench, methods, reach in RERUNS:  # one benchmark and method at a time
            for setting in settings(opts):
                part = {k: setting[k] for k in reach}
                key = json.dumps([bench, methods, part], sort_keys=True)
                runs.setdefault(key, (bench, methods, part))
        rows: list[ScoreRow] = []
        outer = units_sink()
        shared_pass: Any = None
        for key in ctx.progress.bar(list(runs), desc="claim robustness"):
            bench, methods, part = runs[key]
            # the choices that reach the models' passes: re-runs differing only in the others
            # (channel reduction, normalisation) reuse the kept noisy passes; the next group
            # cannot hit the previous group's
            group = (bench, methods, *(part.get(c) for c in RUN_ORDER[:3]))
            if group != shared_pass:
                forget_noisy_passes()
                metrics.forget_results()
                shared_pass = group
            sub = sub_context(ctx, part, n, methods)
            # the re-run's per-image values are recorded apart and filed under the renamed rows:
            # under the underlying benchmark's keys they would replace that benchmark's own
            # values in a replicate merge
            with collect_units() as inner:
                produced = BENCHMARKS[bench]().run(sub)
            # each re-run's maps are on disk; in memory they would pile up over the ~60 re-runs
            ctx.maps.release()
            for row in produced:
                params = {**json.loads(row.params), "of": bench, "setting": part}
                renamed = dataclasses.replace(
                    row,
                    benchmark=self.name,
                    metric=f"{bench}/{row.metric}",
                    params=json.dumps(params, sort_keys=True, default=str),
                )
                rows.append(renamed)
                if outer is not None and key_of(row) in inner:
                    outer[key_of(renamed)] = inner[key_of(row)]
        return rows
