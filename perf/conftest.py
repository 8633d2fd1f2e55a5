"""Fixtures for the performance suite (``tox -e perf``; not collected by ``tox -e test``).

Models are the suite's own synthetic pair members, built untrained (run time does not depend on
the weights) at the smoke profile's size (32 px, widths x 0.25) and at the default profile's size
(64 px, full widths) for the engine comparison; every random draw is seeded.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
from perfkit import build  # noqa: E402


@pytest.fixture(scope="session", params=["vgg_fp", "vgg_bnn", "resnet_fp", "resnet_bnn"])
def smoke_model(request):
    return build(request.param, "smoke")


@pytest.fixture(scope="session", params=["vgg_fp", "vgg_bnn"])
def default_model(request):
    return build(request.param, "default")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Seconds per image of each engine comparison, tf-keras-vis / tf.function ratios and, where
    a method's FLOPs are known, the suite engine's distance to the FLOP limit (its s/image over
    FLOPs per image / the best matrix-multiply rate measured in the same run)."""
    session = getattr(config, "_benchmarksession", None)
    benches = getattr(session, "benchmarks", None) or []
    rows, flops, rate = {}, {}, float("nan")
    for b in benches:
        info = b.extra_info or {}
        if "matmul_flops" in info and b.stats is not None:
            rate = info["matmul_flops"] / b.stats.min
        if "engine" in info and b.stats is not None:
            key = (info["method"], info["model"])
            rows.setdefault(key, {})[info["engine"]] = b.stats.mean / info["images"]
            flops[key] = info.get("flops_per_image", 0)
    if not rows:
        return
    tr = terminalreporter
    tr.section("seconds per image: tf-keras-vis (tfkv) vs the suite's tf.function engine (tf)")
    tr.write_line(f"matrix-multiply rate (float32, TensorFlow): {rate / 1e9:.1f} GFLOP/s")
    tr.write_line(
        f"{'method':<12}{'model':<12}{'tf s/img':>12}{'tfkv s/img':>12}{'tfkv/tf':>9}"
        f"{'MFLOP/img':>11}{'limit s/img':>13}{'tf/limit':>10}"
    )
    for (method, model), eng in sorted(rows.items()):
        tf_s, kv_s = eng.get("tf", float("nan")), eng.get("tfkv", float("nan"))
        f = flops[(method, model)]
        limit = f / rate if f else float("nan")
        tr.write_line(
            f"{method:<12}{model:<12}{tf_s:>12.5f}{kv_s:>12.5f}{kv_s / tf_s:>9.2f}"
            f"{f / 1e6:>11.1f}{limit:>13.5f}{tf_s / limit:>10.2f}"
        )
    # the floor: the traced gradient function alone (test_traced_gradient_alone)
    for (method, model), eng in sorted(rows.items()):
        alone = sorted((int(k[5:]), v) for k, v in eng.items() if k.startswith("graph"))
        f = flops[(method, model)]
        if alone and f:
            tr.write_line(
                f"{method} {model}, traced function alone: "
                + ", ".join(
                    f"batch {n} {v:.5f} s/img ({v * rate / f:.2f}x the limit)" for n, v in alone
                )
            )
