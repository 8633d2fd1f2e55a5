import numpy as np

from binsal.metrics.stats import bootstrap_ci


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
