"""The report's charts as inline SVG: point-and-interval charts and multi-panel curves.

Point charts (:func:`point_ci_svg`): one marker per (method, model) with its 95 % CI as an
error bar, the model's colour, the family's marker, the method names wrapped at ``_`` (set
vertically where the column is too narrow), one legend below. Curves (:func:`curve_svg`): a
line per (method, model) over the step with its CI band, a panel per method, the y axis shared,
BNN dashed. Hand-written instead of drawn with matplotlib: ~10 ms a point chart and ~25 ms a
curve chart against ~220 ms and ~370 ms (figure, Agg raster, palette PNG: on the default run
14.3 of the report's ~20 CPU-s), less markup than the PNGs' base64, sharp at any zoom; on hover
a point chart's marker shows its value, interval and n, a curve its model and method (their
``<title>``).

Layout is computed here, in CSS px at :data:`PX_PER_IN` (the PNG figures' 90 dpi, so both kinds
keep their sizes), with text widths from the font matplotlib ships (DejaVu Sans), named first in
the chart's font list; the fallbacks (Arial, Helvetica, Liberation Sans) are narrower, so the
reckoned room is enough for them. The ``<svg>`` elements declare no namespace: an HTML parser
puts them in SVG's, and the page stays free of any URL.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping
from functools import cache

import numpy as np
import pandas as pd

from binsal.reports.figures import (
    FAMILY_MARKERS,
    MAX_WIDTH_IN,
    TICK_FONTSIZE,
    nice_locator,
    series_colors,
    wrap_label,
)

PX_PER_IN = 90.0
PT = PX_PER_IN / 72.0  # px per point
FONT = "DejaVu Sans,Bitstream Vera Sans,Arial,Helvetica,sans-serif"
TICK_PT, LABEL_PT, TITLE_PT, LEGEND_PT = float(TICK_FONTSIZE), 10.0, 10.0, 7.0
LINE = 1.25  # line height, in font sizes
PANEL_H_IN = 2.0
MARKER_PX = 5.0 * PT  # a marker's extent (matplotlib's markersize 5)
CAP_PX = 3.0 * PT  # half the width of an error bar's cap (capsize 3)
GRID = "#e7e7e7"  # matplotlib's grid (#b0b0b0 at alpha 0.3) over white


@cache
def _char_width(ch: str) -> float:
    """The advance width of one character of DejaVu Sans at 10 pt, in px (Agg's metrics)."""
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.font_manager import FontProperties

    renderer = RendererAgg(1, 1, 72)  # at 72 dpi a pixel is a point
    w = renderer.get_text_width_height_descent(ch, FontProperties(size=10.0), ismath=False)[0]
    return float(w) * PT


def text_width(text: str, size_pt: float) -> float:
    """The width of one line of ``text`` at ``size_pt``, in px: the sum of the characters'
    advances (kerning left out; it only narrows) plus 4 % for hinting."""
    return 1.04 * size_pt / 10.0 * sum(_char_width(ch) for ch in text)


def _lines_width(label: str, size_pt: float) -> float:
    return max((text_width(line, size_pt) for line in label.split("\n")), default=0.0)


def _f(v: float) -> str:
    """A coordinate: one decimal, no trailing zero."""
    s = f"{v:.1f}"
    return s[:-2] if s.endswith(".0") else s


def _num(v: float) -> str:
    """A value in a tooltip."""
    return f"{v:.4g}" if math.isfinite(v) else "n/a"


def nice_ticks(lo: float, hi: float, nbins: int = 6) -> list[float]:
    """At most ``nbins`` intervals at AutoLocator's steps, inside ``[lo, hi]``."""
    ticks = nice_locator(nbins).tick_values(lo, hi)
    eps = 1e-9 * (hi - lo)
    return [float(t) for t in ticks if lo - eps <= t <= hi + eps]


def tick_labels(ticks: list[float]) -> list[str]:
    """Tick texts with as many decimals as the ticks need (the same for all, as matplotlib's
    ScalarFormatter writes them), a true minus sign; ``%g`` beyond 10^6 or below 10^-5."""
    if not ticks:
        return []
    scale = max(abs(t) for t in ticks)
    if scale >= 1e6 or 0 < scale < 1e-5:
        return [f"{t:.3g}".replace("-", "\u2212") for t in ticks]
    digits = 0
    while digits < 6 and any(abs(round(t, digits) - t) > 1e-9 * max(scale, 1e-12) for t in ticks):
        digits += 1
    out = [f"{t:.{digits}f}" for t in ticks]
    return [(s.lstrip("-") if float(s) == 0 else s).replace("-", "\u2212") for s in out]


def _marker(kind: str, x: float, y: float, scale: float = 1.0) -> str:
    """One marker centred at (x, y), filled with the group's colour (matplotlib's shapes at
    markersize 5 times ``scale``: circle, square, diamond, triangles up and down)."""
    r = MARKER_PX / 2 * scale
    if kind == "s":
        s = r * 0.9
        return f'<rect x="{_f(x - s)}" y="{_f(y - s)}" width="{_f(2 * s)}" height="{_f(2 * s)}"/>'
    if kind == "D":
        d = r * 1.1
        return (
            f'<path d="M{_f(x)} {_f(y - d)}l{_f(d)} {_f(d)}l{_f(-d)} {_f(d)}l{_f(-d)} {_f(-d)}z"/>'
        )
    if kind in ("^", "v"):
        h = r * 1.1 * (1 if kind == "v" else -1)
        return f'<path d="M{_f(x)} {_f(y + h)}l{_f(r * 1.1)} {_f(-2 * h)}h{_f(-2.2 * r)}z"/>'
    return f'<circle cx="{_f(x)}" cy="{_f(y)}" r="{_f(r)}"/>'


def _text(x: float, y: float, label: str, size_pt: float, **attrs: str) -> str:
    """A text element; ``label`` lines (``\\n``) stacked below the first as tspans."""
    extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
    lines = label.split("\n")
    if len(lines) == 1:
        body = html.escape(label)
    else:
        step = size_pt * PT * LINE
        body = "".join(
            f'<tspan x="{_f(x)}" dy="{_f(0 if i == 0 else step)}">{html.escape(line)}</tspan>'
            for i, line in enumerate(lines)
        )
    return f'<text x="{_f(x)}" y="{_f(y)}" font-size="{size_pt * PT:g}"{extra}>{body}</text>'


THIN = f'stroke-width="{0.8 * PT:g}"'  # axes, ticks and grid lines (0.8 pt)


def _open(width: float, height: float, title: str) -> str:
    """A chart's ``<svg>`` start tag, its title (read out by screen readers, shown on hover)
    and white background."""
    return (
        f'<svg class="chart" width="{_f(width)}" height="{_f(height)}" '
        f'viewBox="0 0 {_f(width)} {_f(height)}" font-family="{FONT}" role="img">'
        f"<title>{html.escape(title)}</title>"
        f'<rect width="{_f(width)}" height="{_f(height)}" fill="#fff"/>'
    )


def _frame(x: float, y: float, w: float, h: float) -> str:
    """A panel's black frame (matplotlib's four spines)."""
    return (
        f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(w)}" height="{_f(h)}" fill="none" '
        f'stroke="#000" {THIN}/>'
    )


def _y_labels(x: float, ys: list[float], texts: list[str]) -> str:
    """The y tick labels, right-aligned at ``x`` and centred on their ticks."""
    return (
        f'<g class="yt" font-size="{TICK_PT * PT:g}" text-anchor="end" '
        'dominant-baseline="central">'
        + "".join(
            f'<text x="{_f(x)}" y="{_f(y)}">{t}</text>' for y, t in zip(ys, texts, strict=True)
        )
        + "</g>"
    )


def _family(rows: pd.DataFrame, series: str, hue: str = "model") -> str:
    """The family of a series (its first non-empty ``family``), "" when none."""
    fams = rows.loc[rows[hue].astype(str) == series, "family"]
    return next((str(f) for f in fams if isinstance(f, str) and f), "")


LINE_PX = 1.5 * PT  # lines.linewidth
# matplotlib's "--": dashes of 3.7 and gaps of 1.6 line widths (the BNN curves and their legend)
DASH = f' stroke-dasharray="{_f(3.7 * LINE_PX)} {_f(1.6 * LINE_PX)}"'


def _polyline(points: Iterable[tuple[float, float]]) -> str:
    """Path data through ``points`` (px), in order."""
    return "".join(f"{'L' if k else 'M'}{_f(x)} {_f(y)}" for k, (x, y) in enumerate(points))


def _y_title(x: float, cy: float, text: str, size_pt: float) -> str:
    """An axis title set vertically, reading upwards, centred on ``cy``."""
    return (
        f'<text transform="translate({_f(x)} {_f(cy)}) rotate(-90)" '
        f'font-size="{size_pt * PT:g}" text-anchor="middle">{html.escape(text)}</text>'
    )


def _handle(kind: str, color: str, x: float, y: float, length: float, dashed: bool) -> str:
    """A legend entry's line (dashed for a BNN curve) and marker, from (x, y)."""
    return (
        f'<g fill="{color}" stroke="{color}" stroke-width="{LINE_PX:g}">'
        f'<path d="M{_f(x)} {_f(y)}h{_f(length)}"{DASH if dashed else ""}/>'
        f"{_marker(kind, x + length / 2, y)}</g>"
    )


class Legend:
    """One legend for a chart, centred below it: entries (name, colour, marker, dashed) in
    rows of at most ``max_cols``, fewer columns while wider than ``width`` (px)."""

    def __init__(
        self, entries: list[tuple[str, str, str, bool]], title: str, width: float, max_cols: int
    ) -> None:
        self.entries, self.title = entries, title
        self.fs = LEGEND_PT * PT
        self.row_h = self.fs * LINE
        self.handle = 2.0 * self.fs
        self.gap = 1.6 * self.fs
        widths = [self.handle + 0.6 * self.fs + text_width(e[0], LEGEND_PT) for e in entries]
        ncol = max(1, min(len(entries), max_cols))
        while ncol > 1:
            cols = [max(widths[c::ncol]) for c in range(ncol)]
            if sum(cols) + self.gap * (ncol - 1) + 12 <= width - 8:
                break
            ncol -= 1
        self.ncol = ncol
        self.col_w = [max(widths[c::ncol], default=0.0) for c in range(ncol)]
        rows = math.ceil(len(entries) / ncol)
        inner = sum(self.col_w) + self.gap * (ncol - 1)
        self.width = max(inner, text_width(title, LEGEND_PT)) + 12
        self.height = 8 + self.row_h * (rows + 1) if entries else 0.0

    def draw(self, cx: float, y: float) -> str:
        """The legend's markup, its top edge centred at (cx, y)."""
        if not self.entries:
            return ""
        out = [
            f'<rect x="{_f(cx - self.width / 2)}" y="{_f(y)}" width="{_f(self.width)}" '
            f'height="{_f(self.height)}" rx="3" fill="#fff" stroke="#ccc"/>',
            _text(
                cx, y + 4, self.title, LEGEND_PT, text_anchor="middle", dominant_baseline="hanging"
            ),
        ]
        x0 = cx - (sum(self.col_w) + self.gap * (self.ncol - 1)) / 2
        for k, (name, color, kind, dashed) in enumerate(self.entries):
            r, c = divmod(k, self.ncol)
            ex = x0 + sum(self.col_w[:c]) + self.gap * c
            ey = y + 4 + self.row_h * (r + 1) + self.row_h / 2
            out.append(_handle(kind, color, ex, ey, self.handle, dashed))
            out.append(
                f'<text x="{_f(ex + self.handle + 0.6 * self.fs)}" y="{_f(ey)}" '
                f'font-size="{self.fs:g}" dominant-baseline="central">{html.escape(name)}</text>'
            )
        return "".join(out)


def _limits(values: np.ndarray, zero: bool) -> tuple[float, float]:
    """An axis' view of ``values`` (finite ones; with 0 where ``zero``) with 5 % margins, as
    matplotlib's autoscale sets it."""
    finite = values[np.isfinite(values)]
    if finite.size:
        lo, hi = float(finite.min()), float(finite.max())
    else:
        lo, hi = 0.0, 1.0
    if zero:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo <= 0:
        lo, hi = lo - 0.5, hi + 0.5
    pad = 0.05 * (hi - lo)
    return lo - pad, hi + pad


def point_ci_svg(
    df: pd.DataFrame,
    *,
    metric: str,
    title: str,
    ylabel: str,
    colors: Mapping[str, str] | None = None,
    xlabel: str = "saliency method",
) -> str:
    """The chart of ``metric``'s rows of ``df`` (columns method, model, family, value, ci_low,
    ci_high, and n where there is one) as an ``<svg>`` element. The width follows the number of
    methods so that their names, wrapped at ``_``, sit level and apart; where that would be
    wider than the report's column they are set vertically (they never overlap)."""
    sub = df[df["metric"] == metric]
    methods = [str(m) for m in dict.fromkeys(sub["method"])]
    groups = [str(g) for g in dict.fromkeys(sub["model"])]
    palette = series_colors(groups, colors)
    n = max(1, len(methods))
    inch = PX_PER_IN

    # the y axis: data and zero, 5 % margins (matplotlib's autoscale with its axhline at 0)
    lo, hi = _limits(sub[["value", "ci_low", "ci_high"]].to_numpy(dtype=float), zero=True)
    yticks = nice_ticks(lo, hi)
    ytexts = tick_labels(yticks)
    tick_len = 3.5 * PT
    label_h = LABEL_PT * PT * LINE
    ytick_w = max((text_width(t, TICK_PT) for t in ytexts), default=0.0)
    left = 8 + label_h + 4 + ytick_w + 2 * tick_len
    right = 0.2 * inch

    # the x axis: a slot per method, as wide as its wrapped name needs
    labels = [wrap_label(m) for m in methods]
    widest = max((_lines_width(label, TICK_PT) for label in labels), default=0.0)
    slot = max(0.5 * inch, widest + 0.15 * inch, 0.16 * inch * len(groups))
    if n * slot + left + right > MAX_WIDTH_IN * inch:
        slot = max((MAX_WIDTH_IN * inch - left - right) / n, 0.3 * inch)
    vertical = slot < widest + 0.08 * inch
    if vertical:
        labels = methods
    width = max(4.5 * inch, n * slot + left + right)
    plot_w = width - left - right
    slot = plot_w / n
    tick_step = TICK_PT * PT * LINE
    lines = max((label.count("\n") + 1 for label in labels), default=1)
    ticks_h = (
        max((text_width(m, TICK_PT) for m in labels), default=0.0)
        if vertical
        else lines * tick_step
    )

    markers = {g: FAMILY_MARKERS.get(_family(sub, g), "o") for g in groups}
    legend = Legend(
        [(g, palette[g], markers[g], False) for g in groups],
        "model (error bar: 95 % CI)",
        width,
        max_cols=4,
    )

    top = 0.35 * inch
    plot_h = PANEL_H_IN * inch
    x_axis = top + plot_h
    xlabel_y = x_axis + tick_len * 2 + ticks_h + 6
    legend_y = xlabel_y + label_h + 6
    height = legend_y + legend.height + 6

    def sx(i: float) -> float:  # method position (0 at the first slot's centre) -> px
        return left + (i + 0.5) * slot

    def sy(v: float) -> float:
        return top + (hi - v) / (hi - lo) * plot_h

    out = [_open(width, height, title)]
    # grid, zero line, frame
    grid = "".join(f"M{_f(left)} {_f(sy(t))}h{_f(plot_w)}" for t in yticks)
    out.append(f'<path d="{grid}" stroke="{GRID}" {THIN} fill="none"/>')
    if lo < 0 < hi:
        out.append(
            f'<path d="M{_f(left)} {_f(sy(0.0))}h{_f(plot_w)}" stroke="grey" '
            f'stroke-width="{0.6 * PT:g}"/>'
        )
    # y ticks and their labels
    marks = "".join(f"M{_f(left)} {_f(sy(t))}h{_f(-tick_len)}" for t in yticks)
    marks += "".join(f"M{_f(sx(i))} {_f(x_axis)}v{_f(tick_len)}" for i in range(len(methods)))
    out.append(f'<path d="{marks}" stroke="#000" {THIN}/>')
    out.append(_y_labels(left - 2 * tick_len, [sy(t) for t in yticks], ytexts))
    # method names under their slots
    below = x_axis + 2 * tick_len
    if vertical:
        out.append(f'<g class="xt" font-size="{TICK_PT * PT:g}" text-anchor="end">')
        out += [
            f'<text transform="translate({_f(sx(i) + 0.35 * TICK_PT * PT)} {_f(below)}) '
            f'rotate(-90)">{html.escape(m)}</text>'
            for i, m in enumerate(labels)
        ]
    else:
        out.append('<g class="xt" text-anchor="middle" dominant-baseline="hanging">')
        out += [_text(sx(i), below, label, TICK_PT) for i, label in enumerate(labels)]
    out.append("</g>")
    # axis labels and title
    out.append(
        _text(
            left + plot_w / 2,
            xlabel_y,
            xlabel,
            LABEL_PT,
            text_anchor="middle",
            dominant_baseline="hanging",
        )
    )
    out.append(_y_title(8 + label_h * 0.8, top + plot_h / 2, ylabel, LABEL_PT))
    out.append(_text(left + plot_w / 2, top - 8, title, TITLE_PT, text_anchor="middle"))
    # the points: per model, its error bars then its markers; each point's tooltip
    step = 0.8 / max(1, len(groups))
    where = {m: i for i, m in enumerate(methods)}
    counts = sub["n"] if "n" in sub.columns else pd.Series(np.nan, index=sub.index)
    for g_i, group in enumerate(groups):
        rows_g = sub[sub["model"].astype(str) == group]
        kind = markers[group]
        color = palette[group]
        parts = [
            f'<g data-series="{html.escape(group)}" fill="{color}" stroke="{color}" '
            f'stroke-width="{1.5 * PT:g}">'
        ]
        seen: set[str] = set()
        names: list[str] = [str(m) for m in rows_g["method"]]
        for method, v, low, high, count in zip(
            names,
            rows_g["value"].to_numpy(float),
            rows_g["ci_low"].to_numpy(float),
            rows_g["ci_high"].to_numpy(float),
            counts[rows_g.index].to_numpy(float),
            strict=True,
        ):
            if method in seen or not math.isfinite(v):  # one point per method, as plotted
                continue
            seen.add(method)
            x = sx(where[method] - 0.4 + step * (g_i + 0.5))
            tip = f"{group} \u00b7 {method}: {_num(v)} [{_num(low)}, {_num(high)}]"
            if math.isfinite(count):
                tip += f", n = {int(count)}"
            bar = ""
            if math.isfinite(low) and math.isfinite(high):
                y0, y1 = sy(low), sy(high)
                bar = (
                    f'<path d="M{_f(x)} {_f(y0)}V{_f(y1)}M{_f(x - CAP_PX)} {_f(y0)}'
                    f'h{_f(2 * CAP_PX)}M{_f(x - CAP_PX)} {_f(y1)}h{_f(2 * CAP_PX)}"/>'
                )
            parts.append(f"<g><title>{html.escape(tip)}</title>{bar}{_marker(kind, x, sy(v))}</g>")
        parts.append("</g>")
        out.append("".join(parts))
    out.append(_frame(left, top, plot_w, plot_h))
    out.append(legend.draw(width / 2, legend_y))
    out.append("</svg>")
    return "".join(out)


# a multi-panel curve chart's panel sizes (inches) by the number of columns, as the PNG curves
_PANEL_SIZES = {1: (4.4, 2.8), 2: (3.6, 2.4)}
_PANEL_SIZE = (2.9, 2.0)
CURVE_MARKER_PX = 4.0 * PT  # matplotlib's markersize 3, plus its 1 pt edge


def _dots(kind: str, xs: np.ndarray, ys: np.ndarray, color: str) -> str:
    """The markers of one curve in one element where the shape allows: circles and squares
    as zero-length subpaths with round / square caps (~12 bytes a point), other shapes one
    small path each."""
    if kind in ("o", "s", "."):
        d = "".join(f"M{_f(x)} {_f(y)}h0" for x, y in zip(xs, ys, strict=True))
        size = CURVE_MARKER_PX * (0.6 if kind == "." else 1.0)
        cap = "square" if kind == "s" else "round"
        return (
            f'<path d="{d}" stroke="{color}" stroke-width="{_f(size)}" '
            f'stroke-linecap="{cap}" stroke-dasharray="none"/>'
        )
    scale = CURVE_MARKER_PX / MARKER_PX
    return "".join(_marker(kind, x, y, scale) for x, y in zip(xs, ys, strict=True))


def curve_svg(
    df: pd.DataFrame,
    *,
    metric: str,
    title: str,
    xlabel: str,
    ylabel: str,
    hue: str = "model",
    colors: Mapping[str, str] | None = None,
) -> str:
    """``metric``'s rows of ``df`` with a ``step`` as an ``<svg>`` chart: a line per (method,
    ``hue``) over the step with its shaded 95 % CI band, one panel per method (at most
    :data:`binsal.reports.figures.MAX_COLS` a row, the y axis shared), one legend below;
    colour: the model (``colors``), line style and marker: its family (BNN dashed)."""
    from binsal.reports.figures import FAMILY_LINES, panel_grid

    sub = df[(df["metric"] == metric) & df["step"].notna()]
    methods = [str(m) for m in dict.fromkeys(sub["method"])] or [""]
    rows, cols = panel_grid(len(methods))
    inch = PX_PER_IN
    pw, ph = (v * inch for v in _PANEL_SIZES.get(cols, _PANEL_SIZE))
    gap_w, gap_h = 0.15 * inch, 0.65 * inch
    series = sub[hue].astype(str) if hue in sub else pd.Series("", index=sub.index)
    hues: list[str] = [str(h) for h in dict.fromkeys(series)]
    palette = series_colors(hues, colors if hue == "model" else None)
    tagged = sub.assign(_hue=series)
    fams = {h: _family(tagged, h, "_hue") for h in hues}

    lo, hi = _limits(sub[["value", "ci_low", "ci_high"]].to_numpy(dtype=float), zero=False)
    yticks = nice_ticks(lo, hi)
    ytexts = tick_labels(yticks)
    tick_len = 3.5 * PT
    small_h = TICK_PT * PT * LINE  # the axis labels are set at 8 pt, as the ticks
    ytick_w = max((text_width(t, TICK_PT) for t in ytexts), default=0.0)
    left = 8 + small_h + 4 + ytick_w + 2 * tick_len
    right, top = 0.15 * inch, 0.6 * inch
    pw = min(pw, (MAX_WIDTH_IN * inch - left - right - (cols - 1) * gap_w) / cols)  # unscaled
    width = left + cols * pw + (cols - 1) * gap_w + right
    legend = Legend(
        [(h, palette[h], FAMILY_MARKERS.get(fams[h], "."), fams[h] in FAMILY_LINES) for h in hues],
        f"{hue} (dashed: BNN; band: 95 % CI)",
        width,
        max_cols=min(len(hues), 2 * cols, 6),
    )
    body_h = rows * ph + (rows - 1) * gap_h
    legend_y = top + body_h + 0.5 * inch
    height = legend_y + legend.height + 0.05 * inch

    out = [
        _open(width, height, title),
        _text(
            width / 2,
            0.1 * inch,
            title,
            TITLE_PT,
            text_anchor="middle",
            dominant_baseline="hanging",
        ),
    ]
    by_method = {str(k): g for k, g in sub.groupby(sub["method"].astype(str), sort=False)}
    for i, method in enumerate(methods):
        r, c = divmod(i, cols)
        x0 = left + c * (pw + gap_w)
        y0 = top + r * (ph + gap_h)
        rows_m = by_method.get(method, sub.iloc[0:0])
        steps = rows_m["step"].to_numpy(dtype=float)
        xlo, xhi = _limits(steps, zero=False)
        xticks = nice_ticks(xlo, xhi, nbins=5)

        def sx(v: float, x0: float = x0, xlo: float = xlo, xhi: float = xhi) -> float:
            return x0 + (v - xlo) / (xhi - xlo) * pw

        def sy(v: float, y0: float = y0) -> float:
            return y0 + (hi - v) / (hi - lo) * ph

        grid = "".join(f"M{_f(x0)} {_f(sy(t))}h{_f(pw)}" for t in yticks)
        grid += "".join(f"M{_f(sx(t))} {_f(y0)}v{_f(ph)}" for t in xticks)
        out.append(f'<path d="{grid}" stroke="{GRID}" {THIN} fill="none"/>')
        marks = "".join(f"M{_f(x0)} {_f(sy(t))}h{_f(-tick_len)}" for t in yticks)
        marks += "".join(f"M{_f(sx(t))} {_f(y0 + ph)}v{_f(tick_len)}" for t in xticks)
        out.append(f'<path d="{marks}" stroke="#000" {THIN}/>')
        if c == 0:
            out.append(_y_labels(x0 - 2 * tick_len, [sy(t) for t in yticks], ytexts))
            out.append(_y_title(8 + small_h * 0.8, y0 + ph / 2, ylabel, TICK_PT))
        out.append(
            f'<g class="xt" font-size="{TICK_PT * PT:g}" text-anchor="middle" '
            'dominant-baseline="hanging">'
            + "".join(
                f'<text x="{_f(sx(t))}" y="{_f(y0 + ph + 2 * tick_len)}">{s}</text>'
                for t, s in zip(xticks, tick_labels(xticks), strict=True)
            )
            + "</g>"
        )
        if i + cols >= len(methods):  # no panel below: the x axis is named here
            out.append(
                _text(
                    x0 + pw / 2,
                    y0 + ph + 2 * tick_len + small_h + 3,
                    xlabel,
                    TICK_PT,
                    text_anchor="middle",
                    dominant_baseline="hanging",
                )
            )
        out.append(_text(x0 + pw / 2, y0 - 5, method, 9.0, text_anchor="middle"))
        # the curves: band, line, markers per series, clipped to the panel as matplotlib does
        out.append(
            f'<svg x="{_f(x0)}" y="{_f(y0)}" width="{_f(pw)}" height="{_f(ph)}" '
            f'viewBox="{_f(x0)} {_f(y0)} {_f(pw)} {_f(ph)}" overflow="hidden">'
        )
        keys = series[rows_m.index]
        for key in (str(k) for k in dict.fromkeys(keys)):
            g = rows_m[keys == key].sort_values("step")
            x, v, low, high = (
                g[col].to_numpy(dtype=float) for col in ("step", "value", "ci_low", "ci_high")
            )
            color = palette[key]
            fam = fams[key]
            name = html.escape(key)
            parts = [
                f'<g data-series="{name}" fill="{color}"><title>{name} \u00b7 '
                f"{html.escape(method)}</title>"
            ]
            ok = np.isfinite(x) & np.isfinite(low) & np.isfinite(high)
            if ok.sum() >= 2:
                xs = np.concatenate([x[ok], x[ok][::-1]])
                ys = np.concatenate([low[ok], high[ok][::-1]])
                band = _polyline((sx(a), sy(b)) for a, b in zip(xs, ys, strict=True))
                parts.append(f'<path d="{band}Z" fill="{color}" fill-opacity="0.15"/>')
            fin = np.isfinite(x) & np.isfinite(v)
            px = np.array([sx(a) for a in x[fin]])
            py = np.array([sy(b) for b in v[fin]])
            if px.size >= 2:
                line = _polyline(zip(px, py, strict=True))
                dash = DASH if fam in FAMILY_LINES else ""
                parts.append(
                    f'<path d="{line}" fill="none" stroke="{color}" '
                    f'stroke-width="{_f(LINE_PX)}"{dash}/>'
                )
            if px.size:
                parts.append(
                    f'<g fill="{color}" stroke="{color}" stroke-width="{_f(PT)}">'
                    f"{_dots(FAMILY_MARKERS.get(fam, '.'), px, py, color)}</g>"
                )
            parts.append("</g>")
            out.append("".join(parts))
        out.append("</svg>")
        out.append(_frame(x0, y0, pw, ph))
    out.append(legend.draw(width / 2, legend_y))
    out.append("</svg>")
    return "".join(out)
