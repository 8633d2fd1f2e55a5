"""Your own models and images: plain Keras / larq models in the Python API, model files and
image folders on the command line (``binsal run --model ... --images ...``, ``binsal diff``),
and their one-line errors. The models are the suite's tiny pair members, saved by the test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import binsal
from binsal.cli import main
from binsal.core.errors import InvalidInputError
from binsal.models.own import logits_model, wrap_model
from binsal.saliency import GradCAM, Gradient, SmoothGrad
from tests.conftest import TINY_CLASSES, TINY_SHAPE, build_tiny

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pair():
    return build_tiny("vgg", False, seed=0), build_tiny("vgg", True, seed=0)


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    x = rng.random((6, *TINY_SHAPE), dtype=np.float32)
    y = rng.integers(0, TINY_CLASSES, 6)
    masks = np.zeros(x.shape[:3], dtype=bool)
    masks[:, 3:11, 4:12] = True
    return x, y, masks


@pytest.fixture(scope="module")
def files(pair, batch, tmp_path_factory):
    """The pair saved as files (.keras and .h5) and the images and masks as PNG files."""
    from PIL import Image

    root = tmp_path_factory.mktemp("own")
    fp, bnn = pair
    fp.model.save(root / "fp.keras")
    bnn.model.save(root / "bnn.h5")
    x, y, masks = batch
    (root / "images").mkdir()
    (root / "masks").mkdir()
    for i, (img, mask) in enumerate(zip(x, masks, strict=True)):
        Image.fromarray((img * 255).round().astype(np.uint8)).save(root / "images" / f"i{i}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(root / "masks" / f"i{i}.png")
    (root / "labels.csv").write_text(
        "file,label\n" + "".join(f"i{i}.png,{int(v)}\n" for i, v in enumerate(y))
    )
    return root


# ---- the Python API on plain models -------------------------------------------------------------


@pytest.mark.parametrize(
    "method", [Gradient(), SmoothGrad(samples=4), GradCAM()], ids=["grad", "sg", "gradcam"]
)
@pytest.mark.parametrize("binary", [False, True], ids=["fp", "bnn"])
def test_a_plain_model_gives_the_registry_path_maps(pair, batch, method, binary):
    loaded = pair[int(binary)]
    x, y, _ = batch
    plain = method.explain(loaded.model, x, y)  # a tf.keras.Model, no binsal wrapper
    np.testing.assert_array_equal(plain, method.explain(loaded, x, y))


def test_family_and_gradcam_layer_are_found(pair):
    fp, bnn = pair
    assert wrap_model(fp.model).family == "FP" and wrap_model(bnn.model).family == "BNN"
    assert wrap_model(fp.model).gradcam_layer == fp.gradcam_layer
    assert wrap_model(bnn.model).gradcam_layer == bnn.gradcam_layer
    assert wrap_model(fp.model, family="BNN").family == "BNN"  # overridable


@pytest.mark.parametrize("kind", ["activation_layer", "dense_softmax"])
def test_a_softmax_ended_model_is_explained_on_its_logits(pair, batch, kind, capfd):
    import tensorflow as tf

    fp = pair[0].model
    if kind == "activation_layer":
        soft = tf.keras.Model(fp.inputs, tf.keras.layers.Softmax()(fp.outputs[0]))
    else:  # the last Dense with activation="softmax"
        soft = tf.keras.models.clone_model(fp)
        soft.set_weights(fp.get_weights())
        soft.layers[-1].activation = tf.keras.activations.softmax
    x, y, _ = batch
    assert not np.allclose(soft.predict(x, verbose=0), fp.predict(x, verbose=0))
    stripped, changed = logits_model(soft)
    assert changed
    np.testing.assert_allclose(
        stripped.predict(x, verbose=0), fp.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )
    capfd.readouterr()
    maps = Gradient().explain(soft, x, y)
    assert "explained on its logits" in capfd.readouterr().err
    np.testing.assert_allclose(maps, Gradient().explain(fp, x, y), rtol=1e-5, atol=1e-7)
    after = soft.predict(x, verbose=0)  # the user's model is untouched: still softmax
    np.testing.assert_allclose(after.sum(axis=1), 1.0, rtol=1e-5)


def test_evaluate_returns_the_cli_schema_and_a_report(pair, batch, tmp_path):
    from binsal.core.schema import RESULT_COLUMNS

    x, y, masks = batch
    table = binsal.evaluate(
        {"fp": pair[0].model, "bnn": pair[1].model},
        x,
        y,
        masks,
        benchmarks=["rank_correlation", "localization", "roar"],
        methods=["gradient", "gradcam", "random"],
        pairs=[("fp", "bnn")],
        results_dir=tmp_path,
        cache_dir=tmp_path / "cache",
    )
    assert list(table.columns) == ["run_id", *RESULT_COLUMNS]
    assert set(table["benchmark"]) == {"rank_correlation", "localization"}  # ROAR: no data
    assert set(table.loc[table["benchmark"] == "rank_correlation", "pair"]) >= {"fp~bnn"}
    run_dir = Path(table.attrs["run_dir"])
    assert (run_dir / "report.html").is_file()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["models"]["bnn"]["family"] == "BNN"
    assert manifest["models"]["fp"]["source"] == "user"


def test_evaluate_uses_maps_from_another_tool(pair, batch, tmp_path):
    """Precomputed maps stand in for binsal's maps of that method: a map that is the mask
    itself localizes perfectly, whatever the model."""
    x, y, masks = batch
    given = {"fp": {"gradient": masks.astype(np.float32)}}
    np.save(tmp_path / "bnn_gradient.npy", masks.astype(np.float32))
    given["bnn"] = {"gradient": tmp_path / "bnn_gradient.npy"}  # type: ignore[dict-item]
    table = binsal.evaluate(
        {"fp": pair[0].model, "bnn": pair[1].model},
        x,
        y,
        masks,
        benchmarks=["localization"],
        methods=["gradient"],
        maps=given,
        results_dir=tmp_path / "r",
        cache_dir=tmp_path / "cache",
    )
    pointing = table[(table["metric"] == "pointing_game") & (table["method"] == "gradient")]
    assert len(pointing) == 2 and (pointing["value"] == 1.0).all()


def test_api_errors_are_one_line(pair, batch):
    import tensorflow as tf

    x, y, masks = batch
    fp = pair[0].model
    two_in = tf.keras.Model([fp.inputs[0], tf.keras.Input((3,))], fp.outputs[0], name="two_inputs")
    two_out = tf.keras.Model(fp.inputs, [fp.outputs[0], fp.outputs[0]], name="two_outputs")
    cases = [
        (lambda: wrap_model(two_in), "2 inputs"),
        (lambda: wrap_model(two_out), "2 outputs"),
        (lambda: wrap_model(fp, gradcam_layer=fp.layers[-1].name), "needs a 4-D feature map"),
        (lambda: wrap_model(fp, gradcam_layer="nope"), "no layer 'nope'"),
        (lambda: wrap_model("not a model"), "must be a tf.keras.Model"),
        (lambda: binsal.evaluate({"fp": fp}, x, y[:3]), "6 images need 6 integer labels"),
        (lambda: binsal.evaluate({"fp": fp}, x, y, masks[:2]), "need masks of shape"),
        (lambda: binsal.evaluate({"fp": fp}, x[:, :8], y), "do not fit model fp"),
    ]
    for call, message in cases:
        with pytest.raises(InvalidInputError, match=message) as err:
            call()
        assert "\n" not in str(err.value)


# ---- the command line on files -------------------------------------------------------------------


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_run_on_model_files_and_image_folders_writes_localization_rows(files, tmp_path, capsys):
    argv = ["run", "--model", f"fp={files / 'fp.keras'}", "--model", f"bnn={files / 'bnn.h5'}"]
    argv += ["--pair", "fp,bnn", "--images", str(files / "images")]
    argv += ["--masks", str(files / "masks"), "--labels", str(files / "labels.csv")]
    argv += ["--methods", "gradient,gradcam,random", "--benchmarks", "localization"]
    argv += ["--results-dir", str(tmp_path), "--cache-dir", str(tmp_path / "c"), "--quiet"]
    code, out, err = _run(argv, capsys)
    assert code == 0, err
    run_dir = Path(out.splitlines()[0].split(": ", 1)[1]).parent
    table = pd.read_csv(run_dir / "results.csv")
    assert set(table["benchmark"]) == {"localization"}
    assert set(table["model"]) == {"fp", "bnn"}
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["data"]["source"] == "user" and len(manifest["data"]["items"]) == 6
    assert manifest["models"]["bnn"]["family"] == "BNN"
    assert "localization" in (run_dir / "report.html").read_text(encoding="utf-8")


def test_diff_runs_the_papers_benchmarks_and_claims(files, tmp_path, capsys):
    argv = ["diff", str(files / "fp.keras"), str(files / "bnn.h5")]
    argv += ["--images", str(files / "images"), "--masks", str(files / "masks")]
    argv += ["--labels", str(files / "labels.csv"), "--profile", "smoke"]
    argv += ["--results-dir", str(tmp_path), "--cache-dir", str(tmp_path / "c"), "--quiet"]
    code, out, err = _run(argv, capsys)
    assert code == 0, err
    run_dir = Path(out.splitlines()[0].split(": ", 1)[1]).parent
    table = pd.read_csv(run_dir / "results.csv")
    assert {"rank_correlation", "localization", "gradcam_pathologies"} <= set(table["benchmark"])
    assert set(table["benchmark"]) <= {
        "rank_correlation",
        "localization",
        "model_randomization",
        "road",
        "entropy_vs_noise",
        "gradcam_pathologies",
    }
    assert (table["pair"] == "fp~bnn").any()
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "Claim 1" in html


MYSTERY = """
import sys
import tensorflow as tf

@tf.keras.utils.register_keras_serializable(package="mine")
class Mystery(tf.keras.layers.Layer):
    def call(self, x):
        return x

inp = tf.keras.Input((16, 16, 3))
out = tf.keras.layers.Dense(3)(tf.keras.layers.Flatten()(Mystery()(inp)))
tf.keras.Model(inp, out).save(sys.argv[1])
"""


def _bad_model(folder: Path) -> str:
    """A model file with a layer class that only the process that wrote it knows."""
    path = folder / "mystery.keras"
    subprocess.run([sys.executable, "-c", MYSTERY, str(path)], check=True, timeout=300)
    return str(path)


BAD_CLI = [
    (lambda f, t: ["--model", f"fp={f / 'fp.keras'}"], "--model needs --images"),
    (lambda f, t: ["--images", str(f / "images")], "go with --model"),
    (
        lambda f, t: ["--model", f"fp={t / 'none.keras'}", "--images", str(f / "images")],
        "does not exist",
    ),
    (lambda f, t: ["--model", "fp", "--images", str(f / "images")], "NAME=PATH"),
    (
        lambda f, t: [
            "--model",
            f"a={f / 'fp.keras'}",
            "--model",
            f"a={f / 'bnn.h5'}",
            "--images",
            str(f / "images"),
        ],
        "given twice",
    ),
    (
        lambda f, t: [
            "--model",
            f"fp={f / 'fp.keras'}",
            "--images",
            str(f / "images"),
            "--pair",
            "fp,bnn",
        ],
        "no --model named 'bnn'",
    ),
    (
        lambda f, t: [
            "--model",
            f"fp={f / 'fp.keras'}",
            "--images",
            str(f / "images"),
            "--preprocessing",
            "nope",
        ],
        "unknown preprocessing 'nope'",
    ),
    (
        lambda f, t: [
            "--model",
            f"fp={f / 'fp.keras'}",
            "--images",
            str(f / "images"),
            "--gradcam-layer",
            "fp=dense",
        ],
        "no layer 'dense'",
    ),
    (
        lambda f, t: [
            "--model",
            f"fp={f / 'fp.keras'}",
            "--images",
            str(f / "images"),
            "--masks",
            str(_few_masks(f, t)),
        ],
        "6 images but masks for 3",
    ),
    (
        lambda f, t: [
            "--model",
            f"fp={f / 'fp.keras'}",
            "--images",
            str(f / "images"),
            "--labels",
            str(_few_labels(f, t)),
        ],
        "6 images but labels for 2",
    ),
    (
        lambda f, t: [
            "--model",
            f"fp={f / 'fp.keras'}",
            "--images",
            str(f / "images"),
            "--models",
            "vgg_fp",
        ],
        "explains those files only",
    ),
    (
        lambda f, t: ["--model", f"x={_bad_model(t)}", "--images", str(f / "images")],
        "needs custom objects binsal does not know: Mystery",
    ),
]


def _few_masks(files: Path, tmp: Path) -> Path:
    import shutil

    folder = tmp / "few_masks"
    folder.mkdir()
    for i in range(3):
        shutil.copy(files / "masks" / f"i{i}.png", folder)
    return folder


def _few_labels(files: Path, tmp: Path) -> Path:
    path = tmp / "few.csv"
    path.write_text("file,label\ni0.png,1\ni1.png,2\n")
    return path


@pytest.mark.parametrize("args, expected", BAD_CLI, ids=[f"case{i}" for i in range(len(BAD_CLI))])
def test_cli_errors_are_one_line_exit_2(files, tmp_path, capsys, args, expected):
    argv = ["run", *args(files, tmp_path), "--methods", "gradient", "--benchmarks", "localization"]
    argv += ["--results-dir", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c"), "--quiet"]
    code, _, err = _run(argv, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and expected in lines[0], lines


def test_the_readme_example_runs(tmp_path):
    """The README's "your own models" Python example, verbatim, on its own small models."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = readme.index("<!-- own-models-example -->")
    block = readme[start:].split("```python\n", 1)[1].split("```", 1)[0]
    proc = subprocess.run(
        [sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "localization" in proc.stdout


def test_a_model_with_another_gradcam_layer_or_preprocessing_gets_other_maps(pair, batch, tmp_path):
    """A user model's GradCAM layer and preprocessing are part of the map key: a run with
    another layer never takes the cached maps of the first."""
    from binsal.benchmarks import MapStore

    x, y, _ = batch
    fp = pair[0].model
    store = MapStore(tmp_path / "maps")
    last = wrap_model(fp, name="m")
    early = wrap_model(fp, name="m", gradcam_layer="conv1")
    scaled = wrap_model(fp, name="m", preprocess="scale01")
    keys = {store.key(m, GradCAM(), x, y) for m in (last, early, scaled)}
    assert len(keys) == 3
    a = store.get(last, GradCAM(), x, y)
    b = MapStore(tmp_path / "maps").get(early, GradCAM(), x, y)
    assert not np.allclose(a, b)
