import numpy as np
import pytest

from binsal.core.errors import InvalidInputError
from binsal.metrics.transforms import normalize, to_abs


def test_to_abs():
    m = np.array([[[-2.0, 1.0], [0.0, -0.5]]])
    np.testing.assert_array_equal(to_abs(m), [[[2.0, 1.0], [0.0, 0.5]]])


def test_normalize_modes_per_image():
    m = np.stack([np.array([[-1.0, 0.0], [1.0, 3.0]]), np.array([[2.0, 2.0], [4.0, 6.0]])])
    mm = normalize(m, mode="minmax")
    np.testing.assert_allclose(mm[0], [[0.0, 0.25], [0.5, 1.0]])
    np.testing.assert_allclose(mm[1], [[0.0, 0.0], [0.5, 1.0]])
    s = normalize(m, mode="sum")
    np.testing.assert_allclose(np.abs(s).sum(axis=(1, 2)), [1.0, 1.0])
    ma = normalize(m, mode="max_abs")
    np.testing.assert_allclose(ma[0], [[-1 / 3, 0.0], [1 / 3, 1.0]])
    np.testing.assert_array_equal(normalize(m, mode=None), m)


@pytest.mark.parametrize("mode", ["minmax", "sum", "max_abs"])
def test_normalize_is_zero_safe(mode):
    m = np.stack([np.zeros((4, 4)), np.full((4, 4), 3.0)])
    out = normalize(m, mode=mode)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[0], 0.0)
    if mode == "minmax":
        np.testing.assert_array_equal(out[1], 0.0)


def test_normalize_rejects_unknown_mode():
    with pytest.raises(InvalidInputError, match="normalize mode"):
        normalize(np.ones((1, 2, 2)), mode="l2")


def test_maps_must_be_nhw_and_finite():
    with pytest.raises(ValueError, match=r"\(N, H, W\).*\(4, 4\)"):
        to_abs(np.ones((4, 4)))
    bad = np.ones((2, 3, 3))
    bad[1, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN/inf.*image 1"):
        normalize(bad, mode="minmax")
