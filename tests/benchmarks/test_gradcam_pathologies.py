"""GradCAM pathologies: blank-map detection on a model whose CAM is negative everywhere,
inverted-map comparison on crafted CAMs, tidy rows on the tiny models."""

from __future__ import annotations

import numpy as np
import pytest

from binsal.benchmarks import BENCHMARKS, MapStore, RunContext
from binsal.benchmarks.gradcam_pathologies import GradCAMPathologies, pathology_scores
from binsal.core.profile import load_profile
from binsal.core.progress import StageTimer
from binsal.models.spec import LoadedModel, ModelSpec

SHAPE = (16, 16, 3)
N_CLASSES = 3


def _signed_cam_model(sign: float, seed: int = 0) -> LoadedModel:
    """conv -> sigmoid ("features", > 0 everywhere) -> GAP -> Dense with every weight = sign.

    GradCAM weights are alpha_k = sign / (h w), so the CAM sum_k alpha_k A^k has the sign of
    ``sign`` at every pixel: negative everywhere for sign = -1, i.e. a blank ReLU'd map.
    """
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    inputs = tf.keras.Input(SHAPE)
    x = tf.keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    x = tf.keras.layers.Activation("sigmoid", name="features")(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    dense = tf.keras.layers.Dense(N_CLASSES, name="logits")
    model = tf.keras.Model(inputs, dense(x))
    dense.set_weights([np.full((4, N_CLASSES), sign, np.float32), np.zeros(N_CLASSES, np.float32)])
    name = "negcam" if sign < 0 else "poscam"
    spec = ModelSpec(
        name=name,
        family="BNN" if sign < 0 else "FP",
        build=lambda **_: model,
        input_shape=SHAPE,
        num_classes=N_CLASSES,
        gradcam_layer="features",
        pair="signed",
    )
    return LoadedModel(spec, model)


def test_registered_with_order_and_sources():
    assert BENCHMARKS["gradcam_pathologies"] is GradCAMPathologies
    assert GradCAMPathologies.order == 65
    for source in ("Selvaraju et al. 2019", "Arras et al. 2022", "Zhang et al. 2016"):
        assert source in GradCAMPathologies.description


def test_crafted_cams_blank_negative_mass_and_inverted_better():
    masks = np.zeros((3, 16, 16), dtype=bool)
    masks[:, 4:12, 4:12] = True  # the centre half of a 4x4 CAM upsampled x4
    cams = np.full((3, 4, 4), 0.5)
    cams[0, 1:3, 1:3] = 2.0  # positive on the object: standard map localizes
    cams[1] = -1.0  # all negative: blank after the ReLU
    cams[1, 1:3, 1:3] = -3.0  # ... and the inverted map peaks on the object
    cams[2, 1:3, 1:3] = -2.0  # negative on the object, positive around it
    s = pathology_scores(cams, (16, 16), masks)
    np.testing.assert_array_equal(s["blank_share"], [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(s["blank_share_upsampled"], [0.0, 1.0, 0.0])
    np.testing.assert_allclose(s["negative_mass_share"], [0.0, 1.0, 8 / 14])
    assert s["relevance_mass_standard"][1] == 0.0  # a blank map counts 0
    np.testing.assert_array_equal(s["inverted_better_relevance_mass"], [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(s["inverted_better_pointing_game"], [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(s["pointing_game_standard"][[0, 2]], [1.0, 0.0])
    np.testing.assert_allclose(s["pointing_game_standard"][1], masks[1].mean())  # chance
    assert set(pathology_scores(cams, (16, 16), None)) == {
        "blank_share",
        "blank_share_upsampled",
        "negative_mass_share",
    }
    empty = np.zeros_like(masks)
    assert np.isnan(pathology_scores(cams, (16, 16), empty)["inverted_better_relevance_mass"]).all()


def test_negative_cam_model_is_blank_everywhere(tmp_path):
    neg, pos = _signed_cam_model(-1.0), _signed_cam_model(+1.0)
    rng = np.random.default_rng(3)
    images = rng.random((5, *SHAPE), dtype=np.float32)
    masks = np.zeros(images.shape[:3], dtype=bool)
    masks[:, 3:9, 6:12] = True
    ctx = RunContext(
        profile=load_profile("smoke"),
        models={neg.name: neg, pos.name: pos},
        images=images,
        labels=rng.integers(0, N_CLASSES, 5),
        masks=masks,
        class_names=[f"c{i}" for i in range(N_CLASSES)],
        maps=MapStore(tmp_path / "maps"),
        progress=StageTimer(quiet=True),
        run_dir=tmp_path,
        cache_root=tmp_path / "cache",
    )
    rows = GradCAMPathologies().run(ctx)
    got = {(r.model, r.metric): r for r in rows}
    assert got["negcam", "blank_share"].value == 1.0
    assert got["negcam", "blank_share_upsampled"].value == 1.0
    assert got["negcam", "negative_mass_share"].value == pytest.approx(1.0)
    assert got["negcam", "relevance_mass_standard"].value == 0.0
    assert got["negcam", "inverted_better_relevance_mass"].value == 1.0
    assert got["poscam", "blank_share"].value == 0.0
    assert got["poscam", "negative_mass_share"].value == 0.0
    assert got["poscam", "inverted_better_relevance_mass"].value == 0.0
    assert all(r.n == len(ctx.images) for r in rows)


def test_rows_on_tiny_models(tiny_ctx):
    rows = GradCAMPathologies().run(tiny_ctx)
    assert {r.model for r in rows} == set(tiny_ctx.models)
    for model in tiny_ctx.models:
        assert {r.metric for r in rows if r.model == model} == set(GradCAMPathologies.scores)
    for r in rows:
        assert r.benchmark == "gradcam_pathologies" and r.method == "gradcam"
        assert r.direction == GradCAMPathologies.scores[r.metric].direction
        assert r.n == len(tiny_ctx.images)
        assert r.ci_low <= r.value + 1e-12 and r.value <= r.ci_high + 1e-12
        assert 0.0 <= r.value <= 1.0
        assert r.pair in {"tiny_vgg", "tiny_resnet"}
    tiny_ctx.masks = None
    rows = GradCAMPathologies().run(tiny_ctx)
    assert {r.metric for r in rows} == {
        "blank_share",
        "blank_share_upsampled",
        "negative_mass_share",
        "blank_or_constant_share_last_feature_map",
        "blank_or_constant_share_toolkit_default",
    }


def test_blank_or_constant_share_under_both_layer_rules(tiny_ctx):
    """Each rule's row names its layer and size; a 1x1 (constant) CAM counts as blank."""
    import json

    from binsal.benchmarks.gradcam_pathologies import blank_or_constant
    from binsal.models.gradcam_rules import toolkit_default_layer

    rows = [r for r in GradCAMPathologies().run(tiny_ctx) if "blank_or_constant" in r.metric]
    for r in rows:
        p = json.loads(r.params)
        lm = tiny_ctx.models[r.model]
        want = lm.gradcam_layer if p["layer_rule"] == "last_feature_map" else None
        assert p["layer"] == (want or toolkit_default_layer(lm.model))
        assert len(p["cam_resolution"]) == 2 and r.metric.endswith(p["layer_rule"])
    cams = np.zeros((3, 1, 1))
    cams[0, 0, 0], cams[1, 0, 0] = 2.0, -1.0
    assert blank_or_constant(cams, rel_eps=1e-6, abs_eps=1e-12).tolist() == [1.0, 1.0, 1.0]
    live = np.array([[[0.0, 1.0], [0.5, -2.0]]])
    assert blank_or_constant(live, rel_eps=1e-6, abs_eps=1e-12).tolist() == [0.0]
