"""Maps of image shards, each explained with its offset in the set and cut at multiples of the
map block, concatenate to the maps of the whole set bit for bit, for every registered method on
both engines (what binsal.cells' map shards rely on); without the offset, the per-image seeded
methods would differ."""

from __future__ import annotations

import numpy as np
import pytest

from binsal.core.errors import InvalidInputError
from binsal.saliency import METHODS, is_defined
from binsal.saliency.base import (
    MAP_BLOCK,
    block_bounds,
    current_image_offset,
    current_map_block,
    image_offset,
    set_map_block,
)

SEEDED = {"smoothgrad", "smoothgrad_sq", "vargrad", "random"}  # draws seeded per image
BLOCK = 4  # the smoke profile's map block: tiny batches span several blocks


@pytest.fixture(autouse=True)
def small_block():
    before = current_map_block()
    set_map_block(BLOCK)
    yield
    set_map_block(before)


def shards_of(method, model, x, t, engine, bounds, offset=True):
    parts = []
    for a, b in bounds:
        with image_offset(a if offset else 0):
            parts.append(method.explain(model, x[a:b], t[a:b], engine=engine))
    return np.concatenate(parts)


# every registered method on each engine it has (tf-keras-vis has no VarGrad, for instance)
CASES = [(n, e) for n in METHODS.names() for e in ("tf", "tfkv") if e in METHODS[n].engines]


@pytest.mark.parametrize(("name", "engine"), CASES)
def test_shards_concatenate_to_the_whole(tiny_model, tiny_batch, name, engine):
    cls = METHODS[name]
    defined, reason = is_defined(name, tiny_model, engine=engine)
    if not defined:  # guided backprop through larq's sign: refused, with the reason, never run
        assert name == "guided_backprop" and tiny_model.family == "BNN" and reason
        return
    method = cls(**({"samples": 3} if "samples" in cls.__dataclass_fields__ else {}))
    x, t = tiny_batch
    whole = method.explain(tiny_model, x, t, engine=engine)
    bounds = [(0, BLOCK), (BLOCK, len(x))]  # shards cut where the blocks are
    assert len(x) > BLOCK
    np.testing.assert_array_equal(shards_of(method, tiny_model, x, t, engine, bounds), whole)
    if name in SEEDED:  # the offset is what makes them equal
        unshifted = shards_of(method, tiny_model, x, t, engine, bounds, offset=False)
        assert not np.array_equal(unshifted, whole)


def test_the_offset_is_scoped():
    assert current_image_offset() == 0
    with image_offset(7):
        assert current_image_offset() == 7
        with image_offset(3):
            assert current_image_offset() == 3
        assert current_image_offset() == 7
    assert current_image_offset() == 0


def test_blocks_are_cut_at_multiples_of_the_block_in_the_set():
    assert block_bounds(0, 10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert block_bounds(2, 10, 4) == [(0, 2), (2, 6), (6, 10)]  # images 2..11 of the set
    assert block_bounds(4, 3, 4) == [(0, 3)]
    assert block_bounds(0, 0, 4) == []


def test_explain_calls_the_method_once_per_block(tiny_model, tiny_batch, monkeypatch):
    method = METHODS["gradient"]()
    sizes: list[tuple[int, int]] = []
    original = type(method)._explain

    def spy(self, model, x, t, engine):
        sizes.append((current_image_offset(), len(x)))
        return original(self, model, x, t, engine)

    monkeypatch.setattr(type(method), "_explain", spy)
    x, t = tiny_batch
    with image_offset(BLOCK - 1):  # the batch starts one image before a block's end
        maps = method.explain(tiny_model, x, t)
    assert sizes == [(BLOCK - 1, 1), (BLOCK, len(x) - 1)]
    assert maps.shape == x.shape[:3]


def test_the_block_is_the_runs_and_checked():
    assert block_bounds(0, 40) == [(0, 4), (4, 8), (8, 12), (12, 16), (16, 20)] + [
        (a, a + 4) for a in range(20, 40, 4)
    ]
    set_map_block(MAP_BLOCK)
    assert block_bounds(0, 40) == [(0, 32), (32, 40)]
    with pytest.raises(InvalidInputError, match="map_block must be an integer >= 1"):
        set_map_block(0)
