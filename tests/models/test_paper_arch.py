"""The paper's ten architectures trained here (``<arch>_syn``): exact library builds at a small
size, composed preprocessing, GradCAM layer, and a reduced training through ``train_or_load``
(one FP and one BNN architecture: tiny image count, 1 epoch, 64 px) with its cache reused."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from binsal.core.errors import BinsalError
from binsal.core.profile import load_profile
from binsal.models import paper, paper_arch
from binsal.models.determinism import configure
from binsal.models.paper_arch import MIN_IMAGE_SIZE, paper_arch_spec
from binsal.models.registry import MODELS, NUM_SYNTHETIC_CLASSES
from binsal.models.training import TrainConfig, train_or_load
from tests.conftest import TinyTrainData

SIZE = MIN_IMAGE_SIZE  # the smallest size the models accept: the cheapest build


def test_the_ten_are_registered_per_family_without_pairs():
    assert paper_arch.ARCHS == tuple(paper.PAPER_NETS)
    profile = load_profile("paper-arch")
    assert profile.models == paper_arch.PAPER_ARCH_MODELS
    for arch, net in paper.PAPER_NETS.items():
        spec = MODELS[f"{arch}_syn"](profile)
        assert (spec.family, spec.source, spec.pair) == (net.family, "synthetic", "")
        assert spec.input_shape == (profile.data.image_size,) * 2 + (3,)
        assert spec.num_classes == NUM_SYNTHETIC_CLASSES
        assert spec.gradcam_layer == net.gradcam_layer


def test_too_small_an_image_is_refused_in_one_line():
    with pytest.raises(BinsalError, match="image_size >= 64") as err:
        MODELS["quicknet_syn"](replace(load_profile("paper-arch"), data=_data(32)))
    assert "\n" not in str(err.value)


def _data(size: int):
    from binsal.core.profile import DataConfig

    return DataConfig(image_size=size)


def test_preprocessing_composes_x255_with_each_networks_own():
    x = np.random.default_rng(0).random((2, 4, 4, 3), dtype=np.float32)
    cases = {
        "efficientnetb0": x * 255,  # normalised inside the model
        "mobilenet": paper.preprocess_tf(x * 255),
        "vgg16": paper.preprocess_caffe(x * 255),
        "quicknet": paper.preprocess_larq_zoo(x * 255),
    }
    for arch, expected in cases.items():
        got = paper_arch_spec(arch, image_size=SIZE).preprocess
        assert got is not None
        np.testing.assert_allclose(got(x.copy()), expected, rtol=1e-6, atol=1e-4)
    before = x.copy()
    paper_arch_spec("vgg16", image_size=SIZE).preprocess(x)  # type: ignore[misc]
    np.testing.assert_array_equal(x, before)  # input untouched


@pytest.fixture(scope="module")
def tiny_data() -> TinyTrainData:
    rng = np.random.default_rng(0)
    x = rng.random((40, SIZE, SIZE, 3), dtype=np.float32)
    y = rng.integers(0, NUM_SYNTHETIC_CLASSES, 40)
    return TinyTrainData(x[:32], y[:32], x[32:], y[32:], config_name="tiny_paper_arch")


@pytest.mark.parametrize("arch", ["mobilenetv2", "quicknet"])
def test_reduced_training_through_the_suite_path_is_cached(arch, tiny_data, tmp_path):
    """One FP (MobileNetV2) and one BNN (QuickNet): 32 images, 1 epoch, 64 px."""
    from binsal.models.paper import find_gradcam_layer

    configure(True)
    spec = paper_arch_spec(arch, image_size=SIZE)
    train = TrainConfig(epochs=1, batch_size=16, seed=0)
    first = train_or_load(spec, tiny_data, train, cache_root=tmp_path)
    assert first.meta["cache"] == "miss"
    assert first.meta["n_train"] == 32 and 0.0 <= first.test_accuracy <= 1.0
    x = first.prepare(tiny_data.x_test[:3])
    assert first.model.predict(x, verbose=0).shape == (3, NUM_SYNTHETIC_CLASSES)
    # the pinned GradCAM layer is the one find_gradcam_layer picks on this build, and spatial
    assert find_gradcam_layer(first.model) == spec.gradcam_layer
    h, w = first.model.get_layer(spec.gradcam_layer).output.shape[1:3]
    assert h > 1 and w > 1
    bns = [lyr for lyr in first.model.layers if type(lyr).__name__ == "BatchNormalization"]
    assert bns and all(lyr.momentum == paper_arch.BN_MOMENTUM for lyr in bns)

    second = train_or_load(spec, tiny_data, train, cache_root=tmp_path)
    assert second.meta["cache"] == "hit"
    assert second.test_accuracy == first.test_accuracy
    for a, b in zip(first.model.get_weights(), second.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
