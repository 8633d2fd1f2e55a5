"""Weights bundles: a profile's trained models exported once and evaluated anywhere.

A bundle is a folder with one ``<model>.h5`` weight file per model and ``bundle.json``: for each
model its architecture (``ModelSpec.config()``), the SHA-256 of its weights, its test accuracy
and how it was trained; plus the data set version and the library stack the models were trained
on (the bundle's *home stack*). ``binsal run --weights-bundle DIR`` builds each model from its
spec and loads exactly these weights instead of training, so in a version matrix a changed map
or score is the libraries' doing, not training noise. Weights are stored as HDF5 weight files
(not whole saved models): they load into the same architecture under Keras 2 and tf-keras alike.

Reading and checking a bundle (:func:`read_bundle`, :func:`check_bundle`) imports no TensorFlow.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from binsal.core.cache import config_key, file_sha256
from binsal.core.environment import library_versions
from binsal.core.errors import BinsalError
from binsal.models.spec import LoadedModel, ModelSpec

BUNDLE_FILE = "bundle.json"
BUNDLE_FORMAT = 1
BUNDLE_ENV = "BINSAL_WEIGHTS_BUNDLE"


@dataclass(frozen=True)
class Bundle:
    path: Path
    meta: dict[str, Any]

    @property
    def bundle_id(self) -> str:
        return str(self.meta["bundle_id"])

    @property
    def models(self) -> dict[str, Any]:
        return dict(self.meta["models"])

    def record(self) -> dict[str, Any]:
        """What a run's manifest says about the weights it evaluated."""
        return {
            "mode": "bundle",
            "bundle_id": self.bundle_id,
            "bundle_path": str(self.path),
            "profile": self.meta.get("profile"),
            "data": self.meta.get("data"),
            "home_stack": self.meta.get("stack", {}),
            "created_utc": self.meta.get("created_utc"),
        }


def _jsonable(x: Any) -> Any:
    return json.loads(json.dumps(x, default=str))


def export_bundle(
    models: dict[str, LoadedModel],
    out: str | os.PathLike,
    *,
    profile_name: str,
    data: dict[str, Any],
) -> Bundle:
    """Write ``models`` (trained here or loaded from the cache) as a bundle folder ``out``."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    entries: dict[str, Any] = {}
    for name, loaded in models.items():
        file = f"{name}.h5"  # HDF5 weights (Keras 2 format, read by tf-keras too)
        tmp = folder / f".tmp-{file}"
        loaded.model.save_weights(str(tmp))
        tmp.replace(folder / file)
        entries[name] = {
            "file": file,
            "sha256": file_sha256(folder / file),
            "spec": _jsonable(loaded.spec.config()),
            "family": loaded.family,
            "test_accuracy": loaded.test_accuracy,
            "train_key": loaded.meta.get("key"),
            "train_seconds": loaded.meta.get("train_seconds"),
        }
    meta = {
        "format": BUNDLE_FORMAT,
        "bundle_id": config_key({n: e["sha256"] for n, e in entries.items()}, length=16),
        "profile": profile_name,
        "data": _jsonable(data),
        "stack": library_versions(),
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "models": entries,
    }
    tmp_meta = folder / f".{BUNDLE_FILE}.tmp"
    tmp_meta.write_text(json.dumps(meta, indent=2))
    tmp_meta.replace(folder / BUNDLE_FILE)
    return Bundle(folder, meta)


def read_bundle(path: str | os.PathLike) -> Bundle:
    """The bundle at ``path``; one-line errors for a missing or unreadable bundle.json."""
    folder = Path(path).expanduser()
    meta_file = folder / BUNDLE_FILE
    if not meta_file.is_file():
        raise BinsalError(f"weights bundle {folder}: no {BUNDLE_FILE} (make one: binsal bundle)")
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BinsalError(f"weights bundle {folder}: unreadable {BUNDLE_FILE} ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != BUNDLE_FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else None
        raise BinsalError(f"weights bundle {folder}: format {got!r}, expected {BUNDLE_FORMAT}")
    if not isinstance(meta.get("models"), dict) or "bundle_id" not in meta:
        raise BinsalError(f"weights bundle {folder}: {BUNDLE_FILE} lists no models")
    return Bundle(folder, meta)


def check_bundle(bundle: Bundle, specs: dict[str, ModelSpec]) -> None:
    """Before any work: every model is in the bundle, with the same architecture, and its
    weight file is present and intact. Raises one line naming every problem."""
    problems = []
    for name, spec in specs.items():
        entry = bundle.models.get(name)
        if entry is None:
            problems.append(f"{name} is not in it (it has: {', '.join(bundle.models) or 'none'})")
            continue
        if entry.get("spec") != _jsonable(spec.config()):
            problems.append(f"{name} was exported with another architecture or input size")
            continue
        file = bundle.path / str(entry.get("file", ""))
        if not file.is_file():
            problems.append(f"{name}: {file.name} is missing")
        elif file_sha256(file) != entry.get("sha256"):
            problems.append(f"{name}: {file.name} does not match its SHA-256")
    if problems:
        raise BinsalError(f"weights bundle {bundle.path}: " + "; ".join(problems))


def load_from_bundle(bundle: Bundle, spec: ModelSpec) -> LoadedModel:
    """Build ``spec``'s architecture and load the bundle's weights into it."""
    entry = bundle.models[spec.name]
    model = spec.build(**spec.build_kwargs)
    model.load_weights(str(bundle.path / entry["file"]))
    meta = {
        "cache": f"bundle {bundle.bundle_id}",
        "weights_sha256": entry["sha256"],
        "train_seconds": entry.get("train_seconds"),
        "key": entry.get("train_key"),
    }
    return LoadedModel(spec, model, float(entry.get("test_accuracy", float("nan"))), meta)
