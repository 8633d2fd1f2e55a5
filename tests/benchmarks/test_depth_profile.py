"""Depth profile: the depth axis of a matched pair, agreement 1 at every depth for a network and
itself, the multi-layer CAMs against the suite's GradCAM, the decorrelation rule, tidy rows."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from binsal.benchmarks import BENCHMARKS
from binsal.benchmarks.depth_profile import (
    DepthProfile,
    agreement,
    both_constant,
    decorrelation_depth,
    depth_layers,
    layer_maps,
)
from binsal.saliency import GradCAM
from tests.conftest import TINY_CLASSES, TINY_SHAPE, build_tiny


@pytest.fixture(scope="module")
def batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    return rng.random((6, *TINY_SHAPE), dtype=np.float32), rng.integers(0, TINY_CLASSES, 6)


def test_depth_layers_of_the_pairs():
    vgg = depth_layers(build_tiny("vgg", False), build_tiny("vgg", True))
    assert vgg == ["stem_conv", "conv1", "conv2", "features"]
    resnet = depth_layers(build_tiny("resnet", False), build_tiny("resnet", True))
    assert resnet == [
        "stem_conv",
        "s1b1_conv",
        "s1b1_add",
        "s1b2_conv",
        "s1b2_add",
        "trans1_conv",
        "s2b1_conv",
        "s2b1_add",
        "s2b2_conv",
        "features",
    ]


@pytest.mark.parametrize("arch", ["vgg", "resnet"])
def test_network_against_itself_agrees_at_every_depth(arch, batch):
    """The must-show: an FP model compared with itself agrees (Spearman 1) at every depth, and
    an independently initialised twin does not (the check can fail)."""
    x, t = batch
    fp = build_tiny(arch, False, seed=0)
    layers = depth_layers(fp, fp)
    maps = layer_maps(fp, layers, x, t)
    rho = agreement(maps, maps)
    blank = both_constant(maps, maps)
    for method, r in rho.items():
        assert r.shape == (len(layers), len(x))
        defined = np.isfinite(r)
        assert defined[0].all(), method  # the stem's maps are never constant
        np.testing.assert_allclose(r[defined], 1.0, atol=1e-9)
        assert (blank[method] | defined).all()  # undefined only where both maps are blank
        depth = decorrelation_depth(r, 0.3, blank[method])
        np.testing.assert_array_equal(depth, 0)
    other = build_tiny(arch, False, seed=1)
    rho_other = agreement(maps, layer_maps(other, layers, x, t))
    assert np.nanmean(rho_other["gradcam_signed"]) < 0.9


def test_layer_cams_match_the_suites_gradcam(batch):
    x, t = batch
    bnn = build_tiny("resnet", True)
    layers = ["s1b2_add", "features"]
    maps = layer_maps(bnn, layers, x, t)
    for i, layer in enumerate(layers):
        want = GradCAM(layer=layer).explain(bnn, x, t)
        np.testing.assert_allclose(maps["gradcam"][i], want, rtol=1e-4, atol=1e-6)
        signed = GradCAM(layer=layer, relu=False).explain(bnn, x, t)
        np.testing.assert_allclose(maps["gradcam_signed"][i], signed, rtol=1e-4, atol=1e-6)
        assert maps["layer_gradient"][i].shape == x.shape[:3]
        assert (maps["layer_gradient"][i] >= 0).all()


def test_decorrelation_depth_rule():
    """Walking from the deepest depth (last row) towards the input: the first depth below."""
    rho = np.array(
        [
            [0.9, 0.1, 0.2, np.nan, 0.9],
            [0.5, 0.9, 0.1, 0.9, np.nan],
            [0.9, 0.9, 0.9, 0.9, 0.9],
        ]
    )
    np.testing.assert_array_equal(decorrelation_depth(rho, 0.3), [0, 1, 2, 1, 2])
    blank = np.zeros_like(rho, dtype=bool)
    blank[0, 3] = True  # both maps blank at depth 1 of image 3: they agree there
    blank[1, 4] = True
    np.testing.assert_array_equal(decorrelation_depth(rho, 0.3, blank), [0, 1, 2, 0, 0])
    np.testing.assert_array_equal(decorrelation_depth(np.full((2, 3), 0.1), 0.3), [2, 2, 2])
    np.testing.assert_array_equal(decorrelation_depth(rho, 0.6), [2, 1, 2, 1, 2])


def test_registered():
    assert BENCHMARKS["depth_profile"] is DepthProfile
    assert "Selvaraju et al. 2019" in DepthProfile.description


def test_rows_on_tiny_models(tiny_ctx):
    rows = DepthProfile().run(tiny_ctx)
    assert {r.model for r in rows} == {"tiny_vgg_fp|tiny_vgg_bnn", "tiny_resnet_fp|tiny_resnet_bnn"}
    for r in rows:
        assert r.family == "FP-BNN" and r.pair in ("tiny_vgg", "tiny_resnet")
        assert r.direction == DepthProfile.scores[r.metric].direction
        assert r.n >= 1 and math.isfinite(r.value)
        assert r.ci_low <= r.value <= r.ci_high
    vgg = [r for r in rows if r.pair == "tiny_vgg" and r.method == "gradcam_signed"]
    curve = [r for r in vgg if r.metric == "spearman"]
    assert [r.step for r in curve] == [1, 2, 3, 4]
    assert [json.loads(r.params)["layer"] for r in curve] == [
        "stem_conv",
        "conv1",
        "conv2",
        "features",
    ]
    (depth,) = [r for r in vgg if r.metric == "decorrelation_depth"]
    assert math.isnan(depth.step) and 0 <= depth.value <= 4
    assert json.loads(depth.params)["threshold"] == 0.3
