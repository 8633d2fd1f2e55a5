"""The package version, on its own so that any layer can read it without importing the
package's top-level API (``binsal.evaluate`` lives above every layer)."""

__version__ = "0.1.0"
