"""The report's SVG point charts: each marker and interval where the y axis says its value is,
one series per model in its colour and its family's marker, method names that never overlap,
tick labels as matplotlib writes them. Read back from the markup (valid XML)."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from binsal.reports import svg
from binsal.reports.figures import MAX_WIDTH_IN, model_colors

NS = ""  # inline SVG in HTML: no namespace declaration (the page names no URL)
FAMILIES = {"vgg_fp": "FP", "vgg_bnn": "BNN", "vgg_fp|vgg_bnn": "FP-BNN"}


def _rows(methods: list[str], seed: int = 0, models: dict[str, str] = FAMILIES) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = []
    for model, fam in models.items():
        for m in methods:
            v = float(rng.normal(0.2, 0.5))
            half = float(rng.uniform(0.01, 0.3))
            out.append(
                {"metric": "m", "method": m, "model": model, "family": fam, "value": v}
                | {"ci_low": v - half, "ci_high": v + 0.5 * half, "n": int(rng.integers(8, 99))}
            )
    return pd.DataFrame(out)


def _chart(df: pd.DataFrame, **kw) -> ET.Element:
    markup = svg.point_ci_svg(df, metric="m", title=kw.pop("title", "t"), ylabel="y", **kw)
    return ET.fromstring(markup)  # well-formed XML, or this raises


def _y_axis(root: ET.Element) -> tuple[float, float]:
    """(slope, intercept) of value = slope * y_px + intercept, from the y tick labels."""
    group = next(g for g in root.iter(f"{NS}g") if g.get("class") == "yt")
    ys = [float(t.get("y", "nan")) for t in group]
    vals = [float((t.text or "").replace("\u2212", "-")) for t in group]
    assert len(ys) >= 3
    slope, intercept = np.polyfit(ys, vals, 1)
    assert np.allclose(np.polyval([slope, intercept], ys), vals, atol=1e-9 + 1e-3 * np.ptp(vals))
    return float(slope), float(intercept)


def _points(root: ET.Element) -> dict[str, list[tuple[str, float, float | None, float | None]]]:
    """series -> [(tooltip, marker centre y, bar top y, bar bottom y)]."""
    out: dict[str, list[tuple[str, float, float | None, float | None]]] = {}
    for series in root.iter(f"{NS}g"):
        name = series.get("data-series")
        if name is None:
            continue
        out[name] = []
        for point in series:
            tip = point.find(f"{NS}title")
            assert tip is not None and tip.text
            marker = point[-1]
            if marker.tag == f"{NS}circle":
                cy = float(marker.get("cy", "nan"))
            elif marker.tag == f"{NS}rect":
                cy = float(marker.get("y", "nan")) + float(marker.get("height", "nan")) / 2
            else:  # diamond / triangle paths start at a vertex: "M x y l dx dy ..."
                nums = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", marker.get("d", ""))]
                cy = nums[1] + nums[3]
            bar = point.find(f"{NS}path") if len(point) == 3 else None
            y0 = y1 = None
            if bar is not None:
                m = re.match(r"M(-?[\d.]+) (-?[\d.]+)V(-?[\d.]+)", bar.get("d", ""))
                assert m
                y0, y1 = float(m.group(2)), float(m.group(3))
            out[name].append((tip.text, cy, y0, y1))
    return out


def test_markers_and_intervals_sit_at_their_values():
    methods = ["gradient", "smoothgrad", "gradcam", "integrated_gradients", "random"]
    df = _rows(methods)
    root = _chart(df)
    slope, icpt = _y_axis(root)
    px = abs(slope) * 0.1  # positions and sizes are written to 0.1 px
    points = _points(root)
    assert list(points) == list(FAMILIES)
    for model, drawn in points.items():
        rows = df[df["model"] == model]
        assert len(drawn) == len(rows)
        for (tip, cy, y0, y1), row in zip(drawn, rows.itertuples(), strict=True):
            assert tip.startswith(f"{model} \u00b7 {row.method}: ")
            assert f", n = {row.n}" in tip
            assert abs(slope * cy + icpt - row.value) <= px + 1e-9
            assert y0 is not None and y1 is not None
            assert abs(slope * y0 + icpt - row.ci_low) <= px + 1e-9
            assert abs(slope * y1 + icpt - row.ci_high) <= px + 1e-9
    # the axis spans every interval and zero
    ticks = [
        float((t.text or "").replace("\u2212", "-"))
        for g in root.iter(f"{NS}g")
        if g.get("class") == "yt"
        for t in g
    ]
    assert min(ticks) <= max(0.0, df["ci_low"].min()) + (ticks[1] - ticks[0])


def test_series_colours_and_family_markers():
    df = _rows(["gradient", "gradcam"])
    colors = model_colors(["vgg_fp", "vgg_bnn"], others=["vgg_fp|vgg_bnn"])
    root = _chart(df, colors=colors)
    series = {g.get("data-series"): g for g in root.iter(f"{NS}g") if g.get("data-series")}
    assert {k: g.get("fill") for k, g in series.items()} == colors
    shapes = {k: {p[-1].tag.removeprefix(NS) for p in g} for k, g in series.items()}
    assert shapes == {"vgg_fp": {"circle"}, "vgg_bnn": {"rect"}, "vgg_fp|vgg_bnn": {"path"}}
    # a model the mapping does not know still gets a palette colour of its own
    other = _chart(df, colors={"vgg_fp": "#000000"})
    fills = [g.get("fill") for g in other.iter(f"{NS}g") if g.get("data-series")]
    assert fills[0] == "#000000" and len(set(fills)) == 3


def test_missing_values_and_intervals_are_left_out_not_drawn_at_zero():
    df = _rows(["gradient", "gradcam", "random"])
    df.loc[0, "value"] = np.nan  # vgg_fp / gradient: no point
    df.loc[1, ["ci_low", "ci_high"]] = np.nan  # vgg_fp / gradcam: a marker without a bar
    points = _points(_chart(df))
    assert len(points["vgg_fp"]) == 2
    assert points["vgg_fp"][0][2] is None and points["vgg_bnn"][0][2] is not None
    empty = df.assign(value=np.nan, ci_low=np.nan, ci_high=np.nan)
    assert all(p == [] for p in _points(_chart(empty)).values())


@pytest.mark.parametrize("n_methods,long", [(13, False), (20, True), (3, False)])
def test_method_names_never_overlap_and_the_chart_fits_the_column(n_methods, long):
    base = [
        "gradient",
        "smoothgrad",
        "gradcam",
        "smoothgrad_sq",
        "vargrad",
        "integrated_gradients",
        "gradcam_pp",
        "scorecam",
        "gradcam_signed",
        "gradcam_inverted",
        "guided_backprop",
        "random",
        "sobel",
    ]
    methods = (
        [f"a_rather_long_method_name_{k}" for k in range(n_methods)] if long else base[:n_methods]
    )
    models = {"vgg_fp": "FP", "vgg_bnn": "BNN", "resnet_fp": "FP", "resnet_bnn": "BNN"}
    root = _chart(_rows(methods, models=models))
    assert float(root.get("width", "inf")) <= MAX_WIDTH_IN * svg.PX_PER_IN + 0.1
    names = next(g for g in root.iter(f"{NS}g") if g.get("class") == "xt")
    assert len(names) == n_methods
    size = svg.TICK_PT * svg.PT
    if names[0].get("transform"):  # set vertically: a line height apart is enough
        xs = [float(re.findall(r"translate\(([\d.]+)", t.get("transform", ""))[0]) for t in names]
        assert min(np.diff(xs)) >= 1.2 * size
        assert long  # only where level names would not fit
        return
    spans = []
    for t in names:
        lines = [s.text or "" for s in t] or [t.text or ""]
        half = max(svg.text_width(line, svg.TICK_PT) for line in lines) / 2
        spans.append((float(t.get("x", "nan")) - half, float(t.get("x", "nan")) + half))
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False)), spans
    assert spans[0][0] >= 0 and spans[-1][1] <= float(root.get("width", "0"))


def test_tick_labels_read_as_matplotlib_writes_them():
    assert svg.tick_labels([0.0, 0.25, 0.5]) == ["0.00", "0.25", "0.50"]
    assert svg.tick_labels([-0.2, 0.0, 0.2]) == ["\u22120.2", "0.0", "0.2"]
    assert svg.tick_labels([0.0, 5.0, 10.0]) == ["0", "5", "10"]
    assert svg.tick_labels([0.0, 2e6, 4e6]) == ["0", "2e+06", "4e+06"]
    assert svg.nice_ticks(-0.013, 0.27) == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2, 0.25])
    assert svg.text_width("gradient", 8) < svg.text_width("gradient", 10)
    assert svg.text_width("mmmm", 8) > svg.text_width("iiii", 8)


def test_names_and_titles_are_escaped():
    df = _rows(["a<b", "c&d"], models={"m<1>": "FP", "m&2": "BNN"})
    root = _chart(df, title="x < y & z")
    assert root.find(f"{NS}title") is not None
    assert root.find(f"{NS}title").text == "x < y & z"  # type: ignore[union-attr]
    series = [g.get("data-series") for g in root.iter(f"{NS}g") if g.get("data-series")]
    assert series == ["m<1>", "m&2"]
    assert not math.isnan(float(root.get("height", "nan")))


def _axis_map(group: ET.Element, attr: str) -> tuple[float, float]:
    """(slope, intercept) of value = slope * coordinate + intercept from tick labels."""
    pos = [float(t.get(attr, "nan")) for t in group]
    vals = [float((t.text or "").replace("\u2212", "-")) for t in group]
    slope, intercept = np.polyfit(pos, vals, 1)
    return float(slope), float(intercept)


def _path_points(d: str) -> np.ndarray:
    return np.array([float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", d)]).reshape(-1, 2)


def test_curves_lines_and_bands_sit_at_their_values():
    rng = np.random.default_rng(3)
    steps = [0.0, 0.25, 0.5, 0.75, 1.0]
    rows = []
    for model, fam in (("vgg_fp", "FP"), ("vgg_bnn", "BNN")):
        for s in steps:
            v = float(rng.uniform(0.1, 0.9))
            rows.append(
                {"metric": "m", "method": "gradient", "model": model, "family": fam, "step": s}
                | {"value": v, "ci_low": v - 0.05, "ci_high": v + 0.1}
            )
    df = pd.DataFrame(rows)
    root = ET.fromstring(svg.curve_svg(df, metric="m", title="t", xlabel="x", ylabel="y"))
    groups = {g.get("class"): g for g in root.iter(f"{NS}g") if g.get("class")}
    ys, yi = _axis_map(groups["yt"], "y")
    xs, xi = _axis_map(groups["xt"], "x")
    tol_y, tol_x = abs(ys) * 0.1, abs(xs) * 0.1  # positions are written to 0.1 px
    series = {g.get("data-series"): g for g in root.iter(f"{NS}g") if g.get("data-series")}
    assert list(series) == ["vgg_fp", "vgg_bnn"]
    for model, g in series.items():
        want = df[df["model"] == model].sort_values("step")
        band, line = g.findall(f"{NS}path")[:2]
        pts = _path_points(line.get("d", ""))
        assert np.allclose(pts[:, 0] * xs + xi, want["step"], atol=tol_x)
        assert np.allclose(pts[:, 1] * ys + yi, want["value"], atol=tol_y)
        edge = _path_points(band.get("d", "").rstrip("Z"))
        assert np.allclose(edge[:5, 1] * ys + yi, want["ci_low"], atol=tol_y)
        assert np.allclose(edge[5:, 1] * ys + yi, want["ci_high"][::-1], atol=tol_y)
        dashed = line.get("stroke-dasharray") is not None
        assert dashed == (model == "vgg_bnn")  # BNN dashed, as the legend says
        dots = g.find(f"{NS}g/{NS}path")
        assert dots is not None
        assert dots.get("stroke-linecap") == ("square" if model == "vgg_bnn" else "round")
        assert len(_path_points(dots.get("d", "").replace("h0", ""))) == len(steps)


def test_curves_panels_share_the_y_axis_and_hues_other_than_models_get_colours():
    rows = [
        {"metric": "m", "method": meth, "model": "vgg_fp", "family": "FP", "step": s}
        | {"estimator": est, "value": 0.1 * s + k, "ci_low": np.nan, "ci_high": np.nan}
        for k, meth in enumerate(["gradient", "gradcam", "smoothgrad", "random", "sobel"])
        for est in ("ste", "swish")
        for s in range(4)
    ]
    df = pd.DataFrame(rows)
    root = ET.fromstring(
        svg.curve_svg(df, metric="m", title="t", xlabel="x", ylabel="y", hue="estimator")
    )
    panels = root.findall(f"{NS}svg")
    assert len(panels) == 5 and len({p.get("y") for p in panels}) == 2  # 3 + 2 panels
    assert len([g for g in root.iter(f"{NS}g") if g.get("class") == "yt"]) == 2  # per row
    fills = {
        g.get("data-series"): g.get("fill") for g in root.iter(f"{NS}g") if g.get("data-series")
    }
    assert set(fills) == {"ste", "swish"} and len(set(fills.values())) == 2
    # no finite interval: no band, the line and its markers still drawn
    first = next(g for g in root.iter(f"{NS}g") if g.get("data-series"))
    assert [p.get("fill") for p in first.findall(f"{NS}path")] == ["none"]
