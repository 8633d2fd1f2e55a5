import numpy as np
import pytest
from scipy.stats import kendalltau, pearsonr, rankdata, spearmanr
from skimage.metrics import structural_similarity

from binsal.metrics import _memo, similarity
from binsal.metrics.similarity import (
    SSIM,
    HOGPearson,
    Kendall,
    Pearson,
    Spearman,
    TopKOverlap,
    hog_pearson,
    kendall,
    pearson,
    spearman,
    ssim,
    topk_overlap,
)


@pytest.fixture
def maps():
    return np.random.default_rng(0).normal(size=(4, 24, 24))


@pytest.mark.parametrize("use_abs", [True, False])
@pytest.mark.parametrize("fn", [spearman, kendall, pearson, ssim, hog_pearson, topk_overlap])
def test_identical_maps_score_one(fn, use_abs, maps):
    out = fn(maps, maps.copy(), use_abs=use_abs)
    assert out.shape == (4,) and out.dtype == np.float64
    np.testing.assert_allclose(out, 1.0, atol=1e-12)


@pytest.mark.parametrize("fn", [spearman, kendall, pearson])
def test_reversed_signed_map_scores_minus_one(fn, maps):
    np.testing.assert_allclose(fn(maps, -maps, use_abs=False), -1.0, atol=1e-12)


@pytest.mark.parametrize("fn", [spearman, kendall, pearson])
def test_negated_map_is_identical_under_abs(fn, maps):
    np.testing.assert_allclose(fn(maps, -maps, use_abs=True), 1.0, atol=1e-12)


def test_correlations_match_scipy_per_image(maps):
    other = maps + np.random.default_rng(1).normal(size=maps.shape)
    got = {
        "spearman": spearman(maps, other, use_abs=True),
        "kendall": kendall(maps, other, use_abs=True),
        "pearson": pearson(maps, other, use_abs=False),
    }
    for i in range(len(maps)):
        a, b = maps[i].ravel(), other[i].ravel()
        assert got["spearman"][i] == pytest.approx(spearmanr(np.abs(a), np.abs(b)).statistic)
        assert got["kendall"][i] == pytest.approx(kendalltau(np.abs(a), np.abs(b)).statistic)
        assert got["pearson"][i] == pytest.approx(pearsonr(a, b).statistic)


def test_rank_correlations_handle_ties_like_scipy():
    a = np.array([[[1.0, 1.0, 2.0], [3.0, 3.0, 3.0]]])
    b = np.array([[[1.0, 2.0, 2.0], [2.0, 5.0, 4.0]]])
    assert spearman(a, b, use_abs=False)[0] == pytest.approx(
        spearmanr(a.ravel(), b.ravel()).statistic
    )
    assert kendall(a, b, use_abs=False)[0] == pytest.approx(
        kendalltau(a.ravel(), b.ravel()).statistic
    )


def test_rank_correlations_are_rank_invariant(maps):
    transformed = np.exp(maps) * 5 + 2
    np.testing.assert_allclose(spearman(maps, transformed, use_abs=False), 1.0)
    np.testing.assert_allclose(kendall(maps, transformed, use_abs=False), 1.0)


@pytest.mark.parametrize("fn", [spearman, kendall, pearson, hog_pearson])
def test_constant_map_gives_nan(fn, maps):
    const = np.ones_like(maps)
    const[0] = maps[0]
    out = fn(maps, const, use_abs=True)
    assert np.isfinite(out[0]) and np.isnan(out[1:]).all()


def test_topk_overlap_known_value():
    a = np.arange(100, dtype=float).reshape(1, 10, 10)
    b = a.copy()
    b[0, 9, 9], b[0, 0, 0] = b[0, 0, 0], b[0, 9, 9]  # swap the top pixel with the bottom one
    # k = 10 top pixels; b loses one of a's top-10 -> 9 / 10.
    assert topk_overlap(a, b, fraction=0.1)[0] == pytest.approx(0.9)
    assert topk_overlap(a, -a, fraction=0.1, use_abs=False)[0] == 0.0


def test_topk_overlap_k_is_ceil():
    a = np.arange(9, dtype=float).reshape(1, 3, 3)
    b = a[:, ::-1, ::-1].copy()
    # fraction 0.5 -> k = ceil(4.5) = 5: a's top-5 are 4..8, b's are a's 0..4; overlap {4} -> 1/5.
    assert topk_overlap(a, b, fraction=0.5, use_abs=False)[0] == pytest.approx(0.2)


def test_topk_overlap_of_constant_maps_is_chance_level():
    const = np.zeros((2, 10, 10))
    # Ties broken by expectation: each pixel is in the top-10 with prob 0.1 -> 100 * 0.01 / 10.
    np.testing.assert_allclose(topk_overlap(const, const, fraction=0.1), 0.1)


def test_topk_overlap_rejects_bad_fraction(maps):
    with pytest.raises(ValueError, match="fraction"):
        topk_overlap(maps, maps, fraction=0.0)


def test_ssim_matches_skimage_on_minmax_maps(maps):
    other = maps + 0.5 * np.random.default_rng(2).normal(size=maps.shape)
    got = ssim(maps, other, use_abs=True)

    def mm(x):
        x = np.abs(x)
        return (x - x.min()) / (x.max() - x.min())

    want = [
        structural_similarity(mm(x), mm(y), data_range=1.0)
        for x, y in zip(maps, other, strict=True)
    ]
    np.testing.assert_allclose(got, want)
    assert (got < 1).all()


def test_ssim_is_scale_invariant_and_constant_maps_match(maps):
    np.testing.assert_allclose(ssim(maps, 7 * maps + 3, use_abs=False), 1.0)
    np.testing.assert_allclose(ssim(np.zeros((1, 8, 8)), np.ones((1, 8, 8)), use_abs=False), 1.0)


def test_ssim_and_hog_reject_too_small_maps():
    small = np.ones((1, 5, 5))
    with pytest.raises(ValueError, match="at least 7x7.*\\(1, 5, 5\\)"):
        ssim(small, small, use_abs=True)
    with pytest.raises(ValueError, match="at least 24x24"):
        hog_pearson(small, small, use_abs=True)


def test_hog_pearson_orders_similar_above_unrelated(maps):
    rng = np.random.default_rng(3)
    near = hog_pearson(maps, maps + 0.1 * rng.normal(size=maps.shape), use_abs=False)
    far = hog_pearson(maps, rng.normal(size=maps.shape), use_abs=False)
    assert (near > far).all()


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"same shape.*\(2, 8, 8\).*\(3, 8, 8\)"):
        spearman(np.ones((2, 8, 8)), np.ones((3, 8, 8)), use_abs=True)


def test_nan_input_is_rejected(maps):
    bad = maps.copy()
    bad[2, 3, 3] = np.inf
    with pytest.raises(ValueError, match=r"b of shape \(4, 24, 24\) contains 1 NaN/inf.*image 2"):
        pearson(maps, bad, use_abs=True)


def test_dataclasses_match_functions(maps):
    other = np.random.default_rng(4).normal(size=maps.shape)
    cases = [
        (Spearman(use_abs=True), spearman(maps, other, use_abs=True)),
        (Kendall(use_abs=False), kendall(maps, other, use_abs=False)),
        (Pearson(use_abs=True), pearson(maps, other, use_abs=True)),
        (TopKOverlap(fraction=0.2), topk_overlap(maps, other, fraction=0.2)),
        (SSIM(use_abs=True), ssim(maps, other, use_abs=True)),
        (HOGPearson(use_abs=True), hog_pearson(maps, other, use_abs=True)),
    ]
    for metric, want in cases:
        np.testing.assert_array_equal(metric(maps, other), want)
        assert metric.direction == "none"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("shape", "cell"), [((6, 64, 64), 8), ((5, 16, 16), 5), ((4, 37, 41), 8), ((3, 24, 24), 3)]
)
def test_batched_hog_matches_skimage(shape, cell, dtype):
    """The batched HOG gives skimage.feature.hog's descriptor values (in another order) and the
    same correlations between descriptors, to float32 precision."""
    from binsal.metrics.similarity import _hog_skimage, _rowwise_pearson, hog_batch
    from binsal.metrics.transforms import normalize

    rng = np.random.default_rng(3)
    a, b = (
        normalize(np.abs(rng.normal(size=shape)).astype(dtype), mode="minmax") for _ in range(2)
    )
    cfg = (9, (cell, cell), (3, 3))
    mine, ref = hog_batch(a, *cfg), _hog_skimage(a, *cfg)
    assert mine.shape == ref.shape
    np.testing.assert_allclose(np.sort(mine, axis=1), np.sort(ref, axis=1), atol=1e-6)
    r_mine = _rowwise_pearson(mine, hog_batch(b, *cfg))
    r_ref = _rowwise_pearson(ref, _hog_skimage(b, *cfg))
    np.testing.assert_allclose(r_mine, r_ref, atol=1e-6)


def test_ranks_and_hog_are_kept_by_content_with_the_same_values(monkeypatch):
    """The second comparison with the same maps takes their ranks and HOG descriptors from the
    memo: the same values as computed afresh, for any maps of the same content (not identity);
    other maps are computed; the memo stays under its byte bound."""
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(2, 6, 32, 32)).astype(np.float32)
    _memo.forget()
    fresh_rho = similarity.spearman(a, b, use_abs=True)
    fresh_hog = similarity.hog_pearson(a, b, use_abs=True, pixels_per_cell=(8, 8))
    calls = []
    real = similarity.rankdata
    monkeypatch.setattr(similarity, "rankdata", lambda *x, **k: calls.append(1) or real(*x, **k))
    np.testing.assert_array_equal(similarity.spearman(a.copy(), b, use_abs=True), fresh_rho)
    assert calls == []  # both sides from the memo (a copy has the same content)
    np.testing.assert_array_equal(
        similarity.hog_pearson(a, b.copy(), use_abs=True, pixels_per_cell=(8, 8)), fresh_hog
    )
    c = a.copy()
    c[0, 0, 0] += 1.0
    similarity.spearman(c, b, use_abs=True)
    assert calls == [1]  # changed content: ranked afresh
    np.testing.assert_array_equal(
        similarity.ranks(c, use_abs=True), rankdata(np.abs(c).reshape(6, -1), axis=1)
    )
    assert not similarity.ranks(c, use_abs=True).flags.writeable
    monkeypatch.setattr(_memo, "MAX_BYTES", 1)
    similarity.spearman(a, b, use_abs=False)
    assert len(_memo._MEMO) == 1
