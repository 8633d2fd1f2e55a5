"""Saliency methods: one verb, ``method.explain(model, images, targets, engine=...)``."""

from binsal.registry import Registry
from binsal.saliency.base import ENGINES, SaliencyMethod, reduce_channels, validate_batch
from binsal.saliency.methods import GradCAM, Gradient, RandomMap, SmoothGrad, SobelMap

METHODS: Registry[type[SaliencyMethod]] = Registry("method")
for _cls in (Gradient, SmoothGrad, GradCAM, RandomMap, SobelMap):
    METHODS.register(_cls.name, _cls)

CONTROLS = ("random", "sobel")

__all__ = [
    "CONTROLS",
    "ENGINES",
    "METHODS",
    "GradCAM",
    "Gradient",
    "RandomMap",
    "SaliencyMethod",
    "SmoothGrad",
    "SobelMap",
    "reduce_channels",
    "validate_batch",
]
