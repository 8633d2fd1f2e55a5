"""Weights bundles: export, exact reload, and one-line errors before any work."""

from __future__ import annotations

import json

import numpy as np
import pytest

from binsal.core.errors import BinsalError
from binsal.models.bundle import check_bundle, export_bundle, load_from_bundle, read_bundle
from tests.conftest import build_tiny, tiny_spec


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    models = {m.name: m for m in (build_tiny("vgg", False, seed=1), build_tiny("vgg", True, 2))}
    out = tmp_path_factory.mktemp("bundle")
    export_bundle(models, out, profile_name="tiny", data={"config": "c", "version": "1"})
    return out, models


def test_bundle_reloads_bit_identical_weights(bundle_dir):
    out, models = bundle_dir
    bundle = read_bundle(out)
    assert set(bundle.models) == set(models)
    assert bundle.record()["mode"] == "bundle" and bundle.record()["home_stack"]["numpy"]
    x = np.random.default_rng(0).random((3, 16, 16, 3), dtype=np.float32)
    for original in models.values():
        loaded = load_from_bundle(bundle, original.spec)
        for w0, w1 in zip(original.model.get_weights(), loaded.model.get_weights(), strict=True):
            np.testing.assert_array_equal(w0, w1)
        np.testing.assert_array_equal(original.model(x), loaded.model(x))
        assert loaded.meta["cache"] == f"bundle {bundle.bundle_id}"


def test_missing_model_changed_architecture_and_corrupt_file_are_one_line_errors(bundle_dir):
    out, _ = bundle_dir
    bundle = read_bundle(out)
    fp = tiny_spec("vgg", False)
    check_bundle(bundle, {fp.name: fp})  # fine
    with pytest.raises(BinsalError, match="tiny_resnet_fp is not in it"):
        check_bundle(bundle, {"tiny_resnet_fp": tiny_spec("resnet", False)})
    other = tiny_spec("resnet", False)
    with pytest.raises(BinsalError, match="another architecture"):
        check_bundle(bundle, {fp.name: other})
    meta = json.loads((out / "bundle.json").read_text())
    meta["models"][fp.name]["sha256"] = "0" * 64
    (out / "corrupt").mkdir()
    (out / "corrupt" / "bundle.json").write_text(json.dumps(meta))
    (out / "corrupt" / f"{fp.name}.h5").write_bytes((out / f"{fp.name}.h5").read_bytes())
    with pytest.raises(BinsalError, match="does not match its SHA-256") as err:
        check_bundle(read_bundle(out / "corrupt"), {fp.name: fp})
    assert "\n" not in str(err.value)


def test_not_a_bundle(tmp_path):
    with pytest.raises(BinsalError, match="no bundle.json"):
        read_bundle(tmp_path)
    (tmp_path / "bundle.json").write_text("{")
    with pytest.raises(BinsalError, match="unreadable"):
        read_bundle(tmp_path)
