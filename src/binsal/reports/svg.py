"""Point-and-interval charts as inline SVG for the report.

One marker per (method, model) with its 95 % CI as an error bar, as the matplotlib point plots
drew them: the model's colour, the family's marker, the method names wrapped at ``_`` (set
vertically where the column is too narrow), one legend below. Hand-written instead of drawn
with matplotlib: ~1 ms a chart against ~220 ms (figure, Agg raster, palette PNG; the default
report's 30 point charts were a third of its CPU time), a few kB of markup like the PNG, sharp
at any zoom, and each marker's value, interval and n shown on hover (its ``<title>``).

Layout is computed here, in CSS px at :data:`PX_PER_IN` (the PNG figures' 90 dpi, so both kinds
keep their sizes), with text widths from the font matplotlib ships (DejaVu Sans), named first in
the chart's font list; the fallbacks (Arial, Helvetica, Liberation Sans) are narrower, so the
reckoned room is enough for them.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
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


def _marker(kind: str, x: float, y: float) -> str:
    """One marker centred at (x, y), filled with the group's colour (matplotlib's shapes at
    markersize 5: circle, square, diamond, triangles up and down)."""
    r = MARKER_PX / 2
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
    vals = sub[["value", "ci_low", "ci_high"]].to_numpy(dtype=float)
    finite = vals[np.isfinite(vals)]
    lo, hi = (
        (min(0.0, float(finite.min())), max(0.0, float(finite.max()))) if finite.size else (0, 1)
    )
    if hi - lo <= 0:
        lo, hi = lo - 0.5, hi + 0.5
    pad = 0.05 * (hi - lo)
    lo, hi = lo - pad, hi + pad
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

    # the legend: entries in rows of at most 4, fewer columns while wider than the chart
    entry_h = LEGEND_PT * PT * LINE
    handle = 2.0 * LEGEND_PT * PT
    entries = [handle + 0.6 * LEGEND_PT * PT + text_width(g, LEGEND_PT) for g in groups]
    gap = 1.6 * LEGEND_PT * PT
    legend_title = "model (error bar: 95 % CI)"
    ncol = min(len(groups), 4)
    while ncol > 1:
        widths = [max(entries[c::ncol]) for c in range(ncol)]
        if sum(widths) + gap * (ncol - 1) + 12 <= width - 8:
            break
        ncol -= 1
    ncol = max(ncol, 1)
    col_w = [max(entries[c::ncol], default=0.0) for c in range(ncol)]
    rows = math.ceil(len(groups) / ncol) if groups else 0
    legend_w = max(sum(col_w) + gap * (ncol - 1), text_width(legend_title, LEGEND_PT)) + 12
    legend_h = 8 + entry_h * (rows + 1) if groups else 0.0

    top = 0.35 * inch
    plot_h = PANEL_H_IN * inch
    x_axis = top + plot_h
    xlabel_y = x_axis + tick_len * 2 + ticks_h + 6
    legend_y = xlabel_y + label_h + 6
    height = legend_y + legend_h + 6

    def sx(i: float) -> float:  # method position (0 at the first slot's centre) -> px
        return left + (i + 0.5) * slot

    def sy(v: float) -> float:
        return top + (hi - v) / (hi - lo) * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{_f(width)}" '
        f'height="{_f(height)}" viewBox="0 0 {_f(width)} {_f(height)}" font-family="{FONT}" '
        f'role="img"><title>{html.escape(title)}</title>',
        f'<rect width="{_f(width)}" height="{_f(height)}" fill="#fff"/>',
    ]
    # grid, zero line, frame
    grid = "".join(f"M{_f(left)} {_f(sy(t))}h{_f(plot_w)}" for t in yticks)
    out.append(f'<path d="{grid}" stroke="{GRID}" stroke-width="{0.8 * PT:g}" fill="none"/>')
    if lo < 0 < hi:
        out.append(
            f'<path d="M{_f(left)} {_f(sy(0.0))}h{_f(plot_w)}" stroke="grey" '
            f'stroke-width="{0.6 * PT:g}"/>'
        )
    # y ticks and their labels
    marks = "".join(f"M{_f(left)} {_f(sy(t))}h{_f(-tick_len)}" for t in yticks)
    marks += "".join(f"M{_f(sx(i))} {_f(x_axis)}v{_f(tick_len)}" for i in range(len(methods)))
    out.append(f'<path d="{marks}" stroke="#000" stroke-width="{0.8 * PT:g}"/>')
    out.append(
        f'<g class="yt" font-size="{TICK_PT * PT:g}" text-anchor="end" dominant-baseline="central">'
    )
    out += [
        f'<text x="{_f(left - 2 * tick_len)}" y="{_f(sy(t))}">{s}</text>'
        for t, s in zip(yticks, ytexts, strict=True)
    ]
    out.append("</g>")
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
    cy = top + plot_h / 2
    out.append(
        f'<text transform="translate({_f(8 + label_h * 0.8)} {_f(cy)}) rotate(-90)" '
        f'font-size="{LABEL_PT * PT:g}" text-anchor="middle">{html.escape(ylabel)}</text>'
    )
    out.append(_text(left + plot_w / 2, top - 8, title, TITLE_PT, text_anchor="middle"))
    # the points: per model, its error bars then its markers; each point's tooltip
    step = 0.8 / max(1, len(groups))
    where = {m: i for i, m in enumerate(methods)}
    counts = sub["n"] if "n" in sub.columns else pd.Series(np.nan, index=sub.index)
    markers: dict[str, str] = {}
    for g_i, group in enumerate(groups):
        rows_g = sub[sub["model"].astype(str) == group]
        fam = next((str(f) for f in rows_g["family"] if isinstance(f, str) and f), "")
        kind = markers[group] = FAMILY_MARKERS.get(fam, "o")
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
    out.append(
        f'<rect x="{_f(left)}" y="{_f(top)}" width="{_f(plot_w)}" height="{_f(plot_h)}" '
        f'fill="none" stroke="#000" stroke-width="{0.8 * PT:g}"/>'
    )
    # the legend, centred below
    if groups:
        lx = (width - legend_w) / 2
        out.append(
            f'<rect x="{_f(lx)}" y="{_f(legend_y)}" width="{_f(legend_w)}" '
            f'height="{_f(legend_h)}" rx="3" fill="#fff" stroke="#ccc"/>'
        )
        fs = LEGEND_PT * PT
        out.append(
            _text(
                width / 2,
                legend_y + 4,
                legend_title,
                LEGEND_PT,
                text_anchor="middle",
                dominant_baseline="hanging",
            )
        )
        inner = sum(col_w) + gap * (ncol - 1)
        x0 = (width - inner) / 2
        for k, group in enumerate(groups):
            r, c = divmod(k, ncol)
            ex = x0 + sum(col_w[:c]) + gap * c
            ey = legend_y + 4 + entry_h * (r + 1) + entry_h / 2
            color = palette[group]
            out.append(
                f'<g fill="{color}" stroke="{color}" stroke-width="{1.5 * PT:g}">'
                f'<path d="M{_f(ex)} {_f(ey)}h{_f(handle)}"/>'
                f"{_marker(markers[group], ex + handle / 2, ey)}</g>"
            )
            out.append(
                f'<text x="{_f(ex + handle + 0.6 * fs)}" y="{_f(ey)}" font-size="{fs:g}" '
                f'dominant-baseline="central">{html.escape(group)}</text>'
            )
    out.append("</svg>")
    return "".join(out)
