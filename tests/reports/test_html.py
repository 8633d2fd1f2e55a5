"""The HTML report (built from a synthetic results table, no training) and the leaderboards.

The browser tests open the report in headless Chromium from Debian's ``chromium`` package (over
the DevTools pipe, see ``tests/headless.py``) and are skipped, saying so, where it is absent. The
layout test lays the report out at a laptop's width and saves a screenshot of the whole page
(``$BINSAL_SCREENSHOT_DIR/report.png`` where that is set, else in the test's tmp folder).
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import struct
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from binsal.benchmarks import BENCHMARKS
from binsal.core.schema import RESULT_COLUMNS
from binsal.reports import figures
from binsal.reports.html import (
    render_description,
    render_report,
    report_colors,
    strip_outside_references,
    write_report,
)
from binsal.reports.leaderboard import leaderboard
from binsal.reports.svg import curve_svg, point_ci_svg
from binsal.reports.synthetic import ALL_METHODS, MODELS, synthetic_run
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
# What a reader of the page at this width would see wrong: a page wider than the window, a
# figure wider than its column, a table cut off (wider than its column, no sideways scrolling
# around it), docstring markup shown raw. The closed <details> (score tables) are opened for
# the width checks and closed again (the screenshot shows the page as it opens).
LAYOUT_PROBE = """(() => {
  const px = v => parseFloat(v) || 0;
  const inner = el => {
    const s = getComputedStyle(el);
    return el.clientWidth - px(s.paddingLeft) - px(s.paddingRight);
  };
  const scrolls = el => {
    for (let a = el.parentElement; a && a !== document.documentElement; a = a.parentElement) {
      const o = getComputedStyle(a).overflowX;
      if (o === 'auto' || o === 'scroll') return true;
    }
    return false;
  };
  const text = document.body.innerText;
  const out = {
    rawMarkup: ['``', ':func:`', ':mod:`', ':class:`', ':meth:`'].filter(m => text.includes(m)),
    scrollWidth: document.documentElement.scrollWidth,
    clientWidth: document.documentElement.clientWidth,
  };
  const details = Array.from(document.querySelectorAll('details'));
  const wasOpen = details.map(d => d.open);
  details.forEach(d => { d.open = true; });
  const tables = Array.from(document.querySelectorAll('table'));
  Object.assign(out, {
    openScrollWidth: document.documentElement.scrollWidth,
    images: document.images.length,
    wideImages: Array.from(document.images)
      .concat(Array.from(document.querySelectorAll('svg.chart')))
      .filter(i => i.getBoundingClientRect().width > inner(i.parentElement) + 0.5)
      .map(i => i.alt || i.querySelector('title').textContent),
    tables: tables.length,
    unscrolledTables: tables.filter(t => !scrolls(t)).length,
    cutTables: tables.filter(
      t => !scrolls(t) && t.getBoundingClientRect().width > inner(t.parentElement) + 0.5
    ).length,
  });
  // the SVG charts as the browser set their text: every text inside its chart, and the
  // method names under the x axis apart from each other
  const charts = Array.from(document.querySelectorAll('svg.chart'));
  const box = el => el.getBoundingClientRect();
  const apart = (a, b) => a.right <= b.left + 0.5 || b.right <= a.left + 0.5 ||
    a.bottom <= b.top + 0.5 || b.bottom <= a.top + 0.5;
  out.charts = charts.length;
  out.chartTextsOutside = charts.flatMap(svg => {
    const c = box(svg);
    return Array.from(svg.querySelectorAll('text')).filter(t => {
      const b = box(t);
      return b.left < c.left - 0.5 || b.right > c.right + 0.5 ||
        b.top < c.top - 0.5 || b.bottom > c.bottom + 0.5;
    }).map(t => t.textContent);
  });
  out.chartNamesOverlapping = charts.flatMap(svg => {
    const names = Array.from(svg.querySelectorAll('g.xt > text')).map(box);
    return names.flatMap((a, i) => names.slice(i + 1).filter(b => !apart(a, b)).map(() =>
      svg.querySelector('title').textContent));
  });
  details.forEach((d, i) => { d.open = wasOpen[i]; });
  return JSON.stringify(out);
})()"""
LAPTOP = 1280  # CSS px: a typical laptop window
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SVG = ""  # inline SVG elements carry no namespace declaration


@pytest.fixture(scope="module")
def synthetic_report(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("report")
    # as crowded as the default profile's report: 4 models, 13 methods (13-panel curves)
    table, manifest = synthetic_run(
        seed=0, n_images=24, n_boot=100, declarations=all_declarations(), methods=ALL_METHODS
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
    assert "http://" not in html and "https://" not in html  # not even an SVG namespace URL
    # each benchmark's figures: PNGs (curves, grids) and inline SVG charts (points)
    figs = html.count("data:image/png;base64,") + html.count("<svg ")
    assert figs >= len(BENCHMARKS.names())
    assert "<svg " in html and html.count("<svg ") == html.count("</svg>")


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


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC
    return struct.unpack(">II", data[16:24])  # IHDR: width, height


@needs_chromium
def test_report_layout_at_laptop_width_and_screenshot(synthetic_report, tmp_path):
    """The page fits a 1280 px window: nothing wider than the window, every figure within its
    column, every table scrolling in its own box, no raw docstring markup; and a screenshot of
    the whole page for a person to look at."""
    _, path, table, _ = synthetic_report
    shot_dir = Path(os.environ.get("BINSAL_SCREENSHOT_DIR") or tmp_path)
    shot = shot_dir / "report.png"
    page = open_page(file_url(path), probe=LAYOUT_PROBE, width=LAPTOP, screenshot=shot)
    print(f"report screenshot: {shot}")
    assert page.console_errors == [] and page.exceptions == []
    info = json.loads(page.value)
    assert info["rawMarkup"] == []
    assert info["scrollWidth"] <= info["clientWidth"], info  # no sideways scrolling page
    assert info["openScrollWidth"] <= info["clientWidth"], info  # nor with the tables open
    assert info["images"] > 0 and info["wideImages"] == []
    assert info["charts"] > 0 and info["chartTextsOutside"] == []
    assert info["chartNamesOverlapping"] == []
    assert info["tables"] > 0 and info["cutTables"] == 0
    assert info["unscrolledTables"] == 0  # every table in a box that scrolls
    data = shot.read_bytes()
    width, height = _png_size(data)
    assert len(data) > 10_000
    assert LAPTOP - 30 <= width <= LAPTOP and height > 3000


@needs_chromium
def test_layout_probe_flags_a_page_that_does_not_fit(tmp_path):
    """Negative control: the probe sees a page wider than the window, a figure wider than its
    column, a table cut off and raw markup, so the layout test cannot pass vacuously."""
    dot = (
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5E"
        "rkJggg=="
    )
    bad = tmp_path / "wide.html"
    bad.write_text(
        "<!doctype html><title>x</title><div style='width:3000px'>wide</div>"
        "<div style='width:200px'><table style='width:900px'><tr><td>x</td></tr></table>"
        f"<img alt=big style='width:700px' src='data:image/png;base64,{dot}'></div>"
        "<p>raw ``markup`` and :func:`f`</p>"
        "<svg class=chart width=120 height=40><title>bad chart</title><g class=xt>"
        "<text x=10 y=20>gradient</text><text x=14 y=20>smoothgrad</text></g>"
        "<text x=100 y=20>cut off</text></svg>"
    )
    info = json.loads(open_page(file_url(bad), probe=LAYOUT_PROBE, width=LAPTOP).value)
    assert info["scrollWidth"] > info["clientWidth"]
    assert info["wideImages"] == ["big"]
    assert info["chartTextsOutside"] == ["cut off"]
    assert info["chartNamesOverlapping"] == ["bad chart"]
    assert info["cutTables"] == 1 and info["unscrolledTables"] == 1
    assert info["rawMarkup"] == ["``", ":func:`"]


def test_one_colour_per_model_the_same_in_every_figure(synthetic_report):
    _, _, table, manifest = synthetic_report
    models = ["vgg_fp", "vgg_bnn", "resnet_fp", "resnet_bnn"]
    colors = report_colors(manifest, table)
    assert len({colors[m] for m in models}) == 4  # FP and BNN of a pair, and both FPs, differ
    assert colors == report_colors(manifest, table.sample(frac=1.0, random_state=0))
    assert figures.model_colors(reversed(models)) == figures.model_colors(models)
    assert len(set(colors.values())) == len(colors)  # pairs and aggregates get their own too
    # what the figures draw: a point chart of every model, a curve of one model only
    loc = table[(table["benchmark"] == "localization") & table["step"].isna()]
    chart = point_ci_svg(loc, metric=loc["metric"].iloc[0], title="t", ylabel="y", colors=colors)
    drawn = {
        g.get("data-series"): g.get("fill")
        for g in ET.fromstring(chart).iter(f"{SVG}g")
        if g.get("data-series")
    }
    assert drawn == {m: colors[m] for m in MODELS}
    curves = table[table["step"].notna() & (table["model"] == "resnet_bnn")]
    chart = curve_svg(
        curves, metric=curves["metric"].iloc[0], title="t", xlabel="x", ylabel="y", colors=colors
    )
    lines = {
        (g.get("data-series"), g.get("fill"))
        for g in ET.fromstring(chart).iter(f"{SVG}g")
        if g.get("data-series")
    }
    assert lines == {("resnet_bnn", colors["resnet_bnn"])}  # alone, still in its own colour


def test_thirteen_panels_wrap_in_rows_of_at_most_four(synthetic_report):
    assert figures.panel_grid(13) == (4, 4)
    assert figures.panel_grid(5) == (2, 3) and figures.panel_grid(1) == (1, 1)
    for n in range(1, 41):
        rows, cols = figures.panel_grid(n)
        assert cols <= figures.MAX_COLS and rows * cols >= n > (rows - 1) * cols
    _, _, table, _ = synthetic_report
    curves = table[(table["benchmark"] == "deletion_insertion") & table["step"].notna()]
    assert curves["method"].nunique() == 13
    chart = ET.fromstring(
        curve_svg(curves, metric=curves["metric"].iloc[0], title="t", xlabel="x", ylabel="y")
    )
    panels = list(chart.findall(f"{SVG}svg"))  # each panel's curves, clipped to its frame
    assert len(panels) == 13
    assert len({p.get("x") for p in panels}) == 4  # four panels a row, four rows
    assert len({p.get("y") for p in panels}) == 4
    assert float(chart.get("width", "inf")) <= figures.MAX_WIDTH_IN * 90 + 0.1


def test_descriptions_render_docstring_markup():
    text = """Rank correlation (Hooker et al. 2019; DESIGN.md 6.2): do they agree?

        Pairs flagged in ``pair``; imputation by :mod:`binsal.metrics.imputation` and
        :func:`~binsal.x.noisy`, as in `ROAD`_. Two *different* networks, "*_prob" and
        "*_acc" rows (see STYLE.md), ``PlotSpec``\\ s and ../shared/notes.txt.
        """
    page = render_description(text)
    assert page.count("<p>") == 2
    assert "<code>pair</code>" in page and "<code>binsal.metrics.imputation</code>" in page
    assert "<code>noisy</code>" in page and "<code>ROAD</code>" in page
    assert "<code>PlotSpec</code>s" in page and "<em>different</em>" in page
    assert "&quot;*_prob&quot; and &quot;*_acc&quot;" in page  # wildcards, not emphasis
    assert "`" not in page and ":mod:" not in page and ":func:" not in page
    assert "DESIGN" not in page and "STYLE" not in page and "../" not in page
    assert "Rank correlation (Hooker et al. 2019): do they agree?" in page
    assert strip_outside_references("Deletion (DESIGN.md 6.2): x") == "Deletion: x"
    assert strip_outside_references("(Rong et al.; DESIGN.md 6.2, cheaper)") == (
        "(Rong et al., cheaper)"
    )
    assert render_description("- one ``a``\n- two\n  continued") == (
        "<ul><li>one <code>a</code></li><li>two continued</li></ul>"
    )


def test_report_names_no_outside_document_and_shows_no_raw_markup(synthetic_report):
    html = synthetic_report[1].read_text(encoding="utf-8")
    for outside in ("DESIGN.md", "STYLE.md", "../shared", ".md "):
        assert outside not in html, outside  # the manifest dump included
    shown = re.sub(r"<pre>.*?</pre>", "", html, flags=re.S)  # the raw manifest.json aside
    assert "``" not in shown and ":func:`" not in shown and ":mod:`" not in shown
    assert html.count("<table") == html.count("<div class=scroll><table") > 10
    assert "<code>" in shown


def test_rerender_a_run_folder(synthetic_report, tmp_path, capsys):
    from binsal.cli import main

    _, _, table, manifest = synthetic_report
    run = tmp_path / "run"
    run.mkdir()
    assert main(["report", str(run)]) == 2  # no results.csv: one line, exit 2
    assert "not a finished run folder" in capsys.readouterr().err
    table[table["benchmark"] == "rank_correlation"].to_csv(run / "results.csv", index=False)
    (run / "manifest.json").write_text(json.dumps(manifest))
    (run / "figures").mkdir()
    for method in ("gradient", "vargrad"):  # grids a run wrote: one embedded, one linked
        (run / "figures" / f"qualitative_{method}.png").write_bytes(
            figures.accuracy_plot({"a": 0.5}, {"a": "FP"})
        )
    out = tmp_path / "elsewhere" / "again.html"
    assert main(["report", str(run), "--out", str(out)]) == 0
    assert str(out.resolve()) in capsys.readouterr().out
    page = out.read_text(encoding="utf-8")
    assert "<h2 id='rank_correlation'>" in page and "Qualitative maps" in page
    assert "href='../run/figures/qualitative_vargrad.png'" in page
    assert "<h3>gradient</h3>" in page and not (run / "report.html").exists()


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


def test_qualitative_grid_tiles_are_the_maps_at_their_own_scale():
    """The mosaic grid: each model's tile is |map| / its max through inferno, pixel for pixel
    (within the 64-colour palette), FP models left of BNN ones, the mask outline white."""
    from matplotlib import colormaps
    from PIL import Image

    k, n = 2, 16
    yy, xx = np.mgrid[:n, :n]
    ramp = (xx / (n - 1)).astype(np.float32)  # 0 .. 1 across each row
    maps = {"b_bnn": np.stack([-ramp[:, ::-1]] * k), "a_fp": np.stack([3.0 * ramp] * k)}
    masks = np.zeros((k, n, n), bool)
    masks[:, 4:12, 4:12] = True
    png = figures.qualitative_grid(
        np.full((k, n, n, 3), 0.5, np.float32),
        maps,
        {"a_fp": np.array([True, False]), "b_bnn": np.array([False, False])},
        {"a_fp": "FP", "b_bnn": "BNN"},
        title="gradient",
        masks=masks,
    )
    grid = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=float) / 255
    s = figures.GRID_TILE_SCALE
    tile = n * s
    # find the tiles by the image tile's grey (a whole tile row of it: text edges are grey too)
    grey = np.all(np.abs(grid - 0.5) < 0.03, axis=-1)
    y0 = int(np.nonzero(grey.sum(axis=1) >= tile)[0].min())
    x0 = int(np.nonzero(grey[y0])[0].min())
    assert grid.shape[1] >= 3 * tile
    gap = (grid.shape[1] - 2 * x0 - 3 * tile) // 2
    # a_fp (FP) first though given second; b_bnn's |map| is the ramp reversed
    for c, shown in ((1, ramp), (2, ramp[:, ::-1])):
        x = x0 + c * (tile + gap)
        got = grid[y0 : y0 + tile : s, x : x + tile : s]
        assert np.abs(got - colormaps["inferno"](shown)[..., :3]).max() < 0.08, c
    # the mask's outline on the image tile is white, its inside stays the image
    assert np.all(grid[y0 + 4 * s, x0 + 4 * s : x0 + 12 * s] > 0.95)
    assert np.all(np.abs(grid[y0 + 8 * s, x0 + 6 * s] - 0.5) < 0.03)


def test_figures_drawn_by_workers_in_order_and_a_failure_stays_its_own(tmp_path):
    """figures.draw_jobs: the figures in the jobs' order whether drawn here or by worker
    processes (PNG curves, SVG point charts), and a job that raises hands back its exception
    instead of sinking the others."""
    rows = pd.DataFrame(
        {"metric": "m", "method": f"method_{k % 2}", "model": m, "family": f, "step": k}
        | {"value": 0.1 * k, "ci_low": 0.1 * k - 0.05, "ci_high": 0.1 * k + 0.05}
        for k in range(4)
        for m, (f, _) in MODELS.items()
    )
    images = np.full((2, 8, 8, 3), 0.5, np.float32)
    maps = {m: np.random.default_rng(k).random((2, 8, 8)) for k, m in enumerate(MODELS)}
    grid = {"images": images, "correct": {m: np.ones(2, bool) for m in MODELS}}
    grid |= {"families": {m: f for m, (f, _) in MODELS.items()}, "title": "g"}
    jobs: list[figures.FigureJob] = [
        (f"grid {k}", "grid", grid | {"maps": dict(list(maps.items())[: k + 1])}) for k in range(2)
    ]
    jobs.append(("points", "point", {"df": rows, "metric": "m", "title": "p", "ylabel": "y"}))
    curve = {"metric": "m", "xlabel": "step", "ylabel": "y"}
    broken = ("broken", "curve", {"df": rows.drop(columns="value"), "title": "b"} | curve)
    here = figures.draw_jobs([*jobs, broken], workers=1)
    pooled = figures.draw_jobs([*jobs, broken], workers=2)
    assert isinstance(here[-1], KeyError) and isinstance(pooled[-1], KeyError)
    assert all(isinstance(p, bytes) and p[:8] == PNG_MAGIC for p in here[:2])
    assert isinstance(here[2], str) and here[2].startswith("<svg ")
    assert [_png_size(p) for p in pooled[:2]] == [_png_size(p) for p in here[:2]]
    assert pooled[2] == here[2]
    # workers started ahead (as while the pipeline merges the seeds) draw the next jobs, the
    # same PNGs; the one after starts its own
    figures.prestart_drawing(2)
    ready = figures._READY[0]
    assert ready is not None and ready[1] == 2
    warmed = figures.draw_jobs([*jobs, broken])
    assert figures._READY[0] is None and ready[0]._shutdown_thread  # taken, then shut down
    assert isinstance(warmed[-1], KeyError)
    assert [_png_size(p) for p in warmed[:2]] == [_png_size(p) for p in here[:2]]
    assert warmed[2] == here[2]
    # a grid a run wrote as RGBA is embedded as a palette PNG, one already a palette as it is
    from PIL import Image

    rgba = tmp_path / "grid.png"
    Image.fromarray(np.zeros((8, 8, 4), dtype=np.uint8) + 200).save(rgba)
    small = figures.palette_png_file(rgba)
    assert Image.open(io.BytesIO(small)).mode == "P"
    (tmp_path / "p.png").write_bytes(small)
    assert figures.palette_png_file(tmp_path / "p.png") == small


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


def test_gradcam_layer_rule_size_and_a_warning_row_for_1x1():
    from binsal.reports.html import accuracy_section

    models = {
        "mobilenet": {
            "family": "FP",
            "test_accuracy": 0.7,
            "gradcam_layer": "conv_preds",
            "gradcam_rule": "toolkit_default",
            "gradcam_layer_size": [1, 1],
        },
        "quicknet": {
            "family": "BNN",
            "test_accuracy": 0.6,
            "gradcam_layer": "activation_4",
            "gradcam_rule": "last_feature_map",
            "gradcam_layer_size": [7, 7],
        },
    }
    manifest = {
        "models": models,
        "map_settings": {"per_sample_abs": True, "channel_reduce": "max_abs"},
        "profile": {"saliency": {"preset": "tf-keras-vis"}},
    }
    page = accuracy_section(manifest)
    assert "conv_preds (toolkit_default, 1x1)" in page
    assert "activation_4 (last_feature_map, 7x7)" in page
    assert page.count("<tr class=warn>") == 1 and "mobilenet (conv_preds) is 1x1" in page
    assert "preset tf-keras-vis" in page and "channel_reduce = max_abs" in page
