"""Training-seed replicates: per-unit values collected per row, rows merged across seeds."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from binsal.core.replicates import (
    Replicate,
    frame_keys,
    load_units,
    merge_replicates,
    replicate_seeds,
    save_units,
)
from binsal.core.schema import collect_units, key_of, rows_frame, score_row
from binsal.core.stats import hierarchical_bootstrap_ci, mean_interval


def _row(values, *, seed, metric="spearman", params=None):
    return score_row(
        values,
        benchmark="rank_correlation",
        model="a|b",
        family="FP-BNN",
        pair="vgg",
        method="gradient",
        metric=metric,
        direction="higher",
        seed=seed,
        params=params or {"seed": seed, "train_seed": seed, "k": 1},
        n_boot=500,
    )


def _replicate(seed, values_by_metric):
    with collect_units() as sink:
        rows = [_row(v, seed=seed, metric=m) for m, v in values_by_metric.items()]
    return Replicate(seed=seed, frame=rows_frame(rows), units=dict(sink))


def test_collect_units_keys_ignore_what_a_replicate_changes():
    with collect_units() as sink:
        a = _row([0.1, 0.2, np.nan, 0.4], seed=0)
        b = _row([0.1, 0.2, 0.3], seed=7)
    assert key_of(a) == key_of(b)  # seed and train_seed are not part of what the score is
    assert len(sink) == 1
    np.testing.assert_array_equal(sink[key_of(b)], [0.1, 0.2, 0.3])  # finite values, last wins
    outside = _row([1.0, 2.0], seed=0)  # no sink open: nothing recorded, no error
    assert outside.n == 2


def test_merge_gives_one_hierarchical_row_per_score():
    rng = np.random.default_rng(0)
    per_seed = {s: rng.normal(0.1 * s, 1.0, 40) for s in (0, 1, 2)}
    reps = [_replicate(s, {"spearman": v, "kendall": v / 2}) for s, v in per_seed.items()]
    merged = merge_replicates(reps, seed=0, n_boot=500)
    assert len(merged) == 2
    row = merged[merged.metric == "spearman"].iloc[0]
    assert row.n == 120 and row.n_groups == 3 and row.ci_method == "hierarchical"
    assert np.isclose(row.value, np.mean([v.mean() for v in per_seed.values()]))
    values = np.concatenate(list(per_seed.values()))
    groups = np.repeat([0, 1, 2], 40)
    _, lo, hi = hierarchical_bootstrap_ci(values, groups, n_boot=500, seed=0)
    assert (row.ci_low, row.ci_high) == (lo, hi)
    assert json.loads(row.params)["seed"] == 0  # the first replicate's params (profile seed)


def test_hierarchical_interval_is_wider_than_one_seeds_when_seeds_differ():
    rng = np.random.default_rng(1)
    per_seed = [rng.normal(mu, 0.5, 64) for mu in (0.0, 0.6, 1.2)]
    merged = merge_replicates(
        [_replicate(s, {"spearman": v}) for s, v in enumerate(per_seed)], seed=0, n_boot=1000
    ).iloc[0]
    one = mean_interval(per_seed[0], n_boot=1000)
    assert merged.ci_high - merged.ci_low > 3 * (one.high - one.low)


def test_a_score_on_one_replicate_keeps_its_row():
    r0 = _replicate(0, {"spearman": np.linspace(0, 1, 20), "only_here": np.linspace(0, 1, 20)})
    r1 = _replicate(1, {"spearman": np.linspace(0.1, 1, 20)})
    merged = merge_replicates([r0, r1], seed=0, n_boot=200)
    alone = merged[merged.metric == "only_here"].iloc[0]
    original = r0.frame[r0.frame.metric == "only_here"].iloc[0]
    assert alone.n_groups == 1 and alone.ci_method == original.ci_method
    assert (alone.value, alone.ci_low, alone.ci_high) == (
        original.value,
        original.ci_low,
        original.ci_high,
    )
    assert merged[merged.metric == "spearman"].iloc[0].n_groups == 2


def test_rows_merge_after_a_csv_round_trip(tmp_path):
    rep = _replicate(3, {"spearman": np.arange(12.0), "kendall": np.ones(12)})
    path = tmp_path / "part.csv"
    rep.frame.to_csv(path, index=False)
    back = pd.read_csv(path, keep_default_na=False, na_values=["", "nan", "NaN"])
    assert frame_keys(back) == frame_keys(rep.frame)
    save_units(tmp_path / "u.npz", frame_keys(rep.frame), rep.units)
    units = load_units(tmp_path / "u.npz", frame_keys(back))
    assert units.keys() == rep.units.keys()
    for k in units:
        np.testing.assert_array_equal(units[k], rep.units[k])


def test_constant_and_proportion_values_over_seeds():
    groups = np.repeat([0, 1, 2], 8)
    zeros = mean_interval(np.zeros(24), groups=groups)
    assert zeros.method == "wilson" and zeros.high > 0 and zeros.n_groups == 3
    const = mean_interval(np.full(24, 0.5), groups=groups)
    assert const.method == "constant" and const.low == const.high == 0.5


def test_replicate_seeds():
    assert replicate_seeds(5, 3) == [5, 6, 7]
    assert replicate_seeds(0, 1) == [0]


def test_one_value_per_seed_is_a_sample_of_seeds_not_a_proportion():
    """A per-seed scalar (e.g. the noise level minimising entropy, 1 %) that every seed agrees
    on is constant, not a 3/3 proportion; differing seed values get a t-interval over seeds."""
    same = mean_interval([1.0, 1.0, 1.0], groups=[0, 1, 2])
    assert same.method == "constant" and same.low == same.high == 1.0 and same.n_groups == 3
    varied = mean_interval([1.0, 2.0, 5.0], groups=[0, 1, 2])
    assert varied.method == "t" and varied.low < 1.0 and varied.high > 5.0


def test_seed_params_of_any_name_do_not_split_a_score():
    """Per-replicate seeds under any ``*_seed`` name (e.g. model randomization's layer re-draw
    seed) are not part of what the score is: the seeds' rows merge into one."""

    def rep(seed):
        params = {"seed": seed, "layer_seed": 1000 + seed, "layer": "logits"}
        with collect_units() as sink:
            rows = [_row(np.linspace(0, 1, 12) + seed, seed=seed, params=params)]
        return Replicate(seed=seed, frame=rows_frame(rows), units=dict(sink))

    merged = merge_replicates([rep(0), rep(1), rep(2)], seed=0, n_boot=200)
    assert len(merged) == 1 and merged.iloc[0].n_groups == 3


def test_merged_rows_are_cached_by_content_and_recomputed_when_a_unit_changes(
    tmp_path, monkeypatch
):
    """A re-run with the same replicates reads the merged rows back (floats exact) instead of
    bootstrapping again; a changed per-unit value, seed or bootstrap size is a new entry, and
    a corrupted entry is recomputed."""
    import binsal.pipeline as pl

    rng = np.random.default_rng(1)
    per_seed = {s: rng.normal(0.1 * s, 1.0, 30) for s in (0, 1, 2)}
    reps = [_replicate(s, {"spearman": v, "kendall": v / 2}) for s, v in per_seed.items()]
    first = pl.merged(reps, 0, 200, tmp_path, "env")
    calls = []
    real = pl.merge_replicates
    monkeypatch.setattr(pl, "merge_replicates", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = pl.merged(reps, 0, 200, tmp_path, "env")
    assert calls == []  # read back, not merged again
    cols = ["value", "ci_low", "ci_high", "n", "n_groups"]
    np.testing.assert_array_equal(again[cols].to_numpy(float), first[cols].to_numpy(float))
    assert list(again["metric"]) == list(first["metric"])
    changed = [
        *reps[:2],
        _replicate(2, {"spearman": per_seed[2] + 1e-9, "kendall": per_seed[2] / 2}),
    ]
    pl.merged(changed, 0, 200, tmp_path, "env")
    pl.merged(reps, 0, 300, tmp_path, "env")
    pl.merged(reps, 0, 200, tmp_path, "other code")
    assert len(calls) == 3
    entry = tmp_path / "cells" / f"merge-{pl.merge_key(reps, 0, 200, 'env')}"
    (entry / "part.csv").write_text("benchmark\n")  # truncated on disk
    pl.merged(reps, 0, 200, tmp_path, "env")
    assert len(calls) == 4
