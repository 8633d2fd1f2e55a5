"""Model-agnostic perturbation metrics: deletion / insertion curves, MoRF / LeRF, ROAR degradation.

Deletion (Samek et al. 2017 MoRF / LeRF; Petsiuk et al. 2018 RISE): replace the top (``"morf"``)
or bottom (``"lerf"``) fraction t of pixels, ranked by the map, by a baseline and track the target
class. Insertion (Petsiuk et al. 2018): start from the baseline and reveal pixels in that order.
The default baseline is the per-image per-channel mean, the ROAR replacement (Hooker et al. 2019).

A fraction t removes ceil(t * H * W) pixels (all channels of each); ties in the ranking keep pixel
row-major order (stable sort), so the result is deterministic. The model enters only through
``predict_fn(x: (B, H, W, C) float32) -> (B, num_classes)`` probabilities; wrap a Keras model
outside this package (e.g. ``lambda x: model.predict_on_batch(x)``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from binsal.core.errors import InvalidInputError
from binsal.metrics._checks import Direction, as_images, as_maps, flat
from binsal.metrics._memo import memoized
from binsal.metrics._ranking import count_for_fraction, rank_positions
from binsal.metrics.curves import curve_auc
from binsal.metrics.imputation import DEFAULT_NOISE_STD, noisy_linear_impute
from binsal.metrics.registry import register_metric

PredictFn = Callable[[np.ndarray], np.ndarray]
Baseline = Literal["channel_mean", "zero"] | float | np.ndarray
Order = Literal["morf", "lerf"]
Mode = Literal["deletion", "insertion"]
DEFAULT_FRACTIONS = np.linspace(0.0, 1.0, 11)


def baseline_images(images: np.ndarray, baseline: Baseline) -> np.ndarray:
    """The (N, H, W, C) replacement values for removed pixels.

    ``"channel_mean"`` (per image and channel), ``"zero"``, a scalar, or an array broadcastable to
    the images (e.g. a data set's per-channel mean (C,) as in ROAR, or blurred copies).
    """
    imgs = as_images(images)
    if isinstance(baseline, str):
        if baseline == "channel_mean":
            return np.broadcast_to(imgs.mean(axis=(1, 2), keepdims=True), imgs.shape)
        if baseline == "zero":
            return np.zeros_like(imgs)
        raise InvalidInputError(
            f"baseline must be 'channel_mean', 'zero', a number or an array, got {baseline!r}"
            " ('noisy_linear' exists for degrade_by_ranking only: it needs the removal mask)"
        )
    base = np.asarray(baseline, dtype=np.float32)
    try:
        base = np.broadcast_to(base, imgs.shape)
    except ValueError:
        raise InvalidInputError(
            f"baseline of shape {base.shape} does not broadcast to images of shape {imgs.shape}"
        ) from None
    if not np.isfinite(base).all():
        raise InvalidInputError(f"baseline of shape {base.shape} contains NaN/inf values")
    return base


def _validate_pair(images: np.ndarray, maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    imgs, m = as_images(images), as_maps(maps)
    if m.shape != imgs.shape[:3]:
        raise InvalidInputError(
            f"maps must have shape (N, H, W) = {imgs.shape[:3]} to match images {imgs.shape}, "
            f"got maps {m.shape}"
        )
    return imgs, m


def _validate_fractions(fractions: np.ndarray) -> np.ndarray:
    f = np.asarray(fractions, dtype=np.float64)
    if f.ndim != 1 or f.size == 0 or not np.isfinite(f).all() or f.min() < 0 or f.max() > 1:
        raise InvalidInputError(f"fractions must be a 1-D array of values in [0, 1], got {f}")
    return f


def _perturbed(
    imgs: np.ndarray, base: np.ndarray, positions: np.ndarray, counts: np.ndarray, mode: Mode
) -> np.ndarray:
    """(n, F, H, W, C): for each count c, pixels at rank position < c are deleted or revealed.

    Hand-written instead of one ``np.where`` over (n, F, H, W, C): that one's innermost loop
    runs over the C channels only; filling every frame with the untouched images and copying the
    other side in channel by channel gives the same values ~3x faster (measured: 64 px, 21
    frames of 12 images, 38 -> 13 ms)."""
    if mode == "deletion":
        keep, put = imgs, base
    elif mode == "insertion":
        keep, put = base, imgs
    else:
        raise InvalidInputError(f"mode must be 'deletion' or 'insertion', got {mode!r}")
    selected = positions[:, None] < counts[None, :, None, None]  # (n, F, H, W)
    out = np.empty((*selected.shape, imgs.shape[-1]), dtype=np.result_type(imgs, base))
    out[...] = keep[:, None]
    for k in range(out.shape[-1]):
        np.copyto(out[..., k], put[:, None, ..., k], where=selected)
    return out


def _scores(maps: np.ndarray, use_abs: bool) -> np.ndarray:
    return flat(np.abs(maps) if use_abs else maps)


def _positions(maps: np.ndarray, order: Order, use_abs: bool) -> np.ndarray:
    """(N, H, W) rank position of every pixel in the removal order (0 = removed first); kept by
    content for the other mode (deletion, insertion) of the same maps (``_memo``)."""
    x = np.asarray(maps)
    return memoized(
        ("positions", order, use_abs),
        x,
        lambda: rank_positions(_scores(x, use_abs), order=order).reshape(x.shape),
    )


def _validate_targets(targets: np.ndarray, n: int) -> np.ndarray:
    t = np.asarray(targets)
    if t.shape != (n,) or not np.issubdtype(t.dtype, np.integer):
        raise InvalidInputError(
            f"targets must be integer class indices of shape ({n},), "
            f"got dtype {t.dtype} shape {t.shape}"
        )
    return t


def _target_scores(out: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Target probability and correctness (argmax == target) from probabilities ``out`` of
    shape (B, ..., K) for ``targets`` of shape (B,); refuses targets outside [0, K)."""
    k = out.shape[-1]
    if targets.min() < 0 or targets.max() >= k:
        raise InvalidInputError(
            f"targets must be in [0, {k}) for {k} classes, "
            f"got {np.unique(targets[(targets < 0) | (targets >= k)])}"
        )
    idx = targets.reshape(targets.shape + (1,) * (out.ndim - 1))
    prob = np.take_along_axis(out, idx, axis=-1)[..., 0]
    return prob, out.argmax(axis=-1) == idx[..., 0]


def degrade_by_ranking(
    images: np.ndarray,
    maps: np.ndarray,
    fraction: float,
    *,
    order: Order = "morf",
    baseline: Baseline | Literal["noisy_linear"] = "channel_mean",
    use_abs: bool = True,
    noise_std: float = DEFAULT_NOISE_STD,
    seed: int | list[int] = 0,
) -> np.ndarray:
    """Copies of ``images`` with the top (morf) or bottom (lerf) ``fraction`` of pixels replaced.

    The degraded data sets of ROAR (Hooker et al. 2019); one step of a deletion curve. With
    ``baseline="noisy_linear"`` the removed pixels are imputed from their neighbours as in ROAD
    (Rong et al. 2022; :mod:`binsal.metrics.imputation`, ``noise_std`` and ``seed`` apply), so the
    removal mask's shape does not leak into the degraded image.
    """
    imgs, m = _validate_pair(images, maps)
    counts = count_for_fraction(_validate_fractions(np.array([fraction])), m[0].size)
    positions = _positions(m, order, use_abs)
    if isinstance(baseline, str) and baseline == "noisy_linear":
        return noisy_linear_impute(imgs, positions < counts[0], noise_std=noise_std, seed=seed)
    base = baseline_images(imgs, baseline)
    return _perturbed(imgs, base, positions, counts, "deletion")[:, 0]


def _predict(predict_fn: PredictFn, x: np.ndarray, batch_size: int) -> np.ndarray:
    outs = []
    for start in range(0, x.shape[0], batch_size):
        batch = x[start : start + batch_size]
        out = np.asarray(predict_fn(batch), dtype=np.float64)
        if out.ndim != 2 or out.shape[0] != batch.shape[0]:
            raise InvalidInputError(
                f"predict_fn must return (B, num_classes) for a batch of {batch.shape}, "
                f"got shape {out.shape}"
            )
        if not np.isfinite(out).all():
            raise InvalidInputError(f"predict_fn returned NaN/inf for a batch of {batch.shape}")
        outs.append(out)
    return np.concatenate(outs)


def perturbation_curve(
    predict_fn: PredictFn,
    images: np.ndarray,
    targets: np.ndarray,
    maps: np.ndarray,
    *,
    order: Order,
    mode: Mode,
    fractions: np.ndarray = DEFAULT_FRACTIONS,
    baseline: Baseline = "channel_mean",
    batch_size: int = 256,
    use_abs: bool = True,
) -> dict[str, np.ndarray]:
    """Target probability and correctness as pixels are deleted or inserted in the map's order.

    Returns ``{"fractions": (F,), "prob": (N, F), "correct": (N, F)}`` where ``prob`` is the
    target class probability and ``correct`` 1.0 where argmax == target. Images are processed in
    chunks of about ``batch_size // F`` so that all fractions of a chunk are built at once and go
    through ``predict_fn`` in batches of at most ``batch_size``.
    """
    imgs, m = _validate_pair(images, maps)
    f = _validate_fractions(fractions)
    if mode not in ("deletion", "insertion"):
        raise InvalidInputError(f"mode must be 'deletion' or 'insertion', got {mode!r}")
    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
    t = _validate_targets(targets, imgs.shape[0])
    n, h, w, c = imgs.shape
    base = baseline_images(imgs, baseline)
    counts = count_for_fraction(f, h * w)
    positions = _positions(m, order, use_abs)
    prob = np.empty((n, f.size))
    correct = np.empty((n, f.size))
    chunk = max(1, batch_size // f.size)
    for start in range(0, n, chunk):
        sl = slice(start, min(start + chunk, n))
        x = _perturbed(imgs[sl], base[sl], positions[sl], counts, mode)
        out = _predict(predict_fn, x.reshape(-1, h, w, c), batch_size)
        out = out.reshape(x.shape[0], f.size, -1)
        prob[sl], correct[sl] = _target_scores(out, t[sl])
    return {"fractions": f, "prob": prob, "correct": correct}


def perturbation_auc(
    curve: dict[str, np.ndarray], *, key: Literal["prob", "correct"] = "prob"
) -> np.ndarray:
    """(N,) area under a :func:`perturbation_curve` divided by the fraction range."""
    return curve_auc(curve["fractions"], curve[key])


@dataclass(frozen=True)
class _PerturbationAUC:
    order: ClassVar[Order]
    mode: ClassVar[Mode]
    fractions: tuple[float, ...] = tuple(DEFAULT_FRACTIONS.tolist())
    baseline: Baseline = "channel_mean"
    batch_size: int = 256
    use_abs: bool = True
    curve: Literal["prob", "correct"] = "prob"

    def __call__(
        self, predict_fn: PredictFn, images: np.ndarray, targets: np.ndarray, maps: np.ndarray
    ) -> np.ndarray:
        result = perturbation_curve(
            predict_fn,
            images,
            targets,
            maps,
            order=self.order,
            mode=self.mode,
            fractions=np.asarray(self.fractions),
            baseline=self.baseline,
            batch_size=self.batch_size,
            use_abs=self.use_abs,
        )
        return perturbation_auc(result, key=self.curve)


@register_metric
@dataclass(frozen=True)
class DeletionMoRF(_PerturbationAUC):
    """Most relevant removed first: a faithful map makes the target drop fast."""

    name: ClassVar[str] = "deletion_morf_auc"
    direction: ClassVar[Direction] = "lower"
    order: ClassVar[Order] = "morf"
    mode: ClassVar[Mode] = "deletion"


@register_metric
@dataclass(frozen=True)
class DeletionLeRF(_PerturbationAUC):
    """Least relevant removed first: a faithful map keeps the target up long."""

    name: ClassVar[str] = "deletion_lerf_auc"
    direction: ClassVar[Direction] = "higher"
    order: ClassVar[Order] = "lerf"
    mode: ClassVar[Mode] = "deletion"


@register_metric
@dataclass(frozen=True)
class InsertionMoRF(_PerturbationAUC):
    """Most relevant revealed first (RISE insertion): a faithful map makes the target rise fast."""

    name: ClassVar[str] = "insertion_morf_auc"
    direction: ClassVar[Direction] = "higher"
    order: ClassVar[Order] = "morf"
    mode: ClassVar[Mode] = "insertion"


@register_metric
@dataclass(frozen=True)
class InsertionLeRF(_PerturbationAUC):
    """Least relevant revealed first: a faithful map keeps the target down long."""

    name: ClassVar[str] = "insertion_lerf_auc"
    direction: ClassVar[Direction] = "lower"
    order: ClassVar[Order] = "lerf"
    mode: ClassVar[Mode] = "insertion"


def road_images(
    images: np.ndarray,
    maps: np.ndarray,
    *,
    order: Order,
    fractions: np.ndarray,
    noise_std: float = DEFAULT_NOISE_STD,
    seed: int | list[int] = 0,
    use_abs: bool = True,
) -> list[np.ndarray]:
    """ROAD's input at every fraction: (N, H, W, C) copies of the images with the fraction's
    share of pixels, in the map's ``order``, replaced by noisy linear imputation. The noise of
    fraction j is drawn from ``np.random.default_rng([*seed, j])``, so every method meets the
    same noise; maps that do not depend on the model (the Random and Sobel controls) give the
    same images for every model, so a caller can impute them once (:func:`road_curve`'s
    ``imputed``)."""
    imgs, m = _validate_pair(images, maps)
    f = _validate_fractions(fractions)
    counts = count_for_fraction(f, m[0].size)
    positions = _positions(m, order, use_abs)
    seeds = list(np.atleast_1d(seed).astype(int).tolist())
    fill = imgs.mean(axis=(0, 1, 2))
    return [
        noisy_linear_impute(
            imgs, positions < count, noise_std=noise_std, seed=[*seeds, j], fill=fill
        )
        for j, count in enumerate(counts)
    ]


def road_curve(
    predict_fn: PredictFn,
    images: np.ndarray,
    targets: np.ndarray,
    maps: np.ndarray,
    *,
    order: Order,
    fractions: np.ndarray,
    noise_std: float = DEFAULT_NOISE_STD,
    seed: int | list[int] = 0,
    batch_size: int = 256,
    use_abs: bool = True,
    imputed: list[np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """ROAD (Rong et al. 2022): deletion in the map's order with noisy linear imputation of the
    removed pixels, on the model as it is (no retraining), so the removal mask's shape does not
    leak the class the way a constant fill can.

    Returns ``{"fractions": (F,), "prob": (N, F), "correct": (N, F)}`` as
    :func:`perturbation_curve`. t = 0 is the clean image; t = 1 (nothing left to interpolate
    from) is the mean of the images plus the noise. The imputation noise of fraction j is drawn
    from ``np.random.default_rng([*seed, j])``, so every method meets the same noise.
    ``imputed``: :func:`road_images` of the same arguments, computed before (else here).
    """
    imgs, m = _validate_pair(images, maps)
    f = _validate_fractions(fractions)
    t = _validate_targets(targets, imgs.shape[0])
    n = imgs.shape[0]
    if imputed is None:
        imputed = road_images(
            imgs, m, order=order, fractions=f, noise_std=noise_std, seed=seed, use_abs=use_abs
        )
    if len(imputed) != f.size or any(x.shape != imgs.shape for x in imputed):
        raise InvalidInputError(
            f"imputed must hold {f.size} arrays of shape {imgs.shape} (one per fraction)"
        )
    prob, correct = np.empty((n, f.size)), np.empty((n, f.size))
    for j, x in enumerate(imputed):
        prob[:, j], correct[:, j] = _target_scores(_predict(predict_fn, x, batch_size), t)
    return {"fractions": f, "prob": prob, "correct": correct}
