import dataclasses
import subprocess
import sys

import numpy as np
import pytest

import binsal.metrics as M


def test_every_metric_declares_name_and_direction():
    assert len(M.METRICS) >= 15
    for name, cls in M.METRICS.items():
        assert cls.name == name
        assert cls.direction in ("higher", "lower", "none")
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen


def test_settings_are_frozen():
    metric = M.TopKOverlap(fraction=0.2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        metric.fraction = 0.5


def test_per_image_metrics_return_float64_n():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 5, 24, 24))
    masks = rng.uniform(size=(5, 24, 24)) > 0.7
    for out in (
        M.Spearman(use_abs=True)(a, b),
        M.MapEntropy()(a),
        M.PointingGame()(a, masks),
        M.BlankMap()(a),
        M.iou_auc(a, masks),
    ):
        assert out.shape == (5,) and out.dtype == np.float64


@pytest.mark.parametrize(
    "fn",
    [
        lambda e, m: M.spearman(e, e, use_abs=True),
        lambda e, m: M.kendall(e, e, use_abs=True),
        lambda e, m: M.topk_overlap(e, e),
        lambda e, m: M.ssim(e, e, use_abs=True),
        lambda e, m: M.hog_pearson(e, e, use_abs=True),
        lambda e, m: M.map_entropy(e),
        lambda e, m: M.pointing_game(e, m),
        lambda e, m: M.relevance_rank_accuracy(e, m),
        lambda e, m: M.iou_auc(e, m),
        lambda e, m: M.negative_mass_share(e),
    ],
)
def test_empty_batch_gives_empty_result(fn):
    assert fn(np.zeros((0, 24, 24)), np.zeros((0, 24, 24), dtype=bool)).shape == (0,)


def test_metrics_do_not_import_tensorflow():
    code = "import sys, binsal.metrics; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
