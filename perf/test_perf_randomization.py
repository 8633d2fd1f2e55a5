"""Model randomization, one step (Adebayo et al. 2018's unit of work): the top layer of a default
size model re-drawn and the Gradient maps of 32 images recomputed. "in place" is the suite's way
(``LayerRandomizer``: the variables of one clone assigned in place, its traced gradient function
reused); "clone" is the way before it, and most tools' (xplique, Quantus): a fresh clone of the
model per step, its weights set, its gradient function traced again."""

from __future__ import annotations

import numpy as np
import pytest
from perfkit import batch

from binsal.models.reinit import LayerRandomizer, clone_loaded
from binsal.saliency import METHODS

N_IMAGES = 32


@pytest.mark.parametrize("way", ["in place", "clone"])
def test_randomization_one_step(benchmark, default_model, way):
    images, targets = batch(default_model, n=N_IMAGES)
    gradient = METHODS["gradient"]()
    rand = LayerRandomizer(default_model, seed=0)
    top = rand.layers[0].name
    gradient.explain(rand.loaded, images, targets)  # the clone's function traced once
    state = [False]

    def in_place() -> np.ndarray:
        state[0] = not state[0]  # alternate: every round changes the weights
        rand.set_randomized({top} if state[0] else set())
        return gradient.explain(rand.loaded, images, targets)

    def clone() -> np.ndarray:
        fresh = clone_loaded(default_model)
        layer = fresh.model.get_layer(top)
        for attr, value in rand.randomized[top].items():
            getattr(layer, attr).assign(value)
        return gradient.explain(fresh, images, targets)  # traces the new model's function

    benchmark.group = f"model randomization one step ({default_model.name}, {N_IMAGES} images)"
    benchmark.extra_info.update(way=way, model=default_model.name, images=N_IMAGES)
    maps = benchmark.pedantic(in_place if way == "in place" else clone, rounds=5, iterations=1)
    assert maps.shape == images.shape[:3] and np.isfinite(maps).all()
