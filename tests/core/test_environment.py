"""The source revision a run records: live from git in a checkout, else as built into the wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
import types
from importlib import metadata
from pathlib import Path

import pytest

import binsal
from binsal.core import environment

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, str]:
    """A one-commit git repository laid out like the checkout (src/binsal/core/)."""
    root = tmp_path / "checkout"
    core = root / "src" / "binsal" / "core"
    core.mkdir(parents=True)
    (core / "environment.py").write_text("# stand-in\n")
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "one")
    return root, _git(root, "rev-parse", "HEAD")


def _fake_build_info(monkeypatch: pytest.MonkeyPatch, commit: str, dirty: bool) -> None:
    info = types.ModuleType("binsal._build_info")
    info.COMMIT = commit  # type: ignore[attr-defined]
    info.DIRTY = dirty  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "binsal._build_info", info)


def _no_build_info(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "binsal._build_info", None)  # import raises ImportError


@needs_git
def test_live_commit_of_a_checkout_marks_tracked_changes_dirty(repo):
    root, sha = repo
    assert environment.git_commit(root) == sha
    (root / "untracked.txt").write_text("x")  # untracked files do not count
    assert environment.git_commit(root) == sha
    (root / "src" / "binsal" / "core" / "environment.py").write_text("# changed\n")
    assert environment.git_commit(root) == sha + "+dirty"


def test_git_commit_of_a_folder_outside_git_is_unknown(tmp_path):
    assert environment.git_commit(tmp_path) == "unknown"


def test_source_checkout_is_the_src_layout_with_git(monkeypatch, tmp_path):
    root = tmp_path / "checkout"
    module = root / "src" / "binsal" / "core" / "environment.py"
    module.parent.mkdir(parents=True)
    monkeypatch.setattr(environment, "__file__", str(module))
    assert environment.source_checkout() is None  # no .git
    (root / ".git").mkdir()
    assert environment.source_checkout() == root.resolve()
    # an installed copy, even inside a checkout (a tox env under the repository), is not one
    site = root / ".tox" / "test" / "lib" / "python3.11" / "site-packages" / "binsal" / "core"
    site.mkdir(parents=True)
    monkeypatch.setattr(environment, "__file__", str(site / "environment.py"))
    assert environment.source_checkout() is None


def test_installed_copy_reports_the_build_revision(monkeypatch):
    monkeypatch.setattr(environment, "source_checkout", lambda: None)
    _fake_build_info(monkeypatch, "abc123", dirty=False)
    assert environment.build_commit() == "abc123 (build)"
    assert environment.git_commit() == "abc123 (build)"
    _fake_build_info(monkeypatch, "abc123", dirty=True)
    assert environment.git_commit() == "abc123+dirty (build)"


def test_no_checkout_and_no_build_revision_is_unknown(monkeypatch):
    monkeypatch.setattr(environment, "source_checkout", lambda: None)
    _no_build_info(monkeypatch)
    assert environment.build_commit() is None
    assert environment.git_commit() == "unknown"


@needs_git
def test_a_checkout_is_read_live_before_any_build_revision(monkeypatch, repo):
    root, sha = repo
    monkeypatch.setattr(environment, "source_checkout", lambda: root)
    _fake_build_info(monkeypatch, "0" * 40, dirty=False)
    assert environment.git_commit() == sha
    # the current directory does not matter: only where binsal itself comes from
    monkeypatch.chdir(root.parent)
    assert environment.git_commit() == sha


def test_binsal_version_is_the_package_version():
    assert environment.binsal_version() == binsal.__version__
    try:
        installed = metadata.version("binsal")
    except metadata.PackageNotFoundError:  # running from src without an install
        return
    assert installed == binsal.__version__


def test_code_digest_ignores_the_build_stamp(tmp_path, monkeypatch):
    """The digest of binsal's sources (part of every cell and shared-map key) does not change
    when a wheel is rebuilt: the build stamp (_build_info.py) is not a source."""
    import shutil

    from binsal.core import cache

    root = Path(cache.__file__).resolve().parents[1]
    copy = tmp_path / "binsal"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("__pycache__", "weights"))
    monkeypatch.setattr(cache, "__file__", str(copy / "core" / "cache.py"))
    digests = []
    for stamp in ("2026-01-01", "2026-01-02"):
        (copy / "_build_info.py").write_text(f"BUILT_UTC = {stamp!r}\n")
        cache._CODE_DIGEST.clear()
        digests.append(cache.code_digest())
    (copy / "core" / "stats.py").write_text("# changed\n", encoding="utf-8")
    cache._CODE_DIGEST.clear()
    changed = cache.code_digest()
    cache._CODE_DIGEST.clear()
    assert digests[0] == digests[1] != changed
