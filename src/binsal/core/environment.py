"""Library versions, hardware and the source revision: recorded in every manifest and cache key."""

from __future__ import annotations

import importlib
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from binsal.core.interrupt import reraise_if_interrupted

TRACKED_PACKAGES = [
    "tensorflow",
    "tensorflow-cpu",
    "keras",
    "tf-keras",
    "larq",
    "larq-zoo",
    "tf-keras-vis",
    "tensorflow-datasets",
    "numpy",
    "scipy",
    "scikit-image",
    "pandas",
    "protobuf",
]


def library_versions() -> dict[str, str]:
    """Installed versions of the tracked packages ("absent" when not installed)."""
    out: dict[str, str] = {"python": platform.python_version(), "binsal": binsal_version()}
    for pkg in TRACKED_PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "absent"
    try:
        import tensorflow as tf

        out["tensorflow_runtime"] = tf.__version__
        out["keras_runtime"] = tf.keras.__version__ if hasattr(tf.keras, "__version__") else ""
    except Exception as exc:  # noqa: BLE001 - recorded, not raised
        reraise_if_interrupted(exc)  # a cache key must never record an interrupted import
        out["tensorflow_runtime"] = f"import failed: {exc}"
    return out


def cache_versions() -> dict[str, str]:
    """The versions that change what a trained model is (part of every model cache key),
    Python's minor version among them (models trained under 3.11 are not reused under 3.12)."""
    v = library_versions()
    out = {k: v[k] for k in ("tensorflow_runtime", "keras", "larq", "numpy") if k in v}
    out["python"] = ".".join(platform.python_version_tuple()[:2])
    return out


def cpu_description() -> str:
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name} ({os.cpu_count()} logical cores)"


def _live_commit(cwd: Path) -> str | None:
    """``git rev-parse HEAD`` in ``cwd`` (+ '+dirty' when tracked files changed), or None."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=str(cwd), capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=str(cwd),
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if not sha:
        return None
    return sha + ("+dirty" if dirty else "")


def source_checkout() -> Path | None:
    """The git checkout binsal runs from (``<root>/src/binsal`` with ``<root>/.git``), or None
    when it runs from an installed copy (a wheel in site-packages, even one inside a checkout)."""
    package = Path(__file__).resolve().parent.parent
    root = package.parent.parent
    if package.parent.name == "src" and (root / ".git").exists():
        return root
    return None


def build_commit() -> str | None:
    """The revision recorded when this installed copy was built (``binsal/_build_info.py``,
    written by setup.py into the wheel): ``'<sha> (build)'`` or ``'<sha>+dirty (build)'``."""
    try:
        info = importlib.import_module("binsal._build_info")
    except ImportError:
        return None
    commit = getattr(info, "COMMIT", "")
    if not isinstance(commit, str) or not commit:
        return None
    return commit + ("+dirty" if getattr(info, "DIRTY", False) else "") + " (build)"


def git_commit(repo: Path | None = None) -> str:
    """The source revision of the running binsal, never of the current directory.

    ``'<sha>'`` / ``'<sha>+dirty'`` (tracked files changed) read live from git when binsal runs
    from its checkout (or from ``repo`` when given); ``'<sha> (build)'`` / ``'<sha>+dirty
    (build)'`` as recorded when an installed wheel was built; ``'unknown'`` when neither exists
    (e.g. installed from an archive built without git).
    """
    if repo is not None:
        return _live_commit(repo) or "unknown"
    checkout = source_checkout()
    if checkout is not None:
        live = _live_commit(checkout)
        if live is not None:
            return live
    return build_commit() or "unknown"


def binsal_version() -> str:
    """The running package's version (pyproject.toml reads it from ``binsal._version``)."""
    from binsal._version import __version__

    return __version__


def environment_record() -> dict[str, object]:
    return {
        "libraries": library_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu_description(),
        "git_commit": git_commit(),
    }
