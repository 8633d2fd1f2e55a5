"""The self-contained HTML report: everything inline (CSS, PNGs as data URIs), no network."""

from __future__ import annotations

import base64
import html
import inspect
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from binsal.core.interrupt import reraise_if_interrupted
from binsal.core.schema import PlotSpec
from binsal.reports import figures


@dataclass(frozen=True)
class Qualitative:
    """What the qualitative grids show, as plain arrays (the pipeline fills it from its maps):
    the first images, their masks, per model its family and whether it predicted correctly,
    and per method the maps of every model it is defined on, with a one-line description."""

    images: np.ndarray  # (k, H, W, C)
    masks: np.ndarray | None  # (k, H, W)
    families: Mapping[str, str]  # model -> "FP" / "BNN"
    correct: Mapping[str, np.ndarray]  # model -> (k,) bool
    maps: Mapping[str, Mapping[str, np.ndarray]]  # method -> model -> (k, H, W)
    docs: Mapping[str, str] = field(default_factory=dict)  # method -> one line


def plot_specs(declaration: Mapping[str, Any]) -> tuple[PlotSpec, ...]:
    """The ``PlotSpec``\\ s a benchmark declared (``manifest["benchmarks"][name]["plots"]``)."""
    return tuple(PlotSpec(**p) for p in declaration.get("plots", ()))


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1200px;
padding:1rem 1.5rem;color:#222;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;font-size:.82rem;margin:.5rem 0}
.scroll{overflow-x:auto;max-width:100%}p,li,figcaption{overflow-wrap:break-word}
code{background:#f4f4f4;border-radius:3px;padding:0 .2em;font-size:.9em}
th,td{border:1px solid #ddd;padding:.2rem .45rem;text-align:right}th{background:#f4f4f4}
td.l,th.l{text-align:left}.muted{color:#666;font-size:.85rem}tr.warn td{background:#fff4ce}
img,svg.chart{max-width:100%;height:auto}figure{margin:.8rem 0}figcaption{font-size:.8rem;color:#555}
details pre{background:#f7f7f7;padding:.6rem;overflow:auto;font-size:.75rem;max-height:30rem}
.fp{color:#1f77b4}.bnn{color:#d62728}.nav{position:sticky;top:0;background:#fff;padding:.3rem 0;display:flex;flex-wrap:wrap;gap:.2rem .8rem;
border-bottom:1px solid #eee;z-index:1;font-size:.9rem}
.glance{border:1px solid #ddd;border-radius:4px;padding:.3rem .8rem;margin:.6rem 0}.glance li{margin:.2rem 0}
#summary img{max-width:300px}.side{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start}
.side figure{margin:0;max-width:300px}.side>*,.lbcard,.lbfams>div{min-width:0;max-width:100%}
.summary{display:grid;grid-template-columns:minmax(0,1fr);gap:.5rem}
.v-supported{background:#e3f4e1}.v-not{background:#fde2e1}.v-inconclusive{background:#f3f3f3}
.verdict{font-weight:600;white-space:nowrap}
.lbgrid{display:flex;flex-wrap:wrap;gap:1rem}.lbcard{border:1px solid #e4e4e4;border-radius:4px;padding:.4rem .6rem}
.lbtitle{font-weight:600;margin-bottom:.2rem}.lbfams{display:flex;gap:1rem}
table.lb{font-size:.76rem}tr.ref td{color:#777;font-style:italic}tr.lead td{font-weight:600}
.err{background:#fde2e1;padding:.4rem .6rem;border-radius:4px}
.v-na{background:#fff1c2}.banner{background:#fff1c2;border:1px solid #e0b400;border-radius:4px;padding:.4rem .8rem;margin:.6rem 0}
.banner li{margin:.15rem 0}
@media (max-width:800px){.lbfams{flex-direction:column}}
"""


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _drawn(figure: figures.Drawn, alt: str) -> str:
    """A drawn figure in the page: a PNG as an image, an SVG chart (its markup) as it is."""
    return figure if isinstance(figure, str) else _img(figure, alt)


def _fmt(v: float, digits: int = 3) -> str:
    return "–" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


# references to documents that are not part of the report (design notes, style guides, sibling
# folders): "DESIGN.md 6.2", "see STYLE.md", "../shared/x"; with the "; " or ", " before them
_OUTSIDE_REFERENCE = re.compile(
    r"(?:[ \t]*[;,])?[ \t]*\n?[ \t]*(?:\bsee[ \t]+)?"
    r"(?:(?:\.{1,2}/)*(?:[\w.-]+/)*[\w-]+\.md\b(?:,?[ \t]+(?:section[ \t]+|§[ \t]*)?\d+(?:\.\d+)*)?"
    r"|(?:\.\./)+[\w./-]*[\w/])"
)


def strip_outside_references(text: str) -> str:
    """``text`` without references to documents outside the report and the repository
    (``(Hooker et al. 2019; DESIGN.md 6.2)`` -> ``(Hooker et al. 2019)``; an emptied
    parenthesis goes too)."""
    out = _OUTSIDE_REFERENCE.sub("", text)
    out = re.sub(r"\([ \t]*[;,][ \t]*", "(", out)
    out = re.sub(r"[ \t]*[;,][ \t]*\)", ")", out)
    return re.sub(r"[ \t]*\([ \t]*\)", "", out)


_CODE = re.compile(
    r"``(?P<lit>.+?)``"  # ``literal``
    r"|:[\w:-]+:`(?P<role>[^`]+)`"  # :func:`name`, :py:mod:`name`: the role dropped
    r"|(?<![\w`])`(?P<ref>[^`\n]+)`_{0,2}(?![\w`])"  # `interpreted text`, `link`_
)
_STRONG = re.compile(r"(?<![\w*])\*\*(?=\S)(.+?)(?<=\S)\*\*(?![\w*])")
_EMPH = re.compile(r"(?<![\w*])\*(?=[A-Za-z])([^*\n]*?[A-Za-z0-9.])\*(?![\w*])")


def render_inline(text: str) -> str:
    """One line or paragraph of docstring markup (reStructuredText) as HTML: ``code`` and
    roles (``:func:`x```) as ``<code>``, ``*emphasis*``, ``**strong**``; everything else
    escaped, references to outside documents removed."""
    text = strip_outside_references(text).replace("\\ ", "")  # "``x``\\ s": RST's joiner
    codes: list[str] = []

    def code(m: re.Match[str]) -> str:
        body = m.group("lit") or m.group("role") or m.group("ref") or ""
        if m.group("role") is not None:  # :func:`~a.b` -> b; :ref:`title <target>` -> title
            body = re.sub(r"\s*<[^>]*>$", "", body).strip()
            body = body.rsplit(".", 1)[-1] if body.startswith("~") else body
        codes.append(f"<code>{html.escape(body.lstrip('~'))}</code>")
        return f"\0{len(codes) - 1}\0"

    out = html.escape(_CODE.sub(code, text))
    out = _STRONG.sub(r"<strong>\1</strong>", out)
    out = _EMPH.sub(r"<em>\1</em>", out)
    return re.sub("\0(\\d+)\0", lambda m: codes[int(m.group(1))], out)


def render_description(text: str) -> str:
    """A benchmark's description (its docstring) as HTML paragraphs: indentation removed,
    blank lines separate paragraphs, ``- item`` lines make a list, inline markup as in
    :func:`render_inline`."""
    parts = []
    for para in re.split(r"\n\s*\n", inspect.cleandoc(text or "")):
        lines = [line.strip() for line in para.strip().splitlines()]
        if not lines or not lines[0]:
            continue
        if re.match(r"[-*] ", lines[0]):
            items: list[str] = []
            for line in lines:
                if re.match(r"[-*] ", line):
                    items.append(line[2:])
                else:
                    items[-1] += " " + line
            parts.append("<ul>" + "".join(f"<li>{render_inline(i)}</li>" for i in items) + "</ul>")
        else:
            parts.append(f"<p>{render_inline(' '.join(lines))}</p>")
    return "".join(parts)


def _scrub(value: Any) -> Any:
    """``value`` (JSON-like) with :func:`strip_outside_references` applied to every string."""
    if isinstance(value, str):
        return strip_outside_references(value)
    if isinstance(value, Mapping):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def scroll_tables(page: str) -> str:
    """Every ``<table>`` of ``page`` in a container that scrolls sideways (a wide table is
    never cut off at the right, nor widens the page)."""
    page = re.sub(r"<table\b", "<div class=scroll><table", page)
    return page.replace("</table>", "</table></div>")


def report_colors(manifest: Mapping[str, Any], table: pd.DataFrame) -> dict[str, str]:
    """The report's one model -> colour mapping (every figure uses it): the run's models
    sorted, then the table's other series (pairs, family aggregates)."""
    others = table["model"].dropna().astype(str).unique() if "model" in table else ()
    return figures.model_colors(manifest.get("models", {}) or {}, others)


def score_cell(row: pd.Series) -> str:
    groups = pd.to_numeric(row.get("n_groups", 1), errors="coerce")  # numpy or Python numbers
    seeds = f" · {int(groups)} seeds" if pd.notna(groups) and groups > 1 else ""
    return f"{_fmt(row['value'])} [{_fmt(row['ci_low'])}, {_fmt(row['ci_high'])}] <span class=muted>n={int(row['n'])}{seeds}</span>"


def score_table(df: pd.DataFrame, index: list[str]) -> str:
    """Pivot: rows = index columns, columns = metric (with direction), cells = value [CI] n."""
    scalar = df[df["step"].isna()] if "step" in df else df
    if scalar.empty:
        return ""
    metrics = list(dict.fromkeys(scalar["metric"]))
    directions = scalar.groupby("metric")["direction"].first().to_dict()
    arrow = {"higher": " ↑", "lower": " ↓", "none": ""}
    head = "".join(f"<th class=l>{html.escape(c)}</th>" for c in index)
    head += "".join(f"<th>{html.escape(m)}{arrow.get(directions[m], '')}</th>" for m in metrics)
    body = []
    for key, g in scalar.groupby(index, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        cells = "".join(f"<td class=l>{html.escape(str(k))}</td>" for k in key)
        by_metric = {r["metric"]: r for _, r in g.iterrows()}
        cells += "".join(
            f"<td>{score_cell(by_metric[m]) if m in by_metric else ''}</td>" for m in metrics
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def gradcam_layer_cell(m: Mapping[str, Any]) -> str:
    """A model's GradCAM layer with the rule that chose it and its spatial size."""
    size = m.get("gradcam_layer_size")
    where = f"{size[0]}x{size[1]}" if isinstance(size, list) and len(size) == 2 else "?"
    rule = m.get("gradcam_rule") or "last_feature_map"
    return f"{m.get('gradcam_layer')} ({rule}, {where})"


def map_settings_text(manifest: Mapping[str, Any]) -> str:
    """One line: the map settings the run used (per-sample abs, channel reduction, ...)."""
    s = manifest.get("map_settings")
    if not isinstance(s, Mapping):
        return ""
    preset = (manifest.get("profile") or {}).get("saliency", {}).get("preset", "binsal")
    parts = ", ".join(f"{k} = {v}" for k, v in s.items())
    return f"<p class=muted>Map settings (preset {html.escape(str(preset))}): {html.escape(parts)}.</p>"


def accuracy_section(manifest: Mapping[str, Any], colors: Mapping[str, str] | None = None) -> str:
    rows = []
    one_by_one = []
    for name, m in manifest["models"].items():
        cls = "bnn" if m["family"] == "BNN" else "fp"
        rows.append(
            f"<tr><td class=l>{html.escape(name)}</td><td class='l {cls}'>{m['family']}</td>"
            f"<td class=l>{html.escape(m.get('pair') or '')}</td><td class=l>{html.escape(m.get('description') or '')}</td>"
            f"<td>{_fmt(100 * m['test_accuracy'], 1)} %</td><td>{m.get('params', '')}</td>"
            f"<td class=l>{html.escape(gradcam_layer_cell(m))}</td></tr>"
        )
        if m.get("gradcam_layer_size") == [1, 1]:
            one_by_one.append(name)
    for name in one_by_one:
        m = manifest["models"][name]
        rows.append(
            f"<tr class=warn><td class=l colspan=7>warning: the GradCAM layer of "
            f"{html.escape(name)} ({html.escape(str(m.get('gradcam_layer')))}) is 1x1: its "
            "GradCAM map is one value per image, constant once upsampled and blank once "
            "min-max normalised</td></tr>"
        )
    fams = {n: m["family"] for n, m in manifest["models"].items()}
    acc = {n: m["test_accuracy"] for n, m in manifest["models"].items()}
    return (
        "<h2 id=models>Models and test accuracy</h2>"
        "<p class=muted>Saliency of a model that did not learn is meaningless: read every score "
        "next to its model's accuracy.</p>"
        f"{map_settings_text(manifest)}"
        "<div class=side><table><thead><tr><th class=l>model</th><th class=l>family</th><th class=l>pair</th>"
        "<th class=l>architecture</th><th>test accuracy</th><th>parameters</th>"
        f"<th class=l>GradCAM layer (rule, size)</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f"<figure>{_img(figures.accuracy_plot(acc, fams, colors), 'test accuracy per model')}"
        "<figcaption>Test accuracy per model (each model in its colour, as in every figure; "
        "hatched: BNN).</figcaption></figure></div>"
    )


HEADLINE = ("rank_correlation", "spearman", ("gradient", "smoothgrad", "gradcam"))


def replicates_section(
    manifest: Mapping[str, Any], table: pd.DataFrame, per_seed: pd.DataFrame | None
) -> str:
    """Seed-to-seed spread: each model's test accuracy per training seed, and the headline
    score (FP-vs-BNN Spearman of the paper's three methods) per seed next to its merged
    hierarchical interval. Empty for a run with one seed."""
    reps = manifest.get("replicates") or {}
    seeds = [str(s) for s in reps.get("seeds", [])]
    if len(seeds) < 2:
        return ""
    by_seed = reps.get("models", {})
    head = "".join(f"<th>seed {html.escape(s)}</th>" for s in seeds)
    rows = []
    for name in manifest.get("models", {}):
        accs = [by_seed.get(s, {}).get(name, {}).get("test_accuracy") for s in seeds]
        ok = [a for a in accs if isinstance(a, int | float)]
        cells = "".join(
            f"<td>{_fmt(100 * a, 1) + ' %' if a is not None else '-'}</td>" for a in accs
        )
        spread = f"{_fmt(100 * (max(ok) - min(ok)), 1)} pp" if len(ok) > 1 else "-"
        rows.append(f"<tr><td class=l>{html.escape(name)}</td>{cells}<td>{spread}</td></tr>")
    acc_table = (
        f"<table><thead><tr><th class=l>model</th>{head}<th>spread (max - min)</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    bench, metric, methods = HEADLINE
    score_rows = []
    if per_seed is not None and len(per_seed):

        def headline(df: pd.DataFrame) -> pd.DataFrame:
            return df[
                (df["benchmark"] == bench)
                & (df["metric"] == metric)
                & (df["family"] == "FP-BNN")
                & (df["method"].isin(methods))
            ]

        sel, merged = headline(per_seed), headline(table)
        for (model, method), grp in sel.groupby(["model", "method"], sort=False):
            vals = {str(s): v for s, v in zip(grp["replicate_seed"], grp["value"], strict=True)}
            cells = "".join(f"<td>{_fmt(vals[s]) if s in vals else '-'}</td>" for s in seeds)
            m = merged[(merged["model"] == model) & (merged["method"] == method)]
            both = score_cell(m.iloc[0]) if len(m) else "-"
            n = f"{int(m.iloc[0]['n_groups'])} seeds, {int(m.iloc[0]['n'])} units" if len(m) else ""
            score_rows.append(
                f"<tr><td class=l>{html.escape(str(model))}</td><td class=l>{html.escape(str(method))}</td>"
                f"{cells}<td>{both}</td><td>{n}</td></tr>"
            )
    score_table_html = (
        f"<table><thead><tr><th class=l>pair</th><th class=l>method</th>{head}"
        "<th>merged [95 % CI]</th><th>n</th></tr></thead>"
        f"<tbody>{''.join(score_rows)}</tbody></table>"
        if score_rows
        else ""
    )
    return (
        "<h2 id=replicates>Training-seed replicates</h2>"
        f"<p class=muted>Every trained model was trained with {len(seeds)} seeds "
        f"({', '.join(seeds)}) and every score measured on each; a score's interval resamples "
        "the seeds, then the images within each seed (hierarchical bootstrap), so it covers what "
        "retraining would change. Test accuracy per seed:</p>"
        f"{acc_table}"
        "<p class=muted>The headline score, FP-vs-BNN Spearman rank correlation of the maps "
        "(per seed, then merged):</p>"
        f"{score_table_html}"
    )


def benchmark_jobs(
    plots: Any, df: pd.DataFrame, colors: Mapping[str, str] | None = None
) -> list[figures.FigureJob]:
    """The figures of one benchmark, to draw (:func:`figures.draw_jobs`): one per declared
    plot with rows, or the generic ones when it declares none."""
    if not plots:
        return figures.generic_jobs(df, colors)
    out: list[figures.FigureJob] = []
    for spec in plots:
        sub = df[df["metric"] == spec.metric]
        if sub.empty:
            continue
        title = spec.title or spec.metric
        ylabel = spec.ylabel or spec.metric
        kwargs: dict[str, Any] = {"df": sub, "metric": spec.metric, "title": title}
        kwargs |= {"ylabel": ylabel, "colors": colors}
        if spec.kind == "curve":
            kwargs |= {"xlabel": spec.xlabel, "hue": spec.hue}
        out.append((f"{title} (95 % CI)", "curve" if spec.kind == "curve" else "point", kwargs))
    return out


def benchmark_figures(
    plots: Any, df: pd.DataFrame, colors: Mapping[str, str] | None = None
) -> list[tuple[str, figures.Drawn]]:
    return [(job[0], figures.draw_job(job)) for job in benchmark_jobs(plots, df, colors)]


def benchmark_section(
    name: str,
    title: str,
    description: str,
    df: pd.DataFrame,
    plots: Any = (),
    colors: Mapping[str, str] | None = None,
    drawn: Sequence[tuple[str, figures.Drawn | Exception]] | None = None,
) -> str:
    """One benchmark's section; ``drawn``: its figures already drawn (caption, and PNG, SVG
    markup or the exception drawing it raised), else they are drawn here."""
    has_pair = (df["pair"].fillna("").astype(str) != "").any()
    index = ["model", "family", "pair", "method"] if has_pair else ["model", "family", "method"]
    if drawn is None:
        drawn = benchmark_figures(plots, df, colors)
    for _, png in drawn:
        if isinstance(png, Exception):
            raise png
    figs = "".join(
        f"<figure>{_drawn(fig, cap)}<figcaption>{html.escape(cap)}</figcaption></figure>"
        for cap, fig in drawn
        if isinstance(fig, bytes | str)
    )
    desc = render_description(description)
    table = (  # collapsed: the figures carry the section, the table is there to look up
        f"<details><summary>every score of {html.escape(name)} ({len(df)} rows, 95 % CIs)"
        f"</summary>{score_table(df, index)}</details>"
    )
    return f"<h2 id='{name}'>{html.escape(title)}</h2>{desc}{figs}{table}"


INLINE_QUALITATIVE = ("gradient", "smoothgrad", "gradcam")  # the paper's three methods


def qualitative_jobs(qual: Qualitative | None) -> list[figures.FigureJob]:
    """The paper-style grids to draw (:func:`figures.draw_jobs`), one per method with maps,
    captioned by the method's name."""
    if qual is None or len(qual.images) == 0:
        return []
    return [
        (
            method,
            "grid",
            {
                "images": qual.images,
                "maps": dict(maps),
                "correct": dict(qual.correct),
                "families": dict(qual.families),
                "title": method,
                "masks": qual.masks,
            },
        )
        for method, maps in qual.maps.items()
        if maps
    ]


def qualitative_section(
    qual: Qualitative | None,
    figures_dir: Path | None = None,
    drawn: Sequence[figures.Drawn | Exception] | None = None,
) -> str:
    """The paper-style grids (rows images, columns models grouped FP | BNN), one per method;
    each grid is also written as ``figures_dir/qualitative_<method>.png``. With a figures
    folder only the paper's three methods are embedded and the others linked (the page stays
    light); without one, every grid is embedded. ``drawn``: the PNGs of
    :func:`qualitative_jobs` already drawn (or the exception drawing one raised), else they
    are drawn here."""
    jobs = qualitative_jobs(qual)
    if not jobs:
        return ""
    assert qual is not None
    if drawn is None:
        drawn = [figures.draw_job(job) for job in jobs]
    grids: list[tuple[str, str, bytes]] = []
    for (method, _, _), png in zip(jobs, drawn, strict=True):
        if isinstance(png, Exception):
            raise png
        if not isinstance(png, bytes):
            raise TypeError(f"the {method} grid was drawn as {type(png).__name__}, not a PNG")
        if figures_dir is not None:
            figures_dir.mkdir(parents=True, exist_ok=True)
            (figures_dir / f"qualitative_{method}.png").write_bytes(png)
        grids.append((method, qual.docs.get(method, ""), png))
    return _qualitative_html(grids, figures_dir.name if figures_dir is not None else None)


def _qualitative_html(grids: Sequence[tuple[str, str, bytes | Path]], link_dir: str | None) -> str:
    """The section from (method, one-line doc, PNG bytes or file) per grid: with ``link_dir``
    (the figures folder, relative to the page) only :data:`INLINE_QUALITATIVE` embedded."""
    parts = [
        "<h2 id=qualitative>Qualitative maps</h2><p class=muted>Rows: evaluation images "
        "(object outline in white); columns: models grouped FP | BNN; |map| scaled per map; "
        "'correct' marks a correct prediction, as in the paper's Figures 1-3.</p>"
    ]
    linked = []
    for method, doc, png in grids:
        if link_dir is not None and method not in INLINE_QUALITATIVE:
            href = f"{link_dir}/qualitative_{method}.png"
            linked.append(
                f"<li><a href='{html.escape(href)}'>{html.escape(method)}</a>"
                f" <span class=muted>{render_inline(doc)}</span></li>"
            )
            continue
        data = figures.palette_png_file(png) if isinstance(png, Path) else png
        parts.append(
            f"<h3>{html.escape(method)}</h3><p class=muted>{render_inline(doc)}</p>"
            f"{_img(data, method)}"
        )
    if linked:
        parts.append(
            "<h3>The other methods</h3><p class=muted>Their grids are files next to this page "
            f"(<code>{html.escape(link_dir or '')}/</code>):</p>"
            f"<ul>{''.join(linked)}</ul>"
        )
    return "".join(parts)


def qualitative_from_files(
    figures_dir: Path, page_dir: Path, methods: list[str], docs: Mapping[str, str] | None = None
) -> str:
    """The qualitative section from the grids a run already wrote (``qualitative_<method>.png``
    in ``figures_dir``; the images and maps behind them are not in a run folder), linked
    relative to the page's folder ``page_dir``; ``methods`` gives the order, ``docs`` each
    method's note (the manifest's ``method_docs``)."""
    files = {p.name[len("qualitative_") : -len(".png")]: p for p in figures_dir.glob("*.png")}
    files = {m: p for m, p in files.items() if p.name.startswith("qualitative_")}
    if not files:
        return ""
    order = [m for m in methods if m in files] + sorted(set(files) - set(methods))
    docs = dict(docs or {})
    link = Path(os.path.relpath(figures_dir.resolve(), page_dir.resolve())).as_posix()
    return _qualitative_html([(m, docs.get(m, ""), files[m]) for m in order], link)


def claims_section(
    table: pd.DataFrame,
    manifest: Mapping[str, Any] | None = None,
    claims_file: str | Path | None = None,
) -> str:
    """The paper's claims (and those of a user's ``claims_file``), each measure with its level
    (pair or family), measured numbers, 95 % CIs, the test that decided it, its verdict (with
    the reason where a side is missing) and its power line
    (``binsal.reports.claims.paper_claims``, with the manifest's accuracy floors); says so when
    that module is unavailable."""
    head = "<h2 id=claims>The paper's claims, measured</h2>"
    try:
        # not "from binsal.reports import claims", which finds a stale attribute: ImportError
        import binsal.reports.claims as cl
    except ImportError as exc:
        return (
            head + f"<p class=err>Claims unavailable in this build ({html.escape(str(exc))}).</p>"
        )
    try:
        claims = cl.paper_claims(table, manifest=manifest, claims_file=claims_file)
        floors = cl.model_floors(manifest)
    except Exception as exc:  # noqa: BLE001 - a report section must not sink the report
        reraise_if_interrupted(exc)
        return head + f"<p class=err>Claims could not be evaluated: {html.escape(repr(exc))}</p>"
    if not claims:
        return (
            head + "<p class=muted>This run has no FP and BNN models to compare: no claim can be "
            "evaluated.</p>"
        )
    overall = cl.claim_verdicts(claims)
    margins = sorted({float(c["margin"]) for c in claims if c.get("margin") is not None})
    margin = "/".join(f"{m:g}" for m in margins) or f"{cl.SIMILARITY_MARGIN:g}"
    left_out = sorted({str(m) for c in claims for m in c.get("left_out") or ()})
    factor = next((f["factor"] for f in floors.values()), cl.ACCURACY_FLOOR_FACTOR)
    unchecked = sorted(n for n, f in floors.items() if f["num_classes"] is None)
    legend = (
        "<p class=muted>Each claim is split into measures, each measured on every matched pair "
        "(level <b>pair</b>), or, in a run without a matched pair, on the two families (level "
        "<b>family</b>: all FP models against all BNN models, models as the unit: each side is the "
        "mean over its family's models, with a Student-t 95 % interval over the models, never "
        "narrower than their mean own CI; a side with one model keeps that model's own CI over "
        "images, hover a cell). "
        "Bracketed: each side's 95 % CI (as results.csv's ci_method says). Each verdict names its test. "
        f"<b>{html.escape(cl.CI_TEST)}</b> (higher / lower / different): the two 95 % CIs "
        "disjoint in the predicted order: supported; in the opposite order: not supported; "
        "overlapping: inconclusive. "
        f'<b>TOST non-inferiority, margin {margin}</b> (claim 1, "alike"): on the difference '
        "d = BNN side - FP side, with se_d = sqrt(se_fp² + se_bnn²) and each se = 95 % CI width "
        "/ (2 × 1.96) (normal approximation): the 90 % CI of d above "
        f"-{margin}: supported; the 95 % CI of d entirely below -{margin}: not supported; "
        'otherwise inconclusive. Overlapping CIs alone never make "alike" supported (absence '
        f"of a difference is not evidence of sameness). The margin {margin} on the Spearman "
        'scale is a "small" correlation difference by Cohen\'s (1988) convention. '
        f"<b>Not evaluable</b>: the measure involves a model whose test accuracy is below its "
        f"floor, {factor:g} × chance (1 / classes; capped halfway between chance and 1).</p>"
        '<p class=muted><b>Power</b>: "detectable" is the effect the measure\'s rule finds '
        "with 80 % power at alpha 0.05 at the current n, from the observed standard errors "
        "(CI rule: the smallest true difference it calls, 1.96 (se_fp + se_bnn) + 0.84 se_d; "
        "non-inferiority: the smallest margin within which a true difference of 0 is shown, "
        '(1.645 + 0.84) se_d). "n to decide": for an inconclusive verdict, about how many '
        "images (or, with several training seeds, seeds scaled by the same factor) would "
        "decide it if the observed difference is the true one, assuming se ~ 1/sqrt(n): an "
        "approximation for planning.</p>"
    )
    if unchecked:
        legend += (
            "<p class=muted>Accuracy floor not checked for "
            f"{html.escape(', '.join(unchecked))}: the manifest does not give the number of "
            "classes.</p>"
        )
    if left_out:
        legend += (
            "<p class=muted>Left out of their family (below their accuracy floor): "
            f"{html.escape(', '.join(left_out))}.</p>"
        )
    parts = [head, legend]
    order = list(dict.fromkeys((c.get("claim_id", c["claim"]), c["claim"]) for c in claims))
    glance = []
    for cid, text in order:
        vs = [c["verdict"] for c in claims if c.get("claim_id", c["claim"]) == cid]
        v = overall.get(cid, "")
        badge = f"<span class='verdict {_verdict_class(v)}'>{html.escape(v)}</span> " if v else ""
        na = vs.count(cl.NOT_EVALUABLE)
        glance.append(
            f"<li>{badge}<b>Claim {html.escape(str(cid))}</b>: {html.escape(text)} "
            f"<span class=muted>({vs.count('supported')} of {len(vs)} measures supported, "
            f"{vs.count('not supported')} not supported, {vs.count('inconclusive')} "
            f"inconclusive{f', {na} not evaluable' if na else ''})</span></li>"
        )
    parts.insert(1, f"<div class=glance><ul>{''.join(glance)}</ul></div>")
    for cid, text in order:
        rows = [c for c in claims if c.get("claim_id", c["claim"]) == cid]
        v = overall.get(cid, "")
        badge = f" <span class='verdict {_verdict_class(v)}'>{html.escape(v)}</span>" if v else ""
        body = []
        for c in rows:
            fp_label = c.get("fp_label", "FP")
            bnn_label = c.get("bnn_label", "BNN")
            verdict_text = str(c["verdict"])
            if c.get("below_floor"):
                verdict_text += f" ({', '.join(map(str, c['below_floor']))})"
            reason = (
                f" <span class=muted>({html.escape(str(c['reason']))})</span>"
                if c.get("reason")
                else ""
            )
            body.append(
                f"<tr><td class=l title='{html.escape(_level_title(c))}'>{html.escape(_level_text(c))}</td>"
                f"<td class=l>{html.escape(str(c['measure']))}</td>"
                f"<td title='{html.escape(_side_title(fp_label, c.get('fp_ci_over')))}'>{_ci_text(c.get('fp'), c.get('fp_ci'))}</td>"
                f"<td title='{html.escape(_side_title(bnn_label, c.get('bnn_ci_over')))}'>{_ci_text(c.get('bnn'), c.get('bnn_ci'))}</td>"
                f"<td class=l>{html.escape(str(c.get('expected', '')))}</td>"
                f"<td class=l title='{html.escape(str(c.get('rule', '')))}'>{html.escape(str(c.get('test', '')))}</td>"
                f"<td class='l verdict {_verdict_class(c['verdict'])}'>{html.escape(verdict_text)}{reason}</td>"
                f"<td>{_n_text(c)}</td>"
                f"<td>{_fmt(_num(c.get('mdd')))}</td><td>{_n_needed(c)}</td></tr>"
            )
        parts.append(
            f"<h3>Claim {html.escape(str(cid))}: {html.escape(text)}{badge}</h3>"
            "<table><thead><tr><th class=l>level</th><th class=l>measure</th><th>FP side [95 % CI]</th>"
            "<th>BNN side [95 % CI]</th><th class=l>claim expects</th><th class=l>test</th>"
            "<th class=l>verdict</th><th>n</th><th title='effect the rule detects with 80 % power "
            "at this n'>detectable (80 % power)</th><th title='approximate; se ~ 1/sqrt(n)'>"
            f"n to decide (approx.)</th></tr></thead><tbody>{''.join(body)}</tbody></table>"
        )
    parts.append(
        "<p class=muted>For claim 1 both sides are similarities: the FP side holds the reference "
        "(hover a cell for what it is, a test for its rule).</p>"
    )
    return "".join(parts)


def _level_text(c: Mapping[str, Any]) -> str:
    """The level a measure was evaluated at: "pair NAME" or "family"."""
    if c.get("level") == "family":
        return "family"
    return f"pair {c.get('pair', '')}".strip()


def _level_title(c: Mapping[str, Any]) -> str:
    fp = ", ".join(map(str, c.get("fp_models") or [c.get("fp_model", "")]))
    bnn = ", ".join(map(str, c.get("bnn_models") or [c.get("bnn_model", "")]))
    out = f"FP: {fp}; BNN: {bnn}"
    if c.get("left_out"):
        out += f"; left out (below floor): {', '.join(map(str, c['left_out']))}"
    return out


def _side_title(label: Any, over: Any) -> str:
    return f"{label}; CI: {over}" if over else str(label)


def _n_text(c: Mapping[str, Any]) -> str:
    n, unit = int(c.get("n") or 0), str(c.get("unit") or "images")
    return (
        str(n) if unit == "images" or not n else f"{n} <span class=muted>{html.escape(unit)}</span>"
    )


def floor_banner(manifest: Mapping[str, Any]) -> str:
    """A banner naming every model below its accuracy floor (its claims are not evaluable);
    empty when none is, or when the claims module is unavailable."""
    try:
        from binsal.reports.claims import models_below_floor
    except ImportError:
        return ""
    below = models_below_floor(manifest)
    if not below:
        return ""
    items = []
    for name, f in below.items():
        chance = 1.0 / f["num_classes"]
        how = (
            f"{f['factor']:g} x chance"
            if math.isclose(f["floor"], f["factor"] * chance)
            else "halfway between chance and 1"
        )
        items.append(
            f"<li>model {html.escape(name)}: test accuracy {f['accuracy']:.2f} &lt; floor "
            f"{f['floor']:.2f} ({how}): its claims are not evaluable</li>"
        )
    return (
        "<div class=banner role=alert><b>Models below their accuracy floor</b> (saliency of a "
        f"model that did not learn is meaningless):<ul>{''.join(items)}</ul></div>"
    )


def _verdict_class(v: str) -> str:
    return {"supported": "v-supported", "not supported": "v-not"}.get(
        v, "v-na" if v.startswith("not evaluable") else "v-inconclusive"
    )


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _n_needed(c: Mapping[str, Any]) -> str:
    need, factor = c.get("n_needed"), c.get("n_factor")
    if c.get("verdict") != "inconclusive":
        return ""
    if need is None or factor is None:
        return "–"
    seeds = c.get("seeds_needed")
    if seeds is not None:
        return f"≈ {int(seeds)} seeds <span class=muted>(×{float(factor):.1f})</span>"
    unit = str(c.get("unit") or "images")
    what = "" if unit == "images" else f" {html.escape(unit)}"
    return f"≈ {int(need)}{what} <span class=muted>(×{float(factor):.1f})</span>"


def _ci_text(v: Any, ci: Any) -> str:
    try:
        lo, hi = ci
    except (TypeError, ValueError):
        lo = hi = float("nan")
    try:
        v = float(v)
    except (TypeError, ValueError):
        v = float("nan")
    return f"{_fmt(v)} <span class=muted>[{_fmt(float(lo))}, {_fmt(float(hi))}]</span>"


def _returned(result: str | bytes | Exception) -> str:
    """A section drawn in a worker: its markup, or the exception drawing it raised, raised."""
    if isinstance(result, Exception):
        raise result
    if not isinstance(result, str):
        raise TypeError(f"a section was drawn as {type(result).__name__}, not markup")
    return result


def _safe(render: Any, name: str) -> str:
    try:
        return render()
    except Exception as exc:  # noqa: BLE001 - one broken section must not sink the report
        reraise_if_interrupted(exc)
        return f"<h2 id='{html.escape(name)}'>{html.escape(name)}</h2><p class=err>This section could not be rendered: {html.escape(repr(exc))}</p>"


def render_report(
    table: pd.DataFrame,
    manifest: dict[str, Any],
    qualitative: Qualitative | None = None,
    board: pd.DataFrame | None = None,
    figures_dir: Path | None = None,
    per_seed: pd.DataFrame | None = None,
    qualitative_html: str = "",
    claims_file: str | Path | None = None,
) -> str:
    """The report page. Titles, descriptions and plots of each benchmark come from the
    declarations in ``manifest["benchmarks"]`` (written by the pipeline), not from code.
    ``qualitative_html``: the qualitative section when there is no ``qualitative`` to draw
    (:func:`qualitative_from_files`). ``claims_file``: a user's claims TOML, evaluated after
    the paper's (``binsal.reports.claims.load_claims``). Every figure draws a model in the colour
    :func:`report_colors` gives it; every table scrolls sideways in its own box."""
    from binsal.reports.leaderboard import leaderboard, leaderboard_section, pareto_jobs

    table = table.copy()
    if "pair" in table:
        table["pair"] = table["pair"].fillna("")
    declared: Mapping[str, Any] = manifest.get("benchmarks", {}) or {}
    colors = report_colors(manifest, table)
    names = list(dict.fromkeys(table["benchmark"]))
    subs = {name: table[table["benchmark"] == name] for name in names}
    # every benchmark's figures drawn together, in worker processes (figures.draw_jobs): most
    # of the report's time
    jobs: dict[str, list[figures.FigureJob]] = {}
    for name in names:
        if name != "claim_robustness":
            try:
                jobs[name] = benchmark_jobs(plot_specs(declared.get(name, {})), subs[name], colors)
            except Exception:  # noqa: BLE001 - its section draws them and shows the error
                reraise_if_interrupted()
                continue
    grid_jobs = qualitative_jobs(qualitative)
    titles = {name: declared.get(name, {}).get("title") or name for name in names}
    # the claim robustness table (thousands of rows summarised as verdicts per setting) is
    # drawn in the workers beside the figures
    robust_jobs: list[figures.FigureJob] = []
    if "claim_robustness" in subs:
        title = titles["claim_robustness"]
        kwargs = {"table": subs["claim_robustness"], "manifest": manifest, "title": title}
        robust_jobs.append(("robustness", "robustness", kwargs))
    if board is None:
        board = leaderboard(table, manifest)
    try:
        cost_jobs = pareto_jobs(board)
    except Exception:  # noqa: BLE001 - the leaderboards' section draws them and shows the error
        reraise_if_interrupted()
        cost_jobs = []
    # the longest jobs first (robustness, then the qualitative grids) so that the workers end
    # together
    flat = robust_jobs + grid_jobs + [j for js in jobs.values() for j in js] + cost_jobs
    pending = figures.start_drawing(flat)
    # while the workers draw: the claims section (the leaderboards wait for their Pareto plots)
    claims = _safe(lambda: claims_section(table, manifest, claims_file), "claims")
    results = iter(pending())
    robust = ""
    for _ in robust_jobs:
        robust = _safe(partial(_returned, next(results)), "claim robustness")
    grids = [next(results) for _ in grid_jobs]
    drawn = {name: [(job[0], next(results)) for job in js] for name, js in jobs.items()}
    pareto = [next(results) for _ in cost_jobs]
    boards = _safe(lambda: leaderboard_section(board, pareto or None), "leaderboards")
    sections = []
    for name in names:
        decl = declared.get(name, {})
        title = titles[name]
        desc = decl.get("description", "")
        plots = plot_specs(decl)
        sub = subs[name]
        if name == "claim_robustness":
            sections.append(robust)
            continue
        sections.append(
            _safe(
                lambda n=name, t=title, d=desc, s=sub, p=plots: benchmark_section(
                    n, t, d, s, p, colors, drawn.get(n)
                ),
                name,
            )
        )
    libs = manifest.get("library_versions", {})
    versions = ", ".join(f"{k} {v}" for k, v in libs.items() if v != "absent")
    nav = "".join(
        f"<a href='#{html.escape(n)}' title='{html.escape(titles[n])}'>{html.escape(n)}</a>"
        for n in names
    )
    qual = (
        _safe(lambda: qualitative_section(qualitative, figures_dir, grids), "qualitative")
        if qualitative is not None or not qualitative_html
        else qualitative_html
    )
    env = manifest.get("environment", {})
    page = f"""<!doctype html><html lang=en><head><meta charset=utf-8>
<meta name=viewport content="width=device-width, initial-scale=1">
<title>binsal report {html.escape(manifest["run_id"])}</title><style>{CSS}</style></head><body>
<h1>binsal: saliency on binarized vs full-precision networks</h1>
<p class=muted>run <b>{html.escape(manifest["run_id"])}</b> · profile <b>{html.escape(manifest["profile"]["name"])}</b>
· {html.escape(manifest.get("finished_utc", ""))} · {html.escape(str(env.get("cpu")))}
· commit {html.escape(str(env.get("git_commit")))}<br>{html.escape(versions)}</p>
{_safe(lambda: floor_banner(manifest), "accuracy floor")}
<p class="nav"><a href=#summary>summary</a><a href=#models>models</a><a href=#replicates>replicates</a><a href=#claims>claims</a>{nav}<a href=#leaderboards>leaderboards</a><a href=#qualitative>qualitative</a><a href=#manifest>manifest</a></p>
<section id=summary class=summary>
{_safe(lambda: accuracy_section(manifest, colors), "models")}
{_safe(lambda: replicates_section(manifest, table, per_seed), "replicates")}
{claims}
</section>
{"".join(sections)}
{boards}
{qual}
<h2 id=manifest>Manifest</h2><details><summary>manifest.json (profile, seeds, versions, timings)</summary>
<pre>{html.escape(json.dumps(_scrub(manifest), indent=2, default=str))}</pre></details>
</body></html>"""
    return scroll_tables(page)


def write_report(
    run_dir: Path,
    table: pd.DataFrame,
    manifest: dict[str, Any],
    qualitative: Qualitative | None = None,
) -> Path:
    """``report.html`` (and ``leaderboard.csv``, ``figures/``) in ``run_dir``; returns its path."""
    from binsal.reports.leaderboard import write_leaderboard

    try:
        board = write_leaderboard(run_dir, table, manifest)
    except Exception as exc:  # noqa: BLE001 - the report still renders without it
        reraise_if_interrupted(exc)
        print(f"binsal: warning: leaderboard failed: {exc!r}")
        board = None
    path = Path(run_dir) / "report.html"
    per_seed = None
    if (Path(run_dir) / "replicates.csv").is_file():  # the pipeline's REPLICATES_FILE
        per_seed = pd.read_csv(Path(run_dir) / "replicates.csv")
    page = render_report(
        table, manifest, qualitative, board, Path(run_dir) / "figures", per_seed=per_seed
    )
    path.write_text(page, encoding="utf-8")
    return path


def rerender(run_dir: Path, out: Path | None = None, claims_file: str | Path | None = None) -> Path:
    """Render the report of a finished run folder again with the current code: from its
    ``results.csv``, ``manifest.json`` (and ``replicates.csv``); the qualitative grids are the
    PNGs the run wrote in ``figures/`` (its images and maps are not kept in the folder).
    ``claims_file``: a user's claims TOML, checked first (BinsalError) and evaluated after the
    paper's claims. Writes ``out`` (default ``run_dir/report.html``) and nothing else; returns
    its path."""
    from binsal.core.errors import BinsalError

    if claims_file is not None:
        from binsal.reports.claims import load_claims

        load_claims(claims_file)  # a bad file: one line, before any work

    run_dir = Path(run_dir)
    missing = [f for f in ("results.csv", "manifest.json") if not (run_dir / f).is_file()]
    if missing:
        raise BinsalError(f"{run_dir} is not a finished run folder: no {' or '.join(missing)}")
    try:
        table = pd.read_csv(run_dir / "results.csv")
        manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
        per_seed = (
            pd.read_csv(run_dir / "replicates.csv")
            if (run_dir / "replicates.csv").is_file()
            else None
        )
    except (OSError, ValueError) as exc:  # unreadable CSV or JSON
        raise BinsalError(f"cannot read the run folder {run_dir}: {exc}") from None
    out = Path(out) if out is not None else run_dir / "report.html"
    methods = [str(m) for m in dict.fromkeys(table["method"].dropna())]
    qual = qualitative_from_files(
        run_dir / "figures", out.parent, methods, manifest.get("method_docs") or {}
    )
    page = render_report(
        table, manifest, per_seed=per_seed, qualitative_html=qual, claims_file=claims_file
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
