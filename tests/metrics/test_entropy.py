import numpy as np
import pytest

from binsal.metrics.entropy import MapEntropy, map_entropy


def test_uniform_map_has_maximal_entropy():
    maps = np.stack([np.ones((16, 16)), -3 * np.ones((16, 16))])
    np.testing.assert_allclose(map_entropy(maps), np.log(256))
    np.testing.assert_allclose(map_entropy(maps, normalized_by_log_n=True), 1.0)


def test_one_pixel_map_has_zero_entropy():
    m = np.zeros((1, 16, 16))
    m[0, 3, 7] = -2.5
    assert map_entropy(m)[0] == 0.0
    assert map_entropy(m, normalized_by_log_n=True)[0] == 0.0


def test_known_value_and_bounds():
    m = np.zeros((1, 2, 2))
    m[0, 0, :] = 1.0  # two equal pixels -> log 2
    assert map_entropy(m)[0] == pytest.approx(np.log(2))
    rand = np.random.default_rng(0).normal(size=(8, 12, 12))
    h = map_entropy(rand)
    assert ((h > 0) & (h < np.log(144))).all()


def test_all_zero_map_is_nan():
    m = np.ones((3, 4, 4))
    m[1] = 0.0
    out = map_entropy(m)
    assert np.isnan(out[1]) and np.isfinite(out[[0, 2]]).all()


def test_noisier_map_has_higher_entropy():
    rng = np.random.default_rng(1)
    peak = np.zeros((1, 16, 16))
    peak[0, 6:9, 6:9] = 1.0
    noisy = peak + 0.3 * np.abs(rng.normal(size=peak.shape))
    assert map_entropy(noisy)[0] > map_entropy(peak)[0]


def test_dataclass():
    m = np.ones((2, 4, 4))
    metric = MapEntropy(normalized_by_log_n=True)
    np.testing.assert_allclose(metric(m), 1.0)
    assert metric.direction == "lower" and metric.name == "map_entropy"


def test_rejects_nan():
    m = np.ones((1, 4, 4))
    m[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        map_entropy(m)
