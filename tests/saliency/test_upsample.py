"""The hand-written bilinear upsampling against scipy.ndimage.zoom, which tf-keras-vis uses."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import zoom

from binsal.saliency import engine_tf


@pytest.mark.parametrize(
    ("low", "high"),
    [((8, 8), (64, 64)), ((4, 4), (64, 64)), ((1, 1), (64, 64)), ((3, 5), (64, 48)),
     ((7, 7), (224, 224)), ((16, 16), (16, 16))],
)  # fmt: skip
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_upsample_equals_scipy_zoom(
    low: tuple[int, int], high: tuple[int, int], dtype: type
) -> None:
    maps = np.random.default_rng(0).normal(size=(5, *low)).astype(dtype)
    factors = (1.0, high[0] / low[0], high[1] / low[1])
    got = engine_tf.upsample(maps, high)
    assert got.shape == (5, *high) and got.dtype == dtype
    ulp = np.finfo(dtype).eps * np.abs(maps).max()
    np.testing.assert_allclose(got, zoom(maps, factors, order=1), rtol=0, atol=2 * ulp)
    np.testing.assert_allclose(
        got,
        zoom(maps, factors, order=1, mode="nearest"),
        rtol=0,
        atol=2 * ulp,
    )


def test_upsample_keeps_a_constant_map_constant() -> None:
    maps = np.full((2, 8, 8), 0.25, dtype=np.float32)
    np.testing.assert_array_equal(engine_tf.upsample(maps, (64, 64)), 0.25)
