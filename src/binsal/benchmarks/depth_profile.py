"""Depth profile: at which depth do a matched FP and BNN stop explaining an image alike?

For every matched pair of the run (an FP and a BNN model with the same ``pair``; binsal's pairs
share every layer name), the layers of the depth axis are, in forward order, the convolutions
(``Conv2D``, larq ``QuantConv2D`` included) and block outputs (``Add``) that both models have
under the same name and with a spatial output, then the GradCAM layer (the last feature map) if
it is not among them; ``step`` is the depth (1 = first), the layer is named in ``layer``. At each
depth, for the true class of each of the first ``n_images`` evaluation images (the model's top-1
where an image has none), from one forward and backward pass per model:

- method "gradcam": GradCAM (Selvaraju et al. 2019) taken at that layer, ReLU(sum_k alpha_k A^k),
  as displayed; "gradcam_signed": the same before the ReLU;
- method "layer_gradient": the gradient of the class logit with respect to the layer's activation,
  reduced over channels by its L2 norm (channels of two different networks do not correspond; the
  norm does not depend on their order).

Each map is upsampled bilinearly to the image size. "spearman" (``step`` = depth): Spearman rank
correlation of the FP and the BNN map of the same image (abs maps; the signed CAM by value), per
image, as in ``rank_correlation``; direction "higher". A blank map (ReLU'd GradCAM with no positive
value) has no ranking: NaN, left out of ``n``. So has the layer gradient wherever only global
average pooling and the classifier follow (pooling spreads the gradient evenly over the pixels):
a depth where no image has a ranking gets no row.

"decorrelation_depth" (scalar): per image, walking from the deepest depth towards the input (the
way the gradient flows), the first depth at which the two maps' Spearman falls below
``threshold`` (option, default 0.3; an undefined agreement counts as below unless both maps are
blank, which agree): the depth at which the pair's explanations of the image part, the maps of
every deeper layer agreeing. 0 where they agree at every depth (censored: no parting). The mean
over images with its interval places the parting on the depth axis of the "spearman" curve (on
binsal's pairs GradCAM agrees best at the last feature map and worst near the input, so the
walk starts at the output). Direction "none". A network compared with itself agrees (Spearman 1)
at every depth and scores 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from binsal.benchmarks.base import (
    BENCHMARKS,
    Benchmark,
    BenchmarkOptions,
    PlotSpec,
    RunContext,
    Score,
    explained_targets,
    log,
)
from binsal.benchmarks.entropy_vs_noise import TARGET
from binsal.core.lazy import lazy_module
from binsal.core.schema import ScoreRow
from binsal.metrics import similarity
from binsal.models.gradcam_rules import spatial_size
from binsal.models.spec import LoadedModel
from binsal.saliency.base import budget_chunk

if TYPE_CHECKING:
    from binsal.saliency import engine_tf
else:  # TensorFlow loads when a map is computed, not on import
    engine_tf = lazy_module("binsal.saliency.engine_tf")

# method name -> whether its Spearman is taken on abs maps
DEPTH_METHODS: dict[str, bool] = {"gradcam": True, "gradcam_signed": False, "layer_gradient": True}
BLOCK_TYPES = ("Conv2D", "QuantConv2D", "Add")


def _spatial(layer: Any) -> bool:
    try:
        shape = tuple(layer.output.shape)
    except (AttributeError, RuntimeError, ValueError):
        return False
    return len(shape) == 4 and shape[1] is not None and shape[2] is not None


def _is_block(layer: Any) -> bool:
    """A convolution or a block output (by class, its bases included: ``QuantConv2D`` is a
    ``Conv2D``; depthwise convolutions are not)."""
    return any(c.__name__ in BLOCK_TYPES for c in type(layer).__mro__)


def depth_layers(a: LoadedModel, b: LoadedModel) -> list[str]:
    """The depth axis of two models (see the module docstring), in ``a``'s forward order."""
    names_b = {layer.name: layer for layer in b.model.layers}
    out = [
        str(layer.name)
        for layer in a.model.layers
        if layer.name in names_b
        and _is_block(layer)
        and _is_block(names_b[layer.name])
        and _spatial(layer)
        and _spatial(names_b[layer.name])
    ]
    cam = a.gradcam_layer
    if cam not in out and cam in names_b and cam == b.gradcam_layer:
        out.append(cam)
    return out


def layer_maps(
    loaded: LoadedModel,
    layers: list[str],
    images: np.ndarray,
    targets: np.ndarray,
    *,
    chunk_size: int = 256,
) -> dict[str, list[np.ndarray]]:
    """{method: one (N, H, W) map per layer} for the methods of ``DEPTH_METHODS``, upsampled to
    the image size."""
    chunk = budget_chunk(loaded.model, chunk_size)
    cams, norms = engine_tf.layer_cams(
        loaded.model, layers, loaded.prepare(images), targets, chunk_size=chunk
    )
    size = (int(images.shape[1]), int(images.shape[2]))
    return {
        "gradcam": [engine_tf.upsample(np.maximum(c, 0.0), size) for c in cams],
        "gradcam_signed": [engine_tf.upsample(c, size) for c in cams],
        "layer_gradient": [engine_tf.upsample(g, size) for g in norms],
    }


def agreement(
    maps_a: Mapping[str, list[np.ndarray]], maps_b: Mapping[str, list[np.ndarray]]
) -> dict[str, np.ndarray]:
    """{method: (depths, N) Spearman of the two models' maps, per depth and image}."""
    return {
        m: np.stack(
            [
                similarity.spearman(a, b, use_abs=use_abs)
                for a, b in zip(maps_a[m], maps_b[m], strict=True)
            ]
        )
        for m, use_abs in DEPTH_METHODS.items()
    }


def both_constant(
    maps_a: Mapping[str, list[np.ndarray]], maps_b: Mapping[str, list[np.ndarray]]
) -> dict[str, np.ndarray]:
    """{method: (depths, N) whether both models' maps of an image are constant (blank)}."""

    def flat_ptp(m: np.ndarray, use_abs: bool) -> np.ndarray:
        v = (np.abs(m) if use_abs else m).reshape(len(m), -1)
        return v.max(axis=1) - v.min(axis=1)

    return {
        m: np.stack(
            [
                (flat_ptp(a, use_abs) == 0) & (flat_ptp(b, use_abs) == 0)
                for a, b in zip(maps_a[m], maps_b[m], strict=True)
            ]
        )
        for m, use_abs in DEPTH_METHODS.items()
    }


def decorrelation_depth(
    rho: np.ndarray, threshold: float, both_blank: np.ndarray | None = None
) -> np.ndarray:
    """Per image, the deepest depth (1-based) whose agreement is below ``threshold``, i.e. the
    first one met walking from the output towards the input; 0 where none is:
    (depths, N) -> (N,). An undefined (NaN) agreement counts as below, unless ``both_blank``
    says both maps are constant there (they agree)."""
    rho = np.asarray(rho, dtype=np.float64)
    if both_blank is not None:
        rho = np.where(both_blank, 1.0, rho)
    below = ~(rho >= threshold)  # NaN: below
    deepest = rho.shape[0] - np.argmax(below[::-1], axis=0)
    return np.where(below.any(axis=0), deepest, 0.0).astype(np.float64)


def matched_pairs(ctx: RunContext) -> list[tuple[str, str, str]]:
    """(FP model, BNN model, pair) for every FP and BNN model of the run sharing a pair name."""
    out = []
    for fp in ctx.family_models("FP"):
        pair = ctx.models[fp].spec.pair
        if not pair:
            continue
        out.extend(
            (fp, bnn, pair) for bnn in ctx.family_models("BNN") if ctx.models[bnn].spec.pair == pair
        )
    return out


@BENCHMARKS.add("depth_profile")
class DepthProfile(Benchmark):
    name: ClassVar[str] = "depth_profile"
    title: ClassVar[str] = "Depth profile: FP vs BNN agreement of GradCAM and layer gradients"
    description: ClassVar[str] = __doc__ or ""
    order: ClassVar[int] = 15
    plots: ClassVar[tuple[PlotSpec, ...]] = (
        PlotSpec(
            "spearman",
            kind="curve",
            title="FP vs BNN Spearman of the maps taken at each depth (matched pairs)",
            xlabel="depth (convolution or block output, forward order)",
            ylabel="Spearman rho",
        ),
        PlotSpec(
            "decorrelation_depth",
            title="Decorrelation depth of FP vs BNN maps (0 = no parting)",
            ylabel="depth",
        ),
    )
    scores: ClassVar[Mapping[str, Score]] = {
        "spearman": Score("higher", "Spearman of the FP and BNN maps taken at one depth"),
        "decorrelation_depth": Score(
            "none", "deepest depth whose FP-BNN agreement is below the threshold (per image)"
        ),
    }

    @dataclass(frozen=True)
    class Options(BenchmarkOptions):
        """``[benchmarks.depth_profile]``."""

        n_images: int = field(default=32, metadata={"min": 1})
        threshold: float = field(default=0.3, metadata={"min": -1, "max": 1})

    def run(self, ctx: RunContext) -> list[ScoreRow]:
        opts = self.Options.from_profile(ctx.profile, self.name)
        n = max(1, min(int(opts.n_images), len(ctx.images)))
        images = ctx.images[:n]
        rows: list[ScoreRow] = []
        for fp, bnn, pair in ctx.progress.bar(matched_pairs(ctx), desc="depth profile"):
            a, b = ctx.models[fp], ctx.models[bnn]
            layers = depth_layers(a, b)
            if not layers:
                log(ctx, f"depth profile: {fp} and {bnn} share no layer name; skipped")
                continue
            chunk = ctx.profile.saliency.chunk_size
            maps_a = layer_maps(a, layers, images, explained_targets(ctx, fp)[:n], chunk_size=chunk)
            maps_b = layer_maps(
                b, layers, images, explained_targets(ctx, bnn)[:n], chunk_size=chunk
            )
            rho = agreement(maps_a, maps_b)
            blank = both_constant(maps_a, maps_b)
            base: dict[str, Any] = {
                "n_depths": len(layers),
                "target": TARGET,
                "n_images": n,
                "upsampling": "bilinear to the image size",
            }
            common: dict[str, Any] = {
                "model": f"{fp}|{bnn}",
                "family": "FP-BNN",
                "pair": pair,
                "seed": ctx.seed,
                "n_boot": ctx.profile.n_boot,
            }
            for method, use_abs in DEPTH_METHODS.items():
                params = {**base, "use_abs": use_abs}
                if method == "layer_gradient":
                    params["channel_reduce"] = "l2"
                for d, layer in enumerate(layers):
                    if not np.isfinite(rho[method][d]).any():
                        continue  # no ranking on any image (e.g. a gradient constant in space)
                    size = spatial_size(a, layer)
                    rows.append(
                        self.row(
                            rho[method][d],
                            metric="spearman",
                            method=method,
                            step=d + 1,
                            params={**params, "layer": layer, "layer_size": size},
                            **common,
                        )
                    )
                rule = {
                    **params,
                    "threshold": float(opts.threshold),
                    "layers": layers,
                    "walk": "from the deepest depth towards the input",
                    "never_below": 0,
                    "undefined_agreement": "below; both maps blank: agree",
                }
                rows.append(
                    self.row(
                        decorrelation_depth(rho[method], float(opts.threshold), blank[method]),
                        metric="decorrelation_depth",
                        method=method,
                        params=rule,
                        **common,
                    )
                )
        return rows
