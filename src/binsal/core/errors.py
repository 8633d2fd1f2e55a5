"""User-facing errors: the CLI prints their message on one line and exits non-zero."""


class BinsalError(Exception):
    """An error caused by user input or the environment, reported without a traceback."""


class UnknownNameError(BinsalError, KeyError):
    """A name that is not in a registry; the message lists the known names."""

    def __init__(self, kind: str, name: str, known: list[str]):
        self.kind, self.name, self.known = kind, name, sorted(known)
        super().__init__(f"unknown {kind} {name!r}; known {kind}s: {', '.join(self.known)}")

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self.args[0]


class MissingWeightsError(BinsalError):
    """Pretrained weight files are absent and cannot be downloaded."""


class CorruptCacheError(BinsalError):
    """A cache entry exists but cannot be read back."""


class InvalidInputError(BinsalError, ValueError):
    """Images, maps or targets with the wrong shape, dtype or non-finite values."""


class MethodNotDefinedError(InvalidInputError):
    """A saliency method that is not defined for a model (e.g. guided backprop through larq's
    sign / straight-through estimator); benchmarks check ``binsal.saliency.is_defined`` first
    and skip the pair, and the report says why."""
