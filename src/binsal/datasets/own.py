"""Your own images: a folder of images, optional ground-truth masks and labels.

- Images: every image file under the folder (jpg, png, bmp, gif, tif, webp), sorted by path;
  centre-cropped to a square and resized to the models' input size, RGB float32 in [0, 255].
- Masks (``--masks DIR``): one image per input image with the same file stem (``cat.jpg`` ->
  ``cat.png``), anywhere under the folder; non-zero pixels are the object. Cropped like the
  image and resized by nearest neighbour, so a mask stays binary.
- Labels: a CSV file (``file,label``; ``file`` is the image's path relative to the folder or its
  stem; ``label`` the class index of the model's output) or, without one, folder-per-class (the
  images in subfolders). Class names (in the CSV or as folder names) are numbered in sorted
  order, as Keras' ``image_dataset_from_directory`` numbers them: give indices when the models
  were trained with another order. With neither, labels are -1 and each model's own top-1
  prediction is explained.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from binsal.core.errors import BinsalError
from binsal.datasets.images import IMAGE_SUFFIXES, _read_image, square_resize


@dataclass(frozen=True)
class OwnImages:
    images: np.ndarray  # (N, size, size, 3) float32 in [0, 255]
    labels: np.ndarray  # (N,) int64, -1 where unknown
    masks: np.ndarray | None  # (N, size, size) bool
    files: list[str]  # paths relative to the image folder
    class_names: list[str]


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )


def square_resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """The centre square of a mask, resized by nearest neighbour to ``size`` x ``size``, bool."""
    from skimage.transform import resize

    m = np.asarray(mask)
    if m.ndim == 3:
        m = m.max(axis=-1)
    h, w = m.shape
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    m = m[top : top + s, left : left + s] > 0
    out = resize(m.astype(np.float32), (size, size), order=0, anti_aliasing=False)
    return np.asarray(out) > 0.5


def _read_labels(path: Path, files: list[Path], root: Path) -> tuple[np.ndarray, list[str]]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError) as exc:
        raise BinsalError(f"cannot read labels file {path}: {exc}") from None
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["file", "label"]:
        rows = rows[1:]
    bad = [r for r in rows if len(r) < 2]
    if bad:
        raise BinsalError(f"labels file {path}: every line needs file,label; got {bad[0]!r}")
    given = {r[0].strip(): r[1].strip() for r in rows}
    values = []
    missing = []
    for f in files:
        rel = str(f.relative_to(root))
        v = given.get(rel, given.get(f.name, given.get(f.stem)))
        if v is None:
            missing.append(rel)
        values.append(v)
    if missing:
        raise BinsalError(
            f"{len(files)} images but labels for {len(files) - len(missing)}: no label for "
            f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} in {path}"
        )
    if all(str(v).lstrip("-").isdigit() for v in values):
        labels = np.array([int(str(v)) for v in values], dtype=np.int64)
        names = [str(i) for i in range(int(labels.max(initial=0)) + 1)]
        return labels, names
    names = sorted({str(v) for v in values})
    return np.array([names.index(str(v)) for v in values], dtype=np.int64), names


def load_own_images(
    images: str | os.PathLike,
    size: int,
    *,
    masks: str | os.PathLike | None = None,
    labels: str | os.PathLike | None = None,
) -> OwnImages:
    """Images, masks and labels from files (see the module docstring); one-line errors."""
    root = Path(images).expanduser()
    if not root.is_dir():
        raise BinsalError(f"--images {root} is not a folder of images")
    files = _image_files(root)
    if masks is not None:
        mroot = Path(masks).expanduser().resolve()
        files = [f for f in files if mroot not in f.resolve().parents]  # masks inside images/
    if not files:
        raise BinsalError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found under {root}")
    x = np.stack([square_resize(_read_image(f), size) for f in files])
    if labels is not None:
        y, class_names = _read_labels(Path(labels).expanduser(), files, root)
    else:
        classes = sorted({f.parent.name for f in files if f.parent != root})
        if classes and all(f.parent != root for f in files):
            y = np.array([classes.index(f.parent.name) for f in files], dtype=np.int64)
            class_names = classes
        else:
            y, class_names = np.full(len(files), -1, dtype=np.int64), []
    m = None
    if masks is not None:
        mroot = Path(masks).expanduser()
        if not mroot.is_dir():
            raise BinsalError(f"--masks {mroot} is not a folder of mask images")
        by_stem: dict[str, Path] = {}
        for f in _image_files(mroot):
            by_stem.setdefault(f.stem, f)
        missing = [str(f.relative_to(root)) for f in files if f.stem not in by_stem]
        if missing:
            raise BinsalError(
                f"{len(files)} images but masks for {len(files) - len(missing)}: no mask with "
                f"the stem of {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} "
                f"in {mroot}"
            )
        m = np.stack([square_resize_mask(_read_image(by_stem[f.stem]), size) for f in files])
        empty = [str(f.relative_to(root)) for f, mk in zip(files, m, strict=True) if not mk.any()]
        if empty:
            raise BinsalError(f"empty masks (no object pixel) for {', '.join(empty[:5])}")
    return OwnImages(x, y, m, [str(f.relative_to(root)) for f in files], class_names)
