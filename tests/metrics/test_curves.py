import numpy as np
import pytest

from binsal.metrics.curves import curve_auc


def test_constant_curve_has_its_value_as_auc():
    x = np.linspace(0, 1, 11)
    np.testing.assert_allclose(curve_auc(x, np.ones(11)), 1.0)
    np.testing.assert_allclose(curve_auc(x * 5 + 2, np.full((3, 11), 0.4)), [0.4] * 3)


def test_linear_curve_and_uneven_spacing():
    x = np.array([0.0, 0.1, 0.5, 1.0])
    np.testing.assert_allclose(curve_auc(x, x), 0.5)  # trapezoid is exact on a line
    np.testing.assert_allclose(curve_auc(x, 1 - x[None, :]), [0.5])


def test_vectorised_over_rows_and_nan_propagates():
    y = np.array([[0.0, 1.0, 0.0], [1.0, np.nan, 1.0]])
    out = curve_auc(np.array([0.0, 0.5, 1.0]), y)
    assert out.shape == (2,)
    assert out[0] == pytest.approx(0.5) and np.isnan(out[1])


def test_bad_inputs():
    with pytest.raises(ValueError, match="increasing"):
        curve_auc(np.array([0.0, 1.0, 0.5]), np.ones(3))
    with pytest.raises(ValueError, match=r"length of x \(3\).*\(2, 4\)"):
        curve_auc(np.array([0.0, 0.5, 1.0]), np.ones((2, 4)))
