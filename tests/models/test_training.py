"""Trained-model cache and shipped weights: an entry the package ships (same key) is checked by
its SHA-256 and used instead of training; ``--retrain`` and a corrupt copy train anyway."""

from __future__ import annotations

import numpy as np
import pytest

from binsal.models import training
from binsal.models.determinism import configure
from binsal.models.training import TrainConfig, export_used_entries, train_or_load
from tests.conftest import TINY_CLASSES, TINY_SHAPE, TinyTrainData, tiny_spec


@pytest.fixture
def data() -> TinyTrainData:
    configure(True)  # deterministic training (the suite's default)
    rng = np.random.default_rng(0)
    x = rng.random((80, *TINY_SHAPE), dtype=np.float32)
    y = rng.integers(0, TINY_CLASSES, 80)
    return TinyTrainData(x[:64], y[:64], x[64:], y[64:])


def _weights(loaded):
    return loaded.model.get_weights()


def test_shipped_entry_is_used_instead_of_training(data, tmp_path, monkeypatch):
    spec = tiny_spec("vgg", True)
    train = TrainConfig(epochs=1, batch_size=32, seed=3)
    training.USED_ENTRIES.clear()
    first = train_or_load(spec, data, train, cache_root=tmp_path / "a")
    assert first.meta["cache"] == "miss"
    shipped = tmp_path / "shipped"
    written = export_used_entries(shipped)
    assert len(written) == 1 and (written[0] / "weights.h5").is_file()
    monkeypatch.setattr(training, "SHIPPED_DIR", shipped)

    def no_training(*a, **k):
        raise AssertionError("trained although the weights are shipped")

    monkeypatch.setattr(training, "_fit", no_training)
    second = train_or_load(spec, data, train, cache_root=tmp_path / "b")
    assert second.meta["cache"] == "shipped"
    assert second.test_accuracy == first.test_accuracy
    for a, b in zip(_weights(first), _weights(second), strict=True):
        np.testing.assert_array_equal(a, b)
    # another key (seed) is not shipped: it trains
    with pytest.raises(AssertionError, match="trained although"):
        train_or_load(
            spec, data, TrainConfig(epochs=1, batch_size=32, seed=4), cache_root=tmp_path / "b"
        )


def test_retrain_and_corrupt_shipped_copies_train(data, tmp_path, monkeypatch):
    spec = tiny_spec("vgg", False)
    train = TrainConfig(epochs=1, batch_size=32, seed=3)
    training.USED_ENTRIES.clear()
    first = train_or_load(spec, data, train, cache_root=tmp_path / "a")
    shipped = tmp_path / "shipped"
    (entry,) = export_used_entries(shipped)
    monkeypatch.setattr(training, "SHIPPED_DIR", shipped)
    monkeypatch.setenv(training.SHIPPED_ENV, "0")  # binsal run --retrain
    again = train_or_load(spec, data, train, cache_root=tmp_path / "b")
    assert again.meta["cache"] == "miss"
    monkeypatch.delenv(training.SHIPPED_ENV)
    blob = bytearray((entry / "weights.h5").read_bytes())
    blob[-100] ^= 0xFF
    (entry / "weights.h5").write_bytes(bytes(blob))
    with pytest.warns(UserWarning, match="missing or corrupt"):
        third = train_or_load(spec, data, train, cache_root=tmp_path / "c")
    assert third.meta["cache"] == "miss"
    assert third.test_accuracy == first.test_accuracy  # deterministic training


def test_training_progress_moves_per_batch_and_ends_at_100_percent(data, tmp_path, capfd):
    """The training bar counts batches (64 images in batches of 24: 3 per epoch, 9 in all),
    says the epoch and accuracy, and is full when training ends."""
    from binsal.core.progress import StageTimer

    closed: list[tuple[int, int | None, str]] = []
    updates: list[int] = []

    class Spy(StageTimer):
        def counter(self, total, desc, unit="it"):
            bar = super().counter(total, desc, unit)
            close, update = bar.close, bar.update

            def spy_close():
                closed.append((bar.n, bar.total, str(bar.postfix)))
                close()

            def spy_update(n=1):
                updates.append(n)
                return update(n)

            bar.close, bar.update = spy_close, spy_update  # type: ignore[method-assign]
            return bar

    timer = Spy(quiet=False)
    train = TrainConfig(epochs=3, batch_size=24, seed=5)
    train_or_load(tiny_spec("vgg", False), data, train, cache_root=tmp_path, progress=timer)
    (n, total, postfix) = closed[-1]
    assert n == total == 9
    assert "epoch 3/3" in postfix and "acc" in postfix
    assert updates == [1] * 9  # one tick per batch
    assert "train" in capfd.readouterr().err  # on stderr


def test_a_shipped_arrays_entry_says_shipped(data, tmp_path, monkeypatch):
    """A model trained on arrays (ROAR's retrainings) that comes from the shipped set is
    reported as "shipped", not as a cache hit."""
    spec = tiny_spec("vgg", False)
    train = TrainConfig(epochs=1, batch_size=32, seed=3)
    training.USED_ENTRIES.clear()
    kwargs = dict(key_extra={"roar": "test"}, x_test=data.x_test, y_test=data.y_test, tag="roar")
    _, first = training.train_on_arrays(
        spec, data.x_train, data.y_train, train, cache_root=tmp_path / "a", **kwargs
    )
    assert first["cache"] == "miss"
    shipped = tmp_path / "shipped"
    assert len(export_used_entries(shipped)) == 1
    monkeypatch.setattr(training, "SHIPPED_DIR", shipped)
    _, second = training.train_on_arrays(
        spec,
        data.x_train,
        data.y_train,
        train,
        cache_root=tmp_path / "b",
        load_model=False,
        **kwargs,
    )
    assert second["cache"] == "shipped"
    np.testing.assert_array_equal(second["test_correct"], first["test_correct"])
