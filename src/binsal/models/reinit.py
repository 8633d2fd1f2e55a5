"""Re-initialising a model's weights, layer by layer, on a clone (for the model-randomization
sanity check of Adebayo et al. 2018, ``binsal.benchmarks.model_randomization``).

BNN-aware: every kernel is re-drawn with the layer's own initializer (a fresh instance seeded per
model and layer), symmetric around zero; for larq layers this is the latent real kernel, passed
through its weight_clip constraint and then binarized by the layer's quantizer as usual. Weights
are never permuted or filled with positive values (that would leave a BNN's signs, and so the
BNN, almost unchanged); :func:`sign_flips` measures how many binarized signs a re-draw flipped.
The loaded (cached) model is never touched: :class:`LayerRandomizer` works on a clone.

Fixed layers, whose kernel is not trained (no trainable weights, e.g. QuickNet's blur-pool
depthwise convolutions, built with ``trainable=False`` and a plain-function initializer), are
left alone and listed in :attr:`LayerRandomizer.skipped` with the reason: randomizing what was
never learned is not part of the check.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from binsal.models.spec import LoadedModel

KERNEL_ATTRS = ("kernel", "depthwise_kernel", "pointwise_kernel")
REINIT_ATTRS = (*KERNEL_ATTRS, "bias")
FIXED_REASON = "fixed: no trainable weights"


def _has_kernel(layer: Any) -> bool:
    return any(getattr(layer, a, None) is not None for a in KERNEL_ATTRS)


def kernel_layers(model: Any) -> list[Any]:
    """Layers with a kernel (conv, dense, larq QuantConv2D / QuantDense, depthwise and
    separable convs), trained or fixed, top (closest to the logits) first; nested models are
    walked into. BatchNormalization is not included (see
    ``binsal.benchmarks.model_randomization``)."""
    found: list[Any] = []

    def walk(m: Any) -> None:
        for layer in m.layers:
            if _has_kernel(layer):
                found.append(layer)
            elif hasattr(layer, "layers"):
                walk(layer)

    walk(model)
    return found[::-1]


def fixed_reason(layer: Any) -> str | None:
    """Why a layer with a kernel is left alone by the re-draw, or None if it is re-drawn.
    A layer with no trainable weights (``trainable=False``, as QuickNet's blur-pool) holds
    values that training never changed."""
    return None if layer.trainable_weights else FIXED_REASON


def _prefix(attr: str) -> str:
    """Keras names a weight's initializer / constraint / larq quantizer by a prefix:
    kernel_initializer, depthwise_initializer, pointwise_initializer, bias_initializer."""
    return attr if attr in ("kernel", "bias") else attr.removesuffix("_kernel")


def is_binarized(layer: Any) -> bool:
    """A larq layer whose kernel is quantized (its latent real kernel is what we re-draw)."""
    return any(
        getattr(layer, a, None) is not None
        and getattr(layer, f"{_prefix(a)}_quantizer", None) is not None
        for a in KERNEL_ATTRS
    )


def binary_sign(w: np.ndarray) -> np.ndarray:
    """Sign with larq's ``ste_sign`` convention, sign(0) = +1."""
    return np.where(np.asarray(w) >= 0, 1, -1).astype(np.int8)


def layer_seed(seed: int, model_name: str, layer_name: str) -> int:
    """A stable per-(run seed, model, layer) seed for the layer's fresh initializer."""
    tag = zlib.crc32(f"{model_name}/{layer_name}".encode())
    return int(np.random.default_rng([int(seed), tag]).integers(0, 2**31 - 1))


def seeded_initializer(init: Any, seed: int) -> Any:
    """A fresh instance of the layer's own initializer with ``seed``.

    A serializable (Keras) initializer is rebuilt from its config with ``seed`` set where the
    config has one (constant ones such as Zeros have none and need none). A plain function (a
    custom initializer such as larq-zoo's ``blurpool_initializer``) is called as is, with NumPy's
    global generator seeded for the call and restored after, so a NumPy-based one is
    deterministic too; one that draws from TensorFlow's global generator is not seeded here.
    """
    if hasattr(init, "get_config") and hasattr(type(init), "from_config"):
        cfg = dict(init.get_config())
        if "seed" in cfg:
            cfg["seed"] = int(seed)
        return type(init).from_config(cfg)
    if not callable(init):
        raise TypeError(f"initializer {init!r} is neither a Keras initializer nor a function")

    def call(shape: Any, dtype: Any = None, **kwargs: Any) -> Any:
        state = np.random.get_state()
        np.random.seed(int(seed) % 2**32)
        try:
            return init(shape, dtype=dtype, **kwargs)
        finally:
            np.random.set_state(state)

    return call


def redraw_layer(layer: Any, seed: int) -> dict[str, np.ndarray]:
    """New values for the layer's trainable kernel(s) and bias, drawn with the layer's own
    initializers (seeded, :func:`seeded_initializer`), passed through the layer's weight
    constraint (larq's ``weight_clip`` keeps the latent kernel in [-1, 1]; clipping does not
    change signs). Weights that are not trainable are not re-drawn. Nothing is written."""
    out: dict[str, np.ndarray] = {}
    trainable = {id(v) for v in layer.trainable_weights}
    for i, attr in enumerate(REINIT_ATTRS):
        var = getattr(layer, attr, None)
        if var is None or id(var) not in trainable:
            continue
        init = getattr(layer, f"{_prefix(attr)}_initializer", None)
        if init is None:
            raise ValueError(
                f"layer {layer.name!r} has {attr} but no {_prefix(attr)}_initializer to re-draw it"
            )
        value = seeded_initializer(init, seed + i)(tuple(var.shape), dtype=var.dtype)
        constraint = getattr(layer, f"{_prefix(attr)}_constraint", None)
        if constraint is not None:
            value = constraint(value)
        out[attr] = np.asarray(value)
    return out


def sign_flips(old: Mapping[str, np.ndarray], new: Mapping[str, np.ndarray]) -> np.ndarray:
    """Per kernel weight, whether its sign (as ``ste_sign`` binarizes it) flipped; bias excluded."""
    parts = [(binary_sign(old[a]) != binary_sign(new[a])).ravel() for a in KERNEL_ATTRS if a in old]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)


def clone_loaded(loaded: LoadedModel) -> LoadedModel:
    """A copy of the model with its own variables (the cached model is never touched).

    ``tf.keras.models.clone_model`` rebuilds functional models from their layer configs (larq
    layers included, in-process); other models are rebuilt from their spec.
    """
    import tensorflow as tf

    try:
        with warnings.catch_warnings():
            # Keras warns when it serializes a plain-function initializer (QuickNet's
            # blur-pool); the clone keeps the function itself
            warnings.filterwarnings(
                "ignore",
                message=r"The `keras\.initializers\.serialize\(\)` API",
                category=UserWarning,
            )
            clone = tf.keras.models.clone_model(loaded.model)
    except (ValueError, TypeError, NotImplementedError):
        clone = loaded.spec.build(**loaded.spec.build_kwargs)
    clone.set_weights(loaded.model.get_weights())
    # the clone's weights get re-drawn in place: it must not inherit the original's digest
    meta = {k: v for k, v in loaded.meta.items() if k != "weights_digest"}
    return LoadedModel(loaded.spec, clone, loaded.test_accuracy, {**meta, "clone": True})


@dataclass(frozen=True)
class LayerInfo:
    index: int  # 1 = top (the logits layer)
    name: str
    kind: str  # "binarized" (larq latent kernel) or "real"
    n_weights: int  # kernel weights (bias excluded)
    seed: int


@dataclass(frozen=True)
class SkippedLayer:
    """A layer with a kernel that the re-draw leaves alone, and why (:func:`fixed_reason`)."""

    name: str
    layer_type: str
    reason: str

    def note(self) -> str:
        return f"{self.name} ({self.layer_type}): {self.reason}"


class LayerRandomizer:
    """A clone of a loaded model whose weighted layers can be switched between their original
    weights and a fixed, seeded re-draw (the same draw in cascading and independent mode).
    Fixed layers (no trainable weights) are never changed; ``skipped`` lists them, top first."""

    def __init__(self, loaded: LoadedModel, *, seed: int, max_layers: int | None = None):
        self.loaded = clone_loaded(loaded)
        self.skipped: list[SkippedLayer] = []
        layers: list[Any] = []
        for layer in kernel_layers(self.loaded.model):
            reason = fixed_reason(layer)
            if reason is None:
                layers.append(layer)
            else:
                self.skipped.append(SkippedLayer(layer.name, type(layer).__name__, reason))
        self.n_weighted_layers = len(layers)
        if max_layers is not None:
            layers = layers[: int(max_layers)]
        self._layers = {layer.name: layer for layer in layers}
        self.layers: list[LayerInfo] = []
        self.original: dict[str, dict[str, np.ndarray]] = {}
        self.randomized: dict[str, dict[str, np.ndarray]] = {}
        for i, layer in enumerate(layers, start=1):
            s = layer_seed(seed, loaded.name, layer.name)
            self.randomized[layer.name] = redraw_layer(layer, s)
            self.original[layer.name] = {
                a: getattr(layer, a).numpy() for a in self.randomized[layer.name]
            }
            n = sum(
                self.original[layer.name][a].size
                for a in KERNEL_ATTRS
                if a in self.original[layer.name]
            )
            kind = "binarized" if is_binarized(layer) else "real"
            self.layers.append(LayerInfo(i, layer.name, kind, int(n), s))
        self.state: frozenset[str] = frozenset()

    def set_randomized(self, names: Iterable[str]) -> None:
        """Randomize exactly the layers ``names``; every other listed layer gets its original
        weights back. Variables are assigned in place, so compiled saliency functions of the
        clone stay valid."""
        target = frozenset(names)
        unknown = target - set(self._layers)
        if unknown:
            raise KeyError(f"unknown layers {sorted(unknown)}; known: {list(self._layers)}")
        for name in target ^ self.state:
            values = self.randomized[name] if name in target else self.original[name]
            for attr, value in values.items():
                getattr(self._layers[name], attr).assign(value)
        self.state = target

    def sign_flips(self, name: str) -> np.ndarray:
        return sign_flips(self.original[name], self.randomized[name])
