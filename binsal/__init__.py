"""binsal: quantitative benchmarks of gradient-based saliency on binarized vs full-precision nets.

The flow is one-way: ``binsal.datasets`` -> ``binsal.models`` -> ``binsal.saliency`` ->
``binsal.metrics`` (pure numpy) -> ``binsal.benchmarks`` (tidy rows) -> ``binsal.reports``.
"""

__version__ = "0.1.0"
