"""Noisy linear imputation of removed pixels (ROAD; Rong et al. 2022, "A Consistent and
Efficient Evaluation Strategy for Attribution Methods", section 4).

Replacing removed pixels by a constant leaks the removal mask: the shape of the removed region
can itself reveal the class (on the synthetic shapes, a flat silhouette of the object). ROAD
instead sets every removed pixel to the weighted mean of its 8 neighbours, direct neighbours
weight 1/6 and diagonal ones 1/12, where neighbours may themselves be removed. That is one
sparse linear system per image over the removed pixels,

    sum_q w_pq * x_p - sum_{q removed} w_pq * x_q = sum_{q kept} w_pq * x_q,

with q over the in-image neighbours of p (weights renormalised at the border by dividing by
their sum), solved per channel; then i.i.d. Gaussian noise of standard deviation ``noise_std``
is added to the imputed pixels only. The matrix is symmetric and, as long as one pixel is kept,
irreducibly diagonally dominant, so the solution is unique. Without noise, a linear image (a
ramp) is reproduced exactly where no removed pixel touches the border: the stencil is
symmetric, so the mean of a linear function over it is its centre value.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import spsolve

from binsal.errors import InvalidInputError
from binsal.metrics._checks import as_images

DIRECT, DIAGONAL = 1.0 / 6.0, 1.0 / 12.0
NEIGHBOURS: tuple[tuple[int, int, float], ...] = (
    (-1, 0, DIRECT),
    (1, 0, DIRECT),
    (0, -1, DIRECT),
    (0, 1, DIRECT),
    (-1, -1, DIAGONAL),
    (-1, 1, DIAGONAL),
    (1, -1, DIAGONAL),
    (1, 1, DIAGONAL),
)
DEFAULT_NOISE_STD = 0.01  # in units of the image range (ROAD's default on normalised images)


COARSEST = 8  # below this side length the system is solved from the plain start


def _coarse_start(imgs: np.ndarray, removed: np.ndarray, rtol: float) -> np.ndarray:
    """A start for the solver (cascadic CG, Deuflhard 1994): the same problem on the 2x-coarser
    grid (a coarse pixel is kept where any of its 2x2 fine pixels is, with their mean), solved
    recursively and copied back to the fine pixels. The coarse solution is smooth where the
    fine one is, so far fewer fine iterations remain. Only the speed depends on it."""
    n, h, w, c = imgs.shape
    h2, w2 = (h + 1) // 2, (w + 1) // 2
    kept = np.zeros((n, 2 * h2, 2 * w2))
    kept[:, :h, :w] = ~removed
    vals = np.zeros((n, 2 * h2, 2 * w2, c))
    vals[:, :h, :w] = imgs * kept[:, :h, :w, None]
    k = kept.reshape(n, h2, 2, w2, 2).sum(axis=(2, 4))
    v = vals.reshape(n, h2, 2, w2, 2, c).sum(axis=(2, 4))
    coarse_removed = k == 0
    coarse = np.where(coarse_removed[..., None], 0.0, v / np.maximum(k, 1)[..., None])
    solved = _impute(coarse, coarse_removed, rtol)
    return np.repeat(np.repeat(solved, 2, axis=1), 2, axis=2)[:, :h, :w]


def _impute(imgs: np.ndarray, removed: np.ndarray, rtol: float) -> np.ndarray:
    """Noise-free imputation of (n, H, W, C) images; ``removed`` (n, H, W) bool, no image with
    every pixel removed. All images form one block-diagonal symmetric positive definite
    system, solved for all channels at once by Jacobi-preconditioned conjugate gradients
    started from the coarse-grid solution."""
    n, h, w, c = imgs.shape
    idx = -np.ones(removed.shape, dtype=np.int64)
    ii, rr, cc = np.nonzero(removed)
    m = rr.size
    idx[ii, rr, cc] = np.arange(m)
    diag = np.zeros(m)
    rhs = np.zeros((m, c))
    rows, cols, vals = [], [], []
    for dr, dc, wt in NEIGHBOURS:
        r2, c2 = rr + dr, cc + dc
        inside = (r2 >= 0) & (r2 < h) & (c2 >= 0) & (c2 < w)
        p = np.nonzero(inside)[0]
        q_i, q_r, q_c = ii[inside], r2[inside], c2[inside]
        diag[p] += wt
        q_idx = idx[q_i, q_r, q_c]
        unknown = q_idx >= 0
        rows.append(p[unknown])
        cols.append(q_idx[unknown])
        vals.append(np.full(int(unknown.sum()), -wt))
        known = ~unknown
        # each (p, neighbour offset) pair occurs once, so plain fancy-index addition is exact
        rhs[p[known]] += wt * imgs[q_i[known], q_r[known], q_c[known]]
    a = sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(m, m)
    ) + sparse.diags(diag)
    x0 = None
    if min(h, w) >= 2 * COARSEST:
        x0 = _coarse_start(imgs, removed, rtol)[ii, rr, cc]
    sol = _pcg(a, rhs, diag, rtol, x0)
    out = imgs.astype(np.float64, copy=True)
    out[ii, rr, cc] = sol
    return out


def _pcg(
    a: sparse.csr_matrix, b: np.ndarray, diag: np.ndarray, rtol: float, x0: np.ndarray | None
) -> np.ndarray:
    """Jacobi-preconditioned conjugate gradients for SPD ``a`` and every column of ``b`` at once
    (one sparse product per iteration for all channels), each column to ``rtol * |b_col|``."""
    inv = (1.0 / diag)[:, None]
    # start: the given one, else the weighted mean of the kept neighbours (0 where none)
    x = b * inv if x0 is None else np.array(x0, dtype=np.float64)
    r = b - a @ x
    z = r * inv
    p = z.copy()
    rz = np.einsum("ij,ij->j", r, z)
    target = rtol * np.maximum(np.linalg.norm(b, axis=0), np.finfo(np.float64).tiny)
    for _ in range(10 * len(b) + 10):
        if (np.linalg.norm(r, axis=0) <= target).all():
            return x
        ap = a @ p
        alpha = rz / np.maximum(np.einsum("ij,ij->j", p, ap), np.finfo(np.float64).tiny)
        x += alpha * p
        r -= alpha * ap
        z = r * inv
        rz_new = np.einsum("ij,ij->j", r, z)
        p = z + (rz_new / np.maximum(rz, np.finfo(np.float64).tiny)) * p
        rz = rz_new
    # not reached for an SPD system; a direct solve as the safety net
    return np.asarray(spsolve(a.tocsc(), b)).reshape(b.shape)  # pragma: no cover


def noisy_linear_impute(
    images: np.ndarray,
    removed: np.ndarray,
    *,
    noise_std: float = DEFAULT_NOISE_STD,
    seed: int | np.random.SeedSequence | list[int] = 0,
    fill: np.ndarray | None = None,
    chunk_size: int = 256,
    rtol: float = 1e-5,
) -> np.ndarray:
    """Copies of (N, H, W, C) ``images`` whose ``removed`` (N, H, W) pixels are replaced by ROAD's
    noisy linear imputation; kept pixels are returned unchanged.

    An image with every pixel removed has no neighbour to interpolate from: it gets ``fill``
    (broadcastable to (C,); default the mean of the kept pixels of all images, else 0) plus the
    noise. The noise is drawn from ``np.random.default_rng(seed)``, one draw per removed value.
    ``chunk_size`` images are solved together (bounds memory); ``rtol`` is the solver's relative
    residual tolerance.
    """
    imgs = as_images(images)
    mask = np.asarray(removed)
    if mask.shape != imgs.shape[:3]:
        raise InvalidInputError(
            f"removed must have shape (N, H, W) = {imgs.shape[:3]}, got {mask.shape}"
        )
    mask = mask.astype(bool)
    if not np.isfinite(noise_std) or noise_std < 0:
        raise InvalidInputError(f"noise_std must be a finite number >= 0, got {noise_std}")
    out = imgs.astype(np.float64, copy=True)
    if fill is None:
        kept = ~mask
        fill = imgs[kept].mean(axis=0) if kept.any() else np.zeros(imgs.shape[-1])
    per_image = mask.reshape(len(mask), -1)
    empty = per_image.all(axis=1)
    out[empty] = np.asarray(fill, dtype=np.float64)
    todo = np.nonzero(per_image.any(axis=1) & ~empty)[0]
    for start in range(0, todo.size, chunk_size):
        sel = todo[start : start + chunk_size]
        out[sel] = _impute(out[sel], mask[sel], rtol)
    if noise_std > 0:
        rng = np.random.default_rng(seed)
        noise = rng.normal(0.0, noise_std, size=out.shape)
        out = np.where(mask[..., None], out + noise, out)
    return out.astype(imgs.dtype, copy=False)
