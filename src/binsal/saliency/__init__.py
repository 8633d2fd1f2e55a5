"""Saliency methods: one verb, ``method.explain(model, images, targets, engine=...)``."""

from __future__ import annotations

from binsal.core.registry import Registry
from binsal.models.spec import LoadedModel
from binsal.saliency.base import ENGINES, SaliencyMethod, reduce_channels, validate_batch
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

METHODS: Registry[type[SaliencyMethod]] = Registry("method")
for _cls in (
    Gradient,
    SmoothGrad,
    GradCAM,
    RandomMap,
    SobelMap,
    SmoothGradSquared,
    VarGrad,
    IntegratedGradients,
    GradCAMPlusPlus,
    ScoreCAM,
    GuidedBackprop,
    GradCAMSigned,
    GradCAMInverted,
):
    METHODS.register(_cls.name, _cls)

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
    "is_defined",
    "reduce_channels",
    "validate_batch",
]
