import numpy as np
import pytest

from binsal.core.stats import bootstrap_ci


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
