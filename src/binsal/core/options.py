"""Frozen dataclasses built from plain mappings (TOML tables), checked by their type hints.

``build(cls, mapping, owner=..., section=...)`` turns e.g. the ``[saliency]`` table of a profile
into a ``SaliencySettings``, or a ``[benchmarks.roar]`` table into ``ROAR.Options``, and raises
:class:`~binsal.core.errors.BinsalError` with one line naming the key and what it allows::

    profile 'x': [saliency] n_images must be an integer >= 1, got 'eight'
    profile 'x': [data] unknown key 'n_imagez'; known keys: image_size, n_test, n_train, ...

Field types understood: ``int``, ``float`` (an integer is accepted and converted), ``str``,
``bool``, ``Literal[...]``, ``tuple[X, ...]`` (from a list), ``dict[str, X]`` (from a sub-table),
``X | None`` (None is only ever a
default meaning "not set": TOML has no null), unions of these (the first alternative that fits
wins), and nested dataclasses (from a sub-table). Range metadata on a field, for a number or for
every item of a tuple of numbers: ``field(default=..., metadata={"min": 1})`` with ``"min"`` /
``"max"`` (inclusive), ``"gt"`` / ``"lt"`` (exclusive); ``"min_items"`` for tuples. Other metadata
keys are left to the caller (e.g. ``"known": "method"``, checked against a registry by
``binsal.benchmarks.check_profile``).

Part of the ground floor: imports nothing of binsal outside ``binsal.core``.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, Union, cast, get_args, get_origin

from binsal.core.errors import BinsalError

T = TypeVar("T")

RANGE_KEYS = ("min", "gt", "max", "lt")


class _Mismatch(Exception):
    """A value that does not fit a type (internal: turned into one BinsalError line)."""


def _prefix(owner: str, section: str) -> str:
    head = f"{owner}: " if owner else ""
    return head + (f"[{section}] " if section else "")


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _union_args(tp: Any) -> tuple[Any, ...] | None:
    if get_origin(tp) in (Union, types.UnionType):
        return get_args(tp)
    return None


def _range_text(meta: Mapping[str, Any]) -> str:
    words = {"min": ">=", "gt": ">", "max": "<=", "lt": "<"}
    parts = [f"{words[k]} {meta[k]}" for k in RANGE_KEYS if k in meta]
    return " and ".join(parts)


def _plural(tp: Any) -> str:
    if tp is bool:
        return "booleans"
    if tp is int:
        return "integers"
    if tp is float:
        return "numbers"
    if tp is str:
        return "strings"
    if get_origin(tp) is Literal:
        return "values from " + ", ".join(repr(a) for a in get_args(tp))
    return "values"


def describe(tp: Any, meta: Mapping[str, Any] | None = None) -> str:
    """What a value of type ``tp`` (with range ``meta``) must be, in words."""
    meta = meta or {}
    rng = _range_text(meta)
    alts = _union_args(tp)
    if alts is not None:
        return " or ".join(describe(a, meta) for a in alts if a is not type(None))
    if get_origin(tp) is Literal:
        args = get_args(tp)
        return repr(args[0]) if len(args) == 1 else "one of " + ", ".join(repr(a) for a in args)
    if get_origin(tp) is dict:
        return f"a table of name = {describe(get_args(tp)[1])}"
    if get_origin(tp) is tuple:
        text = "a list of " + _plural(get_args(tp)[0])
        if rng:
            text += f" each {rng}"
        if meta.get("min_items"):
            text += f" (at least {meta['min_items']})"
        return text
    if tp is bool:
        return "true or false"
    if tp in (int, float):
        text = "an integer" if tp is int else "a number"
        return f"{text} {rng}" if rng else text
    if tp is str:
        return "a string"
    if _is_dataclass_type(tp):
        return "a table"
    return getattr(tp, "__name__", str(tp))


def _in_range(value: float, meta: Mapping[str, Any]) -> bool:
    return (
        ("min" not in meta or value >= meta["min"])
        and ("gt" not in meta or value > meta["gt"])
        and ("max" not in meta or value <= meta["max"])
        and ("lt" not in meta or value < meta["lt"])
    )


def _convert(value: Any, tp: Any, meta: Mapping[str, Any]) -> Any:
    """``value`` as type ``tp`` (lists become tuples, integers floats), or raise _Mismatch."""
    if tp is Any:
        return value
    alts = _union_args(tp)
    if alts is not None:
        if value is None and type(None) in alts:
            return None
        for alt in alts:
            if alt is type(None):
                continue
            try:
                return _convert(value, alt, meta)
            except _Mismatch:
                continue
        raise _Mismatch
    if get_origin(tp) is Literal:
        for a in get_args(tp):
            if type(value) is type(a) and value == a:
                return a
        raise _Mismatch
    if get_origin(tp) is dict:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise _Mismatch
        return {k: _convert(v, get_args(tp)[1], meta) for k, v in value.items()}
    if get_origin(tp) is tuple:
        args = get_args(tp)
        if not isinstance(value, (list, tuple)) or len(args) != 2 or args[1] is not Ellipsis:
            raise _Mismatch
        items = tuple(_convert(v, args[0], meta) for v in value)
        if len(items) < int(meta.get("min_items", 0)):
            raise _Mismatch
        return items
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool) and _in_range(value, meta):
            return value
        raise _Mismatch
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out = float(value)
            if math.isfinite(out) and _in_range(out, meta):
                return out
        raise _Mismatch
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise _Mismatch


def build(
    cls: type[T], raw: Mapping[str, Any] | object, *, owner: str = "", section: str = ""
) -> T:
    """An instance of the dataclass ``cls`` from ``raw``, every key checked (see module doc).

    ``owner`` and ``section`` only name the place in error messages, e.g. ``"profile 'x'"`` and
    ``"saliency"``. Nested dataclass fields are built from sub-tables (or kept when ``raw``
    already holds an instance, which is then checked again field by field).
    """
    where = _prefix(owner, section)
    if dataclasses.is_dataclass(raw) and not isinstance(raw, type):
        raw = {f.name: getattr(raw, f.name) for f in dataclasses.fields(raw) if f.init}
    if not isinstance(raw, Mapping):
        raise BinsalError(f"{where}must be a table of settings, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cast(Any, cls)) if f.init}
    tables = sorted(n for n in fields if _is_dataclass_type(hints[n]))
    keys = sorted(n for n in fields if n not in tables)
    for key, value in raw.items():
        if key in fields:
            continue
        known = ", ".join(keys) or "(none)"
        if isinstance(value, Mapping):
            sub = f"{section}.{key}" if section else key
            subs = ", ".join(f"[{f'{section}.{t}' if section else t}]" for t in tables)
            msg = f"{_prefix(owner, '')}unknown section [{sub}]"
            if subs:
                msg += f"; known sections: {subs}"
            raise BinsalError(f"{msg}; known keys{f' of [{section}]' if section else ''}: {known}")
        raise BinsalError(f"{where}unknown key {key!r}; known keys: {known}")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        tp, meta = hints[key], fields[key].metadata
        if _is_dataclass_type(tp):
            if not (isinstance(value, Mapping) or isinstance(value, tp)):
                raise BinsalError(f"{where}{key} must be a table ([{key}]), got {value!r}")
            sub = f"{section}.{key}" if section else key
            values[key] = build(tp, value, owner=owner, section=sub)
            continue
        try:
            values[key] = _convert(value, tp, meta)
        except _Mismatch:
            raise BinsalError(f"{where}{key} must be {describe(tp, meta)}, got {value!r}") from None
    return cls(**values)


def validate(obj: T, *, owner: str = "", section: str = "") -> T:
    """``obj`` (a dataclass instance, e.g. after ``dataclasses.replace``) checked again field by
    field as :func:`build` checks a mapping; returns the checked (converted) instance."""
    return build(type(obj), obj, owner=owner, section=section)
