"""Which layer GradCAM is taken at: a rule per model, resolved on the built model.

- ``"last_feature_map"``: the last spatial feature map before the classifier head, the layer
  Selvaraju et al. (2017) use; each model spec pins it (found by
  :func:`binsal.models.paper.find_gradcam_layer` for the paper's networks and own models, the
  ``features`` layer of binsal's pairs).
- ``"toolkit_default"``: the layer tf-keras-vis 0.8.7 takes when ``Gradcam`` is called with its
  defaults (``penultimate_layer=None, seek_penultimate_conv_layer=True``): walking back from the
  model's last layer, the first instance of Keras' convolution base class ``Conv`` (which
  ``QuantConv2D``, ``DepthwiseConv2D`` and 1x1 classifier convolutions are too). Resolved with
  tf-keras-vis's own ``find_layer`` and ``Conv`` import, so it is the toolkit's choice exactly.
- any other string: that layer's name.

A layer whose output is 1x1 gives a CAM that is one number per image: constant once upsampled,
and blank once min-max normalised (tf-keras-vis's ``normalize_cam=True``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from binsal.core.errors import BinsalError
from binsal.core.profile import LAYER_RULES
from binsal.models.spec import LoadedModel

LAST_FEATURE_MAP, TOOLKIT_DEFAULT = LAYER_RULES


def toolkit_default_layer(model: Any) -> str:
    """The name of the layer tf-keras-vis 0.8.7's ``Gradcam`` uses by default on ``model``."""
    from tf_keras_vis.utils import find_layer
    from tf_keras_vis.utils.model_modifiers import Conv  # type: ignore[attr-defined]

    layer = find_layer(model, lambda lay: isinstance(lay, Conv), offset=model.layers[-1])
    if layer is None:
        raise BinsalError(
            f"model {model.name} has no convolution layer for tf-keras-vis's default GradCAM "
            f"search; give a layer name or the rule {LAST_FEATURE_MAP!r}"
        )
    try:
        model.get_layer(layer.name)
    except ValueError:
        raise BinsalError(
            f"tf-keras-vis's default GradCAM layer of {model.name} ({layer.name!r}) sits in a "
            "nested model; give a top-level layer name instead"
        ) from None
    return str(layer.name)


def resolve_layer(loaded: LoadedModel, rule: str) -> str:
    """The layer name ``rule`` (a rule of :data:`LAYER_RULES` or a layer name) picks."""
    if rule in ("", LAST_FEATURE_MAP):  # the spec's own layer, even after another rule
        return str(loaded.meta.get("pinned_gradcam_layer", loaded.spec.gradcam_layer))
    if rule == TOOLKIT_DEFAULT:
        return toolkit_default_layer(loaded.model)
    try:
        loaded.model.get_layer(rule)
    except ValueError:
        raise BinsalError(
            f"model {loaded.name} has no layer {rule!r} for GradCAM; give a layer name of it or "
            f"a rule: {', '.join(LAYER_RULES)}"
        ) from None
    return rule


def spatial_size(loaded: LoadedModel, layer: str) -> tuple[int, int] | None:
    """(h, w) of ``layer``'s output, None where it is not a 4-D feature map."""
    try:
        shape = tuple(loaded.model.get_layer(layer).output.shape)
    except (AttributeError, RuntimeError, ValueError):
        return None
    if len(shape) != 4 or shape[1] is None or shape[2] is None:
        return None
    return int(shape[1]), int(shape[2])


def apply_rule(loaded: LoadedModel, rule: str) -> LoadedModel:
    """``loaded`` with its GradCAM layer set by ``rule``; the rule, layer and its spatial size
    are recorded in ``meta`` (``gradcam_rule``, ``gradcam_layer_size``) for the manifest, the
    spec's own layer as ``pinned_gradcam_layer`` (what "last_feature_map" goes back to)."""
    loaded.meta.setdefault("pinned_gradcam_layer", loaded.spec.gradcam_layer)
    layer = resolve_layer(loaded, rule)
    if layer != loaded.spec.gradcam_layer:
        loaded.spec = replace(loaded.spec, gradcam_layer=layer)
    loaded.meta["gradcam_rule"] = rule or LAST_FEATURE_MAP
    size = spatial_size(loaded, layer)
    loaded.meta["gradcam_layer_size"] = None if size is None else list(size)
    return loaded
