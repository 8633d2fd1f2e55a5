"""Deterministic TensorFlow: op determinism and pinned thread counts, so that the same code,
seed and thread count give bitwise-identical weights and maps (TensorFlow's
``tf.config.experimental.enable_op_determinism``; without it two identical trainings here
differed by up to 0.0089 in a weight). On by default; ``binsal run --nondeterministic`` turns
it off. What was in force goes into every manifest (and so into the history)."""

from __future__ import annotations

import os
from typing import Any

THREADS_ENV = "BINSAL_TF_THREADS"
DEFAULT_INTRA_OP_THREADS = 2  # this project's reference machine (and CI) has 2 cores


def configure(deterministic: bool = True, intra_op_threads: int | None = None) -> dict[str, Any]:
    """Set TensorFlow's determinism and thread counts (``$BINSAL_TF_THREADS`` or 2 intra-op,
    1 inter-op) where they can still be set, and return what is in force. Thread counts are
    fixed once TensorFlow has started its runtime; then the record says so."""
    import tensorflow as tf

    # the public API has only enable_op_determinism; its counterparts live beside it
    from tensorflow.python.framework import config as tf_config

    intra = int(intra_op_threads or os.environ.get(THREADS_ENV) or DEFAULT_INTRA_OP_THREADS)
    pinned = True
    if deterministic:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(intra)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # the runtime is already up (e.g. a second run in one process)
            pinned = False
        tf.config.experimental.enable_op_determinism()
    else:
        tf_config.disable_op_determinism()
    return {
        "op_determinism": bool(tf_config.is_op_determinism_enabled()),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "threads_pinned_here": pinned and deterministic,
    }
