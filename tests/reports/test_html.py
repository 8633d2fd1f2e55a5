"""The HTML report (built from a synthetic results table, no training) and the leaderboards.

The browser tests open the report in headless Chromium from Debian's ``chromium`` package (over
the DevTools pipe, see ``tests/headless.py``) and are skipped, saying so, where it is absent.
"""

from __future__ import annotations

import json
import math
import re
import sys

import numpy as np
import pandas as pd
import pytest

from binsal.benchmarks import BENCHMARKS
from binsal.core.schema import RESULT_COLUMNS
from binsal.reports.html import render_report, write_report
from binsal.reports.leaderboard import leaderboard
from binsal.reports.synthetic import synthetic_run
from tests.conftest import all_declarations
from tests.headless import file_url, find_chromium, open_page

CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium not installed (Debian: apt-get install -y chromium); "
    "the headless report checks need it",
)
SECTION_PROBE = """JSON.stringify({
  sections: Array.from(document.querySelectorAll('h2[id]')).map(e => e.id),
  claims: document.querySelectorAll('#claims ~ h3, #summary h3').length,
  glance: document.querySelectorAll('.glance li').length,
  images: Array.from(document.images).map(i => i.complete && i.naturalWidth > 0),
  boards: document.querySelectorAll('table.lb').length,
  scripts: document.scripts.length,
})"""


@pytest.fixture(scope="module")
def synthetic_report(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("report")
    table, manifest = synthetic_run(
        seed=0, n_images=24, n_boot=100, declarations=all_declarations()
    )
    path = write_report(run_dir, table, manifest)
    return run_dir, path, table, manifest


def test_report_has_every_benchmark_section_claims_and_leaderboards(synthetic_report):
    run_dir, path, table, _ = synthetic_report
    html = path.read_text(encoding="utf-8")
    for name in BENCHMARKS.names():
        assert f"<h2 id='{name}'>" in html, name
    for anchor in ("id=summary", "id=models", "id=claims", "id=leaderboards", "id=manifest"):
        assert anchor in html
    assert "Claim 1" in html and "Claim 2" in html and "Claim 3" in html
    assert "class=err" not in html  # no section fell back to its error box
    assert (run_dir / "leaderboard.csv").is_file()


def test_report_is_self_contained(synthetic_report):
    html = synthetic_report[1].read_text(encoding="utf-8")
    assert not re.search(r"""(src|href|url)\s*[=(]\s*["']?\s*(https?:)?//""", html)
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert html.count("data:image/png;base64,") >= len(BENCHMARKS.names())


@needs_chromium
def test_report_renders_in_headless_chromium_without_errors_or_requests(synthetic_report):
    _, path, _, _ = synthetic_report
    page = open_page(file_url(path), probe=SECTION_PROBE)
    assert page.console_errors == []
    assert page.exceptions == []
    assert page.external_requests == [], page.external_requests
    info = json.loads(page.value)
    for name in BENCHMARKS.names():
        assert name in info["sections"], name
    assert {"models", "claims", "leaderboards", "manifest"} <= set(info["sections"])
    assert info["glance"] == 3  # one line per paper claim in the summary
    assert info["images"] and all(info["images"])  # every figure decoded
    assert info["boards"] > 0 and info["scripts"] == 0


@needs_chromium
def test_headless_check_sees_requests_and_console_errors(tmp_path):
    """Negative control: the same check flags a page that logs an error and asks for a remote
    image (a .invalid host that resolves nowhere: nothing leaves the machine)."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!doctype html><title>x</title><img src='http://binsal-test.invalid/x.png'>"
        "<script>console.error('boom')</script>"
    )
    page = open_page(file_url(bad))
    assert "boom" in page.console_errors
    assert page.external_requests == ["http://binsal-test.invalid/x.png"]


def test_claims_section_says_unavailable_without_claims_module(synthetic_report, monkeypatch):
    _, _, table, manifest = synthetic_report
    monkeypatch.setitem(sys.modules, "binsal.reports.claims", None)  # import -> ImportError
    html = render_report(table[table["benchmark"] == "rank_correlation"], manifest)
    assert "Claims unavailable" in html
    assert "<h2 id='rank_correlation'>" in html


# ---- leaderboards ------------------------------------------------------------------------------


def _row(model, family, method, metric, value, half, *, direction="higher", step=None):
    return {
        "benchmark": "bench",
        "model": model,
        "family": family,
        "pair": "",
        "method": method,
        "metric": metric,
        "step": math.nan if step is None else step,
        "params": "{}",
        "value": value,
        "ci_low": value - half,
        "ci_high": value + half,
        "n": 10,
        "direction": direction,
        "seed": 0,
    }


def _board_table() -> pd.DataFrame:
    rows = []
    # FP, "acc" (higher): a clearly first, b and c tied with each other, controls in between
    for model, shift in (("fp1", 0.0), ("fp2", 0.02)):
        rows += [
            _row(model, "FP", "a", "acc", 0.90 + shift, 0.02),
            _row(model, "FP", "b", "acc", 0.60 + shift, 0.05),
            _row(model, "FP", "c", "acc", 0.55 + shift, 0.05),
            _row(model, "FP", "random", "acc", 0.30, 0.03),
            _row(model, "FP", "sobel", "acc", 0.70, 0.03),
        ]
    # BNN, "err" (lower is better)
    rows += [
        _row("bnn1", "BNN", "a", "err", 0.5, 0.01, direction="lower"),
        _row("bnn1", "BNN", "b", "err", 0.2, 0.01, direction="lower"),
        _row("bnn1", "BNN", "random", "err", 0.8, 0.01, direction="lower"),
    ]
    # not ranked: pairwise, curve and descriptive rows
    rows += [
        _row("fp1|bnn1", "FP-BNN", "a", "acc", 0.1, 0.01),
        _row("fp1", "FP", "a", "acc", 0.1, 0.01, step=0.5),
        _row("fp1", "FP", "a", "share", 0.1, 0.01, direction="none"),
    ]
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def test_leaderboard_ranks_aggregates_and_marks_ties_and_references():
    board = leaderboard(_board_table())
    assert set(board["metric"]) == {"acc", "err"}  # no curve, pairwise or direction-none rows
    fp = board[(board["family"] == "FP") & (board["metric"] == "acc")]
    assert list(fp["method"]) == ["a", "sobel", "b", "c", "random"]  # by value, controls placed
    ranked = fp[~fp["reference"]].set_index("method")
    assert list(ranked["rank"]) == [1, 2, 3]
    assert fp[fp["reference"]]["rank"].isna().all()
    a = ranked.loc["a"]
    assert a["value"] == pytest.approx(0.91)  # mean of the two model means
    assert (a["ci_low"], a["ci_high"]) == pytest.approx((0.88, 0.94))  # envelope of model CIs
    assert a["n_models"] == 2 and a["spread"] == pytest.approx(0.02)
    assert not ranked.loc["b", "tie_prev"] and not ranked.loc["b", "tie_leader"]
    assert ranked.loc["c", "tie_prev"]  # overlaps b
    assert ranked.loc["b", "tie_group"] == ranked.loc["c", "tie_group"] != a["tie_group"]
    assert ranked.loc["a", "vs_random"] == "above"
    bnn = board[board["family"] == "BNN"].set_index("method")
    assert bnn.loc["b", "rank"] == 1 and bnn.loc["a", "rank"] == 2  # lower is better
    assert bnn.loc["a", "vs_random"] == "above"  # 0.5 < random's 0.8: better side


def test_leaderboard_csv_matches_report(synthetic_report):
    run_dir, path, table, manifest = synthetic_report
    csv = pd.read_csv(run_dir / "leaderboard.csv")
    again = leaderboard(table, manifest)
    assert len(csv) == len(again) > 0
    assert np.allclose(csv["value"], again["value"])
    assert {"random", "sobel"} <= set(csv.loc[csv["reference"], "method"])
    assert "leaderboard.csv" in path.read_text(encoding="utf-8")


def test_qualitative_grids_from_plain_arrays(tmp_path):
    from binsal.reports.html import Qualitative, qualitative_section

    rng = np.random.default_rng(0)
    k = 2
    qual = Qualitative(
        images=rng.random((k, 16, 16, 3), dtype=np.float32),
        masks=np.ones((k, 16, 16), dtype=bool),
        families={"a_fp": "FP", "a_bnn": "BNN"},
        correct={"a_fp": np.array([True, False]), "a_bnn": np.array([True, True])},
        maps={
            "gradient": {m: rng.normal(size=(k, 16, 16)) for m in ("a_fp", "a_bnn")},
            "guided_backprop": {"a_fp": rng.normal(size=(k, 16, 16))},  # not defined on a BNN
        },
        docs={"gradient": "Vanilla gradient."},
    )
    page = qualitative_section(qual, tmp_path / "figures")
    assert page.count("<h3>") == 2 and "Vanilla gradient." in page
    # the paper's methods embedded, the others linked to their files (a light page)
    assert page.count("data:image/png;base64,") == 1
    assert "href='figures/qualitative_guided_backprop.png'" in page
    pngs = sorted(p.name for p in (tmp_path / "figures").iterdir())
    assert pngs == ["qualitative_gradient.png", "qualitative_guided_backprop.png"]
    everything = qualitative_section(qual)  # no figures folder: every grid embedded
    assert everything.count("data:image/png;base64,") == 2
    assert qualitative_section(None) == ""


def test_score_cells_name_the_seeds_behind_a_merged_interval():
    from binsal.reports.html import score_cell

    frame = pd.DataFrame(
        [
            {"value": 0.1, "ci_low": 0.0, "ci_high": 0.2, "n": 384, "n_groups": 3},
            {"value": 0.1, "ci_low": 0.0, "ci_high": 0.2, "n": 128, "n_groups": 1},
        ]
    )  # read from a CSV: numpy integers
    assert score_cell(frame.iloc[0]).endswith("n=384 · 3 seeds</span>")
    assert score_cell(frame.iloc[1]).endswith("n=128</span>")
