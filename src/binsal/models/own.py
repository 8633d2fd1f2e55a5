"""Your own models: a plain ``tf.keras.Model`` (larq layers included) or a model file as a
binsal model, with family, GradCAM layer and preprocessing found or given.

:func:`wrap_model` checks the model (one input, one output, a 4-D GradCAM layer), finds the
family (``"BNN"`` when any larq layer quantizes its inputs or kernel, else ``"FP"``) and the
GradCAM layer (the last spatial feature map, the one the classifier head pools, stepping back
over pooling only: :func:`binsal.models.paper.find_gradcam_layer`),
and explains a model that ends in softmax on its logits: the softmax is removed on a copy, as
tf-keras-vis's ``ReplaceToLinear`` model modifier does (a saliency map of a saturated softmax
output is mostly zero). :func:`load_model_file` reads ``.keras``, ``.h5`` and SavedModel folders
with larq's and larq-zoo's layers registered.

Preprocessing (``PREPROCESSING``) maps the raw images binsal loads from files (RGB in [0, 255])
to the model's input, outside the model: ``scale01`` (x / 255, binsal's own synthetic models),
``imagenet_caffe`` (VGG16, ResNet50), ``imagenet_torch`` (larq-zoo, DenseNet), ``imagenet_tf``
(MobileNet, Inception) or ``none``; keras.applications family names map to their mode.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from binsal.core.errors import BinsalError, InvalidInputError
from binsal.core.progress import notice
from binsal.models.paper import (
    find_gradcam_layer,
    preprocess_caffe,
    preprocess_larq_zoo,
    preprocess_tf,
)
from binsal.models.spec import Family, LoadedModel, ModelSpec


def _scale01(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, np.float32) / np.float32(255.0)


Preprocess = Callable[[np.ndarray], np.ndarray]

# name -> function of raw [0, 255] images (None: the images are the model's inputs)
PREPROCESSING: dict[str, Preprocess | None] = {
    "none": None,
    "scale01": _scale01,
    "imagenet_caffe": preprocess_caffe,
    "imagenet_torch": preprocess_larq_zoo,
    "imagenet_tf": preprocess_tf,
}
# keras.applications families -> their ``preprocess_input`` mode (EfficientNet rescales inside
# the model: its input is raw [0, 255])
KERAS_FAMILIES = {
    "vgg16": "imagenet_caffe",
    "vgg19": "imagenet_caffe",
    "resnet50": "imagenet_caffe",
    "resnet": "imagenet_caffe",
    "mobilenet": "imagenet_tf",
    "mobilenet_v2": "imagenet_tf",
    "inception_v3": "imagenet_tf",
    "xception": "imagenet_tf",
    "resnet_v2": "imagenet_tf",
    "densenet": "imagenet_torch",
    "efficientnet": "none",
    "larq_zoo": "imagenet_torch",
}
FAMILIES: tuple[Family, ...] = ("FP", "BNN")


def preprocessing(name: str) -> Preprocess | None:
    """The preprocessing function called ``name`` (see ``PREPROCESSING`` and ``KERAS_FAMILIES``)."""
    key = KERAS_FAMILIES.get(name.lower(), name.lower())
    if key not in PREPROCESSING:
        known = sorted({*PREPROCESSING, *KERAS_FAMILIES})
        raise BinsalError(f"unknown preprocessing {name!r}; known: {', '.join(known)}")
    return PREPROCESSING[key]


def is_binarized(model: Any) -> bool:
    """Whether any layer is a larq layer that quantizes its inputs or its kernel."""
    for layer in _all_layers(model):
        if type(layer).__module__.startswith("larq"):
            if getattr(layer, "input_quantizer", None) or getattr(layer, "kernel_quantizer", None):
                return True
    return False


def _all_layers(model: Any) -> list[Any]:
    out = []
    for layer in model.layers:
        out.append(layer)
        if hasattr(layer, "layers"):  # a nested model
            out.extend(_all_layers(layer))
    return out


def _is_softmax_activation(fn: Any) -> bool:
    return getattr(fn, "__name__", "") == "softmax"


def logits_model(model: Any) -> tuple[Any, bool]:
    """(model, changed): ``model`` without a final softmax. A separate ``Softmax`` /
    ``Activation("softmax")`` layer is cut off; a final layer with ``activation="softmax"`` is
    copied with a linear activation (the original model is never modified)."""
    import tensorflow as tf

    top = model.layers[-1]
    if isinstance(top, tf.keras.layers.Softmax) or (
        isinstance(top, tf.keras.layers.Activation) and _is_softmax_activation(top.activation)
    ):
        return tf.keras.Model(model.inputs, top.input, name=model.name), True
    if _is_softmax_activation(getattr(top, "activation", None)):
        copy = tf.keras.models.clone_model(model)
        copy.set_weights(model.get_weights())
        copy.layers[-1].activation = tf.keras.activations.linear
        return copy, True
    return model, False


def _check_structure(model: Any, name: str) -> None:
    import tensorflow as tf

    if not isinstance(model, tf.keras.Model):
        raise InvalidInputError(f"model {name!r} must be a tf.keras.Model, got {type(model)}")
    if len(model.inputs) != 1:
        raise InvalidInputError(
            f"model {name!r} has {len(model.inputs)} inputs; binsal explains one-input image "
            "models (wrap it in a model that takes the image only)"
        )
    if len(model.outputs) != 1:
        raise InvalidInputError(
            f"model {name!r} has {len(model.outputs)} outputs; binsal explains one output of "
            "class scores (build a model that returns that output only)"
        )
    shape = tuple(model.inputs[0].shape[1:])
    if len(shape) != 3 or any(d is None for d in shape):
        raise InvalidInputError(
            f"model {name!r} takes inputs of shape {shape}; binsal needs images of a fixed "
            "(height, width, channels)"
        )
    if len(model.outputs[0].shape) != 2:
        raise InvalidInputError(
            f"model {name!r} outputs shape {tuple(model.outputs[0].shape[1:])}; binsal needs "
            "(classes,) scores"
        )


def _check_gradcam_layer(model: Any, layer: str, name: str) -> str:
    try:
        shape = tuple(model.get_layer(layer).output.shape)
    except (ValueError, AttributeError):
        raise InvalidInputError(f"model {name!r} has no layer {layer!r} for GradCAM") from None
    if len(shape) != 4:
        raise InvalidInputError(
            f"GradCAM layer {layer!r} of model {name!r} has output shape {shape[1:]}; GradCAM "
            "needs a 4-D feature map (batch, height, width, channels)"
        )
    return layer


def wrap_model(
    model: Any,
    *,
    name: str | None = None,
    family: str | None = None,
    gradcam_layer: str | None = None,
    preprocess: str | Preprocess | None = None,
    pair: str = "",
    quiet: bool = False,
) -> LoadedModel:
    """A plain Keras / larq model as a :class:`LoadedModel` (see the module docstring).
    ``preprocess``: a name of ``PREPROCESSING`` or a function of the raw images; None: the
    images given are the model's inputs."""
    if isinstance(model, LoadedModel):
        return model
    name = str(name or getattr(model, "name", "") or "model")
    _check_structure(model, name)
    if family is not None and family.upper() not in FAMILIES:
        raise InvalidInputError(f"family of {name!r} must be FP or BNN, got {family!r}")
    fam: Family = "BNN" if (family or "").upper() == "BNN" else "FP"
    if family is None:
        fam = "BNN" if is_binarized(model) else "FP"
    logits, changed = logits_model(model)
    if changed and not quiet:
        notice(f"    {name}: ends in softmax; explained on its logits (softmax removed on a copy)")
    if gradcam_layer is None:
        try:
            gradcam_layer = find_gradcam_layer(logits, step_over_norm=False)
        except (ValueError, AttributeError, KeyError) as exc:
            raise InvalidInputError(
                f"model {name!r}: no GradCAM layer found ({exc}); give one"
            ) from None
    _check_gradcam_layer(logits, gradcam_layer, name)
    fn = preprocessing(preprocess) if isinstance(preprocess, str) else preprocess
    spec = ModelSpec(
        name=name,
        family=fam,
        build=_cloner(logits),
        input_shape=tuple(int(d) for d in logits.inputs[0].shape[1:]),  # type: ignore[arg-type]
        num_classes=int(logits.outputs[0].shape[-1]),
        gradcam_layer=gradcam_layer,
        pair=pair,
        source="user",
        preprocess=fn,
        input_range=(0.0, 255.0) if isinstance(preprocess, str) else (0.0, 1.0),
        description=f"user model {name}" + (" (softmax removed)" if changed else ""),
    )
    return LoadedModel(spec, logits, meta={"cache": "user", "softmax_removed": changed})


def _cloner(model: Any) -> Callable[..., Any]:
    def build(**_: Any) -> Any:
        import tensorflow as tf

        return tf.keras.models.clone_model(model)

    return build


# Keras' words for a class it cannot find ("Unknown layer: 'X'" in .h5 files, "Cannot
# deserialize object of type `X`" in .keras files)
_UNKNOWN = re.compile(
    r"Unknown (?:layer|object|activation|initializer|regularizer|constraint|loss|metric|"
    r"optimizer)[^'\"`]*['\"`]([^'\"`]+)['\"`]|Cannot deserialize object of type `([^`]+)`"
)


def load_model_file(path: str | os.PathLike) -> Any:
    """A Keras model from ``.keras``, ``.h5`` or a SavedModel folder, with larq's (and, where
    installed, larq-zoo's) layers and quantizers registered; not compiled."""
    import tensorflow as tf

    p = Path(path).expanduser()
    if not p.exists():
        raise BinsalError(f"model file {p} does not exist")
    import larq  # noqa: F401 - registers larq's layers and quantizers with Keras

    try:
        import larq_zoo  # noqa: F401 - registers larq-zoo's custom objects
    except ImportError:
        pass
    try:
        return tf.keras.models.load_model(str(p), compile=False)
    except (ValueError, TypeError, OSError, KeyError) as exc:
        text = str(exc)
        unknown = sorted({a or b for a, b in _UNKNOWN.findall(text)})
        if unknown:
            raise BinsalError(
                f"model file {p} needs custom objects binsal does not know: "
                f"{', '.join(unknown)} (binsal registers larq and larq-zoo; for others, load "
                "the model in Python and use binsal.evaluate)"
            ) from None
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        raise BinsalError(f"cannot load model file {p}: {first[:300]}") from None


def parse_model_arg(text: str) -> tuple[str, str, str | None]:
    """``NAME=PATH[:FP|BNN]`` -> (name, path, family or None)."""
    name, sep, rest = text.partition("=")
    if not sep or not name.strip() or not rest.strip():
        raise BinsalError(f"--model needs NAME=PATH[:FP|BNN], got {text!r}")
    family = None
    head, colon, tail = rest.rpartition(":")
    if colon and tail.upper() in FAMILIES:
        rest, family = head, tail.upper()
    if not re.fullmatch(r"[A-Za-z0-9_.+-]+", name.strip()):
        raise BinsalError(f"--model name {name!r} may hold letters, digits and _ . + - only")
    return name.strip(), rest, family
