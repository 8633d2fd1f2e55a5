"""Saliency metrics, pure numpy / scipy / scikit-image (no TensorFlow).

Every per-image metric takes maps of shape (N, H, W) and returns a float64 array of shape (N,),
one value per image, so callers can bootstrap over images (``stats.bootstrap_ci``). Undefined
values are NaN (documented per metric) and callers drop them. Each metric also exists as a frozen
dataclass with its settings fixed at construction and class attributes ``name`` and
``direction`` ("higher", "lower" or "none"), registered in ``METRICS`` by ``@register_metric``
beside it; a new metric module needs one import line here.
"""

from binsal.core.stats import bootstrap_ci
from binsal.metrics._memo import forget as forget_results
from binsal.metrics.curves import curve_auc
from binsal.metrics.entropy import MapEntropy, map_entropy
from binsal.metrics.faithfulness import (
    DeletionLeRF,
    DeletionMoRF,
    InsertionLeRF,
    InsertionMoRF,
    baseline_images,
    degrade_by_ranking,
    perturbation_auc,
    perturbation_curve,
)
from binsal.metrics.gradcam import BlankMap, NegativeMassShare, blank_map, negative_mass_share
from binsal.metrics.localization import (
    IoUAUC,
    PointingGame,
    RelevanceMass,
    RelevanceRankAccuracy,
    iou_auc,
    iou_curve,
    pointing_game,
    relevance_mass,
    relevance_rank_accuracy,
)
from binsal.metrics.registry import METRICS, register_metric
from binsal.metrics.similarity import (
    SSIM,
    HOGPearson,
    Kendall,
    Pearson,
    Spearman,
    TopKOverlap,
    hog_pearson,
    kendall,
    pearson,
    spearman,
    ssim,
    topk_overlap,
)
from binsal.metrics.sparseness import GiniSparseness, gini_sparseness
from binsal.metrics.transforms import normalize, to_abs

__all__ = [
    "forget_results",
    "GiniSparseness",
    "gini_sparseness",
    "METRICS",
    "BlankMap",
    "DeletionLeRF",
    "DeletionMoRF",
    "HOGPearson",
    "InsertionLeRF",
    "InsertionMoRF",
    "IoUAUC",
    "Kendall",
    "MapEntropy",
    "NegativeMassShare",
    "Pearson",
    "PointingGame",
    "RelevanceMass",
    "RelevanceRankAccuracy",
    "SSIM",
    "Spearman",
    "TopKOverlap",
    "baseline_images",
    "blank_map",
    "bootstrap_ci",
    "curve_auc",
    "degrade_by_ranking",
    "hog_pearson",
    "iou_auc",
    "iou_curve",
    "kendall",
    "map_entropy",
    "negative_mass_share",
    "normalize",
    "pearson",
    "perturbation_auc",
    "perturbation_curve",
    "pointing_game",
    "relevance_mass",
    "register_metric",
    "relevance_rank_accuracy",
    "spearman",
    "ssim",
    "to_abs",
    "topk_overlap",
]
