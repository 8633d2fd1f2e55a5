import numpy as np
import pytest

from binsal.metrics.localization import (
    IoUAUC,
    PointingGame,
    RelevanceMass,
    RelevanceRankAccuracy,
    iou_auc,
    iou_curve,
    pointing_game,
    relevance_mass,
    relevance_rank_accuracy,
)


def square_masks(n=4, size=16):
    rng = np.random.default_rng(0)
    masks = np.zeros((n, size, size), dtype=bool)
    for i in range(n):
        r, c = rng.integers(0, size - 5, size=2)
        masks[i, r : r + 5, c : c + 5] = True
    return masks


def test_map_equal_to_mask_is_perfect():
    masks = square_masks()
    maps = masks.astype(float)
    np.testing.assert_array_equal(pointing_game(maps, masks), 1.0)
    np.testing.assert_allclose(relevance_mass(maps, masks), 1.0)
    np.testing.assert_allclose(relevance_rank_accuracy(maps, masks), 1.0)
    thresholds = np.linspace(0, 1, 21)
    curve = iou_curve(maps, masks, thresholds=thresholds)
    assert curve.shape == (4, 21)
    np.testing.assert_allclose(curve[:, 1:], 1.0)
    np.testing.assert_allclose(curve[:, 0], masks.sum(axis=(1, 2)) / 256)  # t = 0 selects all
    auc = iou_auc(maps, masks)
    assert ((auc > 0.95) & (auc < 1.0)).all()


def test_map_peaked_outside_the_mask_loses():
    masks = np.zeros((1, 16, 16), dtype=bool)
    masks[0, :5, :5] = True
    maps = np.zeros((1, 16, 16))
    maps[0, 12, 12] = 1.0
    assert pointing_game(maps, masks)[0] == 0.0
    assert relevance_mass(maps, masks)[0] == 0.0
    # top-25 = the peak + 24 of the 255 tied zeros, 25 of which lie in the mask (expected share)
    assert relevance_rank_accuracy(maps, masks)[0] == pytest.approx(24 * 25 / 255 / 25)
    np.testing.assert_allclose(iou_curve(maps, masks)[0, 1:], 0.0)


def test_pointing_game_tolerance_is_a_euclidean_disk():
    masks = np.zeros((1, 16, 16), dtype=bool)
    masks[0, 5, 5] = True
    maps = np.zeros((1, 16, 16))
    maps[0, 5, 8] = 1.0  # 3 px away
    assert pointing_game(maps, masks, tolerance_px=2)[0] == 0.0
    assert pointing_game(maps, masks, tolerance_px=3)[0] == 1.0
    diag = np.zeros((1, 16, 16))
    diag[0, 7, 7] = 1.0  # distance sqrt(8) ~ 2.83
    assert pointing_game(diag, masks, tolerance_px=2)[0] == 0.0
    assert pointing_game(diag, masks, tolerance_px=3)[0] == 1.0


def test_pointing_game_ties_give_expected_hit():
    masks = np.zeros((2, 8, 8), dtype=bool)
    masks[:, :2, :] = True  # 16 of 64 pixels
    maps = np.zeros((2, 8, 8))
    maps[1, 0, 0] = maps[1, 7, 7] = 1.0  # two tied maxima, one inside
    np.testing.assert_allclose(pointing_game(maps, masks), [0.25, 0.5])


def test_pointing_game_signed_vs_abs():
    masks = np.zeros((1, 8, 8), dtype=bool)
    masks[0, 0, 0] = True
    maps = np.zeros((1, 8, 8))
    maps[0, 0, 0], maps[0, 5, 5] = -3.0, 1.0
    assert pointing_game(maps, masks, use_abs=True)[0] == 1.0
    assert pointing_game(maps, masks, use_abs=False)[0] == 0.0


def test_relevance_mass_known_values():
    masks = np.zeros((1, 4, 4), dtype=bool)
    masks[0, 0, :2] = True
    maps = np.zeros((1, 4, 4))
    maps[0, 0, 0], maps[0, 0, 1], maps[0, 3, 3] = 2.0, -1.0, 1.0
    assert relevance_mass(maps, masks, use_abs=True)[0] == pytest.approx(3 / 4)
    assert relevance_mass(maps, masks, use_abs=False)[0] == pytest.approx(2 / 3)  # positive part
    assert np.isnan(relevance_mass(np.zeros((1, 4, 4)), masks)[0])


def test_relevance_rank_accuracy_known_value():
    masks = np.zeros((1, 4, 4), dtype=bool)
    masks[0, 0, :4] = True  # K = 4
    maps = np.zeros((1, 4, 4))
    maps[0, 0, :3] = [4.0, 3.0, 2.0]
    maps[0, 2, 2] = 5.0  # top-4: 5 (out), 4, 3, 2 (in) -> 3 / 4
    assert relevance_rank_accuracy(maps, masks)[0] == pytest.approx(0.75)


def test_empty_mask_is_nan():
    masks = square_masks(2)
    masks[1] = False
    maps = np.random.default_rng(1).normal(size=masks.shape)
    for fn in (pointing_game, relevance_mass, relevance_rank_accuracy, iou_auc):
        out = fn(maps, masks)
        assert np.isfinite(out[0]) and np.isnan(out[1]), fn.__name__


def test_iou_curve_known_values():
    masks = np.zeros((1, 1, 4), dtype=bool)
    masks[0, 0, :2] = True
    maps = np.array([[[1.0, 0.5, 0.5, 0.0]]])
    curve = iou_curve(maps, masks, thresholds=np.array([0.0, 0.5, 0.75, 1.0]))
    # {>=0}: 4 px, IoU 2/4; {>=0.5}: 3 px, 2/3; {>=0.75} and {>=1}: 1 px, 1/2.
    np.testing.assert_allclose(curve, [[0.5, 2 / 3, 0.5, 0.5]])


def test_iou_max_abs_normalization_keeps_sign():
    masks = np.zeros((1, 1, 4), dtype=bool)
    masks[0, 0, 0] = True
    maps = np.array([[[1.0, -1.0, 0.0, 0.0]]])
    minmax = iou_curve(maps, masks, thresholds=np.array([0.5]), use_abs=False)
    assert minmax[0, 0] == pytest.approx(1 / 3)  # minmax sends -1 to 0 and 0 to 0.5
    kept = iou_curve(
        maps, masks, thresholds=np.array([0.5]), use_abs=False, normalization="max_abs"
    )
    assert kept[0, 0] == 1.0
    absolute = iou_curve(maps, masks, thresholds=np.array([0.5]), use_abs=True)
    assert absolute[0, 0] == pytest.approx(1 / 2)


def test_input_errors():
    maps = np.ones((2, 8, 8))
    with pytest.raises(ValueError, match=r"masks must have the maps' shape \(2, 8, 8\).*\(2, 8\)"):
        pointing_game(maps, np.ones((2, 8), dtype=bool))
    with pytest.raises(ValueError, match="boolean or 0/1"):
        relevance_mass(maps, np.full((2, 8, 8), 0.5))
    bad = maps.copy()
    bad[0, 1, 1] = np.nan
    with pytest.raises(ValueError, match=r"maps of shape \(2, 8, 8\) contains 1 NaN"):
        iou_auc(bad, np.ones((2, 8, 8), dtype=bool))
    with pytest.raises(ValueError, match="tolerance_px"):
        pointing_game(maps, np.ones((2, 8, 8), dtype=bool), tolerance_px=-1)


def test_dataclasses():
    masks = square_masks()
    maps = masks + 0.1 * np.random.default_rng(2).normal(size=masks.shape)
    for metric, fn in [
        (PointingGame(tolerance_px=1), lambda: pointing_game(maps, masks, tolerance_px=1)),
        (RelevanceMass(use_abs=False), lambda: relevance_mass(maps, masks, use_abs=False)),
        (RelevanceRankAccuracy(), lambda: relevance_rank_accuracy(maps, masks)),
        (IoUAUC(), lambda: iou_auc(maps, masks)),
    ]:
        np.testing.assert_array_equal(metric(maps, masks), fn())
        assert metric.direction == "higher"
