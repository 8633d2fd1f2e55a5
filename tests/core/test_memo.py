"""keep_recent: a hit is not computed again; the least recent entries go first past the bound,
never the one just asked for."""

from __future__ import annotations

from binsal.core.memo import keep_recent


def test_keep_recent_reuses_and_drops_the_least_recent() -> None:
    store: dict = {}
    calls: list[str] = []

    def get(key: str, size: int = 4) -> bytes:
        return keep_recent(store, key, lambda: calls.append(key) or b"x" * size, 10, len)

    assert get("a") == b"xxxx" and get("b") == b"xxxx"
    assert get("a") == b"xxxx" and calls == ["a", "b"]  # a hit: not computed again
    get("c")  # 12 bytes held: b, the least recent, goes
    assert list(store) == ["a", "c"]
    get("big", size=50)  # over the bound alone: kept, everything else dropped
    assert list(store) == ["big"]
