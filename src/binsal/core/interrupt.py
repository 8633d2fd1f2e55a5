"""Ctrl-C that survives libraries which wrap it.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be when SIGINT
arrives. Inside TensorFlow's tracing (AutoGraph) it surfaces as a ``SystemError`` wrapped
in a ``StagingError``, which a handler that isolates one benchmark's failure would record
and go on from, and which the CLI would print as a crash. :func:`catching_interrupts`
installs a SIGINT handler that also remembers the signal; every broad ``except Exception``
of the suite calls :func:`reraise_if_interrupted` first, so whatever the interrupt turned
into, it stops the run as Ctrl-C (exit 130, finished stages kept) and is never recorded
as a failed benchmark, cell or section.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_seen = threading.Event()


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    _seen.set()
    raise KeyboardInterrupt


def interrupted() -> bool:
    """Whether SIGINT arrived while :func:`catching_interrupts` was active."""
    return _seen.is_set()


def reraise_if_interrupted(exc: BaseException | None = None) -> None:
    """Raise ``KeyboardInterrupt`` (chained to ``exc``) if the run was interrupted: call it
    first in an ``except Exception`` that would otherwise record the error and go on."""
    if _seen.is_set():
        raise KeyboardInterrupt from exc


@contextmanager
def catching_interrupts() -> Iterator[None]:
    """Remember SIGINT for the block's duration; the previous handler is restored after.

    Installed only from the main thread and only over Python's default handler: a process
    started with SIGINT ignored (a background job) stays deaf to it, as it would be without
    binsal, and an embedding application's own handler is left alone."""
    _seen.clear()
    own = (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )
    if own:
        signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        if own:
            signal.signal(signal.SIGINT, signal.default_int_handler)
