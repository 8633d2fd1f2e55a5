"""The ten pretrained ImageNet networks of the paper: five full precision (keras.applications)
and five binarized (larq-zoo), each with its own preprocessing and GradCAM layer.

Every builder returns a ``tf.keras.Model`` whose input is the *preprocessed* 224x224 RGB image
(``ModelSpec.preprocess`` maps raw [0, 255] pixels to it, outside the model) and whose output is
the 1000 ImageNet *logits*: keras.applications are built with ``classifier_activation=None``;
larq-zoo models end in a softmax ``Activation``, so the model is cut just before it.

Weights go through the libraries' own loaders: ``weights`` is passed on to
``tf.keras.applications.X`` / ``larq_zoo.X`` unchanged (``None``, ``"imagenet"`` or the path of
a weight file, which they load with ``model.load_weights``). :mod:`binsal.models.pretrained`
resolves the path first, so a present file is never re-downloaded or re-hashed; its
``WEIGHT_FILES`` names the file each library would fetch (a test checks it against the
libraries' own ``get_file`` calls).

GradCAM target (:func:`find_gradcam_layer`): walking back from the logits, the first layer with
a spatial (h, w > 1) 4-D output is the feature map the classifier head pools or flattens; trailing
pooling and batch-norm layers are stepped over so that VGG16 and BinaryAlexNet use their last
convolution's output, as Selvaraju et al. (2017) do, rather than its max-pooled copy. The chosen
names are pinned in ``PAPER_NETS`` (layer names are made deterministic by resetting Keras' name
counters before each build).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from binsal.core.errors import BinsalError
from binsal.models.pretrained import (
    INPUT_SIZE,
    WEIGHT_FILES,
    WeightFile,
    larq_zoo_missing_message,
)
from binsal.models.registry import MODELS
from binsal.models.spec import Family, ModelSpec

INPUT_SHAPE = (INPUT_SIZE, INPUT_SIZE, 3)
NUM_CLASSES = 1000
__all__ = ["PAPER_MODELS", "PAPER_NETS", "WEIGHT_FILES", "WeightFile", "find_gradcam_layer"]

# --------------------------------------------------------------------------- preprocessing
# Each takes raw RGB images in [0, 255], (N, 224, 224, 3) float32, and never modifies its input
# (keras' numpy ``preprocess_input`` works in place).

_CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)
# larq_zoo.training.data.MEAN_RGB / STDDEV_RGB (its ``preprocess_input`` also centre-crops)
_LARQ_ZOO_MEAN_RGB = np.array([0.485 * 255, 0.456 * 255, 0.406 * 255], dtype=np.float32)
_LARQ_ZOO_STD_RGB = np.array([0.229 * 255, 0.224 * 255, 0.225 * 255], dtype=np.float32)


def preprocess_tf(x: np.ndarray) -> np.ndarray:
    """keras ``mode="tf"`` (MobileNet, MobileNetV2): scale to [-1, 1]."""
    return np.asarray(x, np.float32) / np.float32(127.5) - np.float32(1.0)


def preprocess_caffe(x: np.ndarray) -> np.ndarray:
    """keras ``mode="caffe"`` (VGG16, ResNet50): RGB -> BGR, minus the ImageNet BGR mean."""
    return np.asarray(x, np.float32)[..., ::-1] - _CAFFE_MEAN_BGR


def preprocess_larq_zoo(x: np.ndarray) -> np.ndarray:
    """larq-zoo (all models): per-channel (x - mean) / std with ImageNet statistics in 0-255."""
    return (np.asarray(x, np.float32) - _LARQ_ZOO_MEAN_RGB) / _LARQ_ZOO_STD_RGB


# ----------------------------------------------------------------------------- the networks


@dataclass(frozen=True)
class PaperNet:
    name: str
    family: Family
    source: str  # "keras.applications" | "larq-zoo"
    constructor: str  # attribute path inside the library
    preprocess: Any  # raw [0, 255] -> model input, or None (EfficientNet normalises inside)
    gradcam_layer: str
    description: str


PAPER_NETS: dict[str, PaperNet] = {
    n.name: n
    for n in (
        PaperNet(
            "efficientnetb0",
            "FP",
            "keras.applications",
            "EfficientNetB0",
            None,  # Rescaling + Normalization layers inside; takes [0, 255]
            "top_activation",
            "EfficientNet-B0 (Tan & Le 2019), keras.applications",
        ),
        PaperNet(
            "mobilenet",
            "FP",
            "keras.applications",
            "MobileNet",
            preprocess_tf,
            "conv_pw_13_relu",
            "MobileNet 1.0 (Howard et al. 2017), keras.applications",
        ),
        PaperNet(
            "mobilenetv2",
            "FP",
            "keras.applications",
            "MobileNetV2",
            preprocess_tf,
            "out_relu",
            "MobileNetV2 1.0 (Sandler et al. 2018), keras.applications",
        ),
        PaperNet(
            "vgg16",
            "FP",
            "keras.applications",
            "VGG16",
            preprocess_caffe,
            "block5_conv3",
            "VGG16 (Simonyan & Zisserman 2015), keras.applications",
        ),
        PaperNet(
            "resnet50",
            "FP",
            "keras.applications",
            "ResNet50",
            preprocess_caffe,
            "conv5_block3_out",
            "ResNet50 (He et al. 2016), keras.applications",
        ),
        PaperNet(
            "quicknet",
            "BNN",
            "larq-zoo",
            "sota.QuickNet",
            preprocess_larq_zoo,
            "activation_4",
            "QuickNet (Bannink et al. 2021), larq-zoo",
        ),
        PaperNet(
            "binaryalexnet",
            "BNN",
            "larq-zoo",
            "literature.BinaryAlexNet",
            preprocess_larq_zoo,
            "quant_conv2d_4",
            "Binary AlexNet (Courbariaux et al. 2016), larq-zoo",
        ),
        PaperNet(
            "binaryresnete18",
            "BNN",
            "larq-zoo",
            "literature.BinaryResNetE18",
            preprocess_larq_zoo,
            "activation_1",
            "BinaryResNetE18 (Bethge et al. 2019), larq-zoo",
        ),
        PaperNet(
            "meliusnet22",
            "BNN",
            "larq-zoo",
            "literature.MeliusNet22",
            preprocess_larq_zoo,
            "head_relu",
            "MeliusNet22 (Bethge et al. 2020), larq-zoo",
        ),
        PaperNet(
            "realtobinarynet",
            "BNN",
            "larq-zoo",
            "literature.RealToBinaryNet",
            preprocess_larq_zoo,
            "r2b_bnn_block_9_out",
            "Real-to-Binary Net (Martinez et al. 2020), larq-zoo",
        ),
    )
}
PAPER_MODELS: tuple[str, ...] = tuple(PAPER_NETS)


def _constructor(net: PaperNet) -> Any:
    obj: Any
    if net.source == "keras.applications":
        import tensorflow as tf

        obj = tf.keras.applications
    else:
        try:
            import larq_zoo
        except ModuleNotFoundError as exc:
            if exc.name != "larq_zoo":
                raise
            raise BinsalError(larq_zoo_missing_message([net.name])) from None
        obj = larq_zoo
    for part in net.constructor.split("."):
        obj = getattr(obj, part)
    return obj


def _is_softmax(layer: Any) -> bool:
    import tensorflow as tf

    if isinstance(layer, tf.keras.layers.Softmax):
        return True
    act = getattr(layer, "activation", None)
    return isinstance(layer, tf.keras.layers.Activation) and getattr(act, "__name__", "") in (
        "softmax",
    )


def build_library_model(arch: str, *, weights: str | None = None) -> Any:
    """The library's own model (keras.applications with linear classifier; larq-zoo as is,
    ending in softmax), with ``weights`` passed on unchanged."""
    import tensorflow as tf

    net = PAPER_NETS[arch]
    tf.keras.backend.reset_uids()  # deterministic auto-generated layer names
    ctor = _constructor(net)
    if net.source == "keras.applications":
        return ctor(weights=weights, classifier_activation=None)
    return ctor(weights=weights)


def build_paper_model(*, arch: str, weights: str | None = None) -> Any:
    """``arch`` as a logits model on preprocessed 224x224 inputs (see module docstring)."""
    import tensorflow as tf

    full = build_library_model(arch, weights=weights)
    if PAPER_NETS[arch].source == "keras.applications":
        return full
    top = full.get_layer(full.output_names[0])
    if not _is_softmax(top):
        raise RuntimeError(f"{arch}: expected a softmax output layer, got {top.name}")
    return tf.keras.Model(full.inputs, top.input, name=full.name)


# ---------------------------------------------------------------------- GradCAM target layer

_STEP_OVER = ("MaxPooling2D", "AveragePooling2D", "BatchNormalization")


def _is_spatial(shape: Any) -> bool:
    shape = tuple(shape)
    return len(shape) == 4 and all(d is not None and d > 1 for d in shape[1:3])


def _producer(tensor: Any) -> tuple[Any, list[Any]]:
    """(layer that made ``tensor``, that call's input tensors)."""
    hist = tensor._keras_history
    node = hist.layer._inbound_nodes[hist.node_index]
    return hist.layer, list(node.keras_inputs)


def _step_over_types(names: tuple[str, ...] = _STEP_OVER) -> tuple[type, ...]:
    import tensorflow as tf

    return tuple(getattr(tf.keras.layers, n) for n in names)


def find_gradcam_layer(model: Any, *, step_over_norm: bool = True) -> str:
    """Name of the last spatial feature map before the classifier head of ``model``.

    Walks back from the output to the first layer with a 4-D output of spatial size > 1 (the
    map the head pools or flattens: global pooling with ``keepdims`` or larq-zoo's full-size
    ``AveragePooling2D`` give 1x1 maps and are passed through), then steps back over trailing
    pooling / batch-norm layers to the convolution (or block output) that feeds them.
    ``step_over_norm=False``: batch norm is not stepped over (the map the head pools, the rule
    of binsal's own pairs, whose ``features`` layer is a batch norm).
    """
    names = _STEP_OVER if step_over_norm else ("MaxPooling2D", "AveragePooling2D")
    step_over = _step_over_types(names)
    tensor = model.outputs[0]
    while True:
        layer, inputs = _producer(tensor)
        if _is_spatial(tensor.shape):
            break
        if len(inputs) != 1:
            raise ValueError(
                f"{model.name}: cannot follow the classifier head back through {layer.name!r} "
                f"({len(inputs)} inputs); give the GradCAM layer explicitly"
            )
        tensor = inputs[0]
    while isinstance(layer, step_over) and len(inputs) == 1 and _is_spatial(inputs[0].shape):
        layer, inputs = _producer(inputs[0])
    return layer.name


# -------------------------------------------------------------------------------- registry


def _factory(net: PaperNet) -> Any:
    def factory(profile: Any) -> ModelSpec:
        return ModelSpec(
            name=net.name,
            family=net.family,
            build=build_paper_model,
            input_shape=INPUT_SHAPE,
            num_classes=NUM_CLASSES,
            gradcam_layer=net.gradcam_layer,
            pair="",
            source=net.source,
            preprocess=net.preprocess,
            input_range=(0.0, 255.0),
            description=net.description,
            build_kwargs={"arch": net.name},
        )

    return factory


for _net in PAPER_NETS.values():
    MODELS.register(_net.name, _factory(_net))
