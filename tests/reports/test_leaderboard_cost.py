"""The cost-aware leaderboard: cost columns beside each method, the Pareto front of quality
against CPU time, the cost rows not ranked as a quality, the figure and section."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from binsal.core.schema import RESULT_COLUMNS
from binsal.reports.leaderboard import (
    COST_BENCHMARK,
    leaderboard,
    leaderboard_section,
    method_costs,
    pareto_front,
)


def test_pareto_front_keeps_the_undominated():
    quality = np.array([0.9, 0.8, 0.5, 0.85, 0.4, np.nan])
    cost = np.array([10.0, 1.0, 0.1, 20.0, 0.5, 0.01])
    front = pareto_front(quality, cost, higher_is_better=True)
    # 0.9 @ 10 (best), 0.8 @ 1, 0.5 @ 0.1 (cheapest) are on it; 0.85 @ 20 is beaten by 0.9 @
    # 10, 0.4 @ 0.5 by 0.5 @ 0.1; NaN quality never is
    assert front.tolist() == [True, True, True, False, False, False]
    # lower is better: the order flips
    low = pareto_front(np.array([0.1, 0.2, 0.3]), np.array([3.0, 2.0, 1.0]), higher_is_better=False)
    assert low.tolist() == [True, True, True]
    low = pareto_front(np.array([0.1, 0.2, 0.3]), np.array([1.0, 2.0, 3.0]), higher_is_better=False)
    assert low.tolist() == [True, False, False]
    # ties: two identical points do not dominate each other
    tie = pareto_front(np.array([0.5, 0.5]), np.array([1.0, 1.0]), higher_is_better=True)
    assert tie.tolist() == [True, True]
    assert pareto_front(np.array([0.5]), np.array([np.nan]), higher_is_better=True).tolist() == [
        False
    ]


def _row(bench, model, family, method, metric, value, direction="higher"):
    return {
        "benchmark": bench,
        "model": model,
        "family": family,
        "pair": "",
        "method": method,
        "metric": metric,
        "step": np.nan,
        "params": "{}",
        "value": value,
        "ci_low": value - 0.01,
        "ci_high": value + 0.01,
        "n": 10,
        "direction": direction,
        "seed": 0,
    }


def _table() -> pd.DataFrame:
    quality = {"gradient": 0.5, "smoothgrad": 0.7, "integrated_gradients": 0.6, "random": 0.2}
    cost = {"gradient": (1, 1, 0.01), "smoothgrad": (20, 20, 0.2)}
    cost |= {"integrated_gradients": (33, 33, 0.3), "random": (0, 0, 0.0001)}
    rows = []
    for model, family in (("fp1", "FP"), ("fp2", "FP"), ("bnn1", "BNN")):
        for method, q in quality.items():
            rows.append(_row("localization", model, family, method, "relevance_mass", q))
            f, b, cpu = cost[method]
            scale = 2.0 if model == "fp2" else 1.0  # a model twice as slow
            for metric, v in (
                ("forward_passes", f),
                ("backward_passes", b),
                ("cpu_seconds_per_map", cpu * scale),
                ("peak_memory_mb", 10.0 * f),
            ):
                rows.append(_row(COST_BENCHMARK, model, family, method, metric, v, "lower"))
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def test_costs_are_columns_not_a_ranking():
    table = _table()
    board = leaderboard(table)
    assert set(board["benchmark"]) == {"localization"}  # cost rows are not ranked themselves
    fp = board[board["family"] == "FP"].set_index("method")
    assert fp.loc["smoothgrad", "forward_passes"] == 20
    assert fp.loc["integrated_gradients", "backward_passes"] == 33
    assert fp.loc["gradient", "cpu_seconds_per_map"] == pytest.approx(0.015)  # mean of models
    assert fp.loc["random", "peak_memory_mb"] == 0
    costs = method_costs(table)
    assert set(costs.columns) >= {"family", "method", "cpu_seconds_per_map"}
    assert len(costs) == 8  # 4 methods x 2 families


def test_pareto_column_marks_the_front_without_references():
    board = leaderboard(_table())
    fp = board[board["family"] == "FP"].set_index("method")
    # smoothgrad (0.7 @ 0.3 s) and gradient (0.5 @ 0.015 s) are on the front; integrated
    # gradients (0.6 @ 0.45 s) is beaten by smoothgrad; Random is a reference, never on it
    assert fp["pareto"].to_dict() == {
        "smoothgrad": True,
        "integrated_gradients": False,
        "gradient": True,
        "random": False,
    }


def test_board_without_cost_rows_keeps_its_columns():
    table = _table()
    board = leaderboard(table[table["benchmark"] != COST_BENCHMARK])
    assert board["cpu_seconds_per_map"].isna().all() and not board["pareto"].any()
    html = leaderboard_section(board)
    assert "Quality against cost" not in html and "f/b" not in html


def test_section_shows_costs_and_the_pareto_figure():
    html = leaderboard_section(leaderboard(_table()))
    assert "Quality against cost" in html and "data:image/png;base64," in html
    assert "f/b" in html and "★" in html
    assert "Pareto front FP: smoothgrad, gradient" in html
