"""The further methods binsal offers: SmoothGrad-squared, VarGrad, Integrated Gradients,
Grad-CAM++, Score-CAM, Guided Backprop, and the signed / inverted GradCAM of the paper.

Like the core methods they return raw signed (N, H, W) maps; noisy copies, path points and
masked copies go through the model in batches of at most ``chunk_size`` inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np

from binsal.core.errors import InvalidInputError
from binsal.core.lazy import lazy_module
from binsal.models.spec import LoadedModel
from binsal.saliency.base import (
    ChannelReduce,
    SaliencyMethod,
    feature_layer_support,
    reduce_channels,
    register_method,
)
from binsal.saliency.methods import GradCAM, SmoothGrad

if TYPE_CHECKING:
    from binsal.saliency import engine_tf, engine_tfkv, guided
else:  # TensorFlow loads on the first explain, not on import
    engine_tf = lazy_module("binsal.saliency.engine_tf")
    engine_tfkv = lazy_module("binsal.saliency.engine_tfkv")
    guided = lazy_module("binsal.saliency.guided")

# ----------------------------------------------------------------------------- SmoothGrad family


@register_method
@dataclass(frozen=True)
class SmoothGradSquared(SmoothGrad):
    """SmoothGrad-squared (Hooker et al. 2019): mean squared gradient over noisy copies.

    The square is taken per input channel, then ``channel_reduce`` is applied. Non-negative.
    Same options and noise (seeded per image) as :class:`SmoothGrad`; "tf" engine only
    (tf-keras-vis has none)."""

    name: ClassVar[str] = "smoothgrad_sq"
    engines: ClassVar[tuple[str, ...]] = ("tf",)
    aggregate: ClassVar[engine_tf.Aggregate] = "mean_sq"


@register_method
@dataclass(frozen=True)
class VarGrad(SmoothGrad):
    """VarGrad (Adebayo et al. 2018): variance of the gradient over noisy copies.

    Population variance (ddof=0) per input channel, then ``channel_reduce``. Non-negative; zero for
    ``noise_level=0``. "tf" engine only."""

    name: ClassVar[str] = "vargrad"
    engines: ClassVar[tuple[str, ...]] = ("tf",)
    aggregate: ClassVar[engine_tf.Aggregate] = "var"


# ----------------------------------------------------------------------- Integrated Gradients


@register_method
@dataclass(frozen=True)
class IntegratedGradients(SaliencyMethod):
    """Integrated Gradients (Sundararajan et al. 2017): path-averaged gradient times (x - x').

    The map is ``(x - x') * sum_k w_k grad(x' + a_k (x - x'))``, then ``channel_reduce``
    (default "sum", so completeness holds: the map sums to about ``logit(x) - logit(x')`` on
    models whose gradient is the true gradient; not on larq BNNs, whose straight-through
    estimator is not the gradient of their piecewise-constant function).

    ``baseline`` x' is given in raw image space and preprocessed like the image: "zero" (black),
    "channel_mean" (each image's per-channel mean colour, flat), or a float (a flat image of that
    value). ``rule="trapezoid"`` (default) evaluates the gradient at ``steps + 1`` points
    a = 0, 1/steps, ..., 1 with trapezoid weights; ``rule="right"`` is the right Riemann sum over
    a = 1/steps, ..., 1 (``steps`` points, as in the paper's eq. 3). Deterministic. All path
    points of a chunk of images are batched, at most ``chunk_size`` model inputs at a time.
    """

    name: ClassVar[str] = "integrated_gradients"
    engines: ClassVar[tuple[str, ...]] = ("tf",)
    baseline: str | float = "zero"
    steps: int = 32
    rule: Literal["trapezoid", "right"] = "trapezoid"
    channel_reduce: ChannelReduce = "sum"
    chunk_size: int = 256

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.rule not in ("trapezoid", "right"):
            raise ValueError(f"unknown rule {self.rule!r}; known: trapezoid, right")
        if isinstance(self.baseline, str):
            if self.baseline not in ("zero", "channel_mean"):
                raise ValueError(
                    f"unknown baseline {self.baseline!r}; known: 'zero', 'channel_mean' or a float"
                )
        elif not np.isfinite(float(self.baseline)):
            raise ValueError(f"baseline must be finite, got {self.baseline}")

    def passes(self, model: LoadedModel | None = None) -> tuple[int, int]:
        points = self.steps + 1 if self.rule == "trapezoid" else self.steps
        return (points, points)  # one gradient per path point

    def baseline_images(self, x: np.ndarray) -> np.ndarray:
        """The raw-image-space baseline x' for images x, (N, H, W, C) float32."""
        if self.baseline == "zero":
            return np.zeros_like(x)
        if self.baseline == "channel_mean":
            return np.broadcast_to(x.mean(axis=(1, 2), keepdims=True), x.shape).astype(np.float32)
        return np.full_like(x, float(self.baseline))

    def _explain_model(
        self, model: LoadedModel, x: np.ndarray, t: np.ndarray, engine: str
    ) -> np.ndarray:
        inp = model.prepare(x)
        base = model.prepare(self.baseline_images(x))
        grads = engine_tf.path_gradients(
            model.model,
            inp,
            base,
            t,
            steps=self.steps,
            rule=self.rule,
            chunk_size=self.chunk_size,
        )
        delta = inp.astype(np.float64) - base.astype(np.float64)
        return reduce_channels(delta * grads, self.channel_reduce)


# ----------------------------------------------------------------------------- CAM family


@register_method
@dataclass(frozen=True)
class GradCAMSigned(GradCAM):
    """GradCAM without the final ReLU: the signed map (the paper's observation)."""

    name: ClassVar[str] = "gradcam_signed"
    relu: bool = False


@register_method
@dataclass(frozen=True)
class GradCAMInverted(GradCAM):
    """GradCAM without the final ReLU, multiplied by -1 (the paper's inverted map)."""

    name: ClassVar[str] = "gradcam_inverted"
    relu: bool = False
    invert: bool = True


@register_method
@dataclass(frozen=True)
class GradCAMPlusPlus(SaliencyMethod):
    """Grad-CAM++ (Chattopadhay et al. 2018): GradCAM with pixel-wise weighted gradients.

    Closed-form alphas of the paper and of tf-keras-vis 0.8.7, which this matches exactly.

    With S the target logit, Y = exp(S) and g = dS/dA at the model's GradCAM layer, the higher
    derivatives are approximated by powers of the first (exact for a piecewise-linear head):
    ``dY/dA = Y g``, ``d2Y/dA2 = Y g^2``, ``d3Y/dA3 = Y g^3``. Then
    ``alpha = g^2 / (2 g^2 + sum_ij(A) g^3)`` (0 where g = 0), normalised to sum to 1 over the
    spatial positions of each channel (as tf-keras-vis and the authors' code do),
    ``w_k = sum_ij alpha * ReLU(Y g)`` and the map is ``ReLU(sum_k w_k A_k)``, upsampled
    bilinearly. ``relu=False`` drops both ReLUs (tf-keras-vis ``activation_modifier=None``).
    ``exp_score=False`` leaves out the per-image factor exp(S) (same map up to a positive scale;
    use it for logits large enough to overflow). Engines "tf" (float64 numpy on batched
    features/gradients) and "tfkv" (tf_keras_vis GradcamPlusPlus, normalisation off).
    """

    name: ClassVar[str] = "gradcam_pp"
    engines: ClassVar[tuple[str, ...]] = ("tf", "tfkv")
    ranking: ClassVar[Literal["abs", "signed"]] = "signed"
    relu: bool = True
    exp_score: bool = True
    layer: str | None = None  # default: the model spec's gradcam_layer
    chunk_size: int = 256

    def defined_for(self, model: LoadedModel | None) -> tuple[bool, str]:
        return feature_layer_support(model, self.layer)

    def cam_lowres(self, model: LoadedModel, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The (N, h, w) map at feature resolution, before the final ReLU."""
        layer = self.layer or model.gradcam_layer
        feats, grads, scores = engine_tf.features_grads_and_scores(
            model.model, layer, model.prepare(x), t, chunk_size=self.chunk_size
        )
        a = feats.astype(np.float64)
        g = grads.astype(np.float64)
        g2 = g * g
        denom = 2.0 * g2 + g2 * g * a.sum(axis=(1, 2), keepdims=True)
        alphas = np.divide(g2, denom, out=np.zeros_like(g2), where=g2 != 0.0)
        norm = alphas.sum(axis=(1, 2), keepdims=True)
        alphas = alphas / np.where(norm == 0.0, 1.0, norm)
        first = g
        if self.exp_score:
            first = np.exp(scores.astype(np.float64)).reshape(-1, 1, 1, 1) * g
        if self.relu:
            first = np.maximum(first, 0.0)
        weights = (first * alphas).sum(axis=(1, 2), keepdims=True)
        return (weights * a).sum(axis=-1)

    def _explain_model(
        self, model: LoadedModel, x: np.ndarray, t: np.ndarray, engine: str
    ) -> np.ndarray:
        layer = self.layer or model.gradcam_layer
        if engine == "tfkv":
            if not self.exp_score:
                raise InvalidInputError("gradcam_pp engine 'tfkv' always uses exp(score)")
            return engine_tfkv.gradcam_plus_plus(
                model.model, model.prepare(x), t, layer=layer, relu=self.relu
            )
        cam = self.cam_lowres(model, x, t)
        if self.relu:
            cam = np.maximum(cam, 0.0)
        return engine_tf.upsample(cam, (x.shape[1], x.shape[2]))


@register_method
@dataclass(frozen=True)
class ScoreCAM(SaliencyMethod):
    """Score-CAM (Wang et al. 2020): channels weighted by the score of the input they mask.

    Gradient-free. Each channel A_k of the model's GradCAM layer
    is upsampled bilinearly to the input size, min-max normalised to [0, 1] per image and
    channel, and multiplied into the (preprocessed) input; the channel's weight is the softmax
    probability of the target class for that masked copy (the paper's Sec. 3 score with softmax,
    as in the authors' code and tf-keras-vis; the baseline score f(X_b) of the paper's
    "increase of confidence" is not subtracted, like both of those). The map is
    ``ReLU(sum_k w_k A_k)`` at feature resolution, upsampled; ``relu=False`` keeps the sign.

    ``max_channels`` (None: all) keeps, per image, only the channels with the largest spatial
    mean activation (deterministic; ties by channel index). All masked copies of a chunk of
    (image, channel) pairs are batched, at most ``chunk_size`` model inputs at a time.

    Engines: "tf", and "tfkv" (tf_keras_vis Scorecam) only for ``max_channels=None``, where the
    two agree exactly; tf-keras-vis's own channel subsampling (Faster Score-CAM, ``max_N``)
    ranks by standard deviation and takes the union over the batch, so it is not comparable.
    """

    name: ClassVar[str] = "scorecam"
    engines: ClassVar[tuple[str, ...]] = ("tf", "tfkv")
    ranking: ClassVar[Literal["abs", "signed"]] = "signed"
    relu: bool = True
    max_channels: int | None = None
    layer: str | None = None  # default: the model spec's gradcam_layer
    chunk_size: int = 256

    def __post_init__(self) -> None:
        if self.max_channels is not None and self.max_channels < 1:
            raise ValueError(f"max_channels must be None or >= 1, got {self.max_channels}")

    def passes(self, model: LoadedModel | None = None) -> tuple[int, int]:
        """One forward pass for the feature maps, then one per masked copy (a channel): no
        backward pass. The channel count is the model's (its GradCAM layer's) unless
        ``max_channels`` caps it; without a model and a cap it is unknown (ValueError)."""
        channels = self.max_channels
        if model is not None:
            found = model.model.get_layer(self.layer or model.gradcam_layer)
            k = int(found.output.shape[-1])
            channels = k if channels is None else min(channels, k)
        if channels is None:
            raise ValueError("scorecam: the pass count needs the model (its channels)")
        return (1 + channels, 0)

    def defined_for(self, model: LoadedModel | None) -> tuple[bool, str]:
        return feature_layer_support(model, self.layer)

    def cam_lowres(self, model: LoadedModel, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The (N, h, w) score-weighted map at feature resolution, before the final ReLU."""
        layer = self.layer or model.gradcam_layer
        inp = model.prepare(x)
        feats = engine_tf.features(model.model, layer, inp, chunk_size=self.chunk_size)
        n, k = len(feats), feats.shape[-1]
        if self.max_channels is None or self.max_channels >= k:
            channels = np.broadcast_to(np.arange(k), (n, k))
        else:
            means = feats.mean(axis=(1, 2))
            channels = np.argsort(-means, axis=1, kind="stable")[:, : self.max_channels]
        units = np.stack([np.repeat(np.arange(n), channels.shape[1]), channels.reshape(-1)], axis=1)
        probs = engine_tf.masked_target_probabilities(
            model.model, inp, t, feats, units, chunk_size=self.chunk_size
        )
        weights = np.zeros((n, k), dtype=np.float64)
        weights[units[:, 0], units[:, 1]] = probs
        return np.einsum("nhwk,nk->nhw", feats.astype(np.float64), weights)

    def _explain_model(
        self, model: LoadedModel, x: np.ndarray, t: np.ndarray, engine: str
    ) -> np.ndarray:
        layer = self.layer or model.gradcam_layer
        if engine == "tfkv":
            if self.max_channels is not None:
                raise InvalidInputError(
                    "scorecam engine 'tfkv' only supports max_channels=None (tf-keras-vis's "
                    "Faster Score-CAM selects channels differently)"
                )
            return engine_tfkv.scorecam(
                model.model,
                model.prepare(x),
                t,
                layer=layer,
                relu=self.relu,
                batch_size=self.chunk_size,
            )
        cam = self.cam_lowres(model, x, t)
        if self.relu:
            cam = np.maximum(cam, 0.0)
        return engine_tf.upsample(cam, (x.shape[1], x.shape[2]))


# ---------------------------------------------------------------------------- Guided Backprop


@register_method
@dataclass(frozen=True)
class GuidedBackprop(SaliencyMethod):
    """Guided backpropagation (Springenberg et al. 2015), for ReLU networks only.

    The input gradient of the target logit where every ReLU passes the gradient only where
    both its forward input and the incoming gradient are positive; then ``channel_reduce``.

    Only defined for ReLU networks: on a model with larq quantizers (sign with a
    straight-through estimator) or other nonlinearities ``explain`` raises
    :class:`binsal.core.errors.MethodNotDefinedError`; check ``binsal.saliency.is_defined`` first.
    Implemented on a clone of the model with guided ReLUs (``binsal.saliency.guided``).
    """

    name: ClassVar[str] = "guided_backprop"
    engines: ClassVar[tuple[str, ...]] = ("tf",)
    channel_reduce: ChannelReduce = "sum"
    chunk_size: int = 256

    def defined_for(self, model: LoadedModel | None) -> tuple[bool, str]:
        if model is None:
            return False, "guided backprop needs a model"
        return guided.guided_support(model.model)

    def _explain_model(
        self, model: LoadedModel, x: np.ndarray, t: np.ndarray, engine: str
    ) -> np.ndarray:
        clone = guided.guided_model(model.model)
        grads = engine_tf.gradients(clone, model.prepare(x), t, chunk_size=self.chunk_size)
        return reduce_channels(grads, self.channel_reduce)
