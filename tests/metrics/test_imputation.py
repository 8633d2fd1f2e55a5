"""ROAD noisy linear imputation, pinned on cases worked out from its definition (Rong et al.
2022): each removed pixel is the weighted mean of its in-image neighbours (1/6 direct, 1/12
diagonal), removed neighbours included, plus Gaussian noise on removed pixels only."""

import numpy as np
import pytest

from binsal.core.errors import InvalidInputError
from binsal.metrics.faithfulness import degrade_by_ranking
from binsal.metrics.imputation import noisy_linear_impute


def _textured(n=2, h=12, w=12, c=3, seed=0):
    return np.random.default_rng(seed).random((n, h, w, c)).astype(np.float32)


def test_kept_pixels_are_returned_unchanged():
    x = _textured()
    removed = np.random.default_rng(1).random(x.shape[:3]) < 0.4
    out = noisy_linear_impute(x, removed, seed=3)
    np.testing.assert_array_equal(out[~removed], x[~removed])
    assert out.dtype == np.float32 and out.shape == x.shape
    assert np.isfinite(out).all()


def test_one_interior_pixel_is_the_weighted_mean_of_its_eight_neighbours():
    x = _textured(n=1)
    removed = np.zeros(x.shape[:3], bool)
    removed[0, 5, 6] = True
    out = noisy_linear_impute(x, removed, noise_std=0.0)
    img = x[0].astype(np.float64)
    direct = img[4, 6] + img[6, 6] + img[5, 5] + img[5, 7]
    diagonal = img[4, 5] + img[4, 7] + img[6, 5] + img[6, 7]
    expected = direct / 6 + diagonal / 12
    np.testing.assert_allclose(out[0, 5, 6], expected, rtol=1e-5)


def test_a_corner_pixel_averages_its_three_neighbours_with_renormalised_weights():
    x = _textured(n=1)
    removed = np.zeros(x.shape[:3], bool)
    removed[0, 0, 0] = True
    out = noisy_linear_impute(x, removed, noise_std=0.0)
    img = x[0].astype(np.float64)
    expected = (img[0, 1] / 6 + img[1, 0] / 6 + img[1, 1] / 12) / (1 / 6 + 1 / 6 + 1 / 12)
    np.testing.assert_allclose(out[0, 0, 0], expected, rtol=1e-5)


def test_two_adjacent_removed_pixels_solve_the_coupled_system():
    # a 1 x 4 image [a, ?, ?, d]: x1 = (a + x2) / 2 and x2 = (x1 + d) / 2 (only direct
    # neighbours exist in one row), so x1 = (2a + d) / 3 and x2 = (a + 2d) / 3
    x = np.array([0.0, 5.0, 5.0, 3.0], np.float32).reshape(1, 1, 4, 1)
    removed = np.array([False, True, True, False]).reshape(1, 1, 4)
    out = noisy_linear_impute(x, removed, noise_std=0.0)
    np.testing.assert_allclose(out[0, 0, :, 0], [0.0, 1.0, 2.0, 3.0], atol=1e-5)


def test_a_linear_ramp_is_reproduced_exactly_inside_the_image():
    yy, xx = np.mgrid[0:16, 0:16].astype(np.float64)
    ramp = np.stack([0.01 * yy + 0.02 * xx, 0.5 + 0 * xx, 0.03 * xx - 0.01 * yy], -1)[None]
    removed = np.zeros((1, 16, 16), bool)
    removed[0, 3:12, 2:14] = True  # a large block, not touching the border
    out = noisy_linear_impute(ramp, removed, noise_std=0.0)
    np.testing.assert_allclose(out, ramp.astype(np.float32), atol=1e-5)


def test_a_constant_image_stays_constant_and_leaves_no_silhouette():
    x = np.full((1, 10, 10, 3), 0.25, np.float32)
    removed = np.zeros((1, 10, 10), bool)
    removed[0, 2:8, 3:7] = True
    out = noisy_linear_impute(x, removed, noise_std=0.0)
    np.testing.assert_allclose(out, x, atol=1e-6)


def test_noise_is_seeded_has_the_requested_spread_and_touches_removed_pixels_only():
    x = _textured(n=4, h=32, w=32)
    removed = np.random.default_rng(2).random(x.shape[:3]) < 0.5
    clean = noisy_linear_impute(x, removed, noise_std=0.0)
    a = noisy_linear_impute(x, removed, noise_std=0.05, seed=7)
    b = noisy_linear_impute(x, removed, noise_std=0.05, seed=7)
    c = noisy_linear_impute(x, removed, noise_std=0.05, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    diff = (a - clean)[removed]
    assert abs(diff.std() - 0.05) < 0.005 and abs(diff.mean()) < 0.005
    np.testing.assert_array_equal(a[~removed], x[~removed])


def test_an_image_with_every_pixel_removed_gets_the_fill():
    x = _textured(n=2)
    removed = np.zeros(x.shape[:3], bool)
    removed[1] = True
    removed[0, 3, 3] = True
    out = noisy_linear_impute(x, removed, noise_std=0.0, fill=np.array([0.1, 0.2, 0.3]))
    np.testing.assert_allclose(out[1], np.broadcast_to([0.1, 0.2, 0.3], out[1].shape), rtol=1e-6)


def test_each_image_is_imputed_on_its_own():
    x = _textured(n=3)
    removed = np.random.default_rng(4).random(x.shape[:3]) < 0.7
    together = noisy_linear_impute(x, removed, noise_std=0.0)
    for i in range(3):
        alone = noisy_linear_impute(x[i : i + 1], removed[i : i + 1], noise_std=0.0)
        np.testing.assert_allclose(together[i : i + 1], alone, atol=1e-6)


def test_the_solution_satisfies_the_neighbour_mean_equations():
    # residual check from the definition on a large, badly conditioned case: everything but
    # one 3 x 3 patch removed
    x = _textured(n=1, h=24, w=24)
    removed = np.ones((1, 24, 24), bool)
    removed[0, 2:5, 18:21] = False
    out = noisy_linear_impute(x, removed, noise_std=0.0)[0].astype(np.float64)
    padded = np.pad(out, ((1, 1), (1, 1), (0, 0)))
    inside = np.pad(np.ones((24, 24)), 1)
    num = np.zeros_like(out)
    den = np.zeros((24, 24))
    offsets = [(-1, 0, 1 / 6), (1, 0, 1 / 6), (0, -1, 1 / 6), (0, 1, 1 / 6)]
    offsets += [(-1, -1, 1 / 12), (-1, 1, 1 / 12), (1, -1, 1 / 12), (1, 1, 1 / 12)]
    for dr, dc, wt in offsets:
        num += wt * padded[1 + dr : 25 + dr, 1 + dc : 25 + dc]
        den += wt * inside[1 + dr : 25 + dr, 1 + dc : 25 + dc]
    expected = num / den[..., None]
    np.testing.assert_allclose(out[removed[0]], expected[removed[0]], atol=1e-5)


@pytest.mark.parametrize(
    "removed, kwargs, match",
    [
        (np.zeros((2, 12, 11), bool), {}, "removed must have shape"),
        (np.zeros((2, 12, 12), bool), {"noise_std": -1.0}, "noise_std"),
        (np.zeros((2, 12, 12), bool), {"noise_std": float("nan")}, "noise_std"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(removed, kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        noisy_linear_impute(_textured(), removed, **kwargs)


def test_nan_images_are_refused():
    x = _textured()
    x[0, 1, 1, 0] = np.nan
    with pytest.raises(InvalidInputError):
        noisy_linear_impute(x, np.zeros(x.shape[:3], bool))


def test_degrade_by_ranking_with_noisy_linear_removes_the_top_pixels_smoothly():
    # the map ranks a central block first; removing it by a constant leaves a flat block, the
    # ROAD imputation a smooth continuation of the surrounding ramp
    yy, xx = np.mgrid[0:16, 0:16].astype(np.float32)
    img = np.stack([xx / 15, yy / 15, 0 * xx + 0.5], -1)[None]
    maps = np.zeros((1, 16, 16), np.float32)
    maps[0, 4:12, 4:12] = 1.0
    out = degrade_by_ranking(img, maps, 0.25, baseline="noisy_linear", noise_std=0.0)
    np.testing.assert_allclose(out, img, atol=1e-4)  # the ramp continues through the hole
    mean = degrade_by_ranking(img, maps, 0.25, baseline="channel_mean")
    assert np.abs(mean - img).max() > 0.2  # whereas the constant leaves a flat block
