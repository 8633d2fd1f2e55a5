"""Ground-truth synthetic shapes: the class is decided only by one object, whose mask is known.

The idea follows an8flower, BAM and FunnyBirds: render images in which a region known in advance
(here the pixel mask of one flat-coloured object) is the *only* evidence for the label, so a
saliency map can be scored against it. Each image shows one object -- a disk, square, triangle or
cross -- at a random position, size, rotation and colour, on a class-independent background made
of a smooth random texture plus clutter (thin line segments, specks, small elongated blobs).

Independence by construction (see :func:`render_example`): the background, clutter included, is
drawn from the random stream *before* the label, so it is the same whatever the class; object size
is drawn as an *area* (the same for every class), and the colour is drawn uniformly in RGB (the
same distribution as the background palette and the clutter), only rejected when it would not
contrast with the local background. The object is drawn last, on top of everything, so every
pixel inside the mask has exactly the object colour and the silhouette is exactly the mask.

The TFDS builder :class:`BinsalShapes` needs no download; :func:`load_shapes` builds it (fully
offline) and returns numpy arrays. Example ``i`` of split ``s`` (train 0, test 1) comes from
``np.random.default_rng([seed, s, i])`` only, so data are reproducible whatever the order of
generation.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from scipy import ndimage
from skimage import draw

from binsal.core.cache import file_lock
from binsal.core.errors import CorruptCacheError
from binsal.core.progress import notice

__all__ = [
    "CLASS_NAMES",
    "DATASET_NAME",
    "BinsalShapes",
    "ShapeExample",
    "ShapesConfig",
    "ShapesData",
    "generate_example",
    "load_shapes",
    "make_config",
    "render_example",
]

DATASET_NAME = "binsal_shapes"
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


# --------------------------------------------------------------------------------------------
# TFDS builder
# --------------------------------------------------------------------------------------------


def _check_count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return int(seed)


@dataclasses.dataclass(eq=False, kw_only=True)
class ShapesConfig(tfds.core.BuilderConfig):
    """Size, seed and split sizes of one :class:`BinsalShapes` variant (validated on creation).

    The prepared data are cached under the config ``name``: give each distinct set of fields its
    own name, as :func:`make_config` does.
    """

    image_size: int = 64
    seed: int = 0
    n_train: int = 4000
    n_test: int = 1000

    def __post_init__(self) -> None:
        self.image_size = _check_image_size(self.image_size)
        self.seed = _check_seed(self.seed)
        self.n_train = _check_count("n_train", self.n_train)
        self.n_test = _check_count("n_test", self.n_test)
        if not self.description:
            self.description = (
                f"{self.image_size}x{self.image_size} px, seed {self.seed}, "
                f"{self.n_train} train / {self.n_test} test examples"
            )


def make_config(image_size: int, seed: int, n_train: int, n_test: int) -> ShapesConfig:
    """A config whose name encodes every field, e.g. ``s64_seed0_train4000_test1000``."""
    image_size = _check_image_size(image_size)
    seed = _check_seed(seed)
    n_train, n_test = _check_count("n_train", n_train), _check_count("n_test", n_test)
    name = f"s{image_size}_seed{seed}_train{n_train}_test{n_test}"
    predefined = BinsalShapes.builder_configs.get(name)
    if predefined is not None:  # TFDS refuses a new object under a predefined config's name
        return predefined
    return ShapesConfig(name=name, image_size=image_size, seed=seed, n_train=n_train, n_test=n_test)


class BinsalShapes(tfds.core.GeneratorBasedBuilder):
    """Shapes on cluttered textured backgrounds, with the object mask as ground-truth evidence.

    Needs no download. Any :class:`ShapesConfig` can be passed at run time, e.g.
    ``BinsalShapes(config=make_config(64, 0, 4000, 1000), data_dir=...)``. Build it with
    ``download_and_prepare(download_config=tfds.download.DownloadConfig(try_download_gcs=False))``
    (as :func:`load_shapes` does) to skip TFDS's look-up of a prepared copy on GCS.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: disk, square, triangle, cross."}
    BUILDER_CONFIGS = [
        ShapesConfig(name="s64_seed0_train4000_test1000", image_size=64),
        ShapesConfig(name="s32_seed0_train4000_test1000", image_size=32),
    ]

    def _log_download_bytes(self) -> None:
        """Nothing is downloaded: TFDS's "Downloading and preparing dataset" line would say so."""

    def _log_download_done(self) -> None:
        """Quiet: :func:`load_shapes` says what it builds."""

    def _shapes_config(self) -> ShapesConfig:
        cfg = self.builder_config
        if not isinstance(cfg, ShapesConfig):
            raise TypeError(f"{type(self).__name__} needs a ShapesConfig, got {cfg!r}")
        return cfg

    def _info(self) -> tfds.core.DatasetInfo:
        cfg = self._shapes_config()
        size = cfg.image_size
        # DatasetInfo directly, not dataset_info_from_configs: that one reads README/CITATIONS
        # from a folder inferred from the module name (binsal/datasets/), which does not exist
        # under this repository's package-dir mapping.
        return tfds.core.DatasetInfo(
            builder=self,
            description=(__doc__ or "").split("\n\n")[0],
            features=tfds.features.FeaturesDict(
                {
                    "index": tfds.features.Scalar(dtype=np.int64),
                    "image": tfds.features.Image(shape=(size, size, 3)),
                    # 0 outside / 255 inside the object (PNG-encoded)
                    "mask": tfds.features.Image(shape=(size, size, 1)),
                    "label": tfds.features.ClassLabel(names=list(CLASS_NAMES)),
                    "color": tfds.features.Tensor(shape=(3,), dtype=np.uint8),
                    "center": tfds.features.Tensor(shape=(2,), dtype=np.int32),
                    "bbox": tfds.features.Tensor(shape=(4,), dtype=np.int32),
                }
            ),
            supervised_keys=("image", "label"),
            metadata=tfds.core.MetadataDict(
                image_size=cfg.image_size,
                seed=cfg.seed,
                n_train=cfg.n_train,
                n_test=cfg.n_test,
                class_names=list(CLASS_NAMES),
            ),
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        del dl_manager  # nothing to download
        cfg = self._shapes_config()
        counts = {"train": cfg.n_train, "test": cfg.n_test}
        return {
            split: self._generate_examples(split_index, counts[split])
            for split_index, split in enumerate(SPLITS)
        }

    def _generate_examples(self, split_index: int, n: int):
        cfg = self._shapes_config()
        for i in range(n):
            ex = render_example(cfg.image_size, np.random.default_rng([cfg.seed, split_index, i]))
            features = {
                "index": i,
                "image": ex.image,
                "mask": ex.mask[..., None].astype(np.uint8) * 255,
                "label": ex.label,
                "color": ex.color,
                "center": ex.center,
                "bbox": ex.bbox,
            }
            yield i, features


# --------------------------------------------------------------------------------------------
# Loader
# --------------------------------------------------------------------------------------------


class ShapesData:
    """Both splits as numpy arrays, in example-index order.

    ``x_*`` float32 (N, H, W, 3) in [0, 1], ``y_*`` int64 (N,), ``m_*`` bool (N, H, W) masks.
    The training images and masks are decoded on first use (``x_train``, ``m_train``): a run
    whose models all come from the cache never needs them (8,000 images at 64 px are 0.4 GB as
    float32); the labels are read at once, with the PNG images left undecoded.
    """

    def __init__(
        self,
        *,
        y_train: np.ndarray,
        x_test: np.ndarray,
        y_test: np.ndarray,
        m_test: np.ndarray,
        class_names: tuple[str, ...],
        version: str,
        config_name: str,
        train_split: Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray]],
    ) -> None:
        self.y_train = y_train
        self.x_test, self.y_test, self.m_test = x_test, y_test, m_test
        self.class_names, self.version, self.config_name = class_names, version, config_name
        self._train_split = train_split
        self._train: tuple[np.ndarray, np.ndarray] | None = None

    def _decoded_train(self) -> tuple[np.ndarray, np.ndarray]:
        if self._train is None:
            x, y, m = self._train_split()
            if not np.array_equal(y, self.y_train):
                raise CorruptCacheError(
                    f"{DATASET_NAME} {self.config_name}: the training split's labels changed "
                    "since it was opened; delete its directory in the data cache to rebuild it"
                )
            self._train = (x, m)
        return self._train

    @property
    def x_train(self) -> np.ndarray:
        return self._decoded_train()[0]

    @property
    def m_train(self) -> np.ndarray:
        return self._decoded_train()[1]

    @property
    def train_decoded(self) -> bool:
        """Whether the training images have been decoded (read) in this process."""
        return self._train is not None


def _read_split(builder: BinsalShapes, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ds = builder.as_dataset(split=split, batch_size=-1, shuffle_files=False)
    arrays = tfds.as_numpy(ds)
    order = np.argsort(arrays["index"], kind="stable")
    x = arrays["image"][order].astype(np.float32) / np.float32(255.0)
    y = arrays["label"][order].astype(np.int64)
    m = arrays["mask"][order, ..., 0] > 127
    return x, y, m


def _read_labels(builder: BinsalShapes, split: str) -> np.ndarray:
    """The split's labels in example-index order, its PNG images and masks left undecoded."""
    skip = tfds.decode.SkipDecoding()
    ds = builder.as_dataset(
        split=split,
        batch_size=-1,
        shuffle_files=False,
        decoders={"image": skip, "mask": skip},
    )
    arrays = tfds.as_numpy(ds)
    return arrays["label"][np.argsort(arrays["index"], kind="stable")].astype(np.int64)


# Errors that mean "the files on disk cannot be read back".
_READ_ERRORS = (tf.errors.OpError, OSError, ValueError, KeyError, AssertionError)


def _corrupt(prepared: Path, err: BaseException) -> CorruptCacheError:
    return CorruptCacheError(
        f"cached {DATASET_NAME} data in {prepared} cannot be read back "
        f"({type(err).__name__}: {err}); delete that directory to rebuild it"
    )


def load_shapes(
    *,
    image_size: int,
    seed: int,
    n_train: int,
    n_test: int,
    data_dir: str | os.PathLike,
) -> ShapesData:
    """Build (if needed, offline) and load the :class:`BinsalShapes` variant given by the fields.

    TFDS would first look for a prepared copy on GCS (``DownloadConfig.try_download_gcs``
    defaults to True in ``download_and_prepare``); the loader turns that off, so nothing
    touches the network. If prepared data exist under ``data_dir`` but cannot be read back
    (truncated files, broken ``dataset_info.json``, fields that disagree with the config),
    :class:`binsal.core.errors.CorruptCacheError` names the directory to delete; nothing is deleted
    automatically.
    """
    config = make_config(image_size, seed, n_train, n_test)
    data_dir = Path(data_dir)
    prepared = data_dir / DATASET_NAME / config.name / str(BinsalShapes.VERSION)
    # two processes on one fresh cache take turns: the second reads what the first built
    # (TFDS's own rename of its temporary folder fails when both build at once)
    with file_lock(data_dir / f".{DATASET_NAME}-{config.name}.lock"):
        existed = (prepared / "dataset_info.json").exists()
        if not existed:
            notice(f"    building the synthetic data set {config.name} (offline, once per cache)")
        try:
            builder = BinsalShapes(config=config, data_dir=os.fspath(data_dir))
            builder.download_and_prepare(
                download_config=tfds.download.DownloadConfig(try_download_gcs=False)
            )
        except _READ_ERRORS as err:
            if not existed:
                raise
            raise _corrupt(prepared, err) from err
    try:
        meta = builder.info.metadata or {}
        expected = {"image_size": image_size, "seed": seed, "n_train": n_train, "n_test": n_test}
        found = {k: meta.get(k) for k in expected}
        if found != expected:
            raise ValueError(f"stored fields {found} differ from the config's {expected}")
        y_train = _read_labels(builder, "train")
        x_test, y_test, m_test = _read_split(builder, "test")
        if len(y_train) != n_train or len(y_test) != n_test:
            raise ValueError(
                f"found {len(y_train)}/{len(y_test)} examples, expected {n_train}/{n_test}"
            )
    except _READ_ERRORS as err:
        if not existed:
            raise
        raise _corrupt(prepared, err) from err

    def train_split() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        try:
            return _read_split(builder, "train")
        except _READ_ERRORS as err:
            raise _corrupt(prepared, err) from err

    return ShapesData(
        y_train=y_train,
        train_split=train_split,
        x_test=x_test,
        y_test=y_test,
        m_test=m_test,
        class_names=CLASS_NAMES,
        version=str(builder.version),
        config_name=config.name,
    )
