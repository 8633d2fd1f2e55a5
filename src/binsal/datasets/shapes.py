"""Rendering of the ground-truth synthetic shapes (:mod:`binsal.datasets.synthetic`): numpy,
SciPy and scikit-image only, no TensorFlow, so that worker processes drawing examples start in
a fraction of a second. Example ``i`` of split ``s`` comes from ``np.random.default_rng([seed,
s, i])`` only (:func:`render_example`), whatever process draws it."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
from scipy import ndimage
from skimage import draw

CLASS_NAMES: tuple[str, ...] = ("disk", "square", "triangle", "cross")
MIN_IMAGE_SIZE = 16
SPLITS: tuple[str, ...] = ("train", "test")  # the split index in the seed is the position here

# Object size: side of the square with the object's area, as a fraction of the image side.
# Equal areas keep size from revealing the class; extents then span ~0.35-0.75 of the side.
_AREA_SIDE_RANGE = (0.32, 0.50)
_CROSS_ARM = 1.0 / 3.0  # arm width / arm length of the cross (a plus sign, rotated at random)
_CONTRAST_MIN = 100.0  # min RGB distance between object colour and a local background pixel
_CONTRAST_FRACTION = 0.95  # fraction of the ring around the object that must reach it
_COLOR_CANDIDATES = 32


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


class ShapeExample(NamedTuple):
    """One rendered example; ``bbox`` is ``(ymin, xmin, ymax, xmax)`` of the mask, max exclusive."""

    image: np.ndarray  # uint8 (H, W, 3)
    mask: np.ndarray  # bool (H, W)
    label: int
    color: np.ndarray  # uint8 (3,), the object colour (every mask pixel has it)
    center: np.ndarray  # int32 (2,), (row, col) of the object's centre, rounded
    bbox: np.ndarray  # int32 (4,)


def _check_image_size(image_size: int) -> int:
    if isinstance(image_size, bool) or not isinstance(image_size, int | np.integer):
        raise ValueError(f"image_size must be an int, got {image_size!r}")
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"image_size must be >= {MIN_IMAGE_SIZE}, got {image_size}")
    return int(image_size)


def _smooth_field(rng: np.random.Generator, size: int, grid: int, channels: int) -> np.ndarray:
    """Low-frequency noise in [0, 1]: a random ``grid x grid`` lattice, bilinearly upsampled."""
    lattice = rng.random((grid + 1, grid + 1, channels))
    t = np.linspace(0.0, grid, size)
    i0 = np.minimum(t.astype(int), grid - 1)
    f = (t - i0)[:, None]
    f = f * f * (3.0 - 2.0 * f)  # smoothstep: no visible lattice creases
    rows = lattice[i0] * (1.0 - f[:, :, None]) + lattice[i0 + 1] * f[:, :, None]  # (size, g+1, c)
    fc = f[None, :, :]
    return rows[:, i0] * (1.0 - fc) + rows[:, i0 + 1] * fc


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth random texture: a blend of random colours, a gradient, a faint grating, grain."""
    n_colors = 3
    palette = rng.uniform(0.0, 255.0, (n_colors, 3))
    logits = _smooth_field(rng, size, int(rng.integers(2, 5)), n_colors) * rng.uniform(4.0, 10.0)
    weights = np.exp(logits - logits.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    img = weights @ palette
    # second, finer octave of colour noise
    img += (_smooth_field(rng, size, int(rng.integers(6, 11)), 3) - 0.5) * rng.uniform(10.0, 40.0)
    # linear gradient of a random colour along a random direction
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1) - 0.5
    angle = rng.uniform(0.0, 2.0 * math.pi)
    ramp = np.cos(angle) * yy + np.sin(angle) * xx
    img += ramp[..., None] * rng.uniform(-60.0, 60.0, 3)
    # faint sinusoidal grating (oriented texture)
    angle = rng.uniform(0.0, math.pi)
    freq = rng.uniform(2.0, 8.0) * 2.0 * math.pi
    phase = rng.uniform(0.0, 2.0 * math.pi)
    grating = np.sin(freq * (np.cos(angle) * yy + np.sin(angle) * xx) + phase)
    img += grating[..., None] * rng.uniform(0.0, 15.0) * rng.choice([-1.0, 1.0], 3)
    img += rng.normal(0.0, 4.0, img.shape)  # grain
    return img


def _clutter(rng: np.random.Generator, img: np.ndarray) -> None:
    """Draw thin line segments, specks and small elongated blobs in place.

    Clutter never forms a class shape: lines are 1 px wide (object parts are several px), specks
    are 1-2 px, blobs are ellipses with axis ratio <= 0.7 and a long radius <= 8 % of the side
    (objects span >= ~35 %). Colours are uniform in RGB, the distribution objects are drawn from.
    """
    size = img.shape[0]
    scale = size / 32.0
    shape = (size, size)
    for _ in range(int(rng.integers(1, 4) * scale)):  # line segments
        length = rng.uniform(0.1, 0.4) * size
        angle = rng.uniform(0.0, math.pi)
        r0, c0 = rng.uniform(0, size - 1, 2)
        r1 = np.clip(r0 + length * math.sin(angle), 0, size - 1)
        c1 = np.clip(c0 + length * math.cos(angle), 0, size - 1)
        rr, cc = draw.line(int(r0), int(c0), int(r1), int(c1))
        img[rr, cc] = rng.uniform(0.0, 255.0, 3)
    for _ in range(int(rng.integers(1, 3) * scale)):  # blobs
        long_r = max(1.5, rng.uniform(0.03, 0.08) * size)
        short_r = max(1.0, long_r * rng.uniform(0.35, 0.7))
        r, c = rng.uniform(0, size - 1, 2)
        rr, cc = draw.ellipse(r, c, long_r, short_r, shape, rotation=rng.uniform(0.0, math.pi))
        img[rr, cc] = rng.uniform(0.0, 255.0, 3)
    speck = 1 if size < 64 else 2
    for _ in range(int(rng.integers(3, 10) * scale)):  # specks
        r, c = rng.integers(0, size - speck + 1, 2)
        img[r : r + speck, c : c + speck] = rng.uniform(0.0, 255.0, 3)


def _outline(label: int, area_side: float, angle: float) -> np.ndarray:
    """Polygon vertices (row, col) of a square, triangle or cross centred on 0, rotated by
    ``angle``; its area is ``area_side**2`` whatever the class (the disk is drawn directly)."""
    if label == 1:  # square
        half = area_side / 2.0
        pts = np.array([[-half, -half], [-half, half], [half, half], [half, -half]])
    elif label == 2:  # equilateral triangle, centred on its centroid
        side = area_side * math.sqrt(4.0 / math.sqrt(3.0))
        circ_r = side / math.sqrt(3.0)
        a = np.deg2rad([-90.0, 30.0, 150.0])
        pts = np.stack([circ_r * np.sin(a), circ_r * np.cos(a)], axis=1)
    elif label == 3:  # plus-shaped cross, arm width = length / 3
        length = area_side / math.sqrt(2.0 * _CROSS_ARM - _CROSS_ARM**2)
        h, w = length / 2.0, length * _CROSS_ARM / 2.0
        pts = np.array(
            [[-h, -w], [-h, w], [-w, w], [-w, h], [w, h], [w, w],
             [h, w], [h, -w], [w, -w], [w, -h], [-w, -h], [-w, -w]]
        )  # fmt: skip
    else:
        raise AssertionError(label)
    c, s = math.cos(angle), math.sin(angle)
    return pts @ np.array([[c, s], [-s, c]])


def render_example(
    image_size: int, rng: np.random.Generator, *, label: int | None = None
) -> ShapeExample:
    """Render one example from ``rng`` (the only source of randomness).

    The background (texture and clutter) is drawn first, then the label, then the object, so the
    background does not depend on the class. Passing ``label`` forces the class while consuming
    the same random numbers: the same ``rng`` state then gives the same background, object size,
    rotation and colour candidates with another shape (a counterfactual pair).
    """
    size = _check_image_size(image_size)
    img = _background(rng, size)
    _clutter(rng, img)
    img = np.clip(np.rint(img), 0, 255).astype(np.uint8)

    drawn_label = int(rng.integers(len(CLASS_NAMES)))
    if label is not None:
        if not 0 <= int(label) < len(CLASS_NAMES):
            raise ValueError(f"label must be in [0, {len(CLASS_NAMES)}), got {label}")
        drawn_label = int(label)
    area_side = rng.uniform(*_AREA_SIDE_RANGE) * size
    angle = rng.uniform(0.0, 2.0 * math.pi)
    u_pos = rng.random(2)
    candidates = rng.uniform(0.0, 255.0, (_COLOR_CANDIDATES, 3))

    mask = np.zeros((size, size), dtype=bool)
    radius = area_side / math.sqrt(math.pi)  # the disk's
    pts = None if drawn_label == 0 else _outline(drawn_label, area_side, angle)  # a polygon's
    if pts is None:  # disk
        lo, hi = np.array([-radius, -radius]), np.array([radius, radius])
    else:
        lo, hi = pts.min(axis=0), pts.max(axis=0)
    # centre uniform among positions keeping the object one pixel inside the border
    low = 1.0 - lo
    high = np.maximum(low, (size - 2.0) - hi)
    center = low + u_pos * (high - low)
    if pts is None:
        rr, cc = draw.disk((center[0], center[1]), radius, shape=mask.shape)
    else:
        rr, cc = draw.polygon(pts[:, 0] + center[0], pts[:, 1] + center[1], shape=mask.shape)
    mask[rr, cc] = True

    # object colour: first candidate far enough from the local background around the object
    ring = ndimage.binary_dilation(mask, iterations=2) & ~mask
    local = img[ring].astype(np.float64)  # (n, 3)
    dist = np.linalg.norm(candidates[:, None, :] - local[None, :, :], axis=-1)
    score = (dist >= _CONTRAST_MIN).mean(axis=1)
    ok = np.flatnonzero(score >= _CONTRAST_FRACTION)
    color = np.rint(candidates[ok[0] if ok.size else int(np.argmax(score))]).astype(np.uint8)
    img[mask] = color

    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    bbox = np.array([rows[0], cols[0], rows[-1] + 1, cols[-1] + 1], dtype=np.int32)
    return ShapeExample(
        image=img,
        mask=mask,
        label=drawn_label,
        color=color,
        center=np.rint(center).astype(np.int32),
        bbox=bbox,
    )


def generate_example(
    image_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, int]:
    """Return ``(image uint8 (H, W, 3), mask bool (H, W), label)`` drawn from ``rng`` only."""
    ex = render_example(image_size, rng)
    return ex.image, ex.mask, ex.label


def render_indexed(image_size: int, seed: int, split: int, first: int, count: int) -> list:
    """Examples ``first .. first + count - 1`` of ``split``: each from its own seeded stream
    (a top-level function: worker processes run it)."""
    return [
        render_example(image_size, np.random.default_rng([seed, split, i]))
        for i in range(first, first + count)
    ]


# examples per task, and tasks in flight (~2,000 examples of 64 px: ~30 MB ahead of the writer)
_CHUNK, _AHEAD = 64, 32


def render_split(
    image_size: int, seed: int, split: int, n: int, *, workers: int | None = None
) -> Iterator[ShapeExample]:
    """Examples ``0 .. n - 1`` of ``split``, in order. Drawn by ``workers`` spawned processes
    (default: one per CPU this process may use, at most 4) while the caller consumes them: in
    the TFDS build, rendering was ~35 % of the time and the encoding and writing the rest, one
    core each. The same examples as :func:`render_example` in one process: each comes from its
    own seeded stream. Where no process can be started, or one dies, drawn here."""
    from collections import deque
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    from binsal.core.workers import default_workers, spawn_pool

    if workers is None:
        workers = default_workers()
    starts = list(range(0, n, _CHUNK))
    done = 0  # examples yielded

    def here() -> Iterator[ShapeExample]:
        for start in range(done, n, _CHUNK):
            yield from render_indexed(image_size, seed, split, start, min(_CHUNK, n - start))

    if workers < 2 or len(starts) < 4:
        yield from here()
        return
    try:
        pool = spawn_pool(workers)
    except OSError:
        yield from here()
        return
    pending: deque[Future] = deque()
    queued = iter(starts)
    try:
        for start in queued:
            args = (image_size, seed, split, start, min(_CHUNK, n - start))
            pending.append(pool.submit(render_indexed, *args))
            if len(pending) >= _AHEAD:
                break
        while pending:
            chunk = pending.popleft().result()
            start = next(queued, None)
            if start is not None:
                args = (image_size, seed, split, start, min(_CHUNK, n - start))
                pending.append(pool.submit(render_indexed, *args))
            for example in chunk:
                done += 1
                yield example
    except (OSError, BrokenProcessPool):  # a worker died: the rest drawn here
        yield from here()
    finally:
        pool.shutdown(cancel_futures=True)
