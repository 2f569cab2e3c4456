"""The package version (one place; setup.cfg carries the same number)."""

__version__ = "0.1.0"
