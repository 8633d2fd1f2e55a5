import numpy as np
import pytest

from binsal.metrics.faithfulness import (
    DeletionLeRF,
    DeletionMoRF,
    InsertionLeRF,
    InsertionMoRF,
    baseline_images,
    degrade_by_ranking,
    perturbation_auc,
    perturbation_curve,
)

H = W = 8
P = H * W
PIXEL = (2, 5)
FRACTIONS = np.linspace(0, 1, 11)


def one_pixel_model(x):
    """A 'model' that only looks at one pixel: P(class 1) = that pixel's channel-0 value."""
    p1 = np.clip(x[:, PIXEL[0], PIXEL[1], 0], 0, 1)
    return np.stack([1 - p1, p1], axis=1)


@pytest.fixture
def setup():
    rng = np.random.default_rng(0)
    n = 3
    images = np.zeros((n, H, W, 2), dtype=np.float32)
    images[:, PIXEL[0], PIXEL[1], :] = 1.0  # channel mean is then 1 / P
    maps = rng.uniform(0, 0.5, size=(n, H, W))
    maps[:, PIXEL[0], PIXEL[1]] = 1.0  # ranks the model's pixel first
    targets = np.ones(n, dtype=int)
    return images, targets, maps


def curve(setup, **kw):
    images, targets, maps = setup
    return perturbation_curve(one_pixel_model, images, targets, maps, fractions=FRACTIONS, **kw)


def test_morf_deletion_drops_at_first_nonzero_step(setup):
    out = curve(setup, order="morf", mode="deletion")
    np.testing.assert_array_equal(out["fractions"], FRACTIONS)
    assert out["prob"].shape == out["correct"].shape == (3, 11)
    np.testing.assert_allclose(out["prob"][:, 0], 1.0)
    np.testing.assert_allclose(out["prob"][:, 1:], 1 / P, rtol=1e-6)
    np.testing.assert_array_equal(out["correct"][:, 0], 1.0)
    np.testing.assert_array_equal(out["correct"][:, 1:], 0.0)


def test_lerf_deletion_keeps_the_pixel_until_the_last_step(setup):
    out = curve(setup, order="lerf", mode="deletion")
    np.testing.assert_allclose(out["prob"][:, :-1], 1.0)
    np.testing.assert_allclose(out["prob"][:, -1], 1 / P, rtol=1e-6)


def test_insertion_reveals_in_order(setup):
    morf = curve(setup, order="morf", mode="insertion")
    np.testing.assert_allclose(morf["prob"][:, 0], 1 / P, rtol=1e-6)
    np.testing.assert_allclose(morf["prob"][:, 1:], 1.0)
    lerf = curve(setup, order="lerf", mode="insertion")
    np.testing.assert_allclose(lerf["prob"][:, :-1], 1 / P, rtol=1e-6)
    np.testing.assert_allclose(lerf["prob"][:, -1], 1.0)


def test_auc_dataclasses_and_directions(setup):
    images, targets, maps = setup
    expected_morf = (0.1 * (1 + 1 / P) / 2 + 0.9 / P) / 1.0
    got = DeletionMoRF()(one_pixel_model, images, targets, maps)
    np.testing.assert_allclose(got, expected_morf, rtol=1e-6)
    assert DeletionMoRF.direction == "lower" and DeletionLeRF.direction == "higher"
    assert InsertionMoRF.direction == "higher" and InsertionLeRF.direction == "lower"
    # a faithful map beats its reverse under every variant, in the declared direction
    for cls in (DeletionMoRF, DeletionLeRF, InsertionMoRF, InsertionLeRF):
        good = cls()(one_pixel_model, images, targets, maps)
        bad = cls()(one_pixel_model, images, targets, -maps + 2)
        assert (good < bad).all() if cls.direction == "lower" else (good > bad).all(), cls
    acc = DeletionMoRF(curve="correct")(one_pixel_model, images, targets, maps)
    np.testing.assert_allclose(acc, 0.05)
    np.testing.assert_allclose(
        perturbation_auc(curve(setup, order="lerf", mode="deletion")),
        DeletionLeRF()(one_pixel_model, images, targets, maps),
    )


def test_use_abs_controls_the_ranking(setup):
    images, targets, maps = setup
    signed = maps.copy()
    signed[:, PIXEL[0], PIXEL[1]] = -5.0
    with_abs = perturbation_curve(
        one_pixel_model, images, targets, signed, order="morf", mode="deletion", use_abs=True
    )
    without = perturbation_curve(
        one_pixel_model, images, targets, signed, order="morf", mode="deletion", use_abs=False
    )
    assert with_abs["prob"][0, 1] < 0.5 and without["prob"][0, 1] == 1.0


@pytest.mark.parametrize("batch_size", [1, 7, 256])
def test_batching_does_not_change_results_and_respects_batch_size(setup, batch_size):
    images, targets, maps = setup
    seen = []

    def spy(x):
        assert x.dtype == np.float32 and x.shape[1:] == (H, W, 2)
        seen.append(len(x))
        return one_pixel_model(x)

    out = perturbation_curve(
        spy, images, targets, maps, order="morf", mode="deletion", batch_size=batch_size
    )
    assert max(seen) <= batch_size and sum(seen) == 3 * 11
    np.testing.assert_array_equal(out["prob"], curve(setup, order="morf", mode="deletion")["prob"])


def test_curve_images_are_degrade_by_ranking_outputs(setup):
    images, targets, maps = setup
    seen = []

    def spy(x):
        seen.append(x.copy())
        return one_pixel_model(x)

    fractions = np.array([0.0, 0.3, 1.0])
    perturbation_curve(
        spy, images, targets, maps, order="lerf", mode="deletion", fractions=fractions
    )
    batch = np.concatenate(seen).reshape(3, 3, H, W, 2)
    for j, t in enumerate(fractions):
        np.testing.assert_array_equal(
            batch[:, j], degrade_by_ranking(images, maps, t, order="lerf")
        )


def test_degrade_by_ranking_counts_and_baseline():
    rng = np.random.default_rng(1)
    images = rng.normal(size=(2, 4, 5, 3)).astype(np.float32)
    maps = rng.normal(size=(2, 4, 5))
    np.testing.assert_array_equal(degrade_by_ranking(images, maps, 0.0), images)
    full = degrade_by_ranking(images, maps, 1.0)
    np.testing.assert_allclose(
        full, np.broadcast_to(images.mean(axis=(1, 2), keepdims=True), full.shape)
    )
    out = degrade_by_ranking(images, maps, 0.3, baseline="zero")  # ceil(0.3 * 20) = 6 pixels
    removed = (out == 0).all(axis=3)
    np.testing.assert_array_equal(removed.sum(axis=(1, 2)), [6, 6])
    top6 = np.argsort(-np.abs(maps).reshape(2, -1), axis=1)[:, :6]
    np.testing.assert_array_equal(np.sort(np.flatnonzero(removed[0])), np.sort(top6[0]))
    lerf = degrade_by_ranking(images, maps, 0.3, order="lerf", baseline="zero")
    assert not ((lerf == 0).all(axis=3) & removed).any()


def test_ties_are_broken_by_pixel_order():
    images = np.ones((1, 2, 3, 1), dtype=np.float32)
    flat_map = np.zeros((1, 2, 3))
    for order in ("morf", "lerf"):
        out = degrade_by_ranking(images, flat_map, 0.5, order=order, baseline="zero")
        np.testing.assert_array_equal(out[0, ..., 0], [[0, 0, 0], [1, 1, 1]])


def test_baseline_options():
    images = np.arange(2 * 2 * 2 * 3, dtype=np.float32).reshape(2, 2, 2, 3)
    np.testing.assert_array_equal(baseline_images(images, 0.5), 0.5)
    dataset_mean = np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(baseline_images(images, dataset_mean)[1, 1, 0], dataset_mean)
    with pytest.raises(ValueError, match="baseline must be"):
        baseline_images(images, "blur")
    with pytest.raises(ValueError, match=r"baseline of shape \(4,\) does not broadcast"):
        baseline_images(images, np.zeros(4))


def test_input_errors(setup):
    images, targets, maps = setup
    kw = dict(order="morf", mode="deletion")
    with pytest.raises(
        ValueError, match=r"maps must have shape .*\(3, 8, 8\).*got maps \(3, 8, 7\)"
    ):
        perturbation_curve(one_pixel_model, images, targets, maps[:, :, :7], **kw)
    bad = images.copy()
    bad[1, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"images of shape \(3, 8, 8, 2\) contains 1 NaN"):
        perturbation_curve(one_pixel_model, bad, targets, maps, **kw)
    with pytest.raises(ValueError, match=r"targets must be in \[0, 2\)"):
        perturbation_curve(one_pixel_model, images, np.array([0, 1, 2]), maps, **kw)
    with pytest.raises(ValueError, match="integer class indices"):
        perturbation_curve(one_pixel_model, images, np.ones(3), maps, **kw)
    with pytest.raises(ValueError, match=r"predict_fn must return \(B, num_classes\)"):
        perturbation_curve(lambda x: x[:, 0, 0, 0], images, targets, maps, **kw)
    with pytest.raises(ValueError, match="order must be"):
        perturbation_curve(one_pixel_model, images, targets, maps, order="top", mode="deletion")
    with pytest.raises(ValueError, match="mode must be"):
        perturbation_curve(one_pixel_model, images, targets, maps, order="morf", mode="blur")
    with pytest.raises(ValueError, match="fractions"):
        perturbation_curve(one_pixel_model, images, targets, maps, fractions=[0, 1.5], **kw)


def _dot_images(n=3):
    """Flat grey images with one bright pixel at PIXEL: the one-pixel model says class 1."""
    x = np.full((n, H, W, 3), 0.1, np.float32)
    x[:, PIXEL[0], PIXEL[1], :] = 1.0
    return x


def test_road_morf_with_a_perfect_ranking_drops_at_the_first_step():
    from binsal.metrics.faithfulness import road_curve

    x = _dot_images()
    maps = np.zeros((3, H, W), np.float32)
    maps[:, PIXEL[0], PIXEL[1]] = 1.0  # the one pixel the model uses ranks first
    f = np.array([0.0, 0.1, 0.5, 1.0])
    res = road_curve(one_pixel_model, x, np.ones(3, np.int64), maps, order="morf", fractions=f,
                     noise_std=0.0)  # fmt: skip
    np.testing.assert_allclose(res["prob"][:, 0], 1.0)
    # imputed from its grey neighbours: the evidence is gone at the first step
    np.testing.assert_allclose(res["prob"][:, 1:3], 0.1, atol=1e-5)
    # everything removed: the images' mean colour, (63 * 0.1 + 1.0) / 64
    np.testing.assert_allclose(res["prob"][:, 3], (63 * 0.1 + 1.0) / 64, rtol=1e-5)
    assert (res["correct"][:, 1:] == 0).all() and (res["correct"][:, 0] == 1).all()


def test_road_lerf_keeps_the_evidence_until_it_is_removed_last():
    from binsal.metrics.faithfulness import road_curve

    x = _dot_images()
    maps = np.zeros((3, H, W), np.float32)
    maps[:, PIXEL[0], PIXEL[1]] = 1.0
    f = np.array([0.0, 0.5, 0.9, 1.0])
    res = road_curve(one_pixel_model, x, np.ones(3, np.int64), maps, order="lerf", fractions=f,
                     noise_std=0.0)  # fmt: skip
    np.testing.assert_allclose(res["prob"][:, :3], 1.0, atol=1e-6)  # the pixel is kept
    assert (res["prob"][:, 3] < 0.5).all()  # everything removed: only the fill is left


def test_road_noise_is_seeded_and_shared_across_maps():
    from binsal.metrics.faithfulness import road_curve

    rng = np.random.default_rng(0)
    x = rng.random((4, H, W, 3)).astype(np.float32)
    maps = rng.random((4, H, W)).astype(np.float32)
    kw = {"order": "morf", "fractions": np.array([0.3, 0.6]), "noise_std": 0.05}
    a = road_curve(one_pixel_model, x, np.ones(4, np.int64), maps, seed=[1, 2], **kw)
    b = road_curve(one_pixel_model, x, np.ones(4, np.int64), maps, seed=[1, 2], **kw)
    c = road_curve(one_pixel_model, x, np.ones(4, np.int64), maps, seed=[1, 3], **kw)
    np.testing.assert_array_equal(a["prob"], b["prob"])
    assert not np.array_equal(a["prob"], c["prob"])
