"""Ctrl-C stays Ctrl-C when a library turns it into another error."""

from __future__ import annotations

import os
import signal
import time

import pytest

from binsal.core.interrupt import catching_interrupts, interrupted, reraise_if_interrupted


def _sigint_wrapped_like_autograph() -> None:
    """What TensorFlow's tracing does with a KeyboardInterrupt raised inside it."""
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # the handler runs here, in the main thread
    except KeyboardInterrupt as exc:
        raise SystemError("returned a result with an exception set") from exc


def test_an_interrupt_wrapped_in_another_error_is_raised_again_as_ctrl_c(sigint_raises):
    with catching_interrupts():
        assert not interrupted()
        with pytest.raises(KeyboardInterrupt) as info:
            try:
                _sigint_wrapped_like_autograph()
            except Exception as exc:  # a broad handler that would record it and go on
                reraise_if_interrupted(exc)
                pytest.fail("the wrapped interrupt was swallowed")
        assert isinstance(info.value.__cause__, SystemError)
        assert interrupted()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_an_ordinary_error_passes_and_a_new_block_forgets_the_last_interrupt(sigint_raises):
    with catching_interrupts():
        with pytest.raises(SystemError):
            _sigint_wrapped_like_autograph()
    with catching_interrupts():
        assert not interrupted()
        try:
            raise ValueError("not an interrupt")
        except ValueError as exc:
            reraise_if_interrupted(exc)  # nothing happens


def test_an_ignored_or_foreign_sigint_handler_is_left_alone():
    previous = signal.getsignal(signal.SIGINT)
    try:
        for handler in (signal.SIG_IGN, lambda signum, frame: None):
            signal.signal(signal.SIGINT, handler)
            with catching_interrupts():
                assert signal.getsignal(signal.SIGINT) is handler
            assert signal.getsignal(signal.SIGINT) is handler
    finally:
        signal.signal(signal.SIGINT, previous)
