"""Guided backpropagation's model surgery (Springenberg et al. 2015).

The guided gradient is the gradient of a *clone* of the model whose ReLUs have a custom
gradient: it passes ``dy`` only where both the forward input is positive (and below ``max_value``
for ReLU6-style layers) and ``dy`` itself is positive. All other layers are cloned unchanged and
get the original weights (copied again on every call, so a clone never goes stale).

Guided backprop is only *defined* for networks whose nonlinearities are ReLUs. A model with a
larq quantizer (sign with a straight-through estimator, e.g. a ``QuantConv2D`` with an
``input_quantizer``) or another nonlinearity (swish, sigmoid, leaky ReLU, ...) has no guided
gradient; :func:`guided_support` says so and why, and the method raises
:class:`binsal.core.errors.MethodNotDefinedError`.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from typing import Any

import tensorflow as tf

from binsal.core.errors import MethodNotDefinedError

_CLONES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

_LINEAR_NAMES = {"linear", None}
_NONLINEAR_OPS = (
    "relu",
    "sigmoid",
    "tanh",
    "swish",
    "silu",
    "gelu",
    "elu",
    "softplus",
    "softsign",
    "sign",
    "softmax",
    "exp",
    "round",
    "floor",
    "ceil",
    "clip",
    "maximum",
    "minimum",
)


def guided_relu_fn(max_value: float | None = None) -> Callable[[tf.Tensor], tf.Tensor]:
    """A ReLU (optionally capped at ``max_value``) whose gradient is guided:
    ``dy * [0 < x (< max_value)] * [dy > 0]``."""

    @tf.custom_gradient
    def guided_relu(x: tf.Tensor) -> Any:
        y = tf.nn.relu(x) if max_value is None else tf.minimum(tf.nn.relu(x), max_value)
        passes = x > 0 if max_value is None else tf.logical_and(x > 0, x < max_value)

        def grad(dy: tf.Tensor) -> tf.Tensor:
            keep = tf.logical_and(passes, dy > 0)
            return dy * tf.cast(keep, dy.dtype)

        return y, grad

    guided_relu.__name__ = "guided_relu" if max_value is None else f"guided_relu{max_value:g}"
    return guided_relu


def _walk(model: Any) -> Iterator[Any]:
    for layer in model.layers:
        yield layer
        if isinstance(layer, tf.keras.Model):
            yield from _walk(layer)


def _is_quantizer(obj: Any) -> bool:
    try:
        import larq as lq
    except ImportError:  # pragma: no cover - larq is a dependency
        return False
    return isinstance(obj, lq.quantizers.Quantizer)


def _is_larq(act: Any) -> bool:
    """A larq quantizer used as an activation (object or function such as ``ste_sign``)."""
    return _is_quantizer(act) or str(getattr(act, "__module__", "") or "").startswith("larq")


def _activation_name(act: Any) -> str | None:
    if act is None:
        return None
    return getattr(act, "__name__", type(act).__name__)


def _relu_kind(layer: Any) -> tuple[bool, float | None]:
    """(is a plain ReLU we can guide, its max_value) for an activation-bearing layer."""
    if isinstance(layer, tf.keras.layers.ReLU):
        cfg = layer.get_config()
        plain = (
            float(cfg.get("negative_slope", 0.0)) == 0.0 and float(cfg.get("threshold", 0.0)) == 0.0
        )
        mv = cfg.get("max_value")
        return plain, None if mv is None else float(mv)
    act = getattr(layer, "activation", None)
    return _activation_name(act) == "relu" and not _is_larq(act), None


def guided_support(model: Any) -> tuple[bool, str]:
    """(defined, reason): whether guided backprop is defined for this Keras model."""
    if not isinstance(model, tf.keras.Model) or not (
        isinstance(model, tf.keras.Sequential) or getattr(model, "_is_graph_network", False)
    ):
        return False, (
            "guided backprop needs a functional or Sequential Keras model to clone with guided "
            f"ReLUs; {type(model).__name__} is subclassed"
        )
    for layer in _walk(model):
        name = f"layer {layer.name!r} ({type(layer).__name__})"
        quantizer = getattr(layer, "input_quantizer", None)
        if quantizer is not None or _is_quantizer(layer):
            what = _activation_name(quantizer) if quantizer is not None else "a larq quantizer"
            return False, (
                f"guided backprop is undefined through larq's sign / straight-through estimator: "
                f"{name} quantizes its input with {what}; it is only defined for ReLU networks"
            )
        if isinstance(layer, tf.keras.Model):
            continue
        symbol = getattr(layer, "symbol", None)  # TFOpLambda: a raw tf op in the graph
        if symbol is not None and any(op in str(symbol).lower() for op in _NONLINEAR_OPS):
            return False, (
                f"guided backprop is only defined for ReLU networks; {name} applies the raw "
                f"op {symbol}, which cannot be guided"
            )
        if isinstance(layer, tf.keras.layers.ReLU):
            plain, _ = _relu_kind(layer)
            if not plain:
                return False, (
                    f"guided backprop is only defined for ReLU networks; {name} is a leaky or "
                    "thresholded ReLU"
                )
            continue
        if isinstance(
            layer,
            (
                tf.keras.layers.LeakyReLU,
                tf.keras.layers.PReLU,
                tf.keras.layers.ELU,
                tf.keras.layers.Softmax,
            ),
        ):
            return False, (
                f"guided backprop is only defined for ReLU networks; {name} is a "
                f"{type(layer).__name__} nonlinearity"
            )
        act = getattr(layer, "activation", None)
        if act is None:
            continue
        if _is_larq(act):
            return False, (
                f"guided backprop is undefined through larq's sign / straight-through estimator: "
                f"{name} uses the larq activation {_activation_name(act)}"
            )
        act_name = _activation_name(act)
        if act_name not in _LINEAR_NAMES and act_name != "relu":
            return False, (
                f"guided backprop is only defined for ReLU networks; {name} uses the "
                f"{act_name} activation"
            )
    return True, ""


def _clone_layer(layer: Any) -> Any:
    if isinstance(layer, tf.keras.Model):
        return _build_clone(layer)
    if isinstance(layer, tf.keras.layers.ReLU):
        _, max_value = _relu_kind(layer)
        return tf.keras.layers.Activation(guided_relu_fn(max_value), name=layer.name)
    cfg = layer.get_config()
    if isinstance(layer, tf.keras.layers.Activation):
        if _relu_kind(layer)[0]:
            return tf.keras.layers.Activation(guided_relu_fn(), name=layer.name)
        return layer.__class__.from_config(cfg)
    if "activation" in cfg and _relu_kind(layer)[0]:
        return layer.__class__.from_config({**cfg, "activation": guided_relu_fn()})
    return layer.__class__.from_config(cfg)


def _build_clone(model: Any) -> Any:
    clone = tf.keras.models.clone_model(model, clone_function=_clone_layer)
    clone.set_weights(model.get_weights())
    return clone


def guided_model(model: Any) -> Any:
    """The model's clone with guided ReLUs (cached per model; weights re-synced each call)."""
    ok, why = guided_support(model)
    if not ok:
        raise MethodNotDefinedError(why)
    clone = _CLONES.get(model)
    if clone is None:
        clone = _build_clone(model)
        _CLONES[model] = clone
    else:
        clone.set_weights(model.get_weights())
    return clone
