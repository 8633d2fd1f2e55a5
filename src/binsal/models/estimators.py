"""Swapping the backward pass of a BNN's sign functions, forward pass and weights unchanged.

A larq BNN binarizes a layer's input with ``sign`` (larq's: sign(0) = +1) and trains through a
pseudo-gradient, the straight-through estimator (STE). Which estimator the gradient of a trained
BNN passes through is a choice of the explainer, not of the network: :func:`swap_estimator`
returns a clone of a model whose sign input quantizers (larq ``SteSign``, ``ApproxSign``,
``SwishSign``) compute exactly the same forward values and pass gradients back through another
estimator. The estimators (``ESTIMATORS``; ``dy`` the incoming gradient, ``x`` the sign's input):

- ``ste``: ``dy * 1{|x| <= 1}``, the clipped STE (Hubara/Courbariaux et al. 2016; larq ``ste_sign``,
  what binsal's pairs are trained with);
- ``approx_sign``: ``dy * 2 (1 - |x|) 1{|x| <= 1}``, the piecewise-polynomial estimator of
  Bi-Real Net (Liu et al. 2018; larq ``approx_sign``);
- ``swish_sign_b10``, ``swish_sign_b5``, ``swish_sign_b1``: the derivative of 2 sigmoid(beta x)
  (1 + beta x (1 - sigmoid(beta x))) - 1, the SignSwish of BNN+ (Darabi et al. 2018; larq
  ``swish_sign``) at beta 10, 5 and 1 (sharp to flat; never exactly zero);
- ``magnitude_aware``: ``dy * alpha * 1{|x| <= 1}`` with alpha the mean |x| of the input per image
  and channel (per image for a dense layer's input), held constant: the gradient larq's
  ``magnitude_aware_sign`` (Bi-Real Net's magnitude-aware sign, Liu et al. 2018 sec. 3.3; XNOR-Net's
  scaling, Rastegari et al. 2016) passes back, with the forward pass kept an unscaled sign. larq
  averages alpha over the batch too; here it is per image, so that an image's map does not depend
  on the images it is batched with;
- ``identity``: ``dy``, no clipping (larq ``ste_sign(clip_value=None)``).

Only input quantizers are swapped. A kernel quantizer's backward pass reaches the gradient with
respect to the latent weights only, never the gradient with respect to the input (the layer
multiplies the input by the already binarized kernel), so it cannot change an input attribution;
kernels keep their quantizer. Quantizers that are not a pure sign (DoReFa, ternary, larq's
magnitude-aware sign whose forward pass scales) are left alone and counted in ``skipped``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

import numpy as np

from binsal.core.errors import InvalidInputError
from binsal.models.spec import LoadedModel

STE_CLIP = 1.0  # larq's default clip_value of ste_sign (binsal's pairs)


@dataclass(frozen=True)
class Estimator:
    """A backward pass for sign: ``kind`` and its parameter ``beta`` (swish only)."""

    name: str
    kind: str  # "ste", "approx_sign", "swish_sign", "magnitude_aware", "identity"
    description: str
    beta: float = 0.0

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"estimator": self.name, "estimator_kind": self.kind}
        if self.kind == "swish_sign":
            out["beta"] = self.beta
        return out


ESTIMATORS: dict[str, Estimator] = {
    e.name: e
    for e in (
        Estimator("ste", "ste", "clipped straight-through estimator, 1{|x| <= 1} (larq ste_sign)"),
        Estimator("approx_sign", "approx_sign", "Bi-Real Net's 2 (1 - |x|) on |x| <= 1"),
        Estimator("swish_sign_b10", "swish_sign", "SignSwish derivative, beta = 10", 10.0),
        Estimator("swish_sign_b5", "swish_sign", "SignSwish derivative, beta = 5", 5.0),
        Estimator("swish_sign_b1", "swish_sign", "SignSwish derivative, beta = 1", 1.0),
        Estimator(
            "magnitude_aware",
            "magnitude_aware",
            "clipped STE scaled by the mean |x| per image and channel",
        ),
        Estimator("identity", "identity", "identity: gradients pass through sign unchanged"),
    )
}
EstimatorName = Literal[
    "ste",
    "approx_sign",
    "swish_sign_b10",
    "swish_sign_b5",
    "swish_sign_b1",
    "magnitude_aware",
    "identity",
]
assert list(get_args(EstimatorName)) == list(ESTIMATORS), "EstimatorName != ESTIMATORS"
# the x position of each estimator in the report's plots (most clipped to least)
# (0: the estimator the model was trained with, i.e. the model itself)
TRAINED = "trained"
ESTIMATOR_STEPS: dict[str, int] = {TRAINED: 0} | {n: i + 1 for i, n in enumerate(ESTIMATORS)}


def larq_sign(x: Any) -> Any:
    """larq's forward sign (``larq.math.sign``): -1 for x < 0, +1 for x >= 0."""
    import tensorflow as tf

    return tf.sign(tf.sign(x) + 0.1)


def estimator_derivative(estimator: Estimator, x: Any) -> Any:
    """The pseudo-derivative d sign / dx the estimator uses at ``x`` (a tensor like ``x``)."""
    import tensorflow as tf

    ax = tf.abs(x)
    inside = tf.cast(ax <= STE_CLIP, x.dtype)
    kind = estimator.kind
    if kind == "ste":
        return inside
    if kind == "approx_sign":
        return 2.0 * (1.0 - ax) * inside
    if kind == "swish_sign":
        bx = estimator.beta * x
        return estimator.beta * (2.0 - bx * tf.tanh(bx * 0.5)) / (1.0 + tf.cosh(bx))
    if kind == "magnitude_aware":
        axes = list(range(1, len(x.shape) - 1)) or [len(x.shape) - 1]
        alpha = tf.stop_gradient(tf.reduce_mean(ax, axis=axes, keepdims=True))
        return alpha * inside
    if kind == "identity":
        return tf.ones_like(x)
    raise InvalidInputError(f"unknown estimator kind {kind!r}")


class EstimatorSign:
    """An input quantizer: larq's sign forward, ``estimator``'s backward (a plain callable, so
    that assigning it to a larq layer adds no weights or tracking)."""

    def __init__(self, estimator: Estimator):
        self.estimator = estimator
        self.precision = 1

    def __call__(self, x: Any) -> Any:
        import tensorflow as tf

        estimator = self.estimator

        @tf.custom_gradient
        def _sign(x: Any) -> Any:
            def grad(dy: Any) -> Any:
                return dy * estimator_derivative(estimator, x)

            return larq_sign(x), grad

        return _sign(x)


def _sign_quantizer(q: Any) -> str | None:
    """The estimator a pure-sign larq input quantizer trains with ("ste", "ste(clip=1.25)",
    "approx_sign", "swish_sign(beta=5)"), None for any other quantizer."""
    import larq as lq

    qz = lq.quantizers
    if isinstance(q, qz.SteSign) or q is qz.ste_sign:
        clip = getattr(q, "clip_value", STE_CLIP)
        if clip is None:
            return "identity"
        return "ste" if float(clip) == STE_CLIP else f"ste(clip={float(clip):g})"
    if isinstance(q, qz.ApproxSign) or q is qz.approx_sign:
        return "approx_sign"
    if isinstance(q, qz.SwishSign) or q is qz.swish_sign:
        beta = float(getattr(q, "beta", 5.0))
        named = f"swish_sign_b{beta:g}"
        return named if named in ESTIMATORS else f"swish_sign(beta={beta:g})"
    return None


def _walk(model: Any) -> list[Any]:
    out: list[Any] = []
    for layer in model.layers:
        if hasattr(layer, "layers"):
            out.extend(_walk(layer))
        else:
            out.append(layer)
    return out


def quantized_layers(model: Any) -> tuple[list[Any], list[str]]:
    """(layers whose input quantizer is a pure sign, in model order; names of layers with an
    input quantizer that is not, e.g. DoReFa or a scaled sign). Nested models are walked into."""
    found, skipped = [], []
    for layer in _walk(model):
        q = getattr(layer, "input_quantizer", None)
        if q is None:
            continue
        if _sign_quantizer(q) is None:
            skipped.append(str(layer.name))
        else:
            found.append(layer)
    return found, skipped


def trained_estimator(model: Any) -> str:
    """The estimator the model's sign input quantizers train with (a name of ``ESTIMATORS``
    where it is one), "mixed" where they differ, "" where the model has none."""
    layers, _ = quantized_layers(model)
    names = {_sign_quantizer(layer.input_quantizer) for layer in layers}
    if not names:
        return ""
    return str(names.pop()) if len(names) == 1 else "mixed"


def has_sign_inputs(loaded: LoadedModel) -> bool:
    return bool(quantized_layers(loaded.model)[0])


def swap_estimator(loaded: LoadedModel, estimator: str | Estimator) -> LoadedModel:
    """A clone of ``loaded`` whose sign input quantizers pass gradients back through
    ``estimator`` (forward values and weights unchanged; the loaded model is never touched).
    Named ``<model>@<estimator>`` (what map caches key on); ``meta`` records the estimator and
    the layers swapped and skipped."""
    from binsal.models.reinit import clone_loaded

    est = ESTIMATORS[estimator] if isinstance(estimator, str) else estimator
    if not has_sign_inputs(loaded):
        raise InvalidInputError(f"model {loaded.name} has no sign input quantizer to swap")
    clone = clone_loaded(loaded)
    layers, skipped = quantized_layers(clone.model)
    for layer in layers:
        layer.input_quantizer = EstimatorSign(est)
    spec = replace(loaded.spec, name=f"{loaded.name}@{est.name}")
    meta = {k: v for k, v in clone.meta.items() if k != "clone"}
    meta |= {
        "estimator": est.name,
        "swapped_layers": [str(layer.name) for layer in layers],
        "skipped_layers": skipped,
    }
    return LoadedModel(spec, clone.model, loaded.test_accuracy, meta)


def dead_gradient_shares(
    loaded: LoadedModel, images: np.ndarray, *, chunk_size: int = 64
) -> tuple[list[str], np.ndarray, list[float]]:
    """Per sign-quantized layer (model order), per image, the share of the input quantizer's
    inputs whose clipped-STE gradient is zero (|x| > clip): (layer names, (L, N) shares, clips).
    The clip is the layer's ``clip_value`` where it trains with a clipped STE, else larq's 1.
    Top-level layers of a functional model only (nested models: none)."""
    import tensorflow as tf

    layers, _ = quantized_layers(loaded.model)
    top = {id(layer) for layer in loaded.model.layers}
    layers = [layer for layer in layers if id(layer) in top]
    if not layers:
        return [], np.zeros((0, len(images))), []
    probe = tf.keras.Model(loaded.model.inputs, [layer.input for layer in layers])
    clips = []
    for layer in layers:
        clip = getattr(layer.input_quantizer, "clip_value", STE_CLIP)
        clips.append(STE_CLIP if clip is None else float(clip))
    x = loaded.prepare(images)
    out = np.empty((len(layers), len(x)))
    for start in range(0, len(x), max(1, chunk_size)):
        s = slice(start, min(len(x), start + max(1, chunk_size)))
        acts = probe(tf.constant(x[s]), training=False)
        acts = acts if isinstance(acts, list | tuple) else [acts]
        for i, (a, clip) in enumerate(zip(acts, clips, strict=True)):
            arr = np.abs(np.asarray(a))
            out[i, s] = (arr > clip).reshape(len(arr), -1).mean(axis=1)
    return [str(layer.name) for layer in layers], out, clips
