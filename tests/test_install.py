"""A wheel built from the checkout still reports the commit it was built from, once installed
and run away from the checkout (setup.py writes binsal/_build_info.py into the wheel)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import json, binsal
from importlib import metadata
from binsal.core.environment import git_commit
print(json.dumps({"file": binsal.__file__, "commit": git_commit(),
                  "version": binsal.__version__, "dist": metadata.version("binsal")}))
"""


def _head() -> str | None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        return None
    done = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or None


@pytest.mark.slow
def test_installed_wheel_reports_its_build_commit(tmp_path):
    head = _head()
    if head is None:
        pytest.skip("not running from a git checkout")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    wheels, target, elsewhere = tmp_path / "wheels", tmp_path / "target", tmp_path / "elsewhere"
    elsewhere.mkdir()
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(ROOT)], check=True)
    (wheel,) = wheels.glob("binsal-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True)

    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(target)
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    got = json.loads(out.strip().splitlines()[-1])
    assert Path(got["file"]).resolve().is_relative_to(target.resolve())  # the wheel's copy
    assert got["commit"].startswith(head)
    assert got["commit"].endswith(" (build)")
    assert got["commit"].removeprefix(head) in (" (build)", "+dirty (build)")
    assert got["dist"] == got["version"]  # pyproject's version is binsal.__version__
