"""A tiny name -> object registry whose lookups fail with the list of known names."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from binsal.core.errors import UnknownNameError

T = TypeVar("T")
U = TypeVar("U")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T) -> T:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} registered twice")
        self._items[name] = item
        return item

    def add(self, name: str) -> Callable[[U], U]:
        """Decorator registering the decorated class or function under ``name``, beside it::

        @METHODS.add("gradient")
        class Gradient(SaliencyMethod): ...
        """

        def decorate(item: U) -> U:
            self.register(name, item)  # type: ignore[arg-type]
            return item

        return decorate

    def __getitem__(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, list(self._items)) from None

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[tuple[str, T]]:
        return list(self._items.items())

    def names(self) -> list[str]:
        return list(self._items)

    def check(self, names: list[str]) -> None:
        """Raise on the first unknown name, listing the known ones."""
        for name in names:
            self[name]
