"""binsal: quantitative benchmarks of gradient-based saliency on binarized vs full-precision nets.

The flow is one-way: ``binsal.datasets`` -> ``binsal.models`` -> ``binsal.saliency`` ->
``binsal.metrics`` (pure numpy) -> ``binsal.benchmarks`` (tidy rows) -> ``binsal.reports``.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
