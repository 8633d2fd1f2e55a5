"""The report's figures: the qualitative grids and the quality-against-cost plots as
matplotlib PNGs (Agg backend, embedded in the HTML), the curves and point charts as inline SVG
(:mod:`binsal.reports.svg`), and the worker processes that draw them."""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

# One colour per model, the same in every figure of a report: the palette indexed by the sorted
# model names of the run, then the other series of its table (FP x BNN pairs "a|b", family
# aggregates "all FP") sorted after them. Dark2 first (no plain blue or red: the report's text
# marks the families FP blue and BNN red), then tab10's colours that Dark2 lacks.
PALETTE = (
    "#1b9e77",
    "#d95f02",
    "#7570b3",
    "#e7298a",
    "#66a61e",
    "#e6ab02",
    "#a6761d",
    "#666666",
    "#1f77b4",
    "#d62728",
    "#17becf",
    "#bcbd22",
    "#9467bd",
    "#8c564b",
    "#ff7f0e",
    "#2ca02c",
)
# the family is told by the marker (and, on curves, the line style), never by the colour
FAMILY_MARKERS = {"FP": "o", "BNN": "s", "FP-BNN": "D", "FP-FP": "^", "BNN-BNN": "v"}
FAMILY_LINES = {"BNN": "--", "BNN-BNN": "--"}
MAX_COLS = 4  # panels per row of a multi-panel figure
MAX_WIDTH_IN = 12.4  # widest figure shown unscaled in the report's 1152 px column (at 90 dpi)
TICK_FONTSIZE = 8


def model_colors(models: Iterable[str], others: Iterable[str] = ()) -> dict[str, str]:
    """The report's model -> colour mapping: :data:`PALETTE` indexed by the sorted model names,
    then by the sorted ``others`` (series that are not models: pairs, family aggregates)."""
    names = sorted({str(m) for m in models})
    rest = sorted({str(o) for o in others} - set(names))
    return {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(names + rest)}


def panel_grid(n: int, max_cols: int = MAX_COLS) -> tuple[int, int]:
    """(rows, cols) for ``n`` panels: at most ``max_cols`` per row, rows filled evenly
    (13 -> (4, 4), 5 -> (2, 3), 3 -> (1, 3))."""
    n = max(1, n)
    rows = math.ceil(n / max_cols)
    return rows, math.ceil(n / rows)


def wrap_label(name: str, width: int = 12) -> str:
    """A tick label broken into lines of about ``width`` characters, after ``_``, ``-`` or
    spaces (``integrated_gradients`` -> ``integrated_`` / ``gradients``); a longer part stays
    whole."""
    parts: list[str] = []
    token = ""
    for ch in name:
        token += ch
        if ch in "_- ":
            parts.append(token)
            token = ""
    if token:
        parts.append(token)
    lines = [""]
    for part in parts:
        if lines[-1] and len(lines[-1]) + len(part.rstrip()) > width:
            lines.append("")
        lines[-1] += part
    return "\n".join(line.rstrip() for line in lines)


def ticklabels_overlap(fig: Any, ax: Any, draw: bool = True) -> bool:
    """Whether any two visible x tick labels of ``ax`` overlap once drawn (``draw=False``:
    as the last drawing, e.g. ``savefig``, placed them)."""
    if draw:
        fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # pyright: ignore[reportAttributeAccessIssue]
    boxes = [
        t.get_window_extent(renderer)
        for t in ax.get_xticklabels()
        if t.get_visible() and t.get_text()
    ]
    return any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def series_colors(names: Iterable[str], colors: Mapping[str, str] | None) -> dict[str, str]:
    given = dict(colors or {})
    missing = sorted({str(n) for n in names} - set(given))
    # a series the report's mapping does not know: the palette's next colours, sorted by name
    return given | {n: PALETTE[(len(given) + i) % len(PALETTE)] for i, n in enumerate(missing)}


# palette sizes of the report's PNGs: ~4x smaller than RGBA. Plots (the accuracy bars, the
# Pareto plots) look the same at 32 colours and take 13 % fewer bytes than at 64 (measured when
# every plot was a PNG: 48 plots, 1.29 -> 1.12 MB of base64); the saliency-map grids keep 64
# (their colour maps would band)
PNG_COLORS = 32
MAP_PNG_COLORS = 64


def _palette_png(image: Any, colors: int = PNG_COLORS) -> bytes:
    """An RGB(A) Pillow image as a palette PNG (median-cut quantization to ``colors``; Pillow's
    fast octree, twice as fast, turned the models' colours and CI bands grey or pink).
    ``compress_level=9`` gives the bytes of ``optimize=True`` at a fraction of its time
    (measured on the report's figures: same size, ~1.7 s less for 37 figures)."""
    small = io.BytesIO()
    image.convert("RGB").quantize(colors=colors).save(small, "PNG", compress_level=9)
    return small.getvalue()


def palette_png_file(path: Any) -> bytes:
    """A PNG file's bytes for the report: as they are when already a palette PNG, else
    re-encoded as one (:func:`_palette_png`; grids a run wrote before the report's PNGs were
    quantized are RGBA, ~4x larger)."""
    from PIL import Image

    with Image.open(path) as image:
        if image.mode == "P":
            return Path(path).read_bytes()
        return _palette_png(image, MAP_PNG_COLORS)


def to_png(
    fig: Any,
    dpi: int = 90,
    ticks_of: Any = None,
    tight: bool | None = None,
    colors: int = PNG_COLORS,
) -> bytes:
    """The figure as a palette PNG (:func:`_palette_png`): plots and colour-mapped maps use
    few colours, and the report embeds a dozen or more. ``tight``: crop to the drawn content
    (``bbox_inches="tight"``, which draws the figure twice); default: unless the figure has a
    layout engine. A figure laid out beforehand (fixed margins, ``tight=False``) or by a layout
    engine is drawn once, on its canvas, and the pixels taken from there without the PNG
    round trip of ``savefig``. ``ticks_of``: an axes whose x tick labels are set vertically,
    and the figure drawn again, should they overlap (a font wider than reckoned)."""
    from PIL import Image

    if tight is None:
        tight = fig.get_layout_engine() is None
    if tight:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        if ticks_of is not None and ticklabels_overlap(fig, ticks_of, draw=False):
            ticks_of.tick_params(axis="x", labelrotation=90)
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        plt.close(fig)
        buf.seek(0)
        return _palette_png(Image.open(buf), colors)
    fig.set_dpi(dpi)
    fig.canvas.draw()  # one pass: a layout engine runs inside it
    if ticks_of is not None and ticklabels_overlap(fig, ticks_of, draw=False):
        ticks_of.tick_params(axis="x", labelrotation=90)  # taller labels: let them grow the PNG
        return to_png(fig, dpi, tight=True, colors=colors)
    image = Image.fromarray(np.asarray(fig.canvas.buffer_rgba()))
    plt.close(fig)
    return _palette_png(image, colors)


_PANEL_STYLE: dict[Any, Any] = {
    "xtick.labelsize": TICK_FONTSIZE,
    "ytick.labelsize": TICK_FONTSIZE,
    "axes.grid": True,
    "grid.alpha": 0.3,
}


def nice_locator(n: int) -> Any:
    """At most ``n`` intervals at AutoLocator's steps."""
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(nbins=n, steps=[1, 2, 2.5, 5, 10])


def _layout(
    fig: Any,
    *,
    left: float,
    right: float,
    top: float,
    bottom: float,
    panel_w: float,
    panel_h: float,
    rows: int = 1,
    cols: int = 1,
    gap_w: float = 0.0,
    gap_h: float = 0.0,
    legend: Any = None,
) -> None:
    """Size ``fig`` and place its axes from fixed margins, panel sizes and gaps in inches, and
    its ``legend`` (:func:`_legend`) below the bottom margin, the figure grown by the legend's
    measured height: everything inside the figure, laid out without drawing it (a constrained
    layout or ``bbox_inches="tight"`` costs a pass over every artist)."""
    below = 0.0
    if legend is not None:
        renderer = fig.canvas.get_renderer()  # pyright: ignore[reportAttributeAccessIssue]
        below = legend.get_window_extent(renderer).height / fig.dpi + 0.1
    width = left + cols * panel_w + (cols - 1) * gap_w + right
    height = top + rows * panel_h + (rows - 1) * gap_h + bottom + below
    fig.set_size_inches(width, height)
    fig.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        top=1 - top / height,
        bottom=(bottom + below) / height,
        wspace=gap_w / panel_w,
        hspace=gap_h / panel_h,
    )
    if legend is not None:
        legend.set_bbox_to_anchor((0.5, 0.05 / height), transform=fig.transFigure)


def pareto_plot(board: pd.DataFrame, *, title: str) -> bytes:
    """Quality against cost of one leaderboard measure: a panel per family, one point per
    method at (CPU seconds per map, value) with its 95 % CI, methods on the Pareto front
    (column ``pareto``) filled and joined by a line, reference methods grey."""
    fams = [f for f in ("FP", "BNN") if f in set(board["family"])]
    fig = plt.figure()
    with plt.rc_context(_PANEL_STYLE):
        axes = [fig.add_subplot(1, max(1, len(fams)), i + 1) for i in range(max(1, len(fams)))]
    for ax, fam in zip(axes, fams, strict=False):
        g = board[(board["family"] == fam) & np.isfinite(board["cpu_seconds_per_map"])]
        g = g.sort_values("cpu_seconds_per_map")
        cols = ("cpu_seconds_per_map", "value", "ci_low", "ci_high")
        x_all, v_all, lo_all, hi_all = (g[c].to_numpy(float) for c in cols)
        refs, fronts = g["reference"].to_numpy(bool), g["pareto"].to_numpy(bool)
        for i, method in enumerate(g["method"].astype(str)):
            color = "#999999" if refs[i] else ("#d95f02" if fronts[i] else "#1b9e77")
            x, v = max(x_all[i], 1e-6), v_all[i]
            err = [[max(0.0, v - lo_all[i])], [max(0.0, hi_all[i] - v)]]
            ax.errorbar(
                [x],
                [v],
                yerr=err,
                fmt="o",
                mfc=color if fronts[i] else "white",
                color=color,
                markersize=5,
                capsize=2,
            )
            ax.annotate(
                str(method),
                (x, v),
                fontsize=6,
                xytext=(3, 3),
                textcoords="offset points",
                color=color,
            )
        front = g[g["pareto"].astype(bool)]
        if len(front):
            ax.step(
                front["cpu_seconds_per_map"].clip(lower=1e-6),
                front["value"],
                where="post",
                color="#d95f02",
                lw=0.8,
                alpha=0.7,
            )
        ax.set_xscale("log")
        ax.margins(x=0.2)
        ax.set_title(fam, fontsize=9)
        ax.set_xlabel("CPU seconds per map (log)", fontsize=8)
    axes[0].set_ylabel(str(board["metric"].iloc[0]) if len(board) else "", fontsize=8)
    # fixed margins (:func:`_layout`; a tight layout took 0.33 s a figure): the y axis of each
    # panel at its left, the titles above, the x ticks and label below, room at the right of
    # a panel for the names of the costliest methods
    _layout(
        fig,
        left=0.65,
        right=0.75,
        top=0.55,
        bottom=0.5,
        panel_w=3.6,
        panel_h=2.35,
        cols=len(axes),
        gap_w=1.15,
    )
    fig.suptitle(title, fontsize=10, y=1 - 0.08 / fig.get_size_inches()[1], va="top")
    return to_png(fig, tight=False)


GRID_TILE_SCALE = 1  # pixels of the grid PNG per map pixel and side (the maps as computed)


def qualitative_grid(
    images: np.ndarray,
    maps: dict[str, np.ndarray],
    correct: dict[str, np.ndarray],
    families: dict[str, str],
    *,
    title: str,
    masks: np.ndarray | None = None,
) -> bytes:
    """Rows: images; columns: the image, then models grouped FP | BNN (as the paper's Figs. 1-3).
    Each map is shown as |map| scaled to its own max (inferno colour map); "correct" marks a
    right prediction; the object mask's outline is drawn in white on the image.

    The tiles are laid out as one pixel mosaic and drawn as one image with its labels: one
    Matplotlib axes per tile (30 for 6 images and 4 models) took ~0.7 s of CPU a grid, the
    report draws one per method."""
    from matplotlib import colormaps

    order = [m for m in maps if families[m] == "FP"] + [m for m in maps if families[m] != "FP"]
    rows, cols = len(images), len(order) + 1
    s = GRID_TILE_SCALE
    th, tw = images.shape[1] * s, images.shape[2] * s
    gap, label, top, side = 10, 12, 52, 6  # pixels: between columns, above a tile, header, edge
    height = top + rows * (label + th) + side
    width = 2 * side + cols * tw + (cols - 1) * gap
    canvas = np.ones((height, width, 3), np.float32)
    inferno = colormaps["inferno"]

    def place(r: int, c: int, tile: np.ndarray) -> None:
        y, x = top + r * (label + th) + label, side + c * (tw + gap)
        canvas[y : y + th, x : x + tw] = np.repeat(np.repeat(tile, s, axis=0), s, axis=1)

    texts: list[tuple[int, int, str, str, int]] = [(width // 2, 4, title, "black", 10)]
    texts.append((side + tw // 2, top - 14, "image", "black", 8))
    for r in range(rows):
        img = np.asarray(images[r], np.float32)
        img = np.clip(img, 0, 1) if img.max() <= 1.0 else img / 255.0
        img = np.repeat(img, 3, axis=-1) if img.shape[-1] == 1 else img[..., :3]
        place(r, 0, img)
        if masks is not None:  # the outline: mask pixels with a 4-neighbour outside the mask
            big = np.repeat(np.repeat(np.asarray(masks[r], bool), s, axis=0), s, axis=1)
            inner = big.copy()
            inner[1:-1, 1:-1] = (
                big[1:-1, 1:-1] & big[:-2, 1:-1] & big[2:, 1:-1] & big[1:-1, :-2] & big[1:-1, 2:]
            )
            y = top + r * (label + th) + label
            region = canvas[y : y + th, side : side + tw]
            region[big & ~inner] = 1.0
        for c, name in enumerate(order, start=1):
            m = np.abs(np.asarray(maps[name][r], np.float32))
            peak = float(m.max())
            place(r, c, inferno(m / peak if peak > 0 else m)[..., :3])
            x, y = side + c * (tw + gap) + tw // 2, top + r * (label + th) + 1
            good = bool(correct[name][r])
            note = ("correct" if good else "") + ("" if peak > 0 else " (blank)")
            if note.strip():
                texts.append((x, y, note.strip(), "green" if good else "black", 7))
            if r == 0:
                head = f"{name}\n[{families[name]}]"
                texts.append((x, top - 26, head, "black", 7))
    dpi = 72
    fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.imshow(canvas, interpolation="nearest", aspect="equal")
    ax.set_axis_off()
    for x, y, text, color, size in texts:
        ax.text(x, y, text, ha="center", va="top", fontsize=size, color=color, linespacing=1.1)
    return to_png(fig, dpi=dpi, tight=False, colors=MAP_PNG_COLORS)


def accuracy_plot(
    accuracy: dict[str, float],
    families: dict[str, str],
    colors: Mapping[str, str] | None = None,
) -> bytes:
    """Test accuracy per model: a bar in the model's colour, hatched for a BNN."""
    names = list(accuracy)
    palette = series_colors(names, colors or model_colors(names))
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(names) + 1.5), 2.6))
    bars = ax.bar(
        [wrap_label(n) for n in names],
        [accuracy[n] * 100 for n in names],
        color=[palette[n] for n in names],
    )
    for bar, n in zip(bars, names, strict=True):
        if families.get(n) == "BNN":
            bar.set_hatch("//")
            bar.set_edgecolor("white")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    ax.tick_params(axis="x", labelsize=TICK_FONTSIZE)
    return to_png(fig, ticks_of=ax)


# a part of the report to draw in the figure workers: (caption, kind, keyword arguments of
# its function): "curve" and "point" binsal.reports.svg's curve_svg and point_ci_svg, "grid"
# qualitative_grid, "pareto" pareto_plot, "robustness" binsal.reports.robustness's
# robustness_html (no figure, but the report's longest piece of pandas work: drawn beside the
# figures, it no longer waits for them or they for it)
FigureJob = tuple[str, str, dict[str, Any]]
# a drawn job: PNG bytes, or markup (an inline SVG chart, a section of HTML)
Drawn = bytes | str


def draw_job(job: FigureJob) -> Drawn:
    """One :data:`FigureJob` drawn (a top-level function: worker processes run it)."""
    _, kind, kwargs = job
    if kind in ("point", "curve"):
        from binsal.reports import svg

        return (svg.point_ci_svg if kind == "point" else svg.curve_svg)(**kwargs)
    if kind == "robustness":
        from binsal.reports.robustness import robustness_html

        return robustness_html(**kwargs)
    draw = {"grid": qualitative_grid, "pareto": pareto_plot}[kind]
    return draw(**kwargs)


def draw_jobs(jobs: list[FigureJob], workers: int | None = None) -> list[Drawn | Exception]:
    """The drawn ``jobs``, in order, or the exception that drawing one raised
    (:func:`start_drawing`, waited for)."""
    return start_drawing(jobs, workers)()


def start_drawing(
    jobs: list[FigureJob], workers: int | None = None
) -> Callable[[], list[Drawn | Exception]]:
    """Start drawing ``jobs``; the returned function waits for their PNGs (in order, or the
    exception that drawing one raised). Drawn by ``workers`` processes (default: one per CPU
    this process may use, at most 4) when there are several jobs and CPUs: matplotlib is not
    thread-safe, and one figure takes ~0.3-1 s of CPU, far more than sending its rows to a
    worker; meanwhile the caller can build the sections that need no figure. The workers are
    spawned, not forked: the report may be drawn inside a process running TensorFlow."""
    from concurrent.futures.process import BrokenProcessPool

    from binsal.core.workers import default_workers, spawn_pool

    ready, _READY[0] = _READY[0], None
    if ready is not None and workers not in (None, ready[1]):  # not the pool asked for
        ready[0].shutdown(wait=False)
        ready = None
    if workers is None:
        workers = ready[1] if ready is not None else default_workers()
    workers = min(workers, len(jobs))

    def here() -> list[Drawn | Exception]:
        return [_attempt(job) for job in jobs]

    if workers < 2 or len(jobs) < 4:
        if ready is not None:
            ready[0].shutdown(wait=False)
        return here
    try:
        pool = ready[0] if ready is not None else spawn_pool(workers)
        futures = [pool.submit(_attempt, job) for job in jobs]
    except (OSError, BrokenProcessPool):  # no processes here: drawn in this one
        return here

    def wait() -> list[Drawn | Exception]:
        try:
            return [f.result() for f in futures]
        except (OSError, BrokenProcessPool):  # a worker died: drawn in this one
            return here()
        finally:
            pool.shutdown(cancel_futures=True)

    return wait


# (pool, workers) started ahead by prestart_drawing, taken by the next start_drawing
_READY: list[tuple[Any, int] | None] = [None]


def prestart_drawing(workers: int | None = None) -> None:
    """Spawn the figure workers of the next :func:`start_drawing` now: each imports matplotlib
    and pandas and loads the fonts (~1.3 CPU-s), which then overlaps work the caller does on
    one core (the pipeline merges the seeds meanwhile). Nothing is started with fewer than two
    CPUs or workers."""
    from binsal.core.workers import default_workers, spawn_pool

    workers = default_workers() if workers is None else workers
    if workers < 2 or _READY[0] is not None:
        return
    try:
        pool = spawn_pool(workers)
        for _ in range(workers):
            pool.submit(_warm_up)
    except OSError:  # no processes here: start_drawing draws in this one
        return
    _READY[0] = (pool, workers)


def _warm_up() -> None:
    """Load the fonts and the Agg renderer in a worker, as the first figure would."""
    fig = plt.figure(figsize=(1, 1))
    fig.text(0.5, 0.5, "binsal", fontsize=TICK_FONTSIZE)
    fig.canvas.draw()
    plt.close(fig)


def _attempt(job: FigureJob) -> Drawn | Exception:
    try:
        return draw_job(job)
    except Exception as exc:  # noqa: BLE001 - handed back: only its own section fails
        return exc


def generic_jobs(df: pd.DataFrame, colors: Mapping[str, str] | None = None) -> list[FigureJob]:
    """Fallback: curves for metrics with steps, CI point plots for scalar metrics (at most 8)."""
    out: list[FigureJob] = []
    for metric, sub in df.groupby("metric", sort=False):
        common = {"metric": str(metric), "title": str(metric), "colors": colors}
        if sub["step"].notna().any():
            kwargs = {"xlabel": "step", "ylabel": str(metric)} | common
            out.append((f"{metric} (95 % CI bands)", "curve", {"df": sub} | kwargs))
        else:
            kwargs = {"ylabel": str(metric)} | common
            out.append((f"{metric} (95 % CI)", "point", {"df": sub} | kwargs))
    return out[:8]


def generic_figures(
    df: pd.DataFrame, colors: Mapping[str, str] | None = None
) -> list[tuple[str, Drawn]]:
    """Fallback: curves for metrics with steps, CI point plots for scalar metrics."""
    return [(cap, draw_job((cap, kind, kw))) for cap, kind, kw in generic_jobs(df, colors)]
