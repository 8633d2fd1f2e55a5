"""The model registry: name -> factory(profile) -> ModelSpec.

Importing this module loads no TensorFlow: a spec's ``build`` imports its builder when called.
To add a model, put its builder and a factory decorated with ``@MODELS.add("name")`` in a new
module of this package and import that module at the bottom of this file (see README,
"Extending"; ``models/paper.py`` is an example).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from binsal.core.registry import Registry
from binsal.models.spec import ModelSpec

NUM_SYNTHETIC_CLASSES = 4
FEATURES = "features"  # the layer the synthetic pairs name their last spatial feature map
PAIR_WIDTHS: dict[str, tuple[int, ...]] = {"vgg": (32, 64, 128), "resnet": (16, 32, 64)}

MODELS: Registry[Callable[[Any], ModelSpec]] = Registry("model")


def build_pair_member(arch: str, **kwargs: Any) -> Any:
    """Build one synthetic-pair network (``binsal.models.pairs``, imported here: TensorFlow)."""
    from binsal.models.pairs import ARCHITECTURES

    return ARCHITECTURES[arch](**kwargs)


def _build_vgg(**kwargs: Any) -> Any:
    return build_pair_member("vgg", **kwargs)


def _build_resnet(**kwargs: Any) -> Any:
    return build_pair_member("resnet", **kwargs)


_BUILDERS: dict[str, Callable[..., Any]] = {"vgg": _build_vgg, "resnet": _build_resnet}


def pair_member_spec(
    arch: str,
    binary: bool,
    *,
    image_size: int,
    widths: tuple[int, ...],
    num_classes: int = NUM_SYNTHETIC_CLASSES,
    prefix: str = "",
    source: str = "synthetic",
) -> ModelSpec:
    """The spec of one member of a matched pair: the registered pairs and the tests' tiny
    fixtures both come from here (``prefix`` names the fixtures apart, e.g. "tiny_")."""
    family = "BNN" if binary else "FP"
    shape = (image_size, image_size, 3)
    kind = "binarized (larq ste_sign)" if binary else "full precision"
    name = f"{prefix}{arch}_{family.lower()}"
    return ModelSpec(
        name=name,
        family=family,
        build=_BUILDERS[arch],
        input_shape=shape,
        num_classes=num_classes,
        gradcam_layer=FEATURES,
        pair=f"{prefix}{arch}",
        source=source,
        description=f"{arch.upper()}-style, {kind}",
        build_kwargs={
            "input_shape": shape,
            "num_classes": num_classes,
            "binary": binary,
            "widths": tuple(widths),
            "stem_pool": image_size >= 48,
            "name": name,
        },
    )


def _scaled(widths: tuple[int, ...], scale: float) -> tuple[int, ...]:
    return tuple(max(4, int(round(w * scale))) for w in widths)


def pair_widths(arch: str, scale: float = 1.0) -> tuple[int, ...]:
    """The widths of the registered pair ``arch`` at a profile's ``[train] widths_scale``."""
    return _scaled(PAIR_WIDTHS[arch], scale)


def _synthetic_pair_member(arch: str, binary: bool) -> Callable[[Any], ModelSpec]:
    def factory(profile: Any) -> ModelSpec:
        return pair_member_spec(
            arch,
            binary,
            image_size=profile.data.image_size,
            widths=_scaled(PAIR_WIDTHS[arch], profile.train.widths_scale),
        )

    return factory


for _arch in PAIR_WIDTHS:
    for _binary in (False, True):
        MODELS.register(
            f"{_arch}_{'bnn' if _binary else 'fp'}", _synthetic_pair_member(_arch, _binary)
        )

# registers the paper networks: pretrained (paper) and trained here on the shapes (paper_arch)
from binsal.models import paper, paper_arch  # noqa: E402,F401
