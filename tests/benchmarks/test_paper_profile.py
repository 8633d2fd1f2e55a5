"""Every benchmark of the paper profile, through the real pipeline, on QuickNet (fixed blur-pool
layers with a plain-function initializer, a larq depthwise conv) and MobileNetV2 (depthwise
convs), with weights this test saves from seeded ``weights=None`` builds."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from binsal.benchmarks import BENCHMARKS
from binsal.core.profile import load_profile
from binsal.models import paper, pretrained
from tests.models.test_paper import intercept_downloads, no_network

MODELS = ("quicknet", "mobilenetv2")
N_IMAGES = 2
# no rows on pretrained photos, and why: retraining needs training data, localization masks
NO_ROWS = {
    "roar": "no training data",
    "data_randomization": "no training data",
    "localization": "the photos have no masks",
    "depth_profile": "no matched pairs",
    "binarization_ladder": "no matched pairs to climb",
}
# rows of the BNNs only: the FP model is not swapped (its FP-BNN rows need a matched pair)
BNN_ONLY = {"estimator_swap": ("quicknet",)}


def calibrated_weights(name: str, images: np.ndarray, seed: int) -> Any:
    """The library's model built with ``weights=None`` (seeded), its batch-norm statistics set
    to those of ``images``: with the init statistics (mean 0, variance 1) the activations of a
    random MobileNetV2 shrink to ~1e-12 at the logits and GradCAM has nothing to show."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    full = paper.build_library_model(name, weights=None)
    pre = paper.PAPER_NETS[name].preprocess
    x = images if pre is None else pre(images)
    norms = [m for m in full.submodules if isinstance(m, tf.keras.layers.BatchNormalization)]
    momentum = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 0.0  # the moving statistics become this batch's
    full(x, training=True)
    for m, value in zip(norms, momentum, strict=True):
        m.momentum = value
    return full


@pytest.fixture
def weights_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The two networks' weight files under the libraries' file names, the only place looked
    at: HOME is empty, no KERAS_HOME."""
    from binsal.datasets.images import load_photos

    home, folder = tmp_path / "home", tmp_path / "weights"
    home.mkdir()
    folder.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv(pretrained.WEIGHTS_DIR_ENV, str(folder))
    images, _, _ = load_photos(pretrained.INPUT_SIZE, N_IMAGES)
    for i, name in enumerate(MODELS):
        model = calibrated_weights(name, images, seed=20 + i)
        model.save_weights(str(folder / pretrained.WEIGHT_FILES[name].file))
    return folder


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*differs from the library's release file")
def test_every_paper_benchmark_runs_on_quicknet_and_mobilenetv2(weights_dir, tmp_path):
    from binsal.benchmarks import MapStore, make_method
    from binsal.datasets.images import load_eval_set
    from binsal.models.registry import MODELS as REGISTRY
    from binsal.pipeline import run_suite

    base = load_profile("paper")
    assert base.benchmarks == ("all",)
    # the paper's benchmarks, methods and options as configured (model randomization: the top
    # 8 layers, cascading); only the sizes are tiny: 2 images, 2 noise samples, 50 bootstrap
    # draws, and 3 / 2 points on the deletion-insertion / ROAD curves (~90 s less on 2 busy cores)
    options = {name: dict(opts) for name, opts in base.benchmark_options.items()}
    options["entropy_vs_noise"]["samples"] = 2
    options.setdefault("deletion_insertion", {})["fractions"] = [0, 50, 100]
    options["road"]["fractions"] = [0, 50]
    options["estimator_swap"]["estimators"] = ["ste", "identity"]  # 2 of 7 QuickNet clones
    # the robustness grid at the paper's settings, both GradCAM layer rules (4 of its 24 re-runs)
    options["claim_robustness"] = {
        **options.get("claim_robustness", {}),
        "per_sample_abs": [True],
        "channel_reduce": ["max_abs"],
        "normalize": ["minmax"],
        "gradcam_layer": ["last_feature_map", "toolkit_default"],
    }
    profile = replace(
        base,
        models=MODELS,
        n_boot=50,
        qualitative_images=N_IMAGES,
        saliency=replace(base.saliency, n_images=N_IMAGES, smoothgrad_samples=2),
        benchmark_options=options,
    )
    with intercept_downloads(fake_load=False) as calls, no_network():
        run_dir = run_suite(
            profile, results_dir=tmp_path / "results", cache_dir=tmp_path / "cache", quiet=True
        )
    assert calls == []
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["failures"] == []
    assert not list(run_dir.rglob("*.error.txt"))

    table = pd.read_csv(run_dir / "results.csv")
    produced = set(table["benchmark"])
    registered = set(BENCHMARKS.names())
    assert registered - produced == set(NO_ROWS), sorted(registered - produced)
    for bench in registered - set(NO_ROWS):
        # "a|b": a pairwise score; "all BNN" / "all FP": pooled over a family
        named = table.loc[table["benchmark"] == bench, "model"]
        want = set(BNN_ONLY.get(bench, MODELS))
        assert {m for pair in named for m in pair.split("|")} >= want, bench

    # model randomization: QuickNet's three blur-pool convs left alone and named, 8 steps
    mr = table[table["benchmark"] == "model_randomization"]
    pooled = mr[(mr["metric"] == "sign_flip_fraction") & mr["step"].isna()]
    left = {
        m: json.loads(p).get("fixed_layers_left_alone", [])
        for m, p in pooled[["model", "params"]].values
    }
    assert len(left["quicknet"]) == 3 and all("DepthwiseConv2D" in x for x in left["quicknet"])
    assert left["mobilenetv2"] == []
    for name in MODELS:
        steps = mr[(mr["model"] == name) & (mr["metric"] == "cascading_spearman_abs")]["step"]
        assert set(steps.dropna()) == set(range(9)), name  # step 0 + max_layers = 8

    # GradCAM at each spec's last-feature-map layer: the run's maps of the explained classes
    # are not blank, and neither are the low-resolution CAMs gradcam_pathologies scores
    data = load_eval_set(profile, None)
    assert (data.labels >= 0).all()  # labelled photos: the explained classes are the labels
    for name in MODELS:
        layer = paper.PAPER_NETS[name].gradcam_layer
        assert manifest["models"][name]["gradcam_layer"] == layer
        spec = REGISTRY[name](profile)
        loaded = pretrained.load(spec, profile)
        store = MapStore(run_dir / "maps", engine=profile.saliency.engine)
        gradcam = make_method("gradcam", profile)
        key = store.key(loaded, gradcam, data.images, data.labels)
        maps = np.load(run_dir / "maps" / f"{key}.npy")
        assert maps.shape == (N_IMAGES, 224, 224)
        assert np.all(np.isfinite(maps))
        assert np.all(np.ptp(maps.reshape(N_IMAGES, -1), axis=1) > 0), name
        gp = table[
            (table["benchmark"] == "gradcam_pathologies")
            & (table["model"] == name)
            & table["metric"].isin(["blank_share", "blank_share_upsampled"])
        ]
        assert len(gp) == 2 and (gp["value"] == 0).all(), gp
        assert {json.loads(p)["layer"] for p in gp["params"]} == {layer}
