"""Session state: the identity map, the unit of work and ``SessionBase``. Imports ``_ops`` and
below."""
