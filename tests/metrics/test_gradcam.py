import numpy as np
import pytest

from binsal.metrics.gradcam import BlankMap, NegativeMassShare, blank_map, negative_mass_share


def test_blank_map():
    rng = np.random.default_rng(0)
    maps = np.stack(
        [
            np.abs(rng.normal(size=(8, 8))),  # positive evidence: not blank
            -np.abs(rng.normal(size=(8, 8))),  # all negative: ReLU leaves nothing
            np.zeros((8, 8)),  # all zero
            np.full((8, 8), 1e-15),  # ~0 everywhere: absolute test
            np.where(np.eye(8, dtype=bool), 1e-9, -1.0),  # positive part negligible vs scale
        ]
    )
    np.testing.assert_array_equal(blank_map(maps), [0.0, 1.0, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(blank_map(maps, rel_eps=1e-12)[4], 0.0)
    np.testing.assert_array_equal(BlankMap()(maps), blank_map(maps))


def test_negative_mass_share():
    m = np.array([[[1.0, -3.0], [0.0, 0.0]], [[2.0, 2.0], [2.0, 2.0]], [[0.0, 0.0], [0.0, 0.0]]])
    out = negative_mass_share(m)
    assert out[0] == pytest.approx(0.75) and out[1] == 0.0 and np.isnan(out[2])
    np.testing.assert_array_equal(NegativeMassShare()(m), out)


def test_rejects_bad_shape():
    with pytest.raises(ValueError, match=r"pre_relu_maps must have shape \(N, H, W\)"):
        negative_mass_share(np.ones((2, 3, 3, 1)))
