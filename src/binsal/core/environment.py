"""Library versions, hardware and git state: recorded in every manifest and cache key."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

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
    out: dict[str, str] = {"python": platform.python_version()}
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
        out["tensorflow_runtime"] = f"import failed: {exc}"
    return out


def cache_versions() -> dict[str, str]:
    """The versions that change what a trained model is (part of every model cache key)."""
    v = library_versions()
    return {k: v[k] for k in ("tensorflow_runtime", "keras", "larq", "numpy") if k in v}


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


def git_commit(repo: Path | None = None) -> str:
    """Current commit (with '+dirty' when the tree has changes), or 'unknown' outside git."""
    cwd = str(repo or Path.cwd())
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not sha:
        return "unknown"
    return sha + ("+dirty" if dirty else "")


def environment_record() -> dict[str, object]:
    return {
        "libraries": library_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu_description(),
        "git_commit": git_commit(),
    }
