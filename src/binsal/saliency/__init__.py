"""Saliency methods: one verb, ``method.explain(model, images, targets, engine=...)``.

Each method class registers itself with ``@register_method`` beside its definition; importing
its module here (one line) makes it known to ``METHODS``.
"""

from __future__ import annotations

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
    "is_defined",
    "register_method",
    "reduce_channels",
    "validate_batch",
]
