"""The binarization ladder: one matched topology at every precision from FP to BNN.

Each rung is the pair's topology (``binsal.models.pairs``) with the weights and the activations
of every hidden convolution at a given number of bits (stem, transitions and classifier stay
real, as in the pair). The 32-bit rung is the pair's FP model and the 1-bit rung its BNN: the
same spec (name, builder, build arguments), so the same cache entry when trained with the same
recipe. In between: binary weights with real (ReLU) activations, binary activations with real
weights, and 2, 4 and 8 bits for both, with larq's DoReFa quantizer (uniform 2^k levels; a
ternary quantizer would be log2(3) bits, so the 2-bit rung is DoReFa too).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal, get_args

from binsal.models.registry import NUM_SYNTHETIC_CLASSES, pair_member_spec
from binsal.models.spec import ModelSpec

Rung = Literal["fp32", "w8a8", "w4a4", "w2a2", "binary_weights", "binary_activations", "binary"]
RUNG_NAMES: tuple[Rung, ...] = get_args(Rung)
# rung -> (weight bits, activation bits), from full precision down to fully binary
RUNGS: dict[str, tuple[int, int]] = {
    "fp32": (32, 32),
    "w8a8": (8, 8),
    "w4a4": (4, 4),
    "w2a2": (2, 2),
    "binary_weights": (1, 32),
    "binary_activations": (32, 1),
    "binary": (1, 1),
}
assert tuple(RUNGS) == RUNG_NAMES


def ladder_spec(
    arch: str,
    rung: str,
    *,
    image_size: int,
    widths: tuple[int, ...],
    num_classes: int = NUM_SYNTHETIC_CLASSES,
    prefix: str = "",
) -> ModelSpec:
    """The spec of ``arch`` at ``rung``: the pair's FP spec at 32 bits, its BNN spec at 1 bit
    (:func:`binsal.models.registry.pair_member_spec`, unchanged), and that spec with
    ``precision`` in its build arguments in between (family "BNN": a quantized network)."""
    bits = RUNGS[rung]
    common = {"image_size": image_size, "widths": widths, "num_classes": num_classes}
    if bits == (32, 32):
        return pair_member_spec(arch, False, prefix=prefix, **common)
    binary = pair_member_spec(arch, True, prefix=prefix, **common)
    if bits == (1, 1):
        return binary
    name = f"{prefix}{arch}_{rung}"
    w, a = bits
    return replace(
        binary,
        name=name,
        description=f"{arch.upper()}-style, {w}-bit weights, {a}-bit activations (ladder)",
        build_kwargs={**binary.build_kwargs, "binary": False, "name": name, "precision": bits},
    )


def ladder_edges(rungs: list[str] | tuple[str, ...]) -> list[tuple[str, str]]:
    """The steps of the ladder among ``rungs``: (a, b) where b has at most a's bits in both
    weights and activations, fewer in one, and no other rung lies between them (the cover
    relation of the precision order). For every rung: fp32 -> w8a8 -> w4a4 -> w2a2 -> binary,
    fp32 -> binary_weights -> binary, fp32 -> binary_activations -> binary."""

    def below(a: str, b: str) -> bool:  # b strictly less precise than a
        (wa, aa), (wb, ab) = RUNGS[a], RUNGS[b]
        return wb <= wa and ab <= aa and (wb, ab) != (wa, aa)

    out = []
    for a in rungs:
        for b in rungs:
            if below(a, b) and not any(below(a, c) and below(c, b) for c in rungs):
                out.append((a, b))
    return out
