"""Tests of the ground-truth shapes data set (binsal.datasets.synthetic): small and seeded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage
from skimage import measure

from binsal.core.errors import CorruptCacheError
from binsal.datasets import synthetic as syn

SIZE = 32
N_TRAIN, N_TEST = 24, 12


def _forbid_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any GCS look-up by TFDS fail loudly instead of trying to connect."""
    from tensorflow_datasets.core import load as tfds_load
    from tensorflow_datasets.core.utils import gcs_utils

    def refuse(*args, **kwargs):
        raise AssertionError(f"TFDS tried a GCS look-up: {args} {kwargs}")

    for module in (gcs_utils, tfds_load.gcs_utils):
        monkeypatch.setattr(module, "exists", refuse)
        monkeypatch.setattr(module, "is_dataset_on_gcs", refuse)
        monkeypatch.setattr(module, "download_gcs_dataset", refuse)


def _load(data_dir: Path, seed: int = 0, n_train: int = N_TRAIN, n_test: int = N_TEST):
    with pytest.MonkeyPatch.context() as mp:
        _forbid_network(mp)
        return syn.load_shapes(
            image_size=SIZE, seed=seed, n_train=n_train, n_test=n_test, data_dir=data_dir
        )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, syn.ShapesData]:
    data_dir = tmp_path_factory.mktemp("shapes_a")
    return data_dir, _load(data_dir)


@pytest.fixture(scope="module")
def examples() -> list[syn.ShapeExample]:
    return [syn.render_example(SIZE, np.random.default_rng([7, 0, i])) for i in range(300)]


# ------------------------------------------------------------------ loader and builder


def test_loader_dtypes_shapes_ranges(built):
    _, data = built
    for x, y, m, n in [
        (data.x_train, data.y_train, data.m_train, N_TRAIN),
        (data.x_test, data.y_test, data.m_test, N_TEST),
    ]:
        assert x.shape == (n, SIZE, SIZE, 3) and x.dtype == np.float32
        assert y.shape == (n,) and y.dtype == np.int64
        assert m.shape == (n, SIZE, SIZE) and m.dtype == bool
        assert 0.0 <= x.min() and x.max() <= 1.0
        assert set(np.unique(y)) <= set(range(len(syn.CLASS_NAMES)))
        assert m.any(axis=(1, 2)).all()
    assert data.class_names == syn.CLASS_NAMES == ("disk", "square", "triangle", "cross")
    assert data.version == "1.0.0"
    assert data.config_name == syn.make_config(SIZE, 0, N_TRAIN, N_TEST).name


def test_build_is_deterministic_across_directories(built, tmp_path):
    _, first = built
    second = _load(tmp_path)
    for field in ("x_train", "y_train", "m_train", "x_test", "y_test", "m_test"):
        a, b = getattr(first, field), getattr(second, field)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), field


def test_loaded_examples_come_from_their_own_seed_only(built):
    """Example i of split s is render_example(rng=default_rng([seed, s, i])), in index order."""
    _, data = built
    for split_index, (x, y, m) in enumerate(
        [(data.x_train, data.y_train, data.m_train), (data.x_test, data.y_test, data.m_test)]
    ):
        for i in (0, len(y) - 1, len(y) // 2):
            image, mask, label = syn.generate_example(
                SIZE, np.random.default_rng([0, split_index, i])
            )
            assert image.dtype == np.uint8 and mask.dtype == bool and isinstance(label, int)
            np.testing.assert_array_equal(np.rint(x[i] * 255).astype(np.uint8), image)
            np.testing.assert_array_equal(m[i], mask)
            assert y[i] == label


def test_training_images_are_decoded_on_first_use(tmp_path):
    """The labels are read at load; the training images and masks only when asked for, and
    then the same examples, in the same order, as the labels."""
    data = _load(tmp_path)
    assert not data.train_decoded
    assert data.y_train.shape == (N_TRAIN,) and data.y_train.dtype == np.int64
    assert data.m_train.shape == (N_TRAIN, SIZE, SIZE) and data.train_decoded
    for i in (0, N_TRAIN - 1):
        _, mask, label = syn.generate_example(SIZE, np.random.default_rng([0, 0, i]))
        assert data.y_train[i] == label
        np.testing.assert_array_equal(data.m_train[i], mask)
    assert data.x_train is data.x_train  # decoded once


def test_different_seed_gives_different_data(built, tmp_path):
    _, seed0 = built
    seed1 = _load(tmp_path, seed=1)
    assert seed0.config_name != seed1.config_name
    assert not np.array_equal(seed0.x_train, seed1.x_train)
    assert not np.array_equal(seed0.x_test, seed1.x_test)
    # and train differs from test within one seed
    assert not np.array_equal(seed0.x_train[:N_TEST], seed0.x_test)


def test_reload_uses_the_cache(built):
    data_dir, first = built
    files = sorted(p.name for p in data_dir.rglob("*.tfrecord*"))
    again = _load(data_dir)
    assert sorted(p.name for p in data_dir.rglob("*.tfrecord*")) == files
    assert again.x_test.tobytes() == first.x_test.tobytes()


def test_stored_bbox_center_color_match_the_mask(built):
    data_dir, _ = built
    builder = syn.BinsalShapes(config=syn.make_config(SIZE, 0, N_TRAIN, N_TEST), data_dir=data_dir)
    assert builder.name == syn.DATASET_NAME == "binsal_shapes"
    assert str(builder.version) == "1.0.0" and "1.0.0" in builder.RELEASE_NOTES
    assert builder.info.features["label"].names == list(syn.CLASS_NAMES)
    for ex in builder.as_dataset(split="test").as_numpy_iterator():
        mask = ex["mask"][..., 0] > 127
        assert set(np.unique(ex["mask"])) == {0, 255}
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        ymin, xmin, ymax, xmax = ex["bbox"]
        assert (ymin, xmin, ymax, xmax) == (rows[0], cols[0], rows[-1] + 1, cols[-1] + 1)
        cy, cx = ex["center"]
        assert ymin <= cy < ymax and xmin <= cx < xmax
        assert (ex["image"][mask] == ex["color"]).all()


def test_runtime_config_and_make_config():
    cfg = syn.ShapesConfig(name="custom_s48", image_size=48, seed=3, n_train=5, n_test=2)
    builder = syn.BinsalShapes(config=cfg, data_dir="/nonexistent/never_written")
    assert builder.builder_config is cfg
    assert builder.info.features["image"].shape == (48, 48, 3)
    names = {
        syn.make_config(s, seed, a, b).name
        for s, seed, a, b in [(32, 0, 10, 5), (64, 0, 10, 5), (32, 1, 10, 5), (32, 0, 11, 5)]
    }
    assert len(names) == 4  # every field is in the name
    cfg = syn.make_config(64, 0, 4000, 1000)
    assert cfg is syn.BinsalShapes.builder_configs[cfg.name]  # the predefined object


def test_corrupt_records_raise_corrupt_cache_error(built, tmp_path):
    data_dir, _ = built
    copy = tmp_path / "copy"
    shutil.copytree(data_dir, copy)
    (record,) = [p for p in copy.rglob("*-train.tfrecord*")]
    record.write_bytes(record.read_bytes()[:100])
    with pytest.raises(CorruptCacheError, match="binsal_shapes") as err:
        _load(copy)
    assert str(record.parent) in str(err.value)


def test_corrupt_dataset_info_raises_corrupt_cache_error(built, tmp_path):
    data_dir, _ = built
    copy = tmp_path / "copy"
    shutil.copytree(data_dir, copy)
    (info,) = list(copy.rglob("dataset_info.json"))
    info.write_text("{ not json")
    with pytest.raises(CorruptCacheError) as err:
        _load(copy)
    assert str(info.parent) in str(err.value)


def test_metadata_disagreeing_with_the_name_is_reported(built, tmp_path):
    data_dir, _ = built
    copy = tmp_path / "copy"
    shutil.copytree(data_dir, copy)
    (meta,) = [p for p in copy.rglob("metadata.json") if p.parent.name == "1.0.0"]
    stored = json.loads(meta.read_text())
    meta.write_text(json.dumps({**stored, "seed": 5}))
    with pytest.raises(CorruptCacheError, match="seed"):
        _load(copy)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"image_size": 8}, "image_size must be >= 16"),
        ({"image_size": 32.0}, "image_size must be an int"),
        ({"n_train": 0}, "n_train must be >= 1"),
        ({"n_test": 0}, "n_test must be >= 1"),
        ({"seed": -1}, "seed must be a non-negative int"),
        ({"n_train": True}, "n_train must be an int"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, match, tmp_path):
    args = {"image_size": SIZE, "seed": 0, "n_train": 4, "n_test": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        syn.load_shapes(**args, data_dir=tmp_path)
    with pytest.raises(ValueError, match=match):
        syn.make_config(**args)
    with pytest.raises(ValueError, match=match):
        syn.ShapesConfig(name="bad", **args)
    assert not any(tmp_path.iterdir())  # nothing was built


def test_generate_example_rejects_small_images_and_bad_labels():
    with pytest.raises(ValueError, match=">= 16"):
        syn.generate_example(15, np.random.default_rng(0))
    with pytest.raises(ValueError, match="label"):
        syn.render_example(SIZE, np.random.default_rng(0), label=4)


# ------------------------------------------------------------------ the rendered examples


def test_generation_is_order_independent():
    forward = [syn.generate_example(SIZE, np.random.default_rng([3, 0, i])) for i in range(5)]
    backward = [syn.generate_example(SIZE, np.random.default_rng([3, 0, i])) for i in (4, 3)]
    for a, b in zip(forward[::-1][:2], backward, strict=True):
        assert a[0].tobytes() == b[0].tobytes() and (a[1] == b[1]).all() and a[2] == b[2]


def test_masks_are_inside_nonempty_and_aligned_with_the_object(examples):
    for ex in examples:
        assert ex.image.shape == (SIZE, SIZE, 3) and ex.image.dtype == np.uint8
        assert ex.mask.shape == (SIZE, SIZE) and ex.mask.dtype == bool
        # one object, one pixel clear of the border
        assert ndimage.label(ex.mask, np.ones((3, 3), bool))[1] == 1
        assert not (ex.mask[0].any() or ex.mask[-1].any() or ex.mask[:, 0].any())
        assert not ex.mask[:, -1].any()
        # plausible area: the object's area is (0.32 .. 0.50 * side) ** 2
        assert 0.08 < ex.mask.mean() < 0.28
        # every mask pixel has the object colour ...
        assert (ex.image[ex.mask] == ex.color).all()
        # ... and the pixels just outside contrast with it (the outline is visible)
        ring = ndimage.binary_dilation(ex.mask) & ~ex.mask
        dist = np.linalg.norm(ex.image[ring].astype(float) - ex.color.astype(float), axis=1)
        assert (dist >= 80).mean() >= 0.9
        rows, cols = np.flatnonzero(ex.mask.any(1)), np.flatnonzero(ex.mask.any(0))
        assert tuple(ex.bbox) == (rows[0], cols[0], rows[-1] + 1, cols[-1] + 1)


def test_mask_shape_matches_the_label(examples):
    """The cross is the only non-convex class; size is drawn as an area, the same for all."""
    solidity = np.array([measure.regionprops(ex.mask.astype(int))[0].solidity for ex in examples])
    labels = np.array([ex.label for ex in examples])
    cross = syn.CLASS_NAMES.index("cross")
    assert solidity[labels == cross].max() < 0.8
    assert solidity[labels != cross].min() > 0.83
    area = np.array([ex.mask.sum() for ex in examples])
    means = [area[labels == k].mean() for k in range(len(syn.CLASS_NAMES))]
    assert max(means) / min(means) < 1.25


def test_labels_cover_all_classes_roughly_evenly(examples):
    counts = np.bincount([ex.label for ex in examples], minlength=len(syn.CLASS_NAMES))
    assert len(counts) == 4 and counts.min() > 0
    expected = len(examples) / 4
    assert np.abs(counts - expected).max() < 0.3 * expected


def test_background_does_not_depend_on_the_class():
    """Forcing the label on the same random state changes only the pixels of the object."""
    for i in range(10):
        variants = [
            syn.render_example(SIZE, np.random.default_rng([11, 0, i]), label=k) for k in range(4)
        ]
        assert [v.label for v in variants] == [0, 1, 2, 3]
        outside = ~np.logical_or.reduce([v.mask for v in variants])
        for v in variants[1:]:
            np.testing.assert_array_equal(v.image[outside], variants[0].image[outside])


def test_background_colour_does_not_predict_the_class(examples):
    """Leave-one-out nearest class centroid on the mean colour outside the mask: ~ chance."""
    feats = np.array([ex.image[~ex.mask].mean(axis=0) for ex in examples])
    feats = (feats - feats.mean(0)) / feats.std(0)
    labels = np.array([ex.label for ex in examples])
    correct = 0
    for i in range(len(labels)):
        keep = np.arange(len(labels)) != i
        centroids = np.stack([feats[keep & (labels == k)].mean(0) for k in range(4)])
        correct += int(np.argmin(((centroids - feats[i]) ** 2).sum(1)) == labels[i])
    assert correct / len(labels) < 0.35


@pytest.mark.parametrize("size", [32, 64])
def test_clutter_is_thin_or_small(size):
    """Clutter never forms a class shape: nothing in it is as thick and large as an object."""
    min_object = (0.32 * size) ** 2
    for i in range(30):
        canvas = np.zeros((size, size, 3))
        syn._clutter(np.random.default_rng([5, i]), canvas)
        drawn = (canvas != 0).any(axis=-1)
        assert drawn.any()
        thick = ndimage.binary_erosion(drawn, np.ones((3, 3), bool))
        labels, n = ndimage.label(thick)
        largest = np.bincount(labels.ravel())[1:].max() if n else 0
        assert largest < 0.3 * min_object


def test_examples_drawn_by_worker_processes_equal_those_drawn_here():
    """render_split (the TFDS build's generator) draws chunks in spawned workers: the same
    examples, in order, as render_example on each example's own seeded stream."""
    from binsal.datasets import shapes

    n = 5 * shapes._CHUNK + 3  # several chunks and a partial one: the worker pool is used
    got = list(shapes.render_split(16, 3, 1, n, workers=2))
    assert len(got) == n
    for i in (0, shapes._CHUNK - 1, shapes._CHUNK, n - 1):
        want = syn.render_example(16, np.random.default_rng([3, 1, i]))
        assert np.array_equal(got[i].image, want.image)
        assert np.array_equal(got[i].mask, want.mask) and got[i].label == want.label
