"""One interface for every saliency method: (model, images, targets) -> raw signed maps (N, H, W).

Taking abs and normalising for a metric are *not* done here (see ``binsal.metrics.transforms``);
the only post-processing a method applies are its named options, recorded in its params:
``channel_reduce`` (and ``per_sample_abs``) where it has them, and ``normalize`` (every method:
"none", or "minmax" per image as tf-keras-vis's ``normalize_map=True`` does).
"""

from __future__ import annotations

import os
import re
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, replace
from typing import Any, ClassVar, Literal, TypeVar

import numpy as np

from binsal.core.errors import InvalidInputError, MethodNotDefinedError
from binsal.core.registry import Registry
from binsal.models.spec import LoadedModel

Engine = Literal["tf", "tfkv"]
ChannelReduce = Literal["sum", "mean", "max_abs", "max", "l2"]
Normalize = Literal["none", "minmax"]
ENGINES: tuple[str, ...] = ("tf", "tfkv")
# tf-keras-vis's ``K.epsilon()`` in its ``normalize``: (x - min) / (max - min + eps)
MINMAX_EPS = 1e-7


def reduce_channels(grads: np.ndarray, how: ChannelReduce) -> np.ndarray:
    """(N, H, W, C) -> (N, H, W). ``max_abs`` is Simonyan et al. (2013) / tf-keras-vis style
    (its ``keepdims=False`` takes the channel max of the abs-modified gradient); ``l2`` is the
    Euclidean norm over channels."""
    if how == "sum":
        return grads.sum(axis=-1)
    if how == "mean":
        return grads.mean(axis=-1)
    if how == "max_abs":
        return np.abs(grads).max(axis=-1)
    if how == "max":
        return grads.max(axis=-1)
    if how == "l2":
        return np.sqrt(np.square(grads, dtype=np.float64).sum(axis=-1))
    raise ValueError(f"unknown channel_reduce {how!r}; known: sum, mean, max_abs, max, l2")


def normalize_maps(maps: np.ndarray, how: Normalize) -> np.ndarray:
    """(N, H, W) maps, each min-max scaled to [0, 1] as tf-keras-vis 0.8.7's
    ``utils.normalize`` does ((x - min) / (max - min + 1e-7), per image), or unchanged."""
    if how == "none":
        return maps
    if how == "minmax":
        lo = maps.min(axis=(1, 2), keepdims=True)
        hi = maps.max(axis=(1, 2), keepdims=True)
        return (maps - lo) / (hi - lo + np.float32(MINMAX_EPS))
    raise ValueError(f"unknown normalize {how!r}; known: none, minmax")


MEMORY_ENV = "BINSAL_MAX_BATCH_MEMORY"
DEFAULT_BATCH_MEMORY = 2 * 1024**3  # bytes one batched call may hold in activations
# activations kept for the backward pass, their gradients and the engine's temporaries: about
# three copies of every layer output per model input on an idle machine; 5 leaves headroom for
# the allocator's slack (up to 4.4 copies of RSS growth seen on a loaded machine in a 224 px
# conv net's SmoothGrad call that also traced its functions: tests/saliency/test_memory_budget)
ACTIVATION_COPIES = 5
_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "M": 1024**2, "MB": 1024**2, "G": 1024**3}
_UNITS["GB"] = 1024**3


def parse_memory(text: str) -> int:
    """Bytes of "2GB", "512MB", "300M" or a plain number of bytes (binary units)."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMG]?B?)\s*", str(text).upper())
    if not m:
        raise InvalidInputError(
            f"memory budget must be a number with an optional unit (KB, MB, GB), got {text!r}"
        )
    value = int(float(m.group(1)) * _UNITS[m.group(2)])
    if value <= 0:
        raise InvalidInputError(f"memory budget must be positive, got {text!r}")
    return value


def batch_memory() -> int:
    """The memory budget of one batched call: ``$BINSAL_MAX_BATCH_MEMORY`` (binsal run
    ``--max-batch-memory``), else 2 GB."""
    env = os.environ.get(MEMORY_ENV, "").strip()
    return parse_memory(env) if env else DEFAULT_BATCH_MEMORY


# per Keras model: walking its layers' output shapes took ~1.3 ms, 15 % of a Gradient call at
# batch 8 (vgg_fp, 64 px), and a model's shapes do not change once built
_ACTIVATION_BYTES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def activation_bytes(model: Any) -> int:
    """Float32 bytes of every layer output for one model input (nested models included)."""
    try:
        return _ACTIVATION_BYTES[model]
    except (KeyError, TypeError):  # TypeError: not weakly referable
        pass
    total = _activation_bytes(model)
    try:
        _ACTIVATION_BYTES[model] = total
    except TypeError:
        pass
    return total


def _activation_bytes(model: Any) -> int:
    total = 0
    stack = list(getattr(model, "layers", []))
    while stack:
        layer = stack.pop()
        stack.extend(getattr(layer, "layers", []))
        try:
            shapes = layer.output_shape  # raises for a layer used at several shapes
        except (AttributeError, RuntimeError):
            continue
        for shape in shapes if isinstance(shapes, list) else [shapes]:
            if isinstance(shape, tuple) and len(shape) > 1:
                total += 4 * int(np.prod([d for d in shape[1:] if d is not None]))
    return total


def forward_flops(model: Any) -> int:
    """Floating-point operations of one forward pass of one model input through the model's
    multiply-accumulate layers (convolutions, depthwise convolutions, dense; larq's quantized
    ones alike): 2 per multiply-accumulate, the count larq's ``ModelProfile`` makes (weights x
    output pixels per layer). Element-wise layers (batch norm, activations, pooling) are left
    out: memory-bound, not what a matmul unit limits. A gradient with respect to the input
    costs this forward pass and one backward pass through every such layer to its input, the
    same multiply-accumulates again: ``2 * forward_flops`` per image (the FLOP limit of
    ``perf/``'s engine comparison)."""
    import larq as lq

    return 2 * int(lq.models.ModelProfile(model).op_count(op_type="mac"))


_IMAGE_OFFSET: ContextVar[int] = ContextVar("binsal_image_offset", default=0)


@contextmanager
def image_offset(first: int) -> Iterator[None]:
    """Explain a slice of a larger image set: ``first`` is the index of its first image there.
    Methods seeded per image (the SmoothGrad family's noise, the Random control) then draw for
    image ``first + i`` what they draw for it in the whole set, so maps of image shards
    concatenate to the maps of the set (binsal.cells' map shards)."""
    token = _IMAGE_OFFSET.set(int(first))
    try:
        yield
    finally:
        _IMAGE_OFFSET.reset(token)


def current_image_offset() -> int:
    """The index of the current batch's first image in its image set (:func:`image_offset`)."""
    return _IMAGE_OFFSET.get()


# Images per batched call of a method. TensorFlow's CPU kernels (oneDNN, Eigen) choose their
# blocking by the batch size, so on some CPUs (e.g. an AVX2 EPYC here, not the AVX-512 machines
# before and after it) an image's map differs in the last bits with the number of images beside
# it in the call. ``explain`` therefore computes in blocks of ``map_block`` images aligned to the
# image's index in its set: the same image always shares its call with the same images, and maps
# of shards whose bounds are multiples of the block concatenate byte for byte to the maps of the
# whole set. A run takes its block from the profile (``[saliency] map_block``: 32 by default, 4
# in smoke to keep its 8 images shardable). Measured on vgg_fp at 64 px, 128 images: Gradient
# 0.50 s in blocks of 4 vs 0.41 s in one call; the default profile's maps of one seed (2 idle
# AVX2 cores): 115.9 s in blocks of 4, 103.2 s in blocks of 32.
MAP_BLOCK = 32
_map_block = [MAP_BLOCK]  # process-wide (not a context variable: worker threads see it too)


def set_map_block(block: int) -> None:
    """The block of images ``explain`` computes at a time from now on in this process (a run
    sets its profile's ``[saliency] map_block``; :data:`MAP_BLOCK` until then)."""
    if int(block) < 1:
        raise InvalidInputError(f"map_block must be an integer >= 1, got {block!r}")
    _map_block[0] = int(block)


def current_map_block() -> int:
    """The block of images ``explain`` computes at a time (:func:`set_map_block`)."""
    return _map_block[0]


def block_bounds(first: int, n: int, block: int | None = None) -> list[tuple[int, int]]:
    """[a, b) bounds, within a batch of ``n`` images whose first is image ``first`` of its set,
    of the blocks that cut the set at multiples of ``block`` (default: the current map block)."""
    block = current_map_block() if block is None else int(block)
    out: list[tuple[int, int]] = []
    a = 0
    while a < n:
        b = min(n, a + block - (first + a) % block)
        out.append((a, b))
        a = b
    return out


def budget_chunk(model: Any, chunk_size: int, budget: int | None = None) -> int:
    """``chunk_size`` capped so that one batch's activations fit the budget (at least 1)."""
    per_input = ACTIVATION_COPIES * max(1, activation_bytes(model))
    limit = (batch_memory() if budget is None else budget) // per_input
    return max(1, min(int(chunk_size), int(limit)))


def validate_batch(
    model: LoadedModel | None, images: np.ndarray, targets: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Check shapes, dtypes, finiteness and target range; return float32 images, int32 targets."""
    x = np.asarray(images)
    if x.ndim != 4:
        raise InvalidInputError(f"images must be (N, H, W, C), got shape {x.shape}")
    if x.shape[0] == 0:
        raise InvalidInputError(f"images is an empty batch (shape {x.shape}); give at least one")
    if not np.issubdtype(x.dtype, np.number):
        raise InvalidInputError(f"images must be numeric, got dtype {x.dtype}")
    x = x.astype(np.float32, copy=False)
    if not np.all(np.isfinite(x)):
        bad = int(np.sum(~np.isfinite(x)))
        raise InvalidInputError(f"images contain {bad} NaN/inf values (shape {x.shape})")
    if model is not None and tuple(x.shape[1:]) != tuple(model.spec.input_shape):
        raise InvalidInputError(
            f"images of shape {tuple(x.shape[1:])} do not fit model {model.name} "
            f"(expects {tuple(model.spec.input_shape)})"
        )
    if targets is None:
        return x, None
    t = np.asarray(targets)
    if t.shape != (x.shape[0],):
        raise InvalidInputError(f"targets must have shape ({x.shape[0]},), got {t.shape}")
    if not np.issubdtype(t.dtype, np.integer):
        raise InvalidInputError(f"targets must be integer class indices, got dtype {t.dtype}")
    if model is not None and (t.min(initial=0) < 0 or t.max(initial=0) >= model.spec.num_classes):
        raise InvalidInputError(
            f"targets must lie in [0, {model.spec.num_classes}) for {model.name}, "
            f"got range [{t.min()}, {t.max()}]"
        )
    return x, t.astype(np.int32)


@dataclass(frozen=True)
class SaliencyMethod:
    """Base class: a frozen dataclass of options plus ``explain``.

    Subclasses set ``name``, ``engines`` (which engines implement them; "tf" is the suite's own
    batched ``tf.function`` engine and the default, "tfkv" is tf-keras-vis, the reference) and
    implement ``_explain_model`` (model-free methods, ``needs_model = False``: ``_explain``).
    ``chunk_size`` bounds how many model inputs go through one batch.
    """

    name: ClassVar[str] = ""
    engines: ClassVar[tuple[str, ...]] = ("tf",)
    needs_model: ClassVar[bool] = True
    # how the map ranks pixels: "abs" by magnitude (pixel attributions), "signed" by value, its
    # positive part being the relevance (the CAM family, as it is displayed)
    ranking: ClassVar[Literal["abs", "signed"]] = "abs"
    # options added after the shipped ROAR retrainings were keyed, with the value that leaves the
    # maps as they were: at that value they stay out of :meth:`key_params`, so old keys still hit
    late_options: ClassVar[dict[str, Any]] = {"normalize": "none"}
    normalize: Normalize = "none"

    def params(self) -> dict[str, Any]:
        return asdict(self)

    def passes(self, model: LoadedModel | None = None) -> tuple[int, int]:
        """(forward, backward) passes through the model per map, from the method's options
        (the cost-aware leaderboard): one of each for a gradient; methods that take more or
        none override this. ``model``: for counts that depend on it (Score-CAM's channels)."""
        return (1, 1)

    def key_params(self) -> dict[str, Any]:
        """:meth:`params` for cache keys: late options at their neutral value left out."""
        late = self.late_options
        return {k: v for k, v in self.params().items() if not (k in late and late[k] == v)}

    def defined_for(self, model: LoadedModel | None) -> tuple[bool, str]:
        """(defined, reason): whether this method is defined for ``model``. Methods that are
        not defined for some models (guided backprop through larq's sign) override this;
        ``explain`` raises :class:`MethodNotDefinedError` with the reason."""
        return True, ""

    def explain(
        self,
        model: LoadedModel | None,
        images: np.ndarray,
        targets: np.ndarray | None,
        *,
        engine: Engine = "tf",
    ) -> np.ndarray:
        if engine not in self.engines:
            raise InvalidInputError(
                f"method {self.name!r} has no engine {engine!r}; "
                f"available: {', '.join(self.engines)}"
            )
        if self.needs_model and model is None:
            raise InvalidInputError(f"method {self.name!r} needs a model, got None")
        if model is not None and not isinstance(model, LoadedModel):
            from binsal.models.own import wrap_model  # a plain Keras / larq model

            model = wrap_model(model)
        x, t = validate_batch(model if self.needs_model else None, images, targets)
        if self.needs_model:
            assert model is not None
            if t is None:  # no targets: explain each image's predicted (top-1) class
                logits = model.model.predict(model.prepare(x), batch_size=128, verbose=0)
                t = np.argmax(logits, axis=1).astype(np.int32)
            ok, why = self.defined_for(model)
            if not ok:
                raise MethodNotDefinedError(f"{self.name} is not defined for {model.name}: {why}")
        method = self
        chunk = getattr(self, "chunk_size", None)
        if model is not None and self.needs_model and isinstance(chunk, int):
            capped = budget_chunk(model.model, chunk)
            if capped < chunk:  # the same computation in smaller batches (same maps)
                method = replace(self, chunk_size=capped)  # type: ignore[call-arg]
        first = current_image_offset()
        parts = []
        for a, b in block_bounds(first, len(x)) or [(0, len(x))]:  # see MAP_BLOCK
            with image_offset(first + a):
                part = method._explain(model, x[a:b], None if t is None else t[a:b], engine)
            parts.append(np.asarray(part, dtype=np.float32))
        maps = parts[0] if len(parts) == 1 else np.concatenate(parts)
        if maps.shape != x.shape[:3]:
            msg = f"{self.name} returned maps of shape {maps.shape}, not {x.shape[:3]}"
            raise RuntimeError(msg)
        return normalize_maps(maps, self.normalize).astype(np.float32, copy=False)

    def _explain(
        self, model: LoadedModel | None, x: np.ndarray, t: np.ndarray | None, engine: str
    ) -> np.ndarray:
        """The maps of validated images ``x`` (float32) and targets ``t`` (int32 or None).

        Model-free methods (``needs_model = False``) override this and may get ``model=None``;
        by default it hands methods that need the model to :meth:`_explain_model`."""
        if model is None or t is None:
            raise InvalidInputError(f"method {self.name!r} needs a model and targets")
        return self._explain_model(model, x, t, engine)

    def _explain_model(
        self, model: LoadedModel, x: np.ndarray, t: np.ndarray, engine: str
    ) -> np.ndarray:
        """What a method that needs the model implements: maps for ``model`` and targets ``t``."""
        raise NotImplementedError


def feature_layer_support(model: LoadedModel | None, layer: str | None) -> tuple[bool, str]:
    """Whether ``layer`` (default: the spec's GradCAM layer) is a spatial (N, h, w, C) feature
    map of the model, as every CAM method needs."""
    if model is None:
        return False, "CAM methods need a model"
    name = layer or model.gradcam_layer
    try:
        found = model.model.get_layer(name)
    except ValueError:
        return False, f"model {model.name} has no layer {name!r} to take a CAM at"
    try:
        shape = tuple(found.output.shape)
    except (AttributeError, RuntimeError):  # a layer shared between several nodes
        return True, ""
    if len(shape) != 4:
        return False, f"layer {name!r} of {model.name} has output shape {shape}, not (N, h, w, C)"
    return True, ""


METHODS: Registry[type[SaliencyMethod]] = Registry("method")
M = TypeVar("M", bound=SaliencyMethod)


def register_method(cls: type[M]) -> type[M]:
    """Class decorator: register a method under its ``name``, beside its definition."""
    METHODS.register(cls.name, cls)
    return cls
