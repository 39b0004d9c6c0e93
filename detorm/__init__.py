"""detorm: a typed, ORM-style Python SDK for Determined AI clusters."""

__version__ = "0.1.0"

__all__ = ["__version__"]
