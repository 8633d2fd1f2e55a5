"""The suite's own engine: batched, ``tf.function``-compiled gradients.

All noisy copies of a chunk of images go through the model in one batch (bounded by
``chunk_size`` model inputs), instead of tf-keras-vis's one forward/backward per sample.
Compiled functions are cached per Keras model. ``jit_compile`` stays off: XLA was ~10x slower
on a 2-core CPU in our measurements.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable, Iterator
from typing import Any, Literal, cast

import numpy as np
import tensorflow as tf

from binsal.core.memo import keep_recent

_GRAD_FNS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_CAM_FNS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

Aggregate = Literal["mean", "mean_sq", "var"]


def _signature(model: Any) -> list[tf.TensorSpec]:
    shape = (None, *model.input_shape[1:])
    return [tf.TensorSpec(shape, tf.float32), tf.TensorSpec((None,), tf.int32)]


def gradient_fn(model: Any) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """d logit[target] / d input, for a batch (each row's score depends only on its own input)."""
    if model not in _GRAD_FNS:

        @tf.function(input_signature=_signature(model))
        def fn(x: tf.Tensor, t: tf.Tensor) -> tf.Tensor:
            with tf.GradientTape() as tape:
                tape.watch(x)
                logits = model(x, training=False)
                score = tf.reduce_sum(tf.gather(logits, t, axis=1, batch_dims=1))
            return cast(tf.Tensor, tape.gradient(score, x))  # dense: x is a dense input

        _GRAD_FNS[model] = fn
    return _GRAD_FNS[model]


def chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, max(1, size)):
        yield slice(start, min(n, start + max(1, size)))


def gradients(model: Any, x: np.ndarray, t: np.ndarray, *, chunk_size: int = 256) -> np.ndarray:
    fn = gradient_fn(model)
    x, t = np.asarray(x, np.float32), np.asarray(t, np.int32)
    out = [fn(tf.constant(x[s]), tf.constant(t[s])).numpy() for s in chunks(len(x), chunk_size)]
    return np.concatenate(out, axis=0)


def noise_sigma(x: np.ndarray, noise_level: float) -> np.ndarray:
    """Per-image sigma = noise_level * (max - min) of the image (Smilkov et al. 2017, sec. 3)."""
    axes = tuple(range(1, x.ndim))
    return noise_level * (x.max(axis=axes, keepdims=True) - x.min(axis=axes, keepdims=True))


def noisy_gradients(
    model: Any,
    x: np.ndarray,
    t: np.ndarray,
    *,
    samples: int,
    noise_level: float,
    seed: int,
    chunk_size: int = 256,
    aggregate: Aggregate = "mean",
    per_sample_abs: bool = False,
    draws: np.ndarray | None = None,
    image_offset: int = 0,
) -> np.ndarray:
    """SmoothGrad family (Smilkov et al. 2017; Adebayo et al. 2018 for SG-squared and VarGrad).

    ``aggregate``: "mean" (SmoothGrad), "mean_sq" (SmoothGrad-squared), "var" (VarGrad).
    ``draws``: optional explicit (samples, N, H, W, C) standard-normal draws (for engine checks).

    The three aggregates of one set of noisy gradients are computed together and the most
    recent ones kept (keyed by the model's weights, the inputs and every option; up to
    ``_FAMILY_MAX_BYTES``: every block of an image set, as ``explain`` computes it in blocks),
    so SmoothGrad, SmoothGrad-squared and VarGrad with the same seed cost one pass, not three.
    """
    which = _aggregate_index(aggregate)

    def compute(z: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        options = (samples, noise_level, seed, chunk_size, per_sample_abs)
        return _noisy_aggregates(model, x, t, *options, z, image_offset)

    if draws is not None:
        return compute(draws)[which]
    key = _family_key(
        model, x, t, samples, noise_level, seed, chunk_size, per_sample_abs, image_offset
    )
    hit = keep_recent(
        _FAMILY_CACHE,
        key,
        lambda: compute(None),
        _FAMILY_MAX_BYTES,
        lambda entry: sum(a.nbytes for a in entry),
    )
    return hit[which].copy()


_AGGREGATES: tuple[str, ...] = ("mean", "mean_sq", "var")
# the default profile's 128 images at 64 px hold 6 MB per model; 1,000 at 64 px 48 MB
_FAMILY_MAX_BYTES = 256 * 2**20
_FAMILY_CACHE: dict[Hashable, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def _aggregate_index(aggregate: str) -> int:
    if aggregate not in _AGGREGATES:
        raise ValueError(f"unknown aggregate {aggregate!r}; known: mean, mean_sq, var")
    return _AGGREGATES.index(aggregate)


def _family_key(model: Any, x: np.ndarray, t: np.ndarray, *options: Any) -> str:
    import hashlib

    h = hashlib.sha256(repr((id(model), options)).encode())
    for w in model.weights:  # weights changed in place are another model
        h.update(np.ascontiguousarray(w.numpy()).tobytes())
    h.update(np.ascontiguousarray(x, np.float32).tobytes())
    h.update(np.ascontiguousarray(t, np.int64).tobytes())
    return h.hexdigest()


def _noisy_aggregates(
    model: Any,
    x: np.ndarray,
    t: np.ndarray,
    samples: int,
    noise_level: float,
    seed: int,
    chunk_size: int,
    per_sample_abs: bool,
    draws: np.ndarray | None,
    image_offset: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, mean square and (population) variance of the noisy gradients, per input."""
    fn = gradient_fn(model)
    x, t = np.asarray(x, np.float32), np.asarray(t, np.int32)
    n = len(x)
    per_chunk = max(1, chunk_size // max(1, samples))
    mean, mean_sq, var = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    for s in chunks(n, per_chunk):
        xs, ts = x[s], t[s]
        c = len(xs)
        z = (
            draws[:, s]
            if draws is not None
            else _draws_for(s, samples, xs.shape[1:], seed, image_offset)
        )
        noisy = xs[None] + noise_sigma(xs, noise_level)[None] * z  # (S, c, H, W, C)
        flat = noisy.reshape(samples * c, *xs.shape[1:])
        tt = np.tile(ts, samples)
        grads = np.concatenate(
            [
                fn(tf.constant(flat[b]), tf.constant(tt[b])).numpy()
                for b in chunks(len(flat), chunk_size)
            ]
        ).reshape(samples, c, *xs.shape[1:])
        if per_sample_abs:
            grads = np.abs(grads)
        mean[s] = grads.mean(axis=0)
        mean_sq[s] = (grads**2).mean(axis=0)
        var[s] = grads.var(axis=0)
    return mean, mean_sq, var


# The noise of the same images and seed is drawn again whenever their maps are recomputed for
# another model (model randomization: every step; the same draws by design): the most recent
# draws are kept, up to _DRAWS_MAX_BYTES (~11 % of model randomization's time went to drawing).
_DRAWS: dict[Hashable, np.ndarray] = {}
_DRAWS_MAX_BYTES = 40 * 2**20  # model randomization's 32 images x 20 draws at 64 px: 31 MB


def _draws_for(
    s: slice, samples: int, shape: tuple[int, ...], seed: int, offset: int
) -> np.ndarray:
    def draw() -> np.ndarray:
        out = np.empty((samples, s.stop - s.start, *shape), dtype=np.float32)
        for j, i in enumerate(range(s.start, s.stop)):
            out[:, j] = np.random.default_rng([seed, offset + i]).standard_normal(
                (samples, *shape), dtype=np.float32
            )
        out.setflags(write=False)
        return out

    key = (int(seed), int(offset) + s.start, s.stop - s.start, int(samples), *shape)
    return keep_recent(_DRAWS, key, draw, _DRAWS_MAX_BYTES, lambda a: a.nbytes)


def standard_normal_draws(
    n_images: int, samples: int, shape: tuple[int, ...], seed: int, offset: int = 0
) -> np.ndarray:
    """(samples, N, *shape) standard normal draws; image i's draws depend only on (seed,
    offset + i), so maps do not depend on the chunk size or on which images share a batch
    (``offset``: the first image's index in its set)."""
    return _draws_for(slice(0, n_images), samples, shape, seed, offset)


def feature_model(model: Any, layer: str) -> Any:
    return tf.keras.Model(model.inputs, [model.get_layer(layer).output, model.output])


def cam_fn(model: Any, layer: str) -> Callable[[tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor]]:
    """(feature map A, d logit[target] / dA) at ``layer``, batched."""
    per_model = _CAM_FNS.setdefault(model, {})
    if layer not in per_model:
        fmodel = feature_model(model, layer)

        @tf.function(input_signature=_signature(model))
        def fn(x: tf.Tensor, t: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            with tf.GradientTape() as tape:
                feats, logits = fmodel(x, training=False)
                score = tf.reduce_sum(tf.gather(logits, t, axis=1, batch_dims=1))
            return feats, tape.gradient(score, feats)

        per_model[layer] = fn
    return per_model[layer]


def features_and_grads(
    model: Any, layer: str, x: np.ndarray, t: np.ndarray, *, chunk_size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    fn = cam_fn(model, layer)
    x, t = np.asarray(x, np.float32), np.asarray(t, np.int32)
    feats, grads = [], []
    for s in chunks(len(x), chunk_size):
        a, g = fn(tf.constant(x[s]), tf.constant(t[s]))
        feats.append(a.numpy())
        grads.append(g.numpy())
    return np.concatenate(feats), np.concatenate(grads)


def _linear_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of scipy.ndimage.zoom's order-1 spline along one axis: output k
    sits at input coordinate k (n_in - 1) / (n_out - 1) (zoom's default, ``grid_mode=False``),
    between its two neighbours. Every coordinate is inside [0, n_in - 1], so zoom's boundary
    mode never enters."""
    w = np.zeros((n_out, n_in))
    if n_in == 1 or n_out == 1:
        w[:, 0] = 1.0
        return w
    pos = np.arange(n_out) * ((n_in - 1) / (n_out - 1))
    lo = np.minimum(np.floor(pos).astype(np.int64), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    rows = np.arange(n_out)
    np.add.at(w, (rows, lo), 1.0 - (pos - lo))
    np.add.at(w, (rows, hi), pos - lo)
    return w


def upsample(cams: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear (order-1 spline) zoom of (N, h, w) maps to (N, H, W), as tf-keras-vis does with
    ``scipy.ndimage.zoom(order=1)``. Hand-written because the zoom is separable: two small
    matrix products per batch, in float64 like zoom, give zoom's values to 1 ulp at ~1/13 of
    its time (128 maps 8 -> 64 px: 2.4 vs 32 ms), and Score-CAM upsamples every channel.
    Score-CAM's masks too: tf-keras-vis zooms them with edge mode "nearest", which an order-1
    zoom never reaches."""
    cams = np.asarray(cams)
    wy = _linear_weights(cams.shape[1], int(size[0]))
    wx = _linear_weights(cams.shape[2], int(size[1]))
    out = np.matmul(np.matmul(wy, cams.astype(np.float64)), wx.T)
    return out.astype(cams.dtype if np.issubdtype(cams.dtype, np.floating) else np.float64)


# --- Batched helpers for the extra methods (Integrated Gradients, GradCAM++, Score-CAM) ---

_LOGIT_FNS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_FEATURE_FNS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_CAM_SCORE_FNS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

PathRule = Literal["trapezoid", "right"]


def logits_fn(model: Any) -> Callable[[tf.Tensor], tf.Tensor]:
    """The model's logits for a batch, compiled once per model."""
    if model not in _LOGIT_FNS:

        @tf.function(input_signature=_signature(model)[:1])
        def fn(x: tf.Tensor) -> tf.Tensor:
            return model(x, training=False)

        _LOGIT_FNS[model] = fn
    return _LOGIT_FNS[model]


def target_scores(
    model: Any, x: np.ndarray, t: np.ndarray, *, chunk_size: int = 256, softmax: bool = False
) -> np.ndarray:
    """(N,) logit (or softmax probability) of each row's target class, in batches."""
    fn = logits_fn(model)
    x, t = np.asarray(x, np.float32), np.asarray(t, np.int32)
    out = []
    for s in chunks(len(x), chunk_size):
        logits = fn(tf.constant(x[s]))
        if softmax:
            logits = tf.nn.softmax(logits, axis=-1)
        out.append(tf.gather(logits, tf.constant(t[s]), axis=1, batch_dims=1).numpy())
    return np.concatenate(out) if out else np.zeros((0,), np.float32)


def path_points(rule: PathRule, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Interpolation coefficients alpha_k in [0, 1] and quadrature weights (summing to 1).

    "trapezoid": alpha = 0, 1/m, ..., 1 (m + 1 points, end weights 1/(2m)); "right": right
    Riemann sum, alpha = 1/m, ..., 1 (m points, weights 1/m).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if rule == "trapezoid":
        alphas = np.arange(steps + 1, dtype=np.float64) / steps
        weights = np.full(steps + 1, 1.0 / steps)
        weights[[0, -1]] = 0.5 / steps
    elif rule == "right":
        alphas = np.arange(1, steps + 1, dtype=np.float64) / steps
        weights = np.full(steps, 1.0 / steps)
    else:
        raise ValueError(f"unknown rule {rule!r}; known: trapezoid, right")
    return alphas, weights


def path_gradients(
    model: Any,
    x: np.ndarray,
    baseline: np.ndarray,
    t: np.ndarray,
    *,
    steps: int,
    rule: PathRule = "trapezoid",
    chunk_size: int = 256,
) -> np.ndarray:
    """Quadrature of the gradient along the straight path baseline -> x (Integrated Gradients,
    Sundararajan et al. 2017), float64, (N, H, W, C). All path points of a chunk of images go
    through the model together, at most ``chunk_size`` inputs per batch."""
    fn = gradient_fn(model)
    x, t = np.asarray(x, np.float32), np.asarray(t, np.int32)
    baseline = np.broadcast_to(np.asarray(baseline, np.float32), x.shape)
    alphas, weights = path_points(rule, steps)
    p = len(alphas)
    a32 = alphas.astype(np.float32).reshape(p, 1, *([1] * (x.ndim - 1)))
    out = np.empty(x.shape, dtype=np.float64)
    for s in chunks(len(x), max(1, chunk_size // p)):
        xs, bs, ts = x[s], baseline[s], t[s]
        c = len(xs)
        points = (bs[None] + a32 * (xs - bs)[None]).reshape(p * c, *xs.shape[1:])
        tt = np.tile(ts, p)
        grads = np.concatenate(
            [
                fn(tf.constant(points[b]), tf.constant(tt[b])).numpy()
                for b in chunks(len(points), chunk_size)
            ]
        ).reshape(p, c, *xs.shape[1:])
        out[s] = np.tensordot(weights, grads.astype(np.float64), axes=(0, 0))
    return out


def feature_fn(model: Any, layer: str) -> Callable[[tf.Tensor], tf.Tensor]:
    """The feature map at ``layer`` for a batch (no gradients)."""
    per_model = _FEATURE_FNS.setdefault(model, {})
    if layer not in per_model:
        fmodel = tf.keras.Model(model.inputs, model.get_layer(layer).output)

        @tf.function(input_signature=_signature(model)[:1])
        def fn(x: tf.Tensor) -> tf.Tensor:
            return fmodel(x, training=False)

        per_model[layer] = fn
    return per_model[layer]


def features(model: Any, layer: str, x: np.ndarray, *, chunk_size: int = 256) -> np.ndarray:
    fn = feature_fn(model, layer)
    x = np.asarray(x, np.float32)
    return np.concatenate([fn(tf.constant(x[s])).numpy() for s in chunks(len(x), chunk_size)])


def cam_score_fn(
    model: Any, layer: str
) -> Callable[[tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor, tf.Tensor]]:
    """(feature map A, d logit[target] / dA, logit[target]) at ``layer``, batched."""
    per_model = _CAM_SCORE_FNS.setdefault(model, {})
    if layer not in per_model:
        fmodel = feature_model(model, layer)

        @tf.function(input_signature=_signature(model))
        def fn(x: tf.Tensor, t: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
            with tf.GradientTape() as tape:
                feats, logits = fmodel(x, training=False)
                scores = tf.gather(logits, t, axis=1, batch_dims=1)
                total = tf.reduce_sum(scores)
            return feats, tape.gradient(total, feats), scores

        per_model[layer] = fn
    return per_model[layer]


def features_grads_and_scores(
    model: Any, layer: str, x: np.ndarray, t: np.ndarray, *, chunk_size: int = 256
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    fn = cam_score_fn(model, layer)
    x, t = np.asarray(x, np.float32), np.asarray(t, np.int32)
    feats, grads, scores = [], [], []
    for s in chunks(len(x), chunk_size):
        a, g, y = fn(tf.constant(x[s]), tf.constant(t[s]))
        feats.append(a.numpy())
        grads.append(g.numpy())
        scores.append(y.numpy())
    return np.concatenate(feats), np.concatenate(grads), np.concatenate(scores)


def masked_target_probabilities(
    model: Any,
    x: np.ndarray,
    t: np.ndarray,
    feats: np.ndarray,
    units: np.ndarray,
    *,
    chunk_size: int = 256,
    eps: float = 1e-7,
) -> np.ndarray:
    """Score-CAM's channel scores (Wang et al. 2020), batched over (image, channel) units.

    ``units`` is (U, 2) rows of (image index, channel index). For each unit the low-resolution
    channel ``feats[i, :, :, k]`` is upsampled to the input size, min-max normalised to [0, 1]
    (``(a - min) / (max - min + eps)``), multiplied into image ``x[i]`` (all its channels), and
    the masked copy's softmax probability of class ``t[i]`` is returned, (U,) float32. Masks and
    masked copies exist for at most ``chunk_size`` units at a time.
    """
    fn = logits_fn(model)
    x, t = np.asarray(x, np.float32), np.asarray(t, np.int32)
    units = np.asarray(units, dtype=np.int64).reshape(-1, 2)
    out = np.empty(len(units), dtype=np.float32)
    for s in chunks(len(units), chunk_size):
        img, ch = units[s, 0], units[s, 1]
        low = feats[img, :, :, ch].astype(np.float32)  # (b, h, w)
        up = upsample(low, (x.shape[1], x.shape[2]))
        lo = up.min(axis=(1, 2), keepdims=True)
        hi = up.max(axis=(1, 2), keepdims=True)
        masks = (up - lo) / (hi - lo + np.float32(eps))
        masked = x[img] * masks[..., None]
        probs = tf.nn.softmax(fn(tf.constant(masked)), axis=-1)
        out[s] = tf.gather(probs, tf.constant(t[img].astype(np.int32)), axis=1, batch_dims=1)
    return out


def layer_cams(
    model: Any, layers: list[str], x: np.ndarray, t: np.ndarray, *, chunk_size: int = 256
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """At each of ``layers`` (spatial feature maps A, (N, h, w, C)), from one forward and one
    backward pass per chunk: the signed GradCAM sum_k mean_ij(dy/dA_k) A_k, (N, h, w), as
    :meth:`binsal.saliency.GradCAM.cam_lowres` computes it, and the L2 norm over channels of the
    gradient dy/dA, (N, h, w) (y: the target logit). Returns (cams, gradient norms), one array
    per layer."""
    fmodel = tf.keras.Model(
        model.inputs, [*(model.get_layer(name).output for name in layers), model.output]
    )

    @tf.function(input_signature=_signature(model))
    def fn(xb: tf.Tensor, tb: tf.Tensor) -> tuple[list[tf.Tensor], list[tf.Tensor]]:
        with tf.GradientTape() as tape:
            *feats, logits = fmodel(xb, training=False)
            score = tf.reduce_sum(tf.gather(logits, tb, axis=1, batch_dims=1))
        # dense: every feature map is a dense tensor
        grads = cast(list[tf.Tensor], tape.gradient(score, feats))
        cams = [
            tf.reduce_sum(a * tf.reduce_mean(g, axis=(1, 2), keepdims=True), axis=-1)
            for a, g in zip(feats, grads, strict=True)
        ]
        norms = [tf.sqrt(tf.reduce_sum(tf.square(g), axis=-1)) for g in grads]
        return cams, norms

    x, t = np.asarray(x, np.float32), np.asarray(t, np.int32)
    cams: list[list[np.ndarray]] = [[] for _ in layers]
    norms: list[list[np.ndarray]] = [[] for _ in layers]
    for s in chunks(len(x), chunk_size):
        c, g = fn(tf.constant(x[s]), tf.constant(t[s]))
        for i in range(len(layers)):
            cams[i].append(c[i].numpy())
            norms[i].append(g[i].numpy())
    return [np.concatenate(c) for c in cams], [np.concatenate(g) for g in norms]
