"""ImageNet-class images for the paper profile: bundled photos, a user folder, or TFDS.

Every source returns raw RGB images in one frame that every model shares (maps are compared pixel
for pixel): ``[data] crop = "square"`` centre-crops the whole short side and resizes to
``profile.data.image_size`` (224 for the paper models); ``"larq_zoo"`` takes larq-zoo's evaluation
crop (the central 87.5 % of the short side, bicubic), the crop ``larq_zoo.preprocess_input`` and
the standard ImageNet evaluation (resize 256, centre 224) use. Float32 in [0, 255]; each model's own
value preprocessing is applied later by ``LoadedModel.prepare``. Labels are ImageNet class indices
(0-999, the standard order of ``datasets/data/imagenet_classes.json``) where the source has them
and **-1 where it has none**: for those images the benchmarks explain each model's own top-1
prediction (the paper's Figures 1-3 do the same), and "correct" cannot be marked.

Sources (``[data] source`` / ``path`` of the profile):

- ``"photos"``: the photographs that scikit-image ships inside its package (read straight from
  its data folder; pooch is never asked to download anything).
- ``"folder"``: ``path`` is a folder of images (jpg, png, bmp, gif, tif, webp). Images in a
  subfolder named after an ImageNet WordNet id (``n02123045``) or class index (``281``) get that
  label; all others -1.
- ``"tfds"``: ``path`` is a TFDS name with optional config and split, ``name[/config][:split]``,
  e.g. ``imagenet_v2``, ``imagenette/320px-v2:validation``, ``imagenet2012``. The data must be
  prepared already (``tfds.load(..., download=False)``; data dir from a ``[tfds] data_dir`` profile
  section or ``$TFDS_DATA_DIR``); ``imagenet2012`` is prepared from ``[tfds] manual_dir`` (the
  ILSVRC2012 tar files) where it is not. The first ``n_images`` examples of the split are used.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from binsal.core.errors import BinsalError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
TFDS_DEFAULT_SPLITS = {"imagenet_v2": "test", "imagenette": "validation"}
_WNID = re.compile(r"^n\d{8}$")


@lru_cache(maxsize=1)
def _imagenet_classes() -> dict[str, list[str]]:
    text = (resources.files("binsal.datasets") / "data" / "imagenet_classes.json").read_text(
        "utf-8"
    )
    return json.loads(text)


def imagenet_class_names(*, short: bool = True) -> list[str]:
    """The 1000 ImageNet class names in index order; ``short``: the first synonym only."""
    names = _imagenet_classes()["names"]
    return [n.split(",")[0].strip() for n in names] if short else list(names)


def imagenet_wnids() -> list[str]:
    return list(_imagenet_classes()["wnids"])


@dataclass(frozen=True)
class Photo:
    key: str
    file: str  # in skimage.data.data_dir
    label: int  # ImageNet index, -1 where no ImageNet class fits
    description: str


PHOTOS: tuple[Photo, ...] = (
    Photo("chelsea", "chelsea.png", 281, "Chelsea the cat (ImageNet 281 'tabby')"),
    Photo("coffee", "coffee.png", 967, "a cup of coffee (ImageNet 967 'espresso')"),
    Photo("astronaut", "astronaut.png", -1, "astronaut Eileen Collins (no ImageNet class)"),
    Photo("rocket", "rocket.jpg", -1, "Falcon 9 rocket on its pad (no ImageNet class)"),
    Photo(
        "motorcycle",
        "motorcycle_left.png",
        -1,
        "motorcycle, Middlebury stereo left view (no ImageNet motorcycle class)",
    ),
)


Crop = str  # "square" | "larq_zoo" (core.profile.Crop)
# larq-zoo's evaluation crop: the central 224 / (224 + 32) = 87.5 % of the short side
# (larq_zoo.training.data: IMAGE_SIZE 224, CROP_PADDING 32), the standard ImageNet eval crop
LARQ_ZOO_CROP = 224 / (224 + 32)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """An (H, W, 3) array of any image array (grey, bool, RGBA, one channel)."""
    img = np.asarray(image)
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    if img.shape[-1] == 4:
        img = img[..., :3]
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    return img


def square_resize(image: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square, resize (anti-aliased) to ``size`` x ``size``, RGB float [0, 255]."""
    from skimage.transform import resize

    img = _as_rgb(image)
    h, w = img.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    img = img[top : top + s, left : left + s].astype(np.float32)
    if img.max(initial=0) <= 1.0 and np.issubdtype(np.asarray(image).dtype, np.floating):
        img = img * 255.0
    out = np.asarray(
        resize(img, (size, size), order=1, anti_aliasing=s > size, preserve_range=True)
    )
    return np.clip(out, 0.0, 255.0).astype(np.float32)


def larq_zoo_crop(image: np.ndarray, size: int) -> np.ndarray:
    """larq-zoo's evaluation crop, as ``larq_zoo.preprocess_input`` takes it before normalising:
    the central ``LARQ_ZOO_CROP`` of the short side (offset rounded up), bicubic resize
    (``tf.compat.v1.image.resize_bicubic``) to ``size``; float32, bicubic overshoot kept."""
    import tensorflow as tf

    img = _as_rgb(image)
    h, w = img.shape[:2]
    c = int(np.float32(LARQ_ZOO_CROP) * np.float32(min(h, w)))
    top, left = ((h - c) + 1) // 2, ((w - c) + 1) // 2
    crop = tf.convert_to_tensor(img[top : top + c, left : left + c])
    out = tf.compat.v1.image.resize_bicubic([crop], [size, size])[0]
    return np.asarray(out, dtype=np.float32)


def frame_image(image: np.ndarray, size: int, crop: Crop = "square") -> np.ndarray:
    """One raw image in the evaluation frame every model shares: ``crop`` "square" (the whole
    short side, :func:`square_resize`) or "larq_zoo" (:func:`larq_zoo_crop`)."""
    if crop == "square":
        return square_resize(image, size)
    if crop == "larq_zoo":
        return larq_zoo_crop(image, size)
    raise BinsalError(f"unknown [data] crop {crop!r}; known: square, larq_zoo")


def available_photos() -> list[Photo]:
    """The photos whose files are inside the installed scikit-image (no download needed)."""
    from skimage import data

    return [p for p in PHOTOS if os.path.isfile(os.path.join(data.data_dir, p.file))]


def load_photos(
    size: int, n: int | None = None, crop: Crop = "square"
) -> tuple[np.ndarray, np.ndarray, list[Photo]]:
    from skimage import data, io

    photos = available_photos()
    if not photos:
        raise BinsalError(
            f"none of the scikit-image photos ({', '.join(p.file for p in PHOTOS)}) is in "
            f"{data.data_dir}; use [data] source = 'folder' with your own images"
        )
    photos = photos[: n if n else len(photos)]
    images = np.stack(
        [frame_image(io.imread(os.path.join(data.data_dir, p.file)), size, crop) for p in photos]
    )
    return images, np.array([p.label for p in photos], dtype=np.int64), photos


def _label_from_folder(name: str) -> int:
    if _WNID.match(name):
        wnids = imagenet_wnids()
        return wnids.index(name) if name in wnids else -1
    if name.isdigit() and 0 <= int(name) < 1000:
        return int(name)
    return -1


def folder_files(folder: Path) -> list[tuple[Path, int]]:
    """Every image file under ``folder`` (sorted) with its label from the parent folder."""
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return [(p, _label_from_folder(p.parent.name) if p.parent != folder else -1) for p in files]


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except OSError as exc:
        raise BinsalError(f"cannot read image {path}: {exc}") from None


def load_folder(
    folder: str | os.PathLike, size: int, n: int, seed: int, crop: Crop = "square"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    root = Path(folder).expanduser()
    if not str(folder) or not root.is_dir():
        raise BinsalError(
            f"image folder {str(root)!r} does not exist; set [data] path to a folder of images"
        )
    files = folder_files(root)
    if not files:
        raise BinsalError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found under {root}")
    idx = np.arange(len(files))
    if n and n < len(files):
        idx = np.sort(np.random.default_rng(seed).choice(len(files), n, replace=False))
    images = np.stack([frame_image(_read_image(files[i][0]), size, crop) for i in idx])
    labels = np.array([files[i][1] for i in idx], dtype=np.int64)
    return images, labels, idx, [str(files[i][0].relative_to(root)) for i in idx]


def parse_tfds_path(path: str) -> tuple[str, str]:
    """``name[/config][:split]`` -> (``name[/config]``, split)."""
    name, _, split = path.partition(":")
    if not name:
        raise BinsalError("[data] source = 'tfds' needs [data] path = 'name[/config][:split]'")
    base = name.split("/")[0]
    return name, split or TFDS_DEFAULT_SPLITS.get(base, "validation")


def _tfds_label_map(builder: Any) -> np.ndarray | None:
    """Dataset label -> ImageNet index (None: labels are ImageNet indices already)."""
    feature = builder.info.features["label"]
    names = list(getattr(feature, "names", []) or [])
    if names and all(_WNID.match(n) for n in names):
        wnids = imagenet_wnids()
        return np.array([wnids.index(n) if n in wnids else -1 for n in names], dtype=np.int64)
    if feature.num_classes == 1000:
        return None
    raise BinsalError(
        f"TFDS data set {builder.name!r} has {feature.num_classes} classes that are neither "
        "ImageNet indices nor WordNet ids"
    )


def load_tfds(
    path: str, size: int, n: int, options: dict[str, Any], *, crop: Crop = "square"
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    import tensorflow_datasets as tfds

    name, split = parse_tfds_path(path)
    data_dir = options.get("data_dir") or os.environ.get("TFDS_DATA_DIR") or None
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as exc:  # unknown name, bad config
        raise BinsalError(f"TFDS data set {name!r}: {exc}") from None

    def read() -> Any:
        total = builder.info.splits[split].num_examples if split in builder.info.splits else 0
        take = min(n, total) if n and total else n
        return builder.as_dataset(split=f"{split}[:{take}]" if take else split, shuffle_files=False)

    try:
        ds = read()
    except AssertionError:  # tfds: "could not find data in <data_dir>"
        manual = options.get("manual_dir")
        if not manual:
            hint = (
                " (or give the ILSVRC2012 tar files with a [tfds] manual_dir)"
                if name.startswith("imagenet2012")
                else ""
            )
            raise BinsalError(
                f"TFDS data set {name!r} is not prepared in {builder.data_dir}; nothing is "
                f"downloaded during a run: prepare it where there is network "
                f"(tfds.load({name!r}, data_dir=...)) and point [tfds] data_dir or "
                f"$TFDS_DATA_DIR at that folder{hint}"
            ) from None
        if not Path(manual).expanduser().is_dir():
            raise BinsalError(f"TFDS manual_dir {manual} does not exist") from None
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=str(Path(manual).expanduser()))
        )
        ds = read()
    except ValueError as exc:  # unknown split
        raise BinsalError(f"TFDS data set {name!r}: {exc}") from None
    label_map = _tfds_label_map(builder)
    images, labels = [], []
    for ex in tfds.as_numpy(ds):
        images.append(frame_image(ex["image"], size, crop))
        lab = int(ex["label"])
        labels.append(int(label_map[lab]) if label_map is not None else lab)
    if not images:
        raise BinsalError(f"TFDS data set {name!r} split {split!r} has no examples")
    meta = {"dataset": name, "split": split, "version": str(builder.info.version)}
    return np.stack(images), np.array(labels, dtype=np.int64), meta


def load_eval_set(profile: Any, cache_root: Path | None = None) -> Any:
    """The evaluation images of a pretrained-model profile (``data.source`` != "synthetic").

    Returns an :class:`~binsal.datasets.evalset.EvalSet` with ``masks=None``, ``full=None`` (no
    training data:
    benchmarks that retrain do not apply) and ``labels`` -1 where the source has no label.
    """
    from binsal.datasets.evalset import EvalSet  # lazily: evalset imports this module lazily

    d = profile.data
    size, n, seed = d.image_size, profile.saliency.n_images, profile.seed
    desc: dict[str, Any] = {
        "source": d.source,
        "image_size": size,
        "crop": d.crop,
        "label_space": "imagenet",
    }
    if d.source == "photos":
        images, labels, photos = load_photos(size, n, d.crop)
        indices = np.arange(len(photos))
        desc.update(
            dataset="scikit-image photos",
            items=[p.key for p in photos],
            descriptions=[p.description for p in photos],
        )
    elif d.source == "folder":
        images, labels, indices, files = load_folder(d.path, size, n, seed, d.crop)
        desc.update(dataset=str(Path(d.path).expanduser()), items=files, eval_indices_seed=seed)
    elif d.source == "tfds":
        images, labels, meta = load_tfds(
            d.path, size, n, profile.options.get("tfds", {}), crop=d.crop
        )
        indices = np.arange(len(images))
        desc.update(meta)
    else:
        raise BinsalError(
            f"unknown data source {d.source!r}; known: synthetic, photos, folder, tfds"
        )
    desc.update(
        n_images=int(len(images)),
        n_labelled=int(np.sum(labels >= 0)),
        unlabelled_targets="top-1 prediction of each model (label -1)",
    )
    return EvalSet(
        images=images,
        labels=labels,
        masks=None,
        class_names=imagenet_class_names(),
        indices=np.asarray(indices),
        full=None,
        description=desc,
    )
