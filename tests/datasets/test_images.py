"""The evaluation frame (crop) and each paper network's own preprocessing, checked against the
libraries' own ``preprocess_input`` on the same photo."""

from __future__ import annotations

import os

import numpy as np
import pytest

from binsal.datasets.images import LARQ_ZOO_CROP, frame_image, larq_zoo_crop, square_resize
from binsal.models.paper import PAPER_NETS


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    from skimage import data, io

    return np.asarray(io.imread(os.path.join(data.data_dir, "chelsea.png")))  # 300 x 451 RGB


@pytest.mark.parametrize("name", [n for n, net in PAPER_NETS.items() if net.source == "larq-zoo"])
def test_larq_zoo_frame_and_preprocessing_equal_larq_zoo_preprocess_input(photo, name):
    import larq_zoo

    ref = larq_zoo.preprocess_input(photo)  # centre crop 87.5 %, bicubic 224, normalised
    ours = PAPER_NETS[name].preprocess(frame_image(photo, 224, "larq_zoo")[None])[0]
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-4)


KERAS_MODULES = {
    "efficientnetb0": "efficientnet",
    "mobilenet": "mobilenet",
    "mobilenetv2": "mobilenet_v2",
    "vgg16": "vgg16",
    "resnet50": "resnet50",
}


@pytest.mark.parametrize("crop", ["square", "larq_zoo"])
@pytest.mark.parametrize("name", sorted(KERAS_MODULES))
def test_keras_preprocessing_equals_keras_preprocess_input(photo, name, crop):
    import tensorflow as tf

    frame = frame_image(photo, 224, crop)[None]
    module = getattr(tf.keras.applications, KERAS_MODULES[name])
    ref = np.asarray(module.preprocess_input(frame.copy()))
    pre = PAPER_NETS[name].preprocess
    ours = frame if pre is None else pre(frame)  # EfficientNet normalises inside the model
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-4)


def test_larq_zoo_crop_is_the_central_87_5_percent(photo):
    out = larq_zoo_crop(photo, 224)
    assert out.shape == (224, 224, 3) and out.dtype == np.float32
    c = int(LARQ_ZOO_CROP * 300)  # 262 of the 300 px short side
    top, left = (300 - c + 1) // 2, (451 - c + 1) // 2
    # the same crop at its own size is an identity resize: the central pixels themselves
    same = larq_zoo_crop(photo, c)
    np.testing.assert_allclose(same, photo[top : top + c, left : left + c], atol=1e-3)
    assert not np.allclose(out, square_resize(photo, 224), atol=5)


def test_unknown_crop_is_one_line(photo):
    from binsal.core.errors import BinsalError

    with pytest.raises(BinsalError, match="known: square, larq_zoo"):
        frame_image(photo, 64, "imagenet")
