"""The command line's cheap verbs load no TensorFlow."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import sys
from binsal.cli import main
code = main(["list"])
heavy = sorted(m for m in ("tensorflow", "larq", "tf_keras_vis", "keras") if m in sys.modules)
print("HEAVY=" + ",".join(heavy))
sys.exit(code)
"""


@pytest.mark.slow
def test_list_names_everything_without_importing_tensorflow():
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert "HEAVY=\n" in out, out
    from binsal.benchmarks import BENCHMARKS
    from binsal.core.profile import available_profiles
    from binsal.models.registry import MODELS
    from binsal.saliency import METHODS

    lines = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    assert lines["profiles"].strip().split(", ") == available_profiles()
    assert lines["models"].strip().split(", ") == MODELS.names()
    assert lines["methods"].strip().split(", ") == METHODS.names()
    assert lines["benchmarks"].strip().split(", ") == BENCHMARKS.names()
    assert {"smoke", "default", "paper", "full"} <= set(available_profiles())
    assert {"vgg_fp", "vgg_bnn", "quicknet"} <= set(MODELS.names())
