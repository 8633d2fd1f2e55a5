"""The model registry: name -> factory(profile) -> ModelSpec.

To add a model, write a builder returning a logits-producing ``tf.keras.Model`` and register a
factory here (see README, "Adding a model").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from binsal.core.registry import Registry
from binsal.models.pairs import ARCHITECTURES, FEATURES
from binsal.models.spec import ModelSpec

NUM_SYNTHETIC_CLASSES = 4

MODELS: Registry[Callable[[Any], ModelSpec]] = Registry("model")


def _scaled(widths: tuple[int, ...], scale: float) -> tuple[int, ...]:
    return tuple(max(4, int(round(w * scale))) for w in widths)


def _synthetic_pair_member(arch: str, binary: bool, widths: tuple[int, ...]) -> Any:
    family = "BNN" if binary else "FP"

    def factory(profile: Any) -> ModelSpec:
        size = profile.data.image_size
        shape = (size, size, 3)
        kind = "binarized (larq ste_sign)" if binary else "full precision"
        return ModelSpec(
            name=f"{arch}_{family.lower()}",
            family=family,
            build=ARCHITECTURES[arch],
            input_shape=shape,
            num_classes=NUM_SYNTHETIC_CLASSES,
            gradcam_layer=FEATURES,
            pair=arch,
            source="synthetic",
            description=f"{arch.upper()}-style, {kind}",
            build_kwargs={
                "input_shape": shape,
                "num_classes": NUM_SYNTHETIC_CLASSES,
                "binary": binary,
                "widths": _scaled(widths, profile.train.widths_scale),
                "stem_pool": size >= 48,
                "name": f"{arch}_{family.lower()}",
            },
        )

    return factory


for _arch, _widths in (("vgg", (32, 64, 128)), ("resnet", (16, 32, 64))):
    for _binary in (False, True):
        MODELS.register(
            f"{_arch}_{'bnn' if _binary else 'fp'}", _synthetic_pair_member(_arch, _binary, _widths)
        )
from binsal.models import paper  # noqa: E402,F401  (registers the paper networks)
