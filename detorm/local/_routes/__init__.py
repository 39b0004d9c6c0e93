"""Handlers of the master's RPCs, one module per family; importing registers them."""

from . import auth, master, users  # noqa: F401
