"""Similarity of two map batches, image by image: rank, linear, top-k, structural and HOG.

Used by the model- and data-randomization sanity checks (Adebayo et al. 2018), the FP-vs-BNN
comparison and class sensitivity (Nie et al. 2018). Whether high similarity is good depends on the
benchmark (bad in a randomization test, neutral for FP vs BNN), so every class here declares
``direction = "none"`` and the benchmark states its own.

Undefined values are NaN, never an exception: a correlation with a constant map (zero variance),
and HOG-Pearson when either map is constant (an all-zero HOG descriptor). Callers drop NaNs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.stats import kendalltau, rankdata
from skimage.feature import hog
from skimage.metrics import structural_similarity

from binsal.core.errors import InvalidInputError
from binsal.metrics._checks import Direction, as_map_pair, flat, safe_divide
from binsal.metrics._memo import memoized
from binsal.metrics._ranking import count_for_fraction, topk_inclusion
from binsal.metrics.registry import register_metric
from binsal.metrics.transforms import normalize


def _pair(a: np.ndarray, b: np.ndarray, use_abs: bool) -> tuple[np.ndarray, np.ndarray]:
    a_arr, b_arr = as_map_pair(a, b)
    if use_abs:
        return np.abs(a_arr), np.abs(b_arr)
    return a_arr, b_arr


def _rowwise_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    r = safe_divide((xc * yc).sum(axis=1), np.sqrt((xc**2).sum(axis=1) * (yc**2).sum(axis=1)))
    return np.clip(r, -1.0, 1.0)


def pearson(a: np.ndarray, b: np.ndarray, *, use_abs: bool) -> np.ndarray:
    """Pearson correlation of the pixel values of each pair of maps; NaN if either is constant."""
    a_arr, b_arr = _pair(a, b, use_abs)
    return _rowwise_pearson(flat(a_arr), flat(b_arr))


def ranks(maps: np.ndarray, *, use_abs: bool) -> np.ndarray:
    """(N, H*W) average (tied) ranks of each map's pixels (scipy.stats.rankdata), of the abs maps
    or the signed ones; kept by content for the next comparison with the same maps
    (``binsal.metrics._memo``)."""
    x = np.abs(maps) if use_abs else np.asarray(maps)
    return memoized(("ranks",), x, lambda: rankdata(flat(x), axis=1))


def spearman(a: np.ndarray, b: np.ndarray, *, use_abs: bool) -> np.ndarray:
    """Spearman rank correlation, as in Adebayo et al. 2018: Pearson of average (tied) ranks.

    NaN if either map is constant.
    """
    a_arr, b_arr = _pair(a, b, use_abs)
    return _rowwise_pearson(ranks(a_arr, use_abs=False), ranks(b_arr, use_abs=False))


def kendall(a: np.ndarray, b: np.ndarray, *, use_abs: bool) -> np.ndarray:
    """Kendall rank correlation tau-b (scipy.stats.kendalltau); NaN if either map is constant."""
    a_arr, b_arr = _pair(a, b, use_abs)
    x, y = flat(a_arr), flat(b_arr)
    out = np.full(x.shape[0], np.nan)
    for i in range(x.shape[0]):
        if np.ptp(x[i]) > 0 and np.ptp(y[i]) > 0:
            # scipy's _axis_nan_policy decorator hides the SignificanceResult return type
            out[i] = kendalltau(x[i], y[i]).statistic  # pyright: ignore[reportAttributeAccessIssue]
    return out


def topk_overlap(
    a: np.ndarray, b: np.ndarray, *, fraction: float = 0.1, use_abs: bool = True
) -> np.ndarray:
    """|top-k(a) & top-k(b)| / k with k = ceil(fraction * H * W).

    Ties at the k-th value are resolved by expectation over random tie-breaking (see
    ``_ranking.topk_inclusion``), so two constant maps score k / (H W), the chance level.
    """
    if not 0 < fraction <= 1:
        raise InvalidInputError(f"fraction must be in (0, 1], got {fraction}")
    a_arr, b_arr = _pair(a, b, use_abs)
    x, y = flat(a_arr), flat(b_arr)
    k = int(count_for_fraction(fraction, x.shape[1]))
    return (topk_inclusion(x, k) * topk_inclusion(y, k)).sum(axis=1) / k


def ssim(a: np.ndarray, b: np.ndarray, *, use_abs: bool, win_size: int = 7) -> np.ndarray:
    """SSIM (Wang et al. 2004) of min-max normalised maps, as in Adebayo et al. 2018.

    skimage ``structural_similarity`` with its defaults and ``data_range=1`` on each map scaled to
    [0, 1]. A constant map normalises to zeros, so two constant maps score 1.
    """
    a_arr, b_arr = _pair(a, b, use_abs)
    if min(a_arr.shape[1:]) < win_size:
        raise InvalidInputError(
            f"ssim needs maps of at least {win_size}x{win_size} pixels (win_size), "
            f"got shape {a_arr.shape}"
        )
    a01, b01 = normalize(a_arr, mode="minmax"), normalize(b_arr, mode="minmax")
    return np.array(
        [
            structural_similarity(x, y, data_range=1.0, win_size=win_size)
            for x, y in zip(a01, b01, strict=True)
        ],
        dtype=np.float64,
    )


def hog_pearson(
    a: np.ndarray,
    b: np.ndarray,
    *,
    use_abs: bool,
    orientations: int = 9,
    pixels_per_cell: tuple[int, int] = (8, 8),
    cells_per_block: tuple[int, int] = (3, 3),
) -> np.ndarray:
    """Pearson correlation of HOG descriptors, the HOG similarity of Adebayo et al. 2018.

    HOG (Dalal & Triggs 2005) by ``skimage.feature.hog`` with L2-Hys block norm, on maps min-max
    normalised to [0, 1]. NaN when either map is constant (all-zero descriptor).
    """
    a_arr, b_arr = _pair(a, b, use_abs)
    need = (pixels_per_cell[0] * cells_per_block[0], pixels_per_cell[1] * cells_per_block[1])
    if a_arr.shape[1] < need[0] or a_arr.shape[2] < need[1]:
        raise InvalidInputError(
            f"hog_pearson needs maps of at least {need[0]}x{need[1]} pixels "
            f"(pixels_per_cell x cells_per_block), got shape {a_arr.shape}"
        )
    if a_arr.shape[0] == 0:
        return np.empty(0)
    ppc: tuple[int, int] = (int(pixels_per_cell[0]), int(pixels_per_cell[1]))
    cpb: tuple[int, int] = (int(cells_per_block[0]), int(cells_per_block[1]))
    cfg = (orientations, ppc, cpb)

    def descriptors(x: np.ndarray) -> np.ndarray:
        return memoized(("hog", cfg), x, lambda: hog_batch(normalize(x, mode="minmax"), *cfg))

    return _rowwise_pearson(descriptors(a_arr), descriptors(b_arr))


def hog_batch(
    maps: np.ndarray,
    orientations: int = 9,
    pixels_per_cell: tuple[int, int] = (8, 8),
    cells_per_block: tuple[int, int] = (3, 3),
) -> np.ndarray:
    """HOG descriptors of an (N, H, W) batch at once: what ``skimage.feature.hog`` computes per
    image with ``block_norm="L2-Hys"`` (central-difference gradients, zero at the border;
    unsigned orientation histograms of full cells, magnitudes summed per bin over the cell and
    divided by its area; L2-Hys over sliding blocks of cells, clipped at 0.2), the features in
    another order (the same for every map, so correlations between descriptors are the same).
    Hand-written: skimage loops in Python over images and blocks; batched, this is ~20x faster
    (``tests/metrics`` checks it against skimage)."""
    x = np.asarray(maps)
    x = x.astype(np.float32 if x.dtype == np.float32 else np.float64, copy=False)
    n, h, w = x.shape
    g_row = np.zeros_like(x)
    g_col = np.zeros_like(x)
    g_row[:, 1:-1, :] = x[:, 2:, :] - x[:, :-2, :]
    g_col[:, :, 1:-1] = x[:, :, 2:] - x[:, :, :-2]
    g_row, g_col = g_row.astype(np.float64), g_col.astype(np.float64)
    magnitude = np.hypot(g_col, g_row)
    orientation = np.rad2deg(np.arctan2(g_row, g_col)) % 180
    cr, cc = pixels_per_cell
    ncr, ncc = h // cr, w // cc
    edges = (180.0 / orientations) * np.arange(orientations + 1)  # bin i: [edges[i], edges[i+1])
    bins = np.clip(np.searchsorted(edges, orientation, side="right") - 1, 0, orientations - 1)
    mag = magnitude[:, : ncr * cr, : ncc * cc]
    bins = bins[:, : ncr * cr, : ncc * cc]
    cell = (np.arange(ncr * cr) // cr)[:, None] * ncc + (np.arange(ncc * cc) // cc)[None, :]
    index = (np.arange(n)[:, None, None] * (ncr * ncc) + cell[None]) * orientations + bins
    hist = np.bincount(index.ravel(), weights=mag.ravel(), minlength=n * ncr * ncc * orientations)
    hist = hist.reshape(n, ncr, ncc, orientations) / (cr * cc)
    br, bc = cells_per_block
    nbr, nbc = ncr - br + 1, ncc - bc + 1
    blocks = np.concatenate(  # every block's cells side by side on the last axis
        [hist[:, i : i + nbr, j : j + nbc, :] for i in range(br) for j in range(bc)], axis=-1
    ).astype(x.dtype)
    eps = 1e-5
    out = blocks / np.sqrt(np.sum(blocks**2, axis=-1, keepdims=True) + eps**2)
    out = np.minimum(out, 0.2)
    out = out / np.sqrt(np.sum(out**2, axis=-1, keepdims=True) + eps**2)
    return out.reshape(n, -1)


def _hog_skimage(
    maps: np.ndarray,
    orientations: int = 9,
    pixels_per_cell: tuple[int, int] = (8, 8),
    cells_per_block: tuple[int, int] = (3, 3),
) -> np.ndarray:
    """The reference: ``skimage.feature.hog`` per map (for the tests of :func:`hog_batch`)."""
    return np.stack(
        [
            hog(
                m,
                orientations=orientations,
                pixels_per_cell=pixels_per_cell,
                cells_per_block=cells_per_block,
                block_norm="L2-Hys",
                feature_vector=True,
            )
            for m in maps
        ]
    )


@register_metric
@dataclass(frozen=True)
class Pearson:
    name: ClassVar[str] = "pearson"
    direction: ClassVar[Direction] = "none"
    use_abs: bool

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return pearson(a, b, use_abs=self.use_abs)


@register_metric
@dataclass(frozen=True)
class Spearman:
    name: ClassVar[str] = "spearman"
    direction: ClassVar[Direction] = "none"
    use_abs: bool

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return spearman(a, b, use_abs=self.use_abs)


@register_metric
@dataclass(frozen=True)
class Kendall:
    name: ClassVar[str] = "kendall"
    direction: ClassVar[Direction] = "none"
    use_abs: bool

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return kendall(a, b, use_abs=self.use_abs)


@register_metric
@dataclass(frozen=True)
class TopKOverlap:
    name: ClassVar[str] = "topk_overlap"
    direction: ClassVar[Direction] = "none"
    fraction: float = 0.1
    use_abs: bool = True

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return topk_overlap(a, b, fraction=self.fraction, use_abs=self.use_abs)


@register_metric
@dataclass(frozen=True)
class SSIM:
    name: ClassVar[str] = "ssim"
    direction: ClassVar[Direction] = "none"
    use_abs: bool
    win_size: int = 7

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return ssim(a, b, use_abs=self.use_abs, win_size=self.win_size)


@register_metric
@dataclass(frozen=True)
class HOGPearson:
    name: ClassVar[str] = "hog_pearson"
    direction: ClassVar[Direction] = "none"
    use_abs: bool
    orientations: int = 9
    pixels_per_cell: tuple[int, int] = (8, 8)
    cells_per_block: tuple[int, int] = (3, 3)

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return hog_pearson(
            a,
            b,
            use_abs=self.use_abs,
            orientations=self.orientations,
            pixels_per_cell=self.pixels_per_cell,
            cells_per_block=self.cells_per_block,
        )
