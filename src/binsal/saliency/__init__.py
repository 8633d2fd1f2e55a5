"""Saliency methods: one verb, ``method.explain(model, images, targets, engine=...)``.

Each method class registers itself with ``@register_method`` beside its definition; importing
its module here (one line) makes it known to ``METHODS``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from binsal.models.spec import LoadedModel
from binsal.saliency.base import (
    ENGINES,
    METHODS,
    SaliencyMethod,
    reduce_channels,
    register_method,
    validate_batch,
)
from binsal.saliency.methods import GradCAM, Gradient, RandomMap, SmoothGrad, SobelMap
from binsal.saliency.methods_extra import (
    GradCAMInverted,
    GradCAMPlusPlus,
    GradCAMSigned,
    GuidedBackprop,
    IntegratedGradients,
    ScoreCAM,
    SmoothGradSquared,
    VarGrad,
)

CONTROLS = ("random", "sobel")


def is_defined(
    method_name: str, loaded_model: LoadedModel | None, *, engine: str = "tf"
) -> tuple[bool, str]:
    """(defined, reason) for running ``method_name`` (default options) on ``loaded_model``
    with ``engine``; benchmarks call this before ``explain`` and skip (and report) the pair
    when it is not defined, e.g. guided backprop on a larq BNN. Unknown method names raise
    :class:`binsal.core.errors.UnknownNameError`."""
    cls = METHODS[method_name]
    if engine not in cls.engines:
        return False, f"method {method_name!r} has no engine {engine!r} ({', '.join(cls.engines)})"
    if not cls.needs_model:
        return True, ""
    return cls().defined_for(loaded_model)


__all__ = [
    "CONTROLS",
    "ENGINES",
    "METHODS",
    "GradCAM",
    "GradCAMInverted",
    "GradCAMPlusPlus",
    "GradCAMSigned",
    "Gradient",
    "GuidedBackprop",
    "IntegratedGradients",
    "RandomMap",
    "SaliencyMethod",
    "ScoreCAM",
    "SmoothGrad",
    "SmoothGradSquared",
    "SobelMap",
    "VarGrad",
    "forget_noisy_passes",
    "forget_results",
    "is_defined",
    "register_method",
    "reduce_channels",
    "validate_batch",
]


def forget_results() -> None:
    """Drop the results the engines keep between calls (the SmoothGrad family's noisy passes,
    shared by SmoothGrad, SmoothGrad-squared and VarGrad of the same images), so that the next
    call computes its map from scratch: what timing one call needs. The noise drawn for them
    goes too. Traced functions stay."""
    forget_noisy_passes()
    engine = sys.modules.get("binsal.saliency.engine_tf")
    if engine is not None:
        engine._DRAWS.clear()  # noqa: SLF001 - the engine's own cache of the noise drawn


def forget_noisy_passes() -> None:
    """Drop the SmoothGrad family's kept noisy passes but keep the noise drawn for them: for a
    caller whose next calls cannot hit them (the weights changed, e.g. the next step of model
    randomization, or another setting's inputs) and whose later calls redraw the same noise."""
    engine = sys.modules.get("binsal.saliency.engine_tf")
    if engine is not None:
        engine._FAMILY_CACHE.clear()  # noqa: SLF001 - the engine's own cache of noisy passes


def release_traced(keep: Iterable[Any] = ()) -> None:
    """Drop the traced functions and model clones the engines keep per model, except those of
    the models in ``keep`` (Keras models). Their caches are weak-keyed by model, but each value
    references its model, so nothing is freed until they are cleared: call this when models are
    done with (a benchmark's clones and permuted-label models after the benchmark, every model
    after a training-seed replicate), then ``gc.collect()``."""
    import weakref

    keep = list(keep)
    kept = {id(m) for m in keep}
    guided = sys.modules.get("binsal.saliency.guided")
    if guided is not None:  # a kept model's guided-ReLU clone keeps its traced functions too
        clones = guided._CLONES  # noqa: SLF001 - the guided module's own cache
        kept |= {id(clones[m]) for m in keep if m in clones}
    for module in ("binsal.saliency.engine_tf", "binsal.saliency.guided"):
        loaded = sys.modules.get(module)
        for value in vars(loaded).values() if loaded is not None else ():
            if isinstance(value, weakref.WeakKeyDictionary):
                for model in [k for k in value.keys() if id(k) not in kept]:
                    del value[model]
    if not kept:  # the noisy passes of kept models may serve their next calls
        forget_results()
