"""Known answers for the Gini sparseness of a map."""

import numpy as np
import pytest

from binsal.metrics import METRICS, GiniSparseness, gini_sparseness


def test_single_pixel_is_one_minus_one_over_d_and_uniform_is_zero():
    maps = np.zeros((3, 4, 5))
    maps[0, 2, 3] = -7.0  # abs: the sign does not matter
    maps[1] = 0.5
    out = gini_sparseness(maps)
    assert out[0] == pytest.approx(1.0 - 1.0 / 20)  # the maximum for d = 20 values
    assert out[1] == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(out[2])  # all zero: no distribution


def test_matches_the_mean_absolute_difference_definition():
    """G = sum_i sum_j |v_i - v_j| / (2 d^2 mean(v)) (Gini 1912), on random maps."""
    maps = np.random.default_rng(0).normal(size=(4, 6, 7))
    v = np.abs(maps.reshape(4, -1))
    d = v.shape[1]
    expected = np.abs(v[:, :, None] - v[:, None, :]).sum(axis=(1, 2)) / (2 * d * d * v.mean(1))
    np.testing.assert_allclose(gini_sparseness(maps), expected, rtol=1e-12)


def test_registered_with_its_direction():
    assert METRICS["gini_sparseness"] is GiniSparseness
    assert GiniSparseness.direction == "none"
    assert GiniSparseness()(np.ones((2, 3, 3))).shape == (2,)
