"""Matplotlib figures for the report (Agg backend, PNG bytes embedded in the HTML)."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

FAMILY_COLORS = {"FP": "#1f77b4", "BNN": "#d62728", "FP-BNN": "#9467bd", "FP-FP": "#1f77b4"}
FAMILY_COLORS["BNN-BNN"] = "#d62728"


PNG_COLORS = 64  # palette size of the report's PNGs: ~4x smaller than RGBA, no visible change


def to_png(fig: Any, dpi: int = 90) -> bytes:
    """The figure as a palette PNG (Pillow's median-cut quantization to ``PNG_COLORS``): line
    plots and colour-mapped maps use few colours, and the report embeds ~50 figures."""
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    buf.seek(0)
    small = io.BytesIO()
    Image.open(buf).convert("RGB").quantize(colors=PNG_COLORS).save(small, "PNG", optimize=True)
    return small.getvalue()


def point_ci_plot(df: pd.DataFrame, *, metric: str, title: str, ylabel: str) -> bytes:
    """One marker per (method, model) with its 95 % CI as an error bar."""
    sub = df[df["metric"] == metric].copy()
    methods = list(dict.fromkeys(sub["method"]))
    groups = list(dict.fromkeys(sub["model"]))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(methods) + 2), 3.4))
    width = 0.8 / max(1, len(groups))
    for g_i, group in enumerate(groups):
        g = sub[sub["model"] == group].set_index("method").reindex(methods)
        x = np.arange(len(methods)) - 0.4 + width * (g_i + 0.5)
        fam = g["family"].dropna().iloc[0] if g["family"].notna().any() else ""
        err = np.vstack([g["value"] - g["ci_low"], g["ci_high"] - g["value"]]).clip(min=0)
        ax.errorbar(
            x,
            g["value"],
            yerr=err,
            fmt="o",
            capsize=3,
            label=f"{group}",
            color=None if len(groups) > 4 else FAMILY_COLORS.get(fam),
        )
    ax.set_xticks(np.arange(len(methods)), methods, rotation=25, ha="right")
    ax.axhline(0.0, color="grey", lw=0.6)
    ax.set_xlabel("saliency method")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(
        fontsize=7,
        title="model (error bar: 95 % CI)",
        title_fontsize=7,
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
    )
    ax.grid(axis="y", alpha=0.3)
    return to_png(fig)


def curve_plot(
    df: pd.DataFrame, *, metric: str, title: str, xlabel: str, ylabel: str, hue: str = "model"
) -> bytes:
    """Line per (method, hue) over ``step`` with a shaded 95 % CI band, one panel per method."""
    sub = df[(df["metric"] == metric) & df["step"].notna()].copy()
    methods = list(dict.fromkeys(sub["method"]))
    n = max(1, len(methods))
    fig, axes = plt.subplots(1, n, figsize=(3.3 * n, 3.0), sharey=True, squeeze=False)
    for ax, method in zip(axes[0], methods, strict=False):
        m = sub[sub["method"] == method]
        for key, g in m.groupby(hue, sort=False):
            g = g.sort_values("step")
            fam = g["family"].iloc[0]
            ls = "--" if fam == "BNN" else "-"
            ax.plot(g["step"], g["value"], ls, marker=".", label=str(key))
            ax.fill_between(g["step"], g["ci_low"], g["ci_high"], alpha=0.15)
        ax.set_title(method, fontsize=9)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    axes[0][-1].legend(
        fontsize=7,
        title=f"{hue} (dashed: BNN; band: 95 % CI)",
        title_fontsize=7,
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
    )
    fig.suptitle(title, fontsize=10)
    return to_png(fig)


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
    Each map is shown as |map| scaled to its own max; "correct" marks a right prediction."""
    order = [m for m in maps if families[m] == "FP"] + [m for m in maps if families[m] != "FP"]
    rows, cols = len(images), len(order) + 1
    fig, axes = plt.subplots(rows, cols, figsize=(1.55 * cols, 1.6 * rows + 0.4), squeeze=False)
    for r in range(rows):
        ax = axes[r][0]
        ax.imshow(np.clip(images[r], 0, 1) if images[r].max() <= 1.0 else images[r] / 255.0)
        if masks is not None:
            ax.contour(masks[r].astype(float), levels=[0.5], colors="white", linewidths=0.6)
        ax.set_title("image" if r == 0 else "", fontsize=8)
        for c, name in enumerate(order, start=1):
            ax = axes[r][c]
            m = np.abs(maps[name][r])
            peak = m.max()
            ax.imshow(m / peak if peak > 0 else m, cmap="inferno", vmin=0, vmax=1)
            label = "correct" if correct[name][r] else ""
            head = f"{name}\n[{families[name]}]\n" if r == 0 else ""
            blank = "" if peak > 0 else " (blank)"
            ax.set_title(f"{head}{label}{blank}", fontsize=7, color="green" if label else "black")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    return to_png(fig, dpi=72)


def accuracy_plot(accuracy: dict[str, float], families: dict[str, str]) -> bytes:
    names = list(accuracy)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(names) + 1.5), 2.6))
    ax.bar(
        names,
        [accuracy[n] * 100 for n in names],
        color=[FAMILY_COLORS.get(families[n], "grey") for n in names],
    )
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    return to_png(fig)


FigureFn = Callable[[pd.DataFrame], list[tuple[str, bytes]]]


def generic_figures(df: pd.DataFrame) -> list[tuple[str, bytes]]:
    """Fallback: curves for metrics with steps, CI point plots for scalar metrics."""
    out = []
    for metric, sub in df.groupby("metric", sort=False):
        if sub["step"].notna().any():
            out.append(
                (
                    f"{metric} (95 % CI bands)",
                    curve_plot(
                        sub,
                        metric=str(metric),
                        title=str(metric),
                        xlabel="step",
                        ylabel=str(metric),
                    ),
                )
            )
        else:
            out.append(
                (
                    f"{metric} (95 % CI)",
                    point_ci_plot(sub, metric=str(metric), title=str(metric), ylabel=str(metric)),
                )
            )
    return out[:8]
