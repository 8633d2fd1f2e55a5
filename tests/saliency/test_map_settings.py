"""Map settings from the profile (per-sample abs, channel reduction, normalisation, GradCAM layer
rule) and the tf-keras-vis preset, checked against tf-keras-vis 0.8.7 called with its defaults."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from binsal.benchmarks import make_method
from binsal.core.errors import BinsalError
from binsal.core.profile import PRESETS, load_profile, with_overrides
from binsal.models.gradcam_rules import apply_rule, resolve_layer, toolkit_default_layer
from binsal.models.spec import LoadedModel
from binsal.saliency import Gradient, SmoothGrad, engine_tf
from binsal.saliency.base import normalize_maps, reduce_channels


def _preset_profile(**saliency):
    prof = load_profile("smoke")
    return with_overrides(prof, saliency=replace(prof.saliency, **saliency))


def _fresh(model: LoadedModel) -> LoadedModel:
    """A LoadedModel of the same network whose spec a rule may change (fixtures are shared)."""
    return LoadedModel(model.spec, model.model, model.test_accuracy)


def _close(ours: np.ndarray, ref: np.ndarray) -> None:
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5 * max(np.abs(ref).max(), 1e-12))


@pytest.fixture(scope="module", params=[("vgg", False), ("vgg", True)], ids=["fp", "bnn"])
def tiny_pair_member(request):
    from tests.conftest import build_tiny

    return build_tiny(*request.param)


def test_tf_keras_vis_preset_equals_tf_keras_vis_defaults(tiny_pair_member, tiny_batch):
    """Gradient, SmoothGrad (shared noise) and GradCAM under ``preset = "tf-keras-vis"`` equal
    tf-keras-vis 0.8.7's Saliency / Gradcam called with nothing but the score and the input."""
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.saliency import Saliency
    from tf_keras_vis.utils.scores import CategoricalScore

    from binsal.saliency.engine_tfkv import _injected_noise

    x, t = tiny_batch
    prof = _preset_profile(preset="tf-keras-vis", smoothgrad_samples=5, smoothgrad_noise=0.2)
    lm = apply_rule(_fresh(tiny_pair_member), prof.saliency.gradcam_layer_for("any"))
    score = CategoricalScore([int(i) for i in t])

    ref = Saliency(lm.model, clone=False)(score, x)
    _close(make_method("gradient", prof).explain(lm, x, t), ref)

    sg = make_method("smoothgrad", prof)
    assert isinstance(sg, SmoothGrad)
    draws = engine_tf.standard_normal_draws(len(x), sg.samples, x.shape[1:], sg.seed)
    with _injected_noise(draws):
        ref = Saliency(lm.model, clone=False)(score, x, smooth_samples=sg.samples)
    _close(sg.explain(lm, x, t), ref)

    ref = Gradcam(lm.model, clone=False)(score, x)
    ours = make_method("gradcam", prof).explain(lm, x, t)
    _close(ours, ref)
    assert lm.gradcam_layer == toolkit_default_layer(lm.model)
    assert lm.meta["gradcam_rule"] == "toolkit_default"


def test_binsal_preset_keeps_the_methods_defaults():
    prof = load_profile("smoke")
    assert prof.saliency.map_settings() == PRESETS["binsal"]
    g = make_method("gradient", prof)
    assert g == Gradient(chunk_size=prof.saliency.chunk_size)
    # options added later stay out of cache keys at their neutral value (old keys still hit)
    assert "normalize" not in g.key_params() and "per_sample_abs" not in g.key_params()
    assert "per_sample_abs" in make_method("smoothgrad", prof).key_params()
    tuned = make_method("gradient", _preset_profile(normalize="minmax"))
    assert tuned.key_params()["normalize"] == "minmax"


def test_a_key_set_in_the_profile_overrides_the_preset():
    prof = _preset_profile(preset="tf-keras-vis", channel_reduce="l2", gradcam_layer="features")
    s = prof.saliency.map_settings()
    assert s["channel_reduce"] == "l2" and s["per_sample_abs"] is True
    assert s["gradcam_layer"] == "features"
    sg = make_method("smoothgrad", prof)
    assert (sg.channel_reduce, sg.per_sample_abs, sg.normalize) == ("l2", True, "minmax")


def test_channel_reductions_and_minmax():
    g = np.random.default_rng(0).normal(size=(2, 4, 5, 3))
    np.testing.assert_allclose(reduce_channels(g, "l2"), np.sqrt((g**2).sum(-1)))
    np.testing.assert_allclose(reduce_channels(g, "max_abs"), np.abs(g).max(-1))
    m = normalize_maps(g[..., 0].astype(np.float32), "minmax")
    assert np.allclose(m.min(axis=(1, 2)), 0) and np.allclose(m.max(axis=(1, 2)), 1, atol=1e-6)
    flat = normalize_maps(np.ones((1, 3, 3), np.float32), "minmax")
    assert np.all(flat == 0)  # a constant map is blank once normalised, as in tf-keras-vis


def test_per_sample_abs_gradient_on_both_engines(tiny_model, tiny_batch):
    x, t = tiny_batch
    method = Gradient(per_sample_abs=True, channel_reduce="sum")
    ours = method.explain(tiny_model, x, t, engine="tf")
    _close(ours, method.explain(tiny_model, x, t, engine="tfkv"))
    signed = Gradient(channel_reduce="sum").explain(tiny_model, x, t)
    assert np.all(ours >= np.abs(signed) - 1e-6) and ours.min() >= 0


def test_toolkit_default_is_tf_keras_vis_search(tiny_pair_member):
    from tf_keras_vis.utils.model_modifiers import ExtractIntermediateLayerForGradcam as Extract

    lm = tiny_pair_member
    modified = Extract(None, True)(lm.model)  # the model tf-keras-vis's Gradcam builds
    name = toolkit_default_layer(lm.model)
    assert modified.outputs[-1].node.layer.name == name
    assert name != lm.spec.gradcam_layer  # the conv before the pair's batch-norm "features"


def test_layer_rules_resolve_and_record_size(tiny_pair_member):
    lm = _fresh(tiny_pair_member)
    assert resolve_layer(lm, "last_feature_map") == lm.spec.gradcam_layer
    apply_rule(lm, "toolkit_default")
    assert lm.meta["gradcam_rule"] == "toolkit_default"
    assert lm.meta["gradcam_layer_size"] == [8, 8]
    with pytest.raises(BinsalError, match="no layer 'nope'"):
        resolve_layer(lm, "nope")


def test_profile_map_setting_errors_are_one_line():
    prof = load_profile("smoke")
    for bad in ({"channel_reduce": "median"}, {"preset": "captum"}, {"normalize": "zscore"}):
        with pytest.raises(BinsalError) as err:
            _preset_profile(**bad)
        assert "\n" not in str(err.value) and "[saliency]" in str(err.value)
    from binsal.pipeline import resolve_profile

    stray = replace(prof, saliency=replace(prof.saliency, gradcam_layers={"nonet": "x"}))
    with pytest.raises(BinsalError, match=r"gradcam_layers\] names 'nonet'"):
        resolve_profile(stray)


def test_gradcam_layers_table_from_toml(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(
        'seed = 0\n[models]\nnames = ["vgg_fp"]\n[saliency]\npreset = "tf-keras-vis"\n'
        '[saliency.gradcam_layers]\nvgg_fp = "last_feature_map"\n'
    )
    prof = load_profile(str(path))
    assert prof.saliency.gradcam_layer_for("vgg_fp") == "last_feature_map"
    assert prof.saliency.gradcam_layer_for("other") == "toolkit_default"
