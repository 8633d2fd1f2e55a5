import numpy as np
import pytest

from binsal.core.errors import InvalidInputError
from binsal.core.stats import bootstrap_ci, hierarchical_bootstrap_ci


def test_ci_covers_the_mean():
    values = np.random.default_rng(0).normal(loc=3.0, size=200)
    mean, lo, hi = bootstrap_ci(values, seed=1)
    assert mean == values.mean()
    assert lo < mean < hi
    assert lo < 3.0 < hi


def test_ci_is_seeded():
    values = np.random.default_rng(0).uniform(size=30)
    assert bootstrap_ci(values, seed=5) == bootstrap_ci(values, seed=5)


def test_single_value_is_degenerate_and_empty_is_nan():
    assert bootstrap_ci(np.array([0.7])) == (0.7, 0.7, 0.7)
    assert all(np.isnan(v) for v in bootstrap_ci(np.array([])))


def test_difference_p_value_from_cis_matches_the_normal_approximation():
    from scipy.stats import norm

    from binsal.core.stats import Z_95, difference_p_value

    # se 0.1 each: z = 0.3 / sqrt(0.02)
    half = 0.1 * Z_95
    p = difference_p_value(
        np.array([0.5]), (np.array([0.5 - half]), np.array([0.5 + half])),
        np.array([0.8]), (np.array([0.8 - half]), np.array([0.8 + half])),
    )  # fmt: skip
    assert p[0] == pytest.approx(2 * norm.sf(0.3 / np.sqrt(0.02)))
    # identical estimates: p = 1; two points without spread: 1 if equal, 0 if not; NaN stays NaN
    same = difference_p_value(np.array([0.5, 0.2, 0.2, np.nan]), (np.array([0.4, 0.2, 0.2, 0]),
        np.array([0.6, 0.2, 0.2, 1])), np.array([0.5, 0.2, 0.3, 0.1]), (np.array([0.4, 0.2, 0.3,
        0]), np.array([0.6, 0.2, 0.3, 1])))  # fmt: skip
    assert same[0] == pytest.approx(1.0) and same[1] == 1.0 and same[2] == 0.0
    assert np.isnan(same[3])


def test_benjamini_hochberg_matches_the_step_up_rule_worked_by_hand():
    from binsal.core.stats import benjamini_hochberg

    # sorted p 0.01, 0.02, 0.04, 0.2, 0.4; p * m / rank = 0.05, 0.05, 0.0667, 0.25, 0.4 (already
    # monotone, so the step-up minimum changes nothing), back in the original order
    p = np.array([0.04, 0.01, 0.4, 0.02, 0.2])
    q = benjamini_hochberg(p)
    np.testing.assert_allclose(q, [0.2 / 3, 0.05, 0.4, 0.05, 0.25], rtol=1e-12)
    # a non-monotone case: p * m / rank = 0.06, 0.04 -> q = 0.04 for both
    np.testing.assert_allclose(benjamini_hochberg(np.array([0.03, 0.04])), [0.04, 0.04])
    assert np.isnan(benjamini_hochberg(np.array([np.nan, 0.01]))[0])
    assert benjamini_hochberg(np.array([0.01, np.nan]))[0] == pytest.approx(0.01)
    assert benjamini_hochberg(np.array([])).size == 0


def test_proportion_of_zero_gets_a_wilson_interval_with_a_positive_upper_bound():
    from binsal.core.stats import mean_interval

    iv = mean_interval(np.zeros(8))
    assert iv.method == "wilson" and iv.value == 0.0 and iv.low == 0.0
    assert 0.2 < iv.high < 0.4  # Wilson 0/8: 0.324
    iv = mean_interval(np.ones(8))
    assert iv.method == "wilson" and iv.low < 1.0 == iv.high


def test_small_n_uses_a_t_interval_matching_scipy():
    from scipy import stats

    from binsal.core.stats import mean_interval

    x = np.array([0.1, 0.4, 0.35, 0.2, 0.3])
    iv = mean_interval(x)
    lo, hi = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert iv.method == "t" and iv.n == 5
    assert iv.low == pytest.approx(lo) and iv.high == pytest.approx(hi)


def test_no_zero_width_interval_unless_every_value_is_equal():
    from binsal.core.stats import mean_interval

    assert mean_interval(np.full(12, 0.3)).method == "constant"
    rng = np.random.default_rng(0)
    for n in (2, 3, 9, 10, 50):
        iv = mean_interval(rng.normal(size=n))
        assert iv.high > iv.low, n
    one = mean_interval(np.array([0.5]))
    assert one.method == "none" and np.isnan(one.low) and np.isnan(one.high)


def test_hierarchical_interval_covers_seed_to_seed_variation():
    """Three training seeds whose means differ far more than images vary within a seed: the
    one-level bootstrap over pooled images is far too narrow, the two-level one is not."""
    from binsal.core.stats import bootstrap_ci, mean_interval

    rng = np.random.default_rng(3)
    offsets = np.array([-0.2, 0.05, 0.25])
    values = np.concatenate([o + rng.normal(0, 0.05, 64) for o in offsets])
    groups = np.repeat([0, 1, 2], 64)
    iv = mean_interval(values, groups=groups, seed=1)
    _, lo, hi = bootstrap_ci(values, seed=1)
    assert iv.method == "hierarchical" and iv.n == 192 and iv.n_groups == 3
    assert iv.value == pytest.approx(np.mean([values[groups == g].mean() for g in range(3)]))
    assert (iv.high - iv.low) > 5 * (hi - lo)
    assert mean_interval(values, groups=groups, seed=1) == iv  # seeded


def test_hierarchical_coverage_beats_the_pooled_bootstrap():
    """Over repeated draws of a two-level population (true mean 0), the two-level interval
    contains the truth far more often than the pooled one-level interval."""
    from binsal.core.stats import bootstrap_ci, hierarchical_bootstrap_ci

    rng = np.random.default_rng(11)
    hits_h = hits_p = 0
    trials = 60
    for _ in range(trials):
        offsets = rng.normal(0, 0.1, 5)
        values = np.concatenate([o + rng.normal(0, 0.1, 20) for o in offsets])
        groups = np.repeat(np.arange(5), 20)
        _, lo, hi = hierarchical_bootstrap_ci(values, groups, n_boot=300, seed=0)
        hits_h += lo <= 0.0 <= hi
        _, lo, hi = bootstrap_ci(values, n_boot=300, seed=0)
        hits_p += lo <= 0.0 <= hi
    assert hits_h / trials > 0.75 and hits_h > hits_p + 10


@pytest.mark.parametrize("n_boot", [0, -5, 2.5, True])
def test_resampling_settings_without_an_interval_are_one_line_errors(n_boot):
    with pytest.raises(InvalidInputError, match="n_boot must be an integer >= 1"):
        bootstrap_ci(np.ones(5), n_boot=n_boot)
    with pytest.raises(InvalidInputError, match="n_boot must be an integer >= 1"):
        hierarchical_bootstrap_ci(np.ones(4), np.array([0, 0, 1, 1]), n_boot=n_boot)


def test_alpha_outside_zero_one_is_an_error():
    with pytest.raises(InvalidInputError, match="alpha"):
        bootstrap_ci(np.ones(5), alpha=1.5)


def _hierarchical_peak_mb(values: np.ndarray, groups: np.ndarray) -> tuple[float, tuple]:
    import tracemalloc

    from binsal.core.stats import hierarchical_bootstrap_ci

    tracemalloc.start()
    try:
        out = hierarchical_bootstrap_ci(values, groups, n_boot=1000, seed=0)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    return peak, out


def test_hierarchical_interval_of_many_binary_units_needs_no_index_matrix(monkeypatch):
    """Sign flips of ~10^5 kernel weights per seed: each resample's mean is drawn as
    Binomial(n, p) / n (its exact distribution) instead of from a resamples x units index
    matrix (~0.5 GB here); the interval agrees with the index-matrix one."""
    from binsal.core import stats

    rng = np.random.default_rng(5)
    p = np.array([0.48, 0.5, 0.53])
    values = np.concatenate([(rng.random(100_000) < q).astype(np.float64) for q in p])
    groups = np.repeat([0, 1, 2], 100_000)
    peak, (mean, lo, hi) = _hierarchical_peak_mb(values, groups)
    assert peak < 40, f"{peak:.0f} MB"
    monkeypatch.setattr(stats, "RESAMPLE_DIRECT_MAX_UNITS", 10**9)  # the index matrix
    ref_mean, ref_lo, ref_hi = stats.hierarchical_bootstrap_ci(values, groups, n_boot=300, seed=0)
    assert mean == ref_mean
    width = ref_hi - ref_lo
    assert abs(lo - ref_lo) < 0.1 * width and abs(hi - ref_hi) < 0.1 * width


def test_hierarchical_interval_of_many_real_units_resamples_in_blocks():
    rng = np.random.default_rng(6)
    values = np.concatenate([o + rng.normal(0, 1, 20_000) for o in (-0.1, 0.0, 0.2)])
    groups = np.repeat([0, 1, 2], 20_000)
    peak, (mean, lo, hi) = _hierarchical_peak_mb(values, groups)
    assert peak < 100, f"{peak:.0f} MB"  # one index matrix would be ~110 MB, twice with values
    assert lo < mean < hi and lo < -0.05 and hi > 0.15  # the seeds' spread, not the images'


def test_hierarchical_interval_of_per_image_units_is_unchanged_by_the_large_group_paths():
    """Groups up to RESAMPLE_DIRECT_MAX_UNITS units draw one index matrix, as before."""
    from binsal.core.stats import RESAMPLE_DIRECT_MAX_UNITS, hierarchical_bootstrap_ci

    rng = np.random.default_rng(7)
    values = rng.random(3 * 128)
    groups = np.repeat([0, 1, 2], 128)
    n_boot = 200
    draws = np.random.default_rng(0)
    picks = draws.integers(0, 3, size=(n_boot, 3))
    sums = np.zeros(n_boot)
    members = [values[groups == g] for g in range(3)]
    for j in range(3):
        for g, m in enumerate(members):
            rows = np.nonzero(picks[:, j] == g)[0]
            if rows.size:
                sums[rows] += m[draws.integers(0, m.size, size=(rows.size, m.size))].mean(axis=1)
    expected = np.quantile(sums / 3, [0.025, 0.975])
    _, lo, hi = hierarchical_bootstrap_ci(values, groups, n_boot=n_boot, seed=0)
    assert 128 <= RESAMPLE_DIRECT_MAX_UNITS and (lo, hi) == tuple(expected)
