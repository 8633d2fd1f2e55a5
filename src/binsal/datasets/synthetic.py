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
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from binsal.core.cache import file_lock
from binsal.core.errors import CorruptCacheError
from binsal.core.progress import notice
from binsal.datasets.shapes import (
    CLASS_NAMES,
    MIN_IMAGE_SIZE,  # noqa: F401 - re-exported (binsal.datasets.synthetic.MIN_IMAGE_SIZE)
    SPLITS,
    ShapeExample,
    _check_image_size,
    _clutter,  # noqa: F401 - re-exported for the data set's tests
    generate_example,
    render_example,
    render_split,
)

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
        for i, ex in enumerate(render_split(cfg.image_size, cfg.seed, split_index, n)):
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
