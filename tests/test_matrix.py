"""The version-matrix machinery in the current environment: a method that fails is recorded
and the rest of the profile is still scored."""

from __future__ import annotations

from dataclasses import replace

import pytest

from binsal.core.profile import load_profile
from binsal.matrix import matrix_run
from binsal.reports import history as hist

pytestmark = pytest.mark.slow


def test_a_failing_method_is_recorded_and_the_rest_still_scored(tmp_path, monkeypatch):
    from binsal.saliency.methods import GradCAM

    def broken(self, model, x, t, engine):
        raise RuntimeError("injected failure: this stack cannot run GradCAM")

    monkeypatch.setattr(GradCAM, "_explain_model", broken)
    db = tmp_path / "history.sqlite"
    monkeypatch.setenv(hist.HISTORY_ENV, str(db))
    monkeypatch.setenv(hist.ENV_NAME_ENV, "probe-env")
    p = load_profile("smoke")
    profile = replace(
        p,
        models=("vgg_fp", "vgg_bnn"),
        saliency=replace(p.saliency, methods=("gradient", "gradcam", "random")),
        benchmarks=("rank_correlation", "localization"),
    )
    code = matrix_run(profile, results_dir=tmp_path / "results", cache_dir=str(tmp_path / "c"))
    assert code == 0
    failures = hist.list_failures(db, "probe-env")
    stages = set(failures["stage"])
    assert {"run", "method"} <= stages
    method_fail = failures[failures["stage"] == "method"]
    assert set(method_fail["method"]) == {"gradcam"}
    assert set(method_fail["model"]) == {"vgg_fp", "vgg_bnn"}
    assert method_fail["error"].str.contains("injected failure").all()
    assert "benchmark" not in stages  # both benchmarks run without GradCAM
    runs = hist.list_runs(db)
    assert list(runs["env_name"]) == ["probe-env"]  # the reduced run landed, once
    table, manifest = hist.load_run(db, runs["run_id"].iloc[-1])
    assert set(table["benchmark"]) == {"rank_correlation", "localization"}
    assert set(table["method"]) >= {"gradient", "random"} and "gradcam" not in set(table["method"])
    assert manifest["profile"]["saliency"]["methods"] == ["gradient", "random"]
