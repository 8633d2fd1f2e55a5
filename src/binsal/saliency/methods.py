"""The paper's three methods (Gradient, SmoothGrad, GradCAM) and the Random / Sobel controls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np

from binsal.core.lazy import lazy_module
from binsal.models.spec import LoadedModel
from binsal.saliency.base import (
    ChannelReduce,
    SaliencyMethod,
    current_image_offset,
    feature_layer_support,
    reduce_channels,
    register_method,
)

if TYPE_CHECKING:
    from binsal.saliency import engine_tf, engine_tfkv
else:  # TensorFlow loads on the first explain, not on import
    engine_tf = lazy_module("binsal.saliency.engine_tf")
    engine_tfkv = lazy_module("binsal.saliency.engine_tfkv")


@register_method
@dataclass(frozen=True)
class Gradient(SaliencyMethod):
    """Vanilla gradient of the target logit w.r.t. the input (Simonyan et al. 2013).
    ``per_sample_abs`` takes |gradient| before ``channel_reduce`` (tf-keras-vis's default
    ``gradient_modifier``)."""

    name: ClassVar[str] = "gradient"
    engines: ClassVar[tuple[str, ...]] = ("tf", "tfkv")
    late_options: ClassVar[dict[str, object]] = {"normalize": "none", "per_sample_abs": False}
    channel_reduce: ChannelReduce = "sum"
    per_sample_abs: bool = False
    chunk_size: int = 256

    def _explain_model(
        self, model: LoadedModel, x: np.ndarray, t: np.ndarray, engine: str
    ) -> np.ndarray:
        inp = model.prepare(x)
        if engine == "tfkv":
            grads = engine_tfkv.gradients(model.model, inp, t, per_sample_abs=self.per_sample_abs)
        else:
            grads = engine_tf.gradients(model.model, inp, t, chunk_size=self.chunk_size)
            if self.per_sample_abs:
                grads = np.abs(grads)
        return reduce_channels(grads, self.channel_reduce)


@register_method
@dataclass(frozen=True)
class SmoothGrad(SaliencyMethod):
    """Mean gradient over noisy copies, sigma = noise_level * (max - min) of the model input
    (Smilkov et al. 2017). ``per_sample_abs`` reproduces tf-keras-vis's default abs per sample."""

    name: ClassVar[str] = "smoothgrad"
    engines: ClassVar[tuple[str, ...]] = ("tf", "tfkv")
    noise_level: float = 0.2
    samples: int = 20
    seed: int = 0
    per_sample_abs: bool = False
    channel_reduce: ChannelReduce = "sum"
    chunk_size: int = 256
    aggregate: ClassVar[engine_tf.Aggregate] = "mean"

    def __post_init__(self) -> None:
        if not (0.0 <= self.noise_level) or self.samples < 1:
            raise ValueError(f"need noise_level >= 0 and samples >= 1, got {self}")

    def passes(self, model: LoadedModel | None = None) -> tuple[int, int]:
        return (self.samples, self.samples)  # one gradient per noisy copy

    def _explain_model(
        self, model: LoadedModel, x: np.ndarray, t: np.ndarray, engine: str
    ) -> np.ndarray:
        inp = model.prepare(x)
        if engine == "tfkv":
            draws = engine_tf.standard_normal_draws(
                len(inp), self.samples, inp.shape[1:], self.seed, current_image_offset()
            )
            grads = engine_tfkv.smoothgrad(
                model.model,
                inp,
                t,
                samples=self.samples,
                noise_level=self.noise_level,
                draws=draws,
                per_sample_abs=self.per_sample_abs,
            )
        else:
            grads = engine_tf.noisy_gradients(
                model.model,
                inp,
                t,
                samples=self.samples,
                noise_level=self.noise_level,
                seed=self.seed,
                chunk_size=self.chunk_size,
                aggregate=self.aggregate,
                per_sample_abs=self.per_sample_abs,
                image_offset=current_image_offset(),
            )
        return reduce_channels(grads, self.channel_reduce)


@register_method
@dataclass(frozen=True)
class GradCAM(SaliencyMethod):
    """Grad-CAM (Selvaraju et al. 2019): ReLU(sum_k mean_ij(dy/dA_k) A_k) at the model's
    GradCAM layer, upsampled bilinearly. ``relu=False`` gives the signed map; ``invert=True``
    multiplies by -1 (the paper's "remove the ReLU and invert" observation)."""

    name: ClassVar[str] = "gradcam"
    engines: ClassVar[tuple[str, ...]] = ("tf", "tfkv")
    ranking: ClassVar[Literal["abs", "signed"]] = "signed"
    relu: bool = True
    invert: bool = False
    layer: str | None = None  # default: the model spec's gradcam_layer
    chunk_size: int = 256

    def defined_for(self, model: LoadedModel | None) -> tuple[bool, str]:
        return feature_layer_support(model, self.layer)

    def cam_lowres(self, model: LoadedModel, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Signed (pre-ReLU) CAM at the feature-map resolution, (N, h, w)."""
        layer = self.layer or model.gradcam_layer
        feats, grads = engine_tf.features_and_grads(
            model.model, layer, model.prepare(x), t, chunk_size=self.chunk_size
        )
        weights = grads.mean(axis=(1, 2), keepdims=True)
        return (feats * weights).sum(axis=-1)

    def _explain_model(
        self, model: LoadedModel, x: np.ndarray, t: np.ndarray, engine: str
    ) -> np.ndarray:
        layer = self.layer or model.gradcam_layer
        if engine == "tfkv":
            if self.invert and self.relu:
                raise ValueError("tfkv engine: invert=True needs relu=False")
            sign = -1.0 if self.invert else 1.0
            return sign * engine_tfkv.gradcam(
                model.model, model.prepare(x), t, layer=layer, relu=self.relu
            )
        cam = self.cam_lowres(model, x, t)
        if self.invert:
            cam = -cam
        if self.relu:
            cam = np.maximum(cam, 0.0)
        return engine_tf.upsample(cam, (x.shape[1], x.shape[2]))


@register_method
@dataclass(frozen=True)
class RandomMap(SaliencyMethod):
    """Control: i.i.d. standard-normal maps, seeded per image (Hooker et al. 2019 baseline)."""

    name: ClassVar[str] = "random"
    needs_model: ClassVar[bool] = False
    engines: ClassVar[tuple[str, ...]] = ("tf", "tfkv")
    seed: int = 0

    def passes(self, model: LoadedModel | None = None) -> tuple[int, int]:
        return (0, 0)

    def _explain(
        self, model: LoadedModel | None, x: np.ndarray, t: np.ndarray | None, engine: str
    ) -> np.ndarray:
        first = current_image_offset()  # image i of a shard is image first + i of its set
        return np.stack(
            [
                np.random.default_rng([self.seed, first + i]).standard_normal(x.shape[1:3])
                for i in range(len(x))
            ]
        )


@register_method
@dataclass(frozen=True)
class SobelMap(SaliencyMethod):
    """Control: Sobel edge magnitude of the grey image; model-independent (Hooker et al. 2019)."""

    name: ClassVar[str] = "sobel"
    needs_model: ClassVar[bool] = False
    engines: ClassVar[tuple[str, ...]] = ("tf", "tfkv")

    def passes(self, model: LoadedModel | None = None) -> tuple[int, int]:
        return (0, 0)

    def _explain(
        self, model: LoadedModel | None, x: np.ndarray, t: np.ndarray | None, engine: str
    ) -> np.ndarray:
        from skimage.filters import sobel

        grey = x.mean(axis=-1)
        return np.stack([sobel(g) for g in grey])
