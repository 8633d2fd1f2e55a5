"""Content-addressed on-disk cache: keys are hashes of configuration + library versions.

Entries are written to a temporary folder and renamed into place, so an interrupted write never
leaves a half entry; each entry records a checksum of its payload so corruption is detected.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from binsal.core.errors import BinsalError, CorruptCacheError

DEFAULT_CACHE_DIR = ".binsal_cache"


def cache_root(path: str | os.PathLike | None = None) -> Path:
    root = Path(path or os.environ.get("BINSAL_CACHE_DIR", DEFAULT_CACHE_DIR)).expanduser()
    return writable_dir(root, "cache folder")


def writable_dir(path: str | os.PathLike, what: str) -> Path:
    """``path`` as an existing folder this process can write to (created if absent), checked
    by writing a probe file; else one :class:`BinsalError` line naming the folder and why."""
    folder = Path(path).expanduser()
    hint = "pass another folder"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise BinsalError(f"{what} {folder} is a file, not a folder; {hint}") from None
    except NotADirectoryError:
        raise BinsalError(f"{what} {folder} lies under a file, not a folder; {hint}") from None
    except OSError as exc:
        raise BinsalError(f"{what} {folder} cannot be created ({exc.strerror}); {hint}") from None
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".binsal-probe-"):
            pass
    except OSError as exc:
        raise BinsalError(f"{what} {folder} is not writable ({exc.strerror}); {hint}") from None
    return folder


def config_key(config: Any, length: int = 16) -> str:
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock (``flock``) on ``path`` (created if absent) while the
    block runs: two processes building one cache entry take turns, and the second then finds
    the first one's work. The kernel releases the lock when the holder dies, even on kill -9."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def write_entry(final_dir: Path, files: dict[str, Any], meta: dict[str, Any]) -> None:
    """Atomically create ``final_dir`` holding ``files`` (name -> writer(path)) and meta.json.

    ``meta.json`` gets a ``sha256`` entry per file so :func:`verify_entry` can detect corruption.
    """
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final_dir.name}.", dir=final_dir.parent))
    try:
        checksums = {}
        for name, writer in files.items():
            writer(tmp / name)
            checksums[name] = file_sha256(tmp / name)
        (tmp / "meta.json").write_text(json.dumps({**meta, "sha256": checksums}, indent=2))
        with file_lock(final_dir.parent / f".{final_dir.name}.lock"):
            if final_dir.exists():
                try:
                    verify_entry(final_dir)
                    return  # another process wrote the same entry meanwhile: the first one wins
                except CorruptCacheError:
                    shutil.rmtree(final_dir)
            os.replace(tmp, final_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def verify_entry(entry_dir: Path) -> dict[str, Any]:
    """Return the entry's meta after checking every payload checksum; raise if corrupt."""
    meta_path = entry_dir / "meta.json"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        msg = f"cache entry {entry_dir} has no readable meta.json ({exc})"
        raise CorruptCacheError(msg) from exc
    for name, digest in meta.get("sha256", {}).items():
        path = entry_dir / name
        if not path.exists() or file_sha256(path) != digest:
            raise CorruptCacheError(f"cache entry {entry_dir}: {name} is missing or corrupt")
    return meta


_CODE_DIGEST: dict[str, str] = {}


def code_digest() -> str:
    """SHA-256 (16 hex) of binsal's own source files (``*.py`` and the profiles): part of every
    key of a computed result, so that a change of the code computes it anew."""
    if "binsal" not in _CODE_DIGEST:
        root = Path(__file__).resolve().parents[1]
        h = hashlib.sha256()
        # not _build_info.py: a wheel's build stamp would change the digest at every install
        sources = (p for p in root.rglob("*") if p.suffix in (".py", ".toml"))
        for path in sorted(p for p in sources if p.name != "_build_info.py"):
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
        _CODE_DIGEST["binsal"] = h.hexdigest()[:16]
    return _CODE_DIGEST["binsal"]
