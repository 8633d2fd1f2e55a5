"""Regression tracking on the same weights: two runs of one weights bundle differ in nothing
(scores and maps), and a run that is given a bundle evaluates exactly its weights."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from binsal.cli import main
from binsal.core.profile import load_profile
from binsal.pipeline import export_profile_bundle, run_suite
from binsal.reports.compare import compare_tables, load_run

pytestmark = pytest.mark.slow


def small_profile():
    p = load_profile("smoke")
    sal = replace(p.saliency, methods=("gradient", "smoothgrad", "gradcam", "random"))
    return replace(
        p,
        models=("vgg_fp", "vgg_bnn"),
        saliency=sal,
        benchmarks=("rank_correlation", "localization", "deletion_insertion"),
    )


def test_two_runs_on_one_bundle_change_no_score_and_no_map(tmp_path):
    cache = tmp_path / "cache"
    bundle = export_profile_bundle(
        small_profile(), tmp_path / "bundle", cache_dir=cache, quiet=True
    )
    assert set(bundle.models) == {"vgg_fp", "vgg_bnn"}
    runs = []
    for i in range(2):  # a fresh results folder each: nothing shared but the bundle and cache
        runs.append(
            run_suite(
                small_profile(),
                results_dir=tmp_path / f"results{i}",
                cache_dir=cache,
                quiet=True,
                weights_bundle=bundle.path,
            )
        )
    manifest = json.loads((runs[0] / "manifest.json").read_text())
    assert manifest["weights"]["mode"] == "bundle"
    assert manifest["weights"]["bundle_id"] == bundle.bundle_id
    assert manifest["models"]["vgg_fp"]["cache"] == f"bundle {bundle.bundle_id}"
    a, b = load_run(str(runs[0])), load_run(str(runs[1]))
    assert a.weights == b.weights == f"bundle:{bundle.bundle_id}"
    c = compare_tables(a, b, fdr=0.05)
    assert len(c.table) > 100 and c.only_a.empty and c.only_b.empty
    assert (c.table["change"].abs().max()) == 0.0
    assert c.regressions.empty
    assert len(c.maps) >= 8 and not c.maps["changed"].any()
    assert c.maps["max_abs_diff"].max() == 0.0


def test_a_bundle_that_lacks_a_model_stops_before_any_work(tmp_path, capsys):
    cache = tmp_path / "cache"
    profile = replace(small_profile(), models=("vgg_fp",))
    export_profile_bundle(profile, tmp_path / "b", cache_dir=cache, quiet=True)
    code = main(
        [
            "run",
            "--profile",
            "smoke",
            "--models",
            "vgg_fp,resnet_fp",
            "--weights-bundle",
            str(tmp_path / "b"),
            "--results-dir",
            str(tmp_path / "r"),
            "--cache-dir",
            str(tmp_path / "fresh_cache"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "resnet_fp is not in it" in err[0]
    assert not (tmp_path / "r").exists() and not (tmp_path / "fresh_cache" / "tfds").exists()
