"""The binarization ladder's models: the 32-bit rung is the FP model (same spec, same maps), the
1-bit rung the BNN, every rung quantizes what its name says, k bits give at most 2^k levels."""

from __future__ import annotations

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from binsal.models.ladder import RUNG_NAMES, RUNGS, ladder_edges, ladder_spec
from binsal.models.pairs import quantizer
from binsal.models.spec import LoadedModel
from binsal.saliency import METHODS
from tests.conftest import TINY_CLASSES, TINY_SHAPE, build_tiny, tiny_spec


def tiny_rung(arch: str, rung: str):
    return ladder_spec(
        arch,
        rung,
        image_size=TINY_SHAPE[0],
        widths=(8, 16),
        num_classes=TINY_CLASSES,
        prefix="tiny_",
    )


def build_rung(arch: str, rung: str, seed: int = 0) -> LoadedModel:
    tf.keras.utils.set_random_seed(seed)
    spec = tiny_rung(arch, rung)
    return LoadedModel(spec, spec.build(**spec.build_kwargs))


def _convs(model: tf.keras.Model) -> list[tf.keras.layers.Layer]:
    """The hidden convolutions (the ones the ladder quantizes): all but the stem."""
    return [
        lyr
        for lyr in model.layers
        if isinstance(lyr, tf.keras.layers.Conv2D | lq.layers.QuantConv2D)
        and lyr.name != "stem_conv"
        and not lyr.name.startswith("trans")
    ]


@pytest.mark.parametrize("arch", ["vgg", "resnet"])
def test_end_rungs_are_the_pair_members(arch):
    assert tiny_rung(arch, "fp32") == tiny_spec(arch, False)  # same cache key, same model
    assert tiny_rung(arch, "binary") == tiny_spec(arch, True)
    middle = {tiny_rung(arch, r).name for r in RUNG_NAMES[1:-1]}
    assert len(middle) == len(RUNG_NAMES) - 2  # every other rung is cached apart


@pytest.mark.parametrize("arch", ["vgg", "resnet"])
@pytest.mark.parametrize("method", ["gradient", "smoothgrad", "gradcam", "integrated_gradients"])
def test_32_bit_rung_gives_the_fp_models_maps(arch, method, tiny_batch):
    """Must show: a ladder member at 32 bits equals the FP model's maps (same weights, same
    maps, bit for bit), also when the two were built apart and only the weights are shared."""
    fp = build_tiny(arch, False, seed=0)
    rung = build_rung(arch, "fp32", seed=1)  # another initialisation ...
    rung.model.set_weights(fp.model.get_weights())  # ... then the FP model's weights
    x, t = tiny_batch
    m = METHODS[method](**({"samples": 4} if method == "smoothgrad" else {}))
    np.testing.assert_array_equal(m.explain(rung, x, t), m.explain(fp, x, t))
    assert [type(a) for a in rung.model.layers] == [type(b) for b in fp.model.layers]


def test_one_bit_rung_gives_the_bnn_models_maps(tiny_batch):
    bnn = build_tiny("vgg", True, seed=0)
    rung = build_rung("vgg", "binary", seed=1)
    rung.model.set_weights(bnn.model.get_weights())
    x, t = tiny_batch
    gradient = METHODS["gradient"]()
    np.testing.assert_array_equal(gradient.explain(rung, x, t), gradient.explain(bnn, x, t))


def _kind(q) -> str:
    return "none" if q is None else type(q).__name__


@pytest.mark.parametrize("rung", RUNG_NAMES)
def test_each_rung_quantizes_what_its_name_says(rung):
    model = build_rung("vgg", rung).model
    convs = _convs(model)
    assert len(convs) == 2
    w_bits, a_bits = RUNGS[rung]
    names = {layer.name for layer in model.layers}
    for conv in convs:
        relu = f"{conv.name}_relu" in names
        assert relu == (a_bits == 32)  # real activations keep the FP twin's ReLU
        if (w_bits, a_bits) == (32, 32):
            assert type(conv) is tf.keras.layers.Conv2D
            continue
        assert isinstance(conv, lq.layers.QuantConv2D)
        expect = {32: "none", 1: "SteSign"}
        assert _kind(conv.kernel_quantizer) == expect.get(w_bits, "DoReFa")
        assert _kind(conv.input_quantizer) == expect.get(a_bits, "DoReFa")
        if w_bits not in (1, 32):
            assert conv.kernel_quantizer.precision == w_bits
            assert conv.kernel_quantizer.mode == "weights"
        if a_bits not in (1, 32):
            assert conv.input_quantizer.precision == a_bits
            assert conv.input_quantizer.mode == "activations"
        clipped = isinstance(conv.kernel_constraint, lq.constraints.WeightClip)
        assert clipped == (w_bits == 1)
    # stem and classifier stay real at every rung
    assert type(model.get_layer("stem_conv")) is tf.keras.layers.Conv2D
    assert type(model.get_layer("logits")) is tf.keras.layers.Dense


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
@pytest.mark.parametrize("mode", ["weights", "activations"])
def test_k_bit_quantizers_give_at_most_2_to_the_k_levels(bits, mode):
    x = tf.constant(np.random.default_rng(bits).normal(0.3, 1.5, 20000).astype(np.float32))
    q = quantizer(bits, mode)
    q = lq.quantizers.get(q) if isinstance(q, str) else q
    levels = np.unique(q(x).numpy())
    assert 2 <= len(levels) <= 2**bits
    if bits > 1:  # DoReFa: 2^k evenly spaced levels, on [0, 1] or [-1, 1]
        assert levels.min() >= (-1.0 if mode == "weights" else 0.0) and levels.max() <= 1.0
    assert quantizer(32, mode) is None


def test_k_bit_rung_effective_kernels_have_at_most_2_to_the_k_levels():
    for rung in ("w2a2", "w4a4"):
        conv = _convs(build_rung("vgg", rung).model)[-1]
        effective = conv.kernel_quantizer(tf.convert_to_tensor(conv.kernel)).numpy()
        assert len(np.unique(effective)) <= 2 ** RUNGS[rung][0]


def test_bad_bit_width_is_an_error():
    with pytest.raises(ValueError, match="bits must be 1-16 or 32"):
        quantizer(0, "weights")


def test_ladder_steps_split_weights_from_activations():
    assert ladder_edges(RUNG_NAMES) == [
        ("fp32", "w8a8"),
        ("fp32", "binary_weights"),
        ("fp32", "binary_activations"),
        ("w8a8", "w4a4"),
        ("w4a4", "w2a2"),
        ("w2a2", "binary"),
        ("binary_weights", "binary"),
        ("binary_activations", "binary"),
    ]
    assert ladder_edges(["fp32", "binary"]) == [("fp32", "binary")]
    assert ladder_edges(["binary"]) == []
