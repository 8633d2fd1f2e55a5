"""Reference engine: tf-keras-vis 0.8.7, the toolkit the paper used, with normalisation off
(the methods' ``normalize`` option applies it after, as tf-keras-vis would).

tf-keras-vis draws SmoothGrad noise from numpy's global RNG; to make it seeded and comparable
with the suite's engine, the draws are injected: its ``np.random.normal(0, sigma, shape)`` call
is answered with ``sigma * draws`` where ``draws`` are the suite's own seeded standard normals.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator
from typing import Any

import numpy as np


def _score(targets: np.ndarray) -> Any:
    from tf_keras_vis.utils.scores import CategoricalScore

    return CategoricalScore([int(t) for t in targets])


def gradients(
    model: Any, x: np.ndarray, t: np.ndarray, *, per_sample_abs: bool = False
) -> np.ndarray:
    import tensorflow as tf
    from tf_keras_vis.saliency import Saliency

    sal = Saliency(model, clone=False)
    modifier = (lambda g: tf.abs(g)) if per_sample_abs else None
    return np.asarray(
        sal(_score(t), x, keepdims=True, gradient_modifier=modifier, normalize_map=False)
    )


@contextlib.contextmanager
def _injected_noise(draws: np.ndarray) -> Iterator[None]:
    import tf_keras_vis.saliency as module

    real_np = module.np

    def normal(loc: float, scale: Any, size: tuple[int, ...]) -> np.ndarray:
        if tuple(size) != draws.shape:
            raise RuntimeError(f"tf-keras-vis asked for noise {size}, have {draws.shape}")
        return loc + np.asarray(scale) * draws

    shim = types.SimpleNamespace(**{k: getattr(real_np, k) for k in dir(real_np) if k != "random"})
    shim.random = types.SimpleNamespace(normal=normal)
    module.np = shim
    try:
        yield
    finally:
        module.np = real_np


def smoothgrad(
    model: Any,
    x: np.ndarray,
    t: np.ndarray,
    *,
    samples: int,
    noise_level: float,
    draws: np.ndarray,
    per_sample_abs: bool = False,
) -> np.ndarray:
    import tensorflow as tf
    from tf_keras_vis.saliency import Saliency

    sal = Saliency(model, clone=False)
    with _injected_noise(draws):
        return np.asarray(
            sal(
                _score(t),
                x,
                smooth_samples=samples,
                smooth_noise=noise_level,
                keepdims=True,
                gradient_modifier=(lambda g: tf.abs(g)) if per_sample_abs else None,
                normalize_map=False,
            )
        )


def gradcam(model: Any, x: np.ndarray, t: np.ndarray, *, layer: str, relu: bool) -> np.ndarray:
    from tf_keras_vis.gradcam import Gradcam

    cam = Gradcam(model, clone=False)
    return np.asarray(
        cam(
            _score(t),
            x,
            penultimate_layer=layer,
            seek_penultimate_conv_layer=False,
            activation_modifier=None if not relu else (lambda c: np.maximum(c, 0)),
            normalize_cam=False,
        )
    )


def gradcam_plus_plus(
    model: Any, x: np.ndarray, t: np.ndarray, *, layer: str, relu: bool
) -> np.ndarray:
    """tf-keras-vis Grad-CAM++; its score is exp(logit[target]) since our models output logits."""
    import tensorflow as tf
    from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus

    cam = GradcamPlusPlus(model, clone=False)
    return np.asarray(
        cam(
            _score(t),
            x,
            penultimate_layer=layer,
            seek_penultimate_conv_layer=False,
            activation_modifier=None if not relu else tf.nn.relu,
            normalize_cam=False,
        )
    )


def scorecam(
    model: Any, x: np.ndarray, t: np.ndarray, *, layer: str, relu: bool, batch_size: int = 32
) -> np.ndarray:
    """tf-keras-vis Score-CAM over all channels (``max_N=None``): softmax of the model output."""
    import contextlib as _contextlib
    import io

    from tf_keras_vis.scorecam import Scorecam

    cam = Scorecam(model, clone=False)
    with _contextlib.redirect_stdout(io.StringIO()):  # model.predict's progress bar
        return np.asarray(
            cam(
                _score(t),
                x,
                penultimate_layer=layer,
                seek_penultimate_conv_layer=False,
                activation_modifier=None if not relu else (lambda c: np.maximum(c, 0)),
                batch_size=batch_size,
                max_N=None,
                normalize_cam=False,
            )
        )
