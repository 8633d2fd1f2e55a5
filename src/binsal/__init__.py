"""binsal: quantitative benchmarks of gradient-based saliency on binarized vs full-precision nets.

The flow is one-way: ``binsal.datasets`` -> ``binsal.models`` -> ``binsal.saliency`` ->
``binsal.metrics`` (pure numpy) -> ``binsal.benchmarks`` (tidy rows) -> ``binsal.reports``.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from typing import TYPE_CHECKING

from binsal._version import __version__

if TYPE_CHECKING:  # for type checkers; at run time __getattr__ imports them on first use
    from binsal.models.own import wrap_model
    from binsal.pipeline import evaluate

__all__ = ["__version__", "evaluate", "wrap_model"]


def __getattr__(name: str):  # lazily: `import binsal` loads no TensorFlow
    if name == "evaluate":
        from binsal.pipeline import evaluate

        return evaluate
    if name == "wrap_model":
        from binsal.models.own import wrap_model

        return wrap_model
    raise AttributeError(f"module 'binsal' has no attribute {name!r}")
