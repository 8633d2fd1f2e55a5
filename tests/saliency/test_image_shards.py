"""Maps of image shards, each explained with its offset in the set, concatenate to the maps of
the whole set bit for bit, for every registered method on both engines (what binsal.cells'
map shards rely on); without the offset, the per-image seeded methods would differ."""

from __future__ import annotations

import numpy as np
import pytest

from binsal.saliency import METHODS, is_defined
from binsal.saliency.base import current_image_offset, image_offset

SEEDED = {"smoothgrad", "smoothgrad_sq", "vargrad", "random"}  # draws seeded per image


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
    bounds = [(0, 2), (2, 3), (3, 5)]
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
