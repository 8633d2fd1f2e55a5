"""The CLI's cheap verb: `binsal list` in a fresh interpreter (goal: under 2 s, no TensorFlow)."""

from __future__ import annotations

import subprocess
import sys

PROBE = (
    "import sys; from binsal.cli import main; main(['list']); "
    "sys.exit(1 if 'tensorflow' in sys.modules else 0)"
)


def _list() -> None:
    subprocess.run([sys.executable, "-c", PROBE], check=True, capture_output=True, timeout=120)


def test_binsal_list_process(benchmark):
    benchmark.group = "cli"
    benchmark.pedantic(_list, rounds=5, iterations=1, warmup_rounds=1)
