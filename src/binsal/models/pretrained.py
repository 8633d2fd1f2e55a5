"""Pretrained weights for the paper profile, found on disk and never downloaded mid-run.

Where a weight file is looked for, in this order (``WeightFile.file`` / ``.cache_subdir`` are
the names the library itself uses with ``tf.keras.utils.get_file``):

1. the weights directory (``--weights-dir`` / ``$BINSAL_WEIGHTS_DIR``): ``DIR/<file>``, or
   ``DIR/<cache_subdir>/<file>`` (a copy of a ``~/.keras`` folder works as is);
2. the Keras cache: ``$KERAS_HOME/<cache_subdir>/<file>`` (honoured by Keras 3),
   ``~/.keras/<cache_subdir>/<file>`` and ``/tmp/.keras/<cache_subdir>/<file>`` (where Keras 2
   puts it when ``~/.keras`` is not writable).

This module imports neither TensorFlow nor the model libraries, so :func:`preflight` answers
within a fraction of a second. All requested models are checked up front; if any file is missing,
:class:`~binsal.core.errors.MissingWeightsError`
lists one line per missing file with where to put it
and where the library downloads it from. Nothing here opens a network connection: a found file
is handed to the library's own builder as ``weights=<path>``, which loads it with
``model.load_weights`` without calling ``get_file`` (which would re-hash the file and, on a
mismatch, try to re-download it). Whether the file's hash matches the release is recorded in
``LoadedModel.meta`` and warned about, not enforced, so that re-saved or converted files work.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from binsal.core.errors import BinsalError, CorruptCacheError, MissingWeightsError
from binsal.models.spec import LoadedModel, ModelSpec

WEIGHTS_DIR_ENV = "BINSAL_WEIGHTS_DIR"
INPUT_SIZE = 224  # every pretrained network of the paper takes 224x224 RGB


@dataclass(frozen=True)
class WeightFile:
    """One pretrained weight file as the library fetches it with ``tf.keras.utils.get_file``."""

    file: str
    cache_subdir: str  # under the Keras cache (~/.keras): "models" or "larq/models/<model>"
    origin: str
    file_hash: str | None = None  # md5 (32 hex digits) or sha256 (64), as the library gives it

    @property
    def hash_algorithm(self) -> str | None:
        if self.file_hash is None:
            return None
        return "sha256" if len(self.file_hash) == 64 else "md5"


_KA = "https://storage.googleapis.com/tensorflow/keras-applications/"
_LZ = "https://github.com/larq/zoo/releases/download/"


def _larq_zoo_file(model: str, version: str, file: str, file_hash: str) -> WeightFile:
    """As ``larq_zoo.core.utils.download_pretrained_model`` builds it."""
    return WeightFile(file, f"larq/models/{model}", f"{_LZ}{model}-{version}/{file}", file_hash)


WEIGHT_FILES: dict[str, WeightFile] = {
    "efficientnetb0": WeightFile(
        "efficientnetb0.h5",
        "models",
        "https://storage.googleapis.com/keras-applications/efficientnetb0.h5",
        "902e53a9f72be733fc0bcb005b3ebbac",
    ),
    "mobilenet": WeightFile(
        "mobilenet_1_0_224_tf.h5", "models", f"{_KA}mobilenet/mobilenet_1_0_224_tf.h5"
    ),
    "mobilenetv2": WeightFile(
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5",
        "models",
        f"{_KA}mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5",
    ),
    "vgg16": WeightFile(
        "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
        "models",
        f"{_KA}vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5",
        "64373286793e3c8b2b4e3219cbf3544b",
    ),
    "resnet50": WeightFile(
        "resnet50_weights_tf_dim_ordering_tf_kernels.h5",
        "models",
        f"{_KA}resnet/resnet50_weights_tf_dim_ordering_tf_kernels.h5",
        "2cb95161c43110f7111970584f804107",
    ),
    "quicknet": _larq_zoo_file(
        "quicknet",
        "v1.0",
        "quicknet_weights.h5",
        "8aba9e4e5f8d342faef04a0b2ae8e562da57dbb7d15162e8b3e091c951ba756c",
    ),
    "binaryalexnet": _larq_zoo_file(
        "binary_alexnet",
        "v0.3.0",
        "binary_alexnet_weights.h5",
        "7fc065c47c5c1d92389e0bb988ce6df6a4fa09d803b866e2ba648069d6652d63",
    ),
    "binaryresnete18": _larq_zoo_file(
        "resnet_e",
        "v0.1.0",
        "resnet_e_18_weights.h5",
        "bde4a64d42c164a7b10a28debbe1ad5b287c499bc0247ecb00449e6e89f3bf5b",
    ),
    "meliusnet22": _larq_zoo_file(
        "meliusnet22",
        "v0.1.0",
        "meliusnet22_weights.h5",
        "c1ba85e8389ae326009665ec13331e49fc3df4d0f925fa8553e224f7362c18ed",
    ),
    "realtobinarynet": _larq_zoo_file(
        "r2b",
        "v0.1.0",
        "r2b_weights.h5",
        "e8fd16ca1ab9810ac3835f24f5c62758a57bc32a615f73aaa50d382d2b9617e1",
    ),
}


@dataclass(frozen=True)
class WeightLocation:
    model: str
    weight: WeightFile
    path: Path | None  # the file found, or None
    where: str  # "weights dir" | "keras cache" | ""
    candidates: tuple[Path, ...]  # every place looked at, in order


def weights_dir(explicit: str | os.PathLike | None = None) -> Path | None:
    value = explicit if explicit is not None else os.environ.get(WEIGHTS_DIR_ENV, "")
    return Path(value).expanduser() if str(value) else None


def keras_cache_dirs() -> list[Path]:
    """Keras cache roots in the order ``get_file`` (Keras 3, then Keras 2) would use them."""
    roots: list[Path] = []
    if os.environ.get("KERAS_HOME"):
        roots.append(Path(os.environ["KERAS_HOME"]).expanduser())
    roots.append(Path(os.path.expanduser("~")) / ".keras")
    roots.append(Path("/tmp") / ".keras")
    out: list[Path] = []
    for r in roots:
        if r not in out:
            out.append(r)
    return out


def locate(model: str, *, weights_directory: str | os.PathLike | None = None) -> WeightLocation:
    """Where ``model``'s weight file is (or would have to be)."""
    if model not in WEIGHT_FILES:
        raise BinsalError(f"model {model!r} has no pretrained weight file")
    wf = WEIGHT_FILES[model]
    wdir = weights_dir(weights_directory)
    tagged: list[tuple[Path, str]] = []
    if wdir is not None:
        tagged += [
            (wdir / wf.file, "weights dir"),
            (wdir / wf.cache_subdir / wf.file, "weights dir"),
        ]
    tagged += [(root / wf.cache_subdir / wf.file, "keras cache") for root in keras_cache_dirs()]
    for path, where in tagged:
        if path.is_file():
            return WeightLocation(model, wf, path, where, tuple(p for p, _ in tagged))
    return WeightLocation(model, wf, None, "", tuple(p for p, _ in tagged))


def _missing_line(loc: WeightLocation, wdir: Path | None) -> str:
    wf = loc.weight
    cache = keras_cache_dirs()[0] / wf.cache_subdir / wf.file
    if wdir is not None:
        dest = f"{wdir / wf.file} (weights dir) or {cache} (Keras cache)"
    else:
        dest = f"<DIR>/{wf.file} with --weights-dir DIR, or {cache} (Keras cache)"
    return f"  {loc.model}: {wf.file} missing; put it at {dest}; library source: {wf.origin}"


def pretrained_models(names: Iterable[str]) -> list[str]:
    return [n for n in names if n in WEIGHT_FILES]


def larq_zoo_models(names: Iterable[str]) -> list[str]:
    """The models of ``names`` that larq-zoo builds (the paper profile's five BNNs)."""
    return [n for n in pretrained_models(names) if WEIGHT_FILES[n].cache_subdir.startswith("larq/")]


def larq_zoo_missing_message(names: Iterable[str]) -> str:
    names = list(names)
    which = (
        f"the model {names[0]} needs" if len(names) == 1 else f"the models {', '.join(names)} need"
    )
    return (
        f"{which} larq-zoo, which is not installed (it is an optional extra: "
        "pip install 'binsal[paper]')"
    )


def check_larq_zoo(names: Iterable[str]) -> None:
    """Raise :class:`BinsalError` (one line) when a larq-zoo model of ``names`` is requested
    but larq-zoo is not installed; looks the package up without importing it (no TensorFlow)."""
    needed = larq_zoo_models(names)
    if needed and importlib.util.find_spec("larq_zoo") is None:
        raise BinsalError(larq_zoo_missing_message(needed))


def check_weights(
    names: Iterable[str], *, weights_directory: str | os.PathLike | None = None
) -> list[WeightLocation]:
    """Locate the weight file of every pretrained model in ``names``; raise
    :class:`MissingWeightsError` listing every missing file (one line each)."""
    wdir = weights_dir(weights_directory)
    locs = [locate(n, weights_directory=wdir) for n in pretrained_models(names)]
    missing = [loc for loc in locs if loc.path is None]
    if missing:
        looked = f"weights dir {wdir}" if wdir is not None else "no weights dir given"
        head = (
            f"pretrained weights missing for {len(missing)} of {len(locs)} model(s) "
            f"({looked}; Keras cache {keras_cache_dirs()[0]}). Nothing is downloaded during a "
            "run: fetch the files where there is network (the library source below, or by "
            "building the model once with weights='imagenet') and copy them to one of:"
        )
        raise MissingWeightsError("\n".join([head, *(_missing_line(m, wdir) for m in missing)]))
    return locs


def preflight(profile: Any, *, weights_directory: str | os.PathLike | None = None) -> list[str]:
    """Check, in well under a second and without any network access, that every pretrained
    model of ``profile`` can be loaded: its input size fits and its weight file is on disk.

    Raises :class:`BinsalError` (larq-zoo not installed, or the wrong image size),
    :class:`MissingWeightsError` (all missing files, one line each); returns one
    ``"model: path (where)"`` line per pretrained model.
    """
    names = pretrained_models(profile.models)
    check_larq_zoo(names)
    if names and profile.data.image_size != INPUT_SIZE:
        raise BinsalError(
            f"profile {profile.name!r}: the pretrained models {', '.join(names)} take "
            f"{INPUT_SIZE}x{INPUT_SIZE} images, but [data] image_size = {profile.data.image_size}"
        )
    locs = check_weights(names, weights_directory=weights_directory)
    return [f"{loc.model}: {loc.path} ({loc.where})" for loc in locs]


def file_digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def release_hash_matches(path: Path, weight: WeightFile) -> bool | None:
    """Whether ``path`` is byte-identical to the library's release file (None: no hash known)."""
    if weight.file_hash is None or weight.hash_algorithm is None:
        return None
    return file_digest(path, weight.hash_algorithm) == weight.file_hash


def load(
    spec: ModelSpec,
    profile: Any = None,
    cache_root: Path | None = None,
    *,
    weights_directory: str | os.PathLike | None = None,
    verify_hash: bool = True,
) -> LoadedModel:
    """Build ``spec`` with its pretrained ImageNet weights from disk.

    All pretrained models of ``profile`` are checked first, so a missing file of a later model
    fails the run now, not after the first models' saliency maps. ``cache_root`` (binsal's own
    cache) is not needed: weights live in the Keras cache or the weights dir.
    """
    if spec.name not in WEIGHT_FILES:
        raise BinsalError(f"model {spec.name!r} (source {spec.source!r}) has no pretrained loader")
    names = [spec.name, *(profile.models if profile is not None else ())]
    locs = {loc.model: loc for loc in check_weights(names, weights_directory=weights_directory)}
    loc = locs[spec.name]
    assert loc.path is not None
    try:
        model = spec.build(**{**spec.build_kwargs, "weights": str(loc.path)})
    except (OSError, ValueError, KeyError) as exc:
        raise CorruptCacheError(
            f"{spec.name}: cannot load weights from {loc.path} ({type(exc).__name__}: {exc}); "
            f"expected the file {loc.weight.file} from {loc.weight.origin}"
        ) from exc
    matches = release_hash_matches(loc.path, loc.weight) if verify_hash else None
    if matches is False:
        warnings.warn(
            f"{spec.name}: {loc.path} loads but differs from the library's release file "
            f"({loc.weight.hash_algorithm} {loc.weight.file_hash}); results may not be comparable",
            stacklevel=2,
        )
    status = {True: "release hash ok", False: "differs from release", None: "no release hash"}
    return LoadedModel(
        spec=spec,
        model=model,
        meta={
            "cache": f"{loc.path} ({loc.where}; {status[matches]})",
            "weights_file": str(loc.path),
            "weights_where": loc.where,
            "release_hash_matches": matches,
            "weights_origin": loc.weight.origin,
        },
    )
