"""The paper's ten architectures, trained here on the synthetic ground-truth shapes.

The same ten networks as :mod:`binsal.models.paper` (five keras.applications FP networks and
five larq-zoo BNNs), built with ``weights=None`` at the profile's image size and with the
synthetic data's number of classes, and trained from scratch by the suite's own training code
(:func:`binsal.models.training.train_or_load`: cached by content, training-seed replicates,
test accuracy in the manifest). Registered as ``<arch>_syn`` (e.g. ``vgg16_syn``,
``quicknet_syn``), family FP or BNN, source "synthetic", no pair: they are not matched pairs,
the claims are evaluated per family. The profile ``paper-arch`` runs every benchmark on them,
localization against the masks included: claim 3 on the real architectures with ground truth.

Architectures are exact: the libraries' own constructors, unchanged widths and depths; only the
input size and the classifier's width (``classes`` / ``num_classes``) differ from ImageNet, and
the logits are taken as in :func:`binsal.models.paper.build_paper_model` (keras.applications
with ``classifier_activation=None``; larq-zoo cut before its final softmax).

One change, to the training statistics only: every BatchNormalization's moving-average momentum
is set to ``BN_MOMENTUM`` = 0.9 (keras.applications use 0.99, MobileNetV2 0.999; larq-zoo
mostly 0.9 already). Training from scratch on a CPU budget gives a few hundred optimisation
steps, over which the slower averages lag the fast-changing weights: MobileNet with its 0.99
predicted one class on the test set (accuracy 0.244) for 9 of 12 epochs while its training
accuracy rose to 0.44; with 0.9 its test accuracy followed the training accuracy (0.398 vs
0.389 after 6 epochs). Momentum does not enter the forward pass in training nor any weight.

Preprocessing: each network keeps its own. The synthetic images are in [0, 1]; the paper's
networks expect [0, 255] followed by their own normalisation, so the two are composed
(``x * 255`` then keras ``mode="tf"`` / ``mode="caffe"`` or larq-zoo's mean/std; EfficientNet
normalises inside the model). As for the pretrained networks the preprocessing runs outside the
model (``ModelSpec.preprocess``), so saliency is taken with respect to the network's own input.

GradCAM layer: :func:`binsal.models.paper.find_gradcam_layer` on the small build. Every
network downsamples by 32 (BinaryAlexNet: its last convolution by 16), so at 64 px the last
feature map is 2x2 (VGG16 4x4, BinaryAlexNet 3x3) and at 96 px 3x3 (6x6, 5x5); the layer it
finds is the same as at 224 px (``PAPER_NETS[arch].gradcam_layer``, checked by a test). Below
64 px most of them end in a 1x1 map, on which GradCAM is constant: refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from binsal.core.errors import BinsalError
from binsal.models.registry import MODELS, NUM_SYNTHETIC_CLASSES
from binsal.models.spec import ModelSpec

SUFFIX = "_syn"
MIN_IMAGE_SIZE = 64  # smallest size whose last feature map is spatial (2x2) for all ten
BN_MOMENTUM = 0.9  # moving-average momentum of every BatchNormalization (module docstring)
# the keys of ``paper.PAPER_NETS`` (a test checks): ``paper`` is read only when a model is built
# or specified, since importing either of the two modules first imports the registry, which
# imports both
ARCHS: tuple[str, ...] = (
    "efficientnetb0",
    "mobilenet",
    "mobilenetv2",
    "vgg16",
    "resnet50",
    "quicknet",
    "binaryalexnet",
    "binaryresnete18",
    "meliusnet22",
    "realtobinarynet",
)

# --------------------------------------------------------------------------- preprocessing
# Raw synthetic images in [0, 1] -> x 255 -> the network's own preprocessing (paper.py).

_255 = np.float32(255.0)


def syn_scale255(x: np.ndarray) -> np.ndarray:
    """EfficientNet: [0, 1] -> [0, 255] (its Rescaling / Normalization layers are inside)."""
    return np.asarray(x, np.float32) * _255


def syn_tf(x: np.ndarray) -> np.ndarray:
    """MobileNet, MobileNetV2: [0, 1] -> [0, 255] -> keras ``mode="tf"`` ([-1, 1])."""
    from binsal.models.paper import preprocess_tf

    return preprocess_tf(syn_scale255(x))


def syn_caffe(x: np.ndarray) -> np.ndarray:
    """VGG16, ResNet50: [0, 1] -> [0, 255] -> keras ``mode="caffe"`` (BGR minus mean)."""
    from binsal.models.paper import preprocess_caffe

    return preprocess_caffe(syn_scale255(x))


def syn_larq_zoo(x: np.ndarray) -> np.ndarray:
    """larq-zoo: [0, 1] -> [0, 255] -> per-channel (x - mean) / std (ImageNet statistics)."""
    from binsal.models.paper import preprocess_larq_zoo

    return preprocess_larq_zoo(syn_scale255(x))


def syn_preprocess(arch: str) -> Callable[[np.ndarray], np.ndarray]:
    """The composed preprocessing of ``arch``: x 255, then ``PAPER_NETS[arch].preprocess``."""
    from binsal.models import paper

    own = {
        None: syn_scale255,
        paper.preprocess_tf: syn_tf,
        paper.preprocess_caffe: syn_caffe,
        paper.preprocess_larq_zoo: syn_larq_zoo,
    }
    return own[paper.PAPER_NETS[arch].preprocess]


# ------------------------------------------------------------------------------- building


def build_paper_arch(
    *,
    arch: str,
    input_shape: tuple[int, int, int],
    num_classes: int,
    name: str,
    bn_momentum: float | None = None,
) -> Any:
    """``arch`` (a key of ``PAPER_NETS``) untrained (``weights=None``) at ``input_shape`` with
    ``num_classes`` logits; ``bn_momentum``: every BatchNormalization layer's moving-average
    momentum (None: the library's; see the module docstring)."""
    import tensorflow as tf

    from binsal.models.paper import PAPER_NETS, _constructor, _is_softmax

    net = PAPER_NETS[arch]
    tf.keras.backend.reset_uids()  # deterministic auto-generated layer names, as in paper.py
    ctor = _constructor(net)
    shape = tuple(int(d) for d in input_shape)
    if net.source == "keras.applications":
        model = ctor(
            weights=None, input_shape=shape, classes=num_classes, classifier_activation=None
        )
    else:
        full = ctor(weights=None, input_shape=shape, num_classes=num_classes)
        top = full.get_layer(full.output_names[0])
        if not _is_softmax(top):
            raise RuntimeError(f"{arch}: expected a softmax output layer, got {top.name}")
        model = tf.keras.Model(full.inputs, top.input)
    model._name = name  # the registered name, e.g. "vgg16_syn"
    if bn_momentum is not None:
        for layer in model.layers:
            if isinstance(layer, tf.keras.layers.BatchNormalization):
                layer.momentum = float(bn_momentum)  # pyright: ignore[reportAttributeAccessIssue]
    return model


# -------------------------------------------------------------------------------- registry


def syn_name(arch: str) -> str:
    return f"{arch}{SUFFIX}"


def paper_arch_spec(
    arch: str, *, image_size: int, num_classes: int = NUM_SYNTHETIC_CLASSES
) -> ModelSpec:
    """The spec of ``arch`` trained on the synthetic shapes at ``image_size`` (the registered
    ``<arch>_syn`` models and the tests' reduced builds both come from here)."""
    if image_size < MIN_IMAGE_SIZE:
        raise BinsalError(
            f"{syn_name(arch)} needs [data] image_size >= {MIN_IMAGE_SIZE} "
            f"(got {image_size}: its last feature map would be 1x1)"
        )
    from binsal.models.paper import PAPER_NETS

    net = PAPER_NETS[arch]
    name = syn_name(arch)
    shape = (image_size, image_size, 3)
    return ModelSpec(
        name=name,
        family=net.family,
        build=build_paper_arch,
        input_shape=shape,
        num_classes=num_classes,
        gradcam_layer=net.gradcam_layer,
        pair="",
        source="synthetic",
        preprocess=syn_preprocess(arch),
        input_range=(0.0, 1.0),
        description=f"{net.description}; weights=None, trained here on the synthetic shapes",
        build_kwargs={
            "arch": arch,
            "input_shape": shape,
            "num_classes": num_classes,
            "name": name,
            "bn_momentum": BN_MOMENTUM,
        },
    )


def _factory(arch: str) -> Callable[[Any], ModelSpec]:
    def factory(profile: Any) -> ModelSpec:
        return paper_arch_spec(arch, image_size=profile.data.image_size)

    return factory


PAPER_ARCH_MODELS: tuple[str, ...] = tuple(syn_name(a) for a in ARCHS)

for _arch in ARCHS:
    MODELS.register(syn_name(_arch), _factory(_arch))
