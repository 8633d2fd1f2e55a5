"""Forward and backward passes per map, as each method declares them from its options."""

from __future__ import annotations

import pytest

from binsal.saliency import METHODS
from tests.conftest import build_tiny

# (method, options) -> (forward, backward) per map
EXPECTED = [
    ("gradient", {}, (1, 1)),
    ("smoothgrad", {"samples": 20}, (20, 20)),
    ("smoothgrad_sq", {"samples": 7}, (7, 7)),
    ("vargrad", {"samples": 5}, (5, 5)),
    ("integrated_gradients", {"steps": 32}, (33, 33)),  # trapezoid: steps + 1 points
    ("integrated_gradients", {"steps": 32, "rule": "right"}, (32, 32)),
    ("gradcam", {}, (1, 1)),
    ("gradcam_signed", {}, (1, 1)),
    ("gradcam_inverted", {}, (1, 1)),
    ("gradcam_pp", {}, (1, 1)),
    ("guided_backprop", {}, (1, 1)),
    ("scorecam", {"max_channels": 8}, (9, 0)),
    ("random", {}, (0, 0)),
    ("sobel", {}, (0, 0)),
]


@pytest.mark.parametrize(("name", "options", "expected"), EXPECTED)
def test_declared_passes_follow_the_options(name, options, expected):
    assert METHODS[name](**options).passes() == expected


def test_every_registered_method_is_in_the_table():
    assert {name for name, _, _ in EXPECTED} == set(METHODS.names())


def test_scorecam_counts_the_models_channels():
    fp = build_tiny("vgg", False)  # GradCAM layer "features": 16 channels
    channels = int(fp.model.get_layer(fp.gradcam_layer).output.shape[-1])
    assert METHODS["scorecam"]().passes(fp) == (1 + channels, 0)
    assert METHODS["scorecam"](max_channels=4).passes(fp) == (5, 0)
    assert METHODS["scorecam"](max_channels=999).passes(fp) == (1 + channels, 0)
    with pytest.raises(ValueError, match="needs the model"):
        METHODS["scorecam"]().passes()
