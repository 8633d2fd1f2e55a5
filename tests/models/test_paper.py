"""The paper profile: ten ImageNet networks, their preprocessing, GradCAM layers, weight files
(found on disk, never downloaded), the image sources, and the offline CLI error."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from binsal.core.errors import BinsalError, MissingWeightsError
from binsal.core.profile import load_profile
from binsal.models import paper, pretrained
from binsal.models.registry import MODELS

CONV_TYPES = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "QuantConv2D")
CONV_TYPES += ("QuantDepthwiseConv2D", "QuantSeparableConv2D")


class DownloadAttempted(AssertionError):
    pass


@contextlib.contextmanager
def intercept_downloads(*, fake_load: bool) -> Iterator[list[dict[str, Any]]]:
    """Record every ``get_file`` call the libraries make (and refuse it). With ``fake_load``
    the call returns a dummy path and ``Model.load_weights`` does nothing, so a
    ``weights="imagenet"`` build completes with random weights and shows which file it wants."""
    import tensorflow as tf
    from keras.src.engine import training
    from keras.src.utils import data_utils

    calls: list[dict[str, Any]] = []

    def fake_get_file(fname=None, origin=None, *args, **kwargs):
        calls.append({"fname": fname, "origin": origin, **kwargs})
        if not fake_load:
            raise DownloadAttempted(f"get_file({fname!r}, {origin!r}) was called")
        return f"/nonexistent/{fname}"

    saved = (data_utils.get_file, tf.keras.utils.get_file, training.Model.load_weights)
    data_utils.get_file = fake_get_file
    tf.keras.utils.get_file = fake_get_file
    if fake_load:
        training.Model.load_weights = lambda self, *a, **k: None
    try:
        yield calls
    finally:
        data_utils.get_file, tf.keras.utils.get_file, training.Model.load_weights = saved


@contextlib.contextmanager
def no_network() -> Iterator[None]:
    real = socket.socket.connect

    def refuse(self, *args, **kwargs):
        raise DownloadAttempted(f"network connection attempted: {args}")

    socket.socket.connect = refuse  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.socket.connect = real  # type: ignore[method-assign]


def _ancestor_types(layer: Any, depth: int) -> list[str]:
    out: list[str] = []
    frontier = [layer]
    for _ in range(depth):
        nxt = []
        for lyr in frontier:
            for node in lyr._inbound_nodes:
                for t in node.keras_inputs:
                    parent = t._keras_history.layer
                    out.append(type(parent).__name__)
                    nxt.append(parent)
        frontier = nxt
    return out


def check_network(name: str, *, eager: bool = True) -> dict[str, Any]:
    """Build ``name`` as ``weights="imagenet"`` would (downloads intercepted, nothing loaded:
    random weights), and run Gradient, SmoothGrad and GradCAM on one photo.

    ``eager``: run the engine's ``tf.function`` bodies eagerly. Tracing them costs 3-8 s of CPU
    per function and network, more than everything else here together; the graph-mode path is
    exercised end to end by ``test_paper_profile_end_to_end_with_saved_weights``."""
    import tensorflow as tf

    from binsal.datasets.images import load_photos
    from binsal.models.spec import LoadedModel
    from binsal.saliency import GradCAM, Gradient, SmoothGrad

    profile = load_profile("paper")
    spec = MODELS[name](profile)
    t0 = time.perf_counter()
    with intercept_downloads(fake_load=True) as calls, no_network():
        model = spec.build(**{**spec.build_kwargs, "weights": "imagenet"})
    build_s = time.perf_counter() - t0
    loaded = LoadedModel(spec, model)
    layer = model.get_layer(spec.gradcam_layer)
    images, labels, _ = load_photos(224, 1)
    target = np.array([int(labels[0])])
    maps, seconds = {}, {}
    was_eager = tf.config.functions_run_eagerly()
    tf.config.run_functions_eagerly(eager)
    try:
        for method in (Gradient(), SmoothGrad(samples=2, chunk_size=8), GradCAM()):
            t = time.perf_counter()
            maps[method.name] = method.explain(loaded, images, target)
            seconds[method.name] = time.perf_counter() - t
    finally:
        tf.config.run_functions_eagerly(was_eager)
    last = model.get_layer(model.output_names[0])
    return {
        "calls": calls,
        "input_shape": tuple(model.input_shape),
        "output_shape": tuple(model.output_shape),
        "output_activation": getattr(getattr(last, "activation", None), "__name__", ""),
        "output_layer_type": type(last).__name__,
        "found_layer": paper.find_gradcam_layer(model),
        "layer_shape": tuple(layer.output_shape),
        "layer_type": type(layer).__name__,
        "ancestors": _ancestor_types(layer, 4),
        "maps": {
            k: (v.shape, bool(np.all(np.isfinite(v))), float(np.abs(v).max()))
            for k, v in maps.items()
        },
        "gradcam_min": float(maps["gradcam"].min()),
        "build_s": build_s,
        "seconds": seconds,
    }


def _check_many(names: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n in names:
        try:
            out[n] = check_network(n)
        except Exception as exc:  # reported by that network's test
            out[n] = f"{type(exc).__name__}: {exc}"
    return out


@pytest.fixture(scope="module")
def network_checks() -> dict[str, Any]:
    """All ten networks checked once (1.5-3 min on 2 CPU cores, mostly graph tracing)."""
    return _check_many(list(paper.PAPER_MODELS))


# --------------------------------------------------------------------------- the ten networks


@pytest.mark.slow
@pytest.mark.parametrize("name", paper.PAPER_MODELS)
def test_network_builds_logits_gradcam_layer_and_maps(name, network_checks):
    r = network_checks[name]
    assert not isinstance(r, str), r
    # the weight file the library itself asks for is the one we look for
    wf = pretrained.WEIGHT_FILES[name]
    assert len(r["calls"]) == 1, r["calls"]
    call = r["calls"][0]
    assert call["fname"] == wf.file
    assert call["cache_subdir"] == wf.cache_subdir
    assert call.get("file_hash") == wf.file_hash
    assert call["origin"] == wf.origin
    # logits out, raw 224x224 RGB in
    assert r["input_shape"] == (None, 224, 224, 3)
    assert r["output_shape"] == (None, 1000)
    assert r["output_activation"] != "softmax" and r["output_layer_type"] != "Softmax"
    # GradCAM layer: pinned == found, a spatial map at (or right after) a convolution
    assert r["found_layer"] == paper.PAPER_NETS[name].gradcam_layer
    shape = r["layer_shape"]
    assert len(shape) == 4 and shape[1] > 1 and shape[2] > 1, shape
    assert r["layer_type"] in CONV_TYPES or any(t in CONV_TYPES for t in r["ancestors"]), r
    for method, (map_shape, finite, peak) in r["maps"].items():
        assert map_shape == (1, 224, 224), (method, map_shape)
        assert finite, method
        assert method == "gradcam" or peak > 0, f"{method} map is all zero"
    assert r["gradcam_min"] >= 0.0


def test_paper_families_and_sources():
    profile = load_profile("paper")
    assert profile.models == paper.PAPER_MODELS
    specs = [MODELS[n](profile) for n in paper.PAPER_MODELS]
    assert [s.family for s in specs] == ["FP"] * 5 + ["BNN"] * 5
    assert {s.source for s in specs[:5]} == {"keras.applications"}
    assert {s.source for s in specs[5:]} == {"larq-zoo"}
    assert all(s.input_shape == (224, 224, 3) and s.num_classes == 1000 for s in specs)
    assert all(s.input_range == (0.0, 255.0) for s in specs)


def test_preprocessing_matches_the_libraries():
    import tensorflow as tf
    from larq_zoo.training import data as lz_data

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (2, 224, 224, 3)).astype(np.float32)
    before = x.copy()
    apps = tf.keras.applications
    expected = {
        "mobilenet": apps.mobilenet.preprocess_input,
        "mobilenetv2": apps.mobilenet_v2.preprocess_input,
        "vgg16": apps.vgg16.preprocess_input,
        "resnet50": apps.resnet50.preprocess_input,
    }
    profile = load_profile("paper")
    for name, ref in expected.items():
        got = MODELS[name](profile).preprocess(x)
        np.testing.assert_allclose(got, ref(x.copy()), rtol=1e-5, atol=1e-4, err_msg=name)
    assert MODELS["efficientnetb0"](profile).preprocess is None  # normalises inside
    np.testing.assert_allclose(apps.efficientnet.preprocess_input(x.copy()), x)
    ref = lz_data._normalize(
        tf.constant(x), mean_rgb=lz_data.MEAN_RGB, stddev_rgb=lz_data.STDDEV_RGB
    )
    for name in paper.PAPER_MODELS[5:]:
        got = MODELS[name](profile).preprocess(x)
        np.testing.assert_allclose(got, ref.numpy(), rtol=1e-5, atol=1e-4, err_msg=name)
    np.testing.assert_array_equal(x, before)  # never in place


def test_find_gradcam_layer_steps_over_pooling_to_the_last_conv():
    import tensorflow as tf

    inp = tf.keras.Input((16, 16, 3))
    x = tf.keras.layers.Conv2D(4, 3, name="c1")(inp)
    x = tf.keras.layers.Conv2D(4, 3, name="c2")(x)
    x = tf.keras.layers.MaxPooling2D(2, name="pool")(x)
    x = tf.keras.layers.BatchNormalization(name="bn")(x)
    flat = tf.keras.layers.Flatten()(x)
    model = tf.keras.Model(inp, tf.keras.layers.Dense(3)(flat))
    assert paper.find_gradcam_layer(model) == "c2"

    x = tf.keras.layers.Conv2D(4, 3, name="c3")(inp)
    x = tf.keras.layers.Activation("relu", name="features")(x)
    x = tf.keras.layers.GlobalAveragePooling2D(keepdims=True)(x)
    x = tf.keras.layers.Conv2D(3, 1)(x)  # 1x1 "dense": not a spatial map
    model = tf.keras.Model(inp, tf.keras.layers.Flatten()(x))
    assert paper.find_gradcam_layer(model) == "features"


# ----------------------------------------------------------------------------- weight files


@pytest.fixture
def offline_home(tmp_path, monkeypatch) -> Path:
    """An empty HOME (so the real ~/.keras is not seen), no KERAS_HOME, no weights dir."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.delenv(pretrained.WEIGHTS_DIR_ENV, raising=False)
    if Path("/tmp/.keras").exists():  # Keras 2's fallback cache: must not hold these files
        for loc in (pretrained.locate(n) for n in paper.PAPER_MODELS):
            if loc.path is not None and loc.where == "keras cache":
                pytest.skip(f"{loc.path} exists on this machine")
    return home


def test_missing_weights_listed_up_front_within_seconds(offline_home, tmp_path, monkeypatch):
    wdir = tmp_path / "weights"
    wdir.mkdir()
    monkeypatch.setenv(pretrained.WEIGHTS_DIR_ENV, str(wdir))
    profile = load_profile("paper")
    t = time.perf_counter()
    with no_network(), pytest.raises(MissingWeightsError) as err:
        pretrained.preflight(profile)
    assert time.perf_counter() - t < 2.0
    msg = str(err.value)
    lines = msg.splitlines()[1:]
    assert len(lines) == 10
    for name, line in zip(paper.PAPER_MODELS, lines, strict=True):
        wf = pretrained.WEIGHT_FILES[name]
        assert line.strip().startswith(f"{name}: {wf.file} missing")
        assert str(wdir / wf.file) in line
        assert str(offline_home / ".keras" / wf.cache_subdir / wf.file) in line
    # load() checks every model of the profile before building anything
    spec = MODELS["mobilenet"](profile)
    t = time.perf_counter()
    with no_network(), intercept_downloads(fake_load=False), pytest.raises(MissingWeightsError):
        pretrained.load(spec, profile, tmp_path)
    assert time.perf_counter() - t < 2.0


def test_preflight_rejects_other_image_sizes():
    profile = load_profile("paper")
    bad = replace(profile, data=replace(profile.data, image_size=64))
    with pytest.raises(BinsalError, match="224x224"):
        pretrained.preflight(bad)


LOAD_MODELS = ("mobilenetv2", "binaryresnete18")  # one per family, the smallest files


@pytest.fixture(scope="module")
def saved_weights(tmp_path_factory) -> tuple[Path, dict[str, list[np.ndarray]]]:
    """Weight files saved from ``weights=None`` builds under the libraries' file names."""
    import tensorflow as tf

    folder = tmp_path_factory.mktemp("weights")
    values = {}
    for i, name in enumerate(LOAD_MODELS):
        tf.keras.utils.set_random_seed(10 + i)
        full = paper.build_library_model(name, weights=None)
        full.save_weights(str(folder / pretrained.WEIGHT_FILES[name].file))
        values[name] = full.get_weights()
    return folder, values


def _assert_same_weights(model: Any, expected: list[np.ndarray]) -> None:
    got = model.get_weights()
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["weights dir", "keras cache"])
def test_load_reads_present_files_without_download(
    layout, saved_weights, offline_home, tmp_path, monkeypatch
):
    folder, values = saved_weights
    profile = replace(load_profile("paper"), models=LOAD_MODELS)
    if layout == "weights dir":
        monkeypatch.setenv(pretrained.WEIGHTS_DIR_ENV, str(folder))
    else:
        for name in LOAD_MODELS:
            wf = pretrained.WEIGHT_FILES[name]
            dest = offline_home / ".keras" / wf.cache_subdir / wf.file
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(folder / wf.file, dest)
    assert len(pretrained.preflight(profile)) == len(LOAD_MODELS)
    for name in LOAD_MODELS:
        spec = MODELS[name](profile)
        with intercept_downloads(fake_load=False) as calls, no_network():
            has_hash = pretrained.WEIGHT_FILES[name].file_hash is not None
            with (
                pytest.warns(UserWarning, match="differs from the library's release file")
                if has_hash
                else contextlib.nullcontext()
            ):
                loaded = pretrained.load(spec, profile, tmp_path)
        assert calls == []
        _assert_same_weights(loaded.model, values[name])
        assert loaded.meta["weights_where"] == layout
        assert loaded.meta["release_hash_matches"] is (False if has_hash else None)
        assert loaded.model.output_shape == (None, 1000)


def test_corrupt_weight_file_is_a_clear_error(offline_home, tmp_path, monkeypatch):
    from binsal.core.errors import CorruptCacheError

    monkeypatch.setenv(pretrained.WEIGHTS_DIR_ENV, str(tmp_path))
    (tmp_path / pretrained.WEIGHT_FILES["binaryalexnet"].file).write_bytes(b"not an h5 file")
    profile = replace(load_profile("paper"), models=("binaryalexnet",))
    with intercept_downloads(fake_load=False), pytest.raises(CorruptCacheError, match="binary"):
        pretrained.load(MODELS["binaryalexnet"](profile), profile, tmp_path)


@pytest.mark.slow
def test_cli_paper_profile_offline_lists_missing_files(tmp_path):
    home, wdir = tmp_path / "home", tmp_path / "weights"
    home.mkdir()
    wdir.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_HOME", "BINSAL_WEIGHTS_DIR")}
    env["HOME"] = str(home)
    cmd = [sys.executable, "-m", "binsal", "--profile", "paper", "--weights-dir", str(wdir)]
    cmd += ["--results-dir", str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache")]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=env)
    assert time.perf_counter() - t < 30
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    for name in paper.PAPER_MODELS:
        wf = pretrained.WEIGHT_FILES[name]
        assert f"{name}: {wf.file} missing" in proc.stderr
        assert str(wdir / wf.file) in proc.stderr


# ----------------------------------------------------------------------------------- images


def test_photos_are_offline_224_raw_with_imagenet_labels():
    from binsal.datasets.images import load_eval_set

    profile = load_profile("paper")
    with no_network():
        ev = load_eval_set(profile, None)
    assert ev.images.shape == (5, 224, 224, 3) and ev.images.dtype == np.float32
    # larq-zoo's bicubic crop (the profile's frame) may overshoot [0, 255] slightly, as in larq-zoo
    assert -40.0 <= ev.images.min() and ev.images.max() <= 295.0 and ev.images.max() > 200
    assert ev.description["crop"] == "larq_zoo"
    assert ev.labels.tolist() == [281, 967, -1, -1, -1]
    assert ev.masks is None and ev.full is None
    assert len(ev.class_names) == 1000
    assert ev.class_names[281] == "tabby" and ev.class_names[967] == "espresso"
    assert ev.description["items"] == ["chelsea", "coffee", "astronaut", "rocket", "motorcycle"]


def test_imagenet_class_file_is_complete():
    from binsal.datasets.images import imagenet_class_names, imagenet_wnids

    wnids = imagenet_wnids()
    assert len(wnids) == len(set(wnids)) == 1000 and wnids == sorted(wnids)
    assert wnids[0] == "n01440764" and wnids[281] == "n02123045"
    assert imagenet_class_names()[0] == "tench"
    assert imagenet_class_names(short=False)[281] == "tabby, tabby cat"


def test_folder_source_labels_from_wnid_or_index_subfolders(tmp_path):
    from PIL import Image

    from binsal.datasets.images import load_eval_set

    rng = np.random.default_rng(0)
    for rel in ("n02123045/a.png", "967/b.jpg", "holiday/c.png", "d.png"):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(path)
    profile = load_profile("paper")
    profile = replace(profile, data=replace(profile.data, source="folder", path=str(tmp_path)))
    ev = load_eval_set(profile, None)
    assert ev.description["items"] == ["967/b.jpg", "d.png", "holiday/c.png", "n02123045/a.png"]
    assert ev.labels.tolist() == [967, -1, -1, 281]
    assert ev.images.shape == (4, 224, 224, 3)
    missing = replace(profile, data=replace(profile.data, path=str(tmp_path / "nope")))
    with pytest.raises(BinsalError, match="does not exist"):
        load_eval_set(missing, None)


def test_tfds_source_absent_data_is_a_fast_clear_error(tmp_path):
    from binsal.datasets.images import load_eval_set

    profile = load_profile("paper")
    profile = replace(
        profile,
        data=replace(profile.data, source="tfds", path="imagenet_v2"),
        options={"tfds": {"data_dir": str(tmp_path)}},
    )
    t = time.perf_counter()
    with no_network(), pytest.raises(BinsalError, match="not prepared") as err:
        load_eval_set(profile, None)
    assert str(tmp_path) in str(err.value)
    assert time.perf_counter() - t < 10


def test_tfds_source_maps_wnid_labels_to_imagenet(tmp_path):
    import tensorflow_datasets as tfds

    from binsal.datasets.images import load_eval_set

    class BinsalTinyImagenette(tfds.core.GeneratorBasedBuilder):
        """Two classes named by WordNet id, like imagenette."""

        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(
                builder=self,
                features=tfds.features.FeaturesDict(
                    {
                        "image": tfds.features.Image(shape=(None, None, 3)),
                        "label": tfds.features.ClassLabel(names=["n02123045", "n07920052"]),
                    }
                ),
            )

        def _split_generators(self, dl_manager):
            return {"validation": self._generate_examples()}

        def _generate_examples(self):
            rng = np.random.default_rng(0)
            for i in range(3):
                img = rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)
                yield i, {"image": img, "label": i % 2}

    builder = BinsalTinyImagenette(data_dir=str(tmp_path))
    builder.download_and_prepare()
    profile = load_profile("paper")
    profile = replace(
        profile,
        data=replace(profile.data, source="tfds", path="binsal_tiny_imagenette:validation"),
        options={"tfds": {"data_dir": str(tmp_path)}},
    )
    with no_network():
        ev = load_eval_set(profile, None)
    assert ev.images.shape == (3, 224, 224, 3)
    assert sorted(ev.labels.tolist()) == [281, 281, 967]
    assert ev.description["split"] == "validation"
    json.dumps(ev.description)  # goes into the manifest


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*differs from the library's release file")
def test_paper_profile_end_to_end_with_saved_weights(saved_weights, offline_home, tmp_path):
    """The paper pipeline on two of its networks (one per family) and the two labelled photos,
    weights from the weights dir, writing its tables and report, with no download attempt."""
    from binsal.pipeline import run_suite

    folder, _ = saved_weights
    os.environ[pretrained.WEIGHTS_DIR_ENV] = str(folder)  # offline_home's monkeypatch restores
    base = load_profile("paper")
    profile = replace(
        base,
        models=LOAD_MODELS,
        benchmarks=("rank_correlation",),
        n_boot=50,
        qualitative_images=2,
        saliency=replace(base.saliency, methods=("gradient", "random"), n_images=2),
    )
    with intercept_downloads(fake_load=False) as calls, no_network():
        run_dir = run_suite(
            profile, results_dir=tmp_path / "results", cache_dir=tmp_path / "cache", quiet=True
        )
    assert calls == []
    assert (run_dir / "results.csv").stat().st_size > 0
    assert (run_dir / "report.html").exists()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert set(manifest["models"]) == set(LOAD_MODELS)
    for name in LOAD_MODELS:
        assert str(folder) in manifest["models"][name]["cache"]
