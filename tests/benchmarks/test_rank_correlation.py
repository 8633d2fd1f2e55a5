"""FP vs BNN rank correlation on tiny models: pairs, known answers and tidy rows."""

from __future__ import annotations

import numpy as np
import pytest

from binsal.benchmarks.rank_correlation import RankCorrelation, model_pairs
from binsal.metrics import similarity


def test_identical_maps_correlate_one_and_reversed_minus_one():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 12, 12))
    np.testing.assert_allclose(similarity.spearman(a, a, use_abs=True), 1.0)
    np.testing.assert_allclose(similarity.kendall(a, a, use_abs=True), 1.0)
    np.testing.assert_allclose(similarity.spearman(a, -a, use_abs=False), -1.0)
    np.testing.assert_allclose(similarity.kendall(a, -a, use_abs=False), -1.0)


def test_pairs_cover_all_fp_x_bnn_with_matched_flag(tiny_ctx):
    pairs = model_pairs(tiny_ctx)
    cross = [p for p in pairs if p[2] == "FP-BNN"]
    assert len(cross) == 4
    matched = {(a, b): pair for a, b, _, pair in cross if pair}
    assert matched == {
        ("tiny_vgg_fp", "tiny_vgg_bnn"): "tiny_vgg",
        ("tiny_resnet_fp", "tiny_resnet_bnn"): "tiny_resnet",
    }
    assert {p[2] for p in pairs} == {"FP-BNN", "FP-FP", "BNN-BNN"}


def test_rows_are_tidy_with_ci_and_direction(tiny_ctx):
    rows = RankCorrelation().run(tiny_ctx)
    assert rows
    for r in rows:
        assert r.benchmark == "rank_correlation"
        assert r.direction in {"higher", "none"}
        if r.n > 0 and np.isfinite(r.value):
            assert r.ci_low <= r.value <= r.ci_high
            assert -1.0 <= r.value <= 1.0 or r.metric == "undefined_share"
    methods = {r.method for r in rows}
    assert "random" not in methods and "sobel" not in methods
    assert {"gradient", "smoothgrad", "gradcam"} <= methods


def test_map_store_never_serves_maps_of_other_weights(tmp_path):
    """A map is keyed by the model's weights too: after the model is retrained (new weights,
    same name) the store computes new maps instead of reusing the old ones."""
    from binsal.benchmarks import MapStore
    from binsal.saliency import Gradient
    from tests.conftest import build_tiny

    x = np.random.default_rng(0).random((3, 16, 16, 3), dtype=np.float32)
    t = np.array([0, 1, 2])
    store = MapStore(tmp_path / "maps")
    first = build_tiny("vgg", False, seed=0)
    again = build_tiny("vgg", False, seed=0)  # the same weights: the same key
    other = build_tiny("vgg", False, seed=1)  # same name, other weights
    assert first.name == other.name
    k = store.key(first, Gradient(), x, t)
    assert store.key(again, Gradient(), x, t) == k
    assert store.key(other, Gradient(), x, t) != k
    a = store.get(first, Gradient(), x, t)
    b = MapStore(tmp_path / "maps").get(other, Gradient(), x, t)  # a resumed run, retrained
    assert not np.allclose(a, b)


@pytest.mark.parametrize("cut", [0, 100], ids=["empty", "truncated"])
def test_a_cut_map_file_is_recomputed_with_a_notice(tmp_path, capfd, cut):
    """A saved map cut short (kill -9 mid-copy, disk full) is not reused: the store says so on
    one line and computes it again, equal to the original."""
    from binsal.benchmarks import MapStore
    from binsal.saliency import Gradient
    from tests.conftest import build_tiny

    x = np.random.default_rng(0).random((3, 16, 16, 3), dtype=np.float32)
    t = np.array([0, 1, 2])
    model = build_tiny("vgg", False, seed=0)
    original = MapStore(tmp_path / "maps").get(model, Gradient(), x, t)
    (saved,) = (tmp_path / "maps").glob("*.npy")
    saved.write_bytes(saved.read_bytes()[:cut])
    capfd.readouterr()
    again = MapStore(tmp_path / "maps").get(model, Gradient(), x, t)
    err = capfd.readouterr().err
    assert f"saved maps {saved.name} are incomplete or corrupt; recomputed" in err
    np.testing.assert_array_equal(again, original)
    np.testing.assert_array_equal(np.load(saved), original)
