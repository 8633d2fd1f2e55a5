"""Build hook: record the git revision a wheel is built from (all metadata is in pyproject.toml).

``build_py`` writes ``binsal/_build_info.py`` into the wheel (never into ``src/``, where the file
is git-ignored), so an installed binsal still reports the commit it was built from
(``binsal.core.environment.git_commit`` -> ``"<sha> (build)"`` / ``"<sha>+dirty (build)"``).
``sdist`` writes the same file into the source archive, so a wheel built later from that archive
(no ``.git`` there) keeps the revision. Without git (or outside a checkout) nothing is written and
the installed package reports ``"unknown"``. Editable installs read git live and get no file.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

ROOT = Path(__file__).resolve().parent
INFO_FILE = Path("binsal") / "_build_info.py"


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def build_info_source() -> str | None:
    """The module text recording HEAD of the checkout this project is built from, or None."""
    top = _git("rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != ROOT:
        return None  # not built from a git checkout of this project (e.g. from an sdist)
    commit = _git("rev-parse", "HEAD")
    if not commit:
        return None
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    built = datetime.now(UTC).isoformat(timespec="seconds")
    return (
        '"""Written by setup.py when this copy of binsal was built; not in git."""\n\n'
        f"COMMIT = {commit!r}\n"
        f"DIRTY = {dirty!r}  # tracked files differed from COMMIT at build time\n"
        f"BUILT_UTC = {built!r}\n"
    )


class BuildPyWithRevision(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install runs from the checkout and reads git live
        target = Path(self.build_lib) / INFO_FILE
        text = build_info_source()
        if text is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        elif not (Path(self.get_package_dir("binsal")) / INFO_FILE.name).is_file():
            target.unlink(missing_ok=True)  # no stale revision from an earlier build in build/
        # else: built from an sdist, whose own copy of the file build_py has just copied


class SdistWithRevision(sdist):
    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        text = build_info_source()
        if text is not None:
            target = Path(base_dir) / "src" / INFO_FILE
            target.unlink(missing_ok=True)  # may be a hard link into the checkout
            target.write_text(text)


setup(cmdclass={"build_py": BuildPyWithRevision, "sdist": SdistWithRevision})
