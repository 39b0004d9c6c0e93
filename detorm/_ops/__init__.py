"""Ops: effects as data, the HTTP op (retries, re-login, stream framing), reads, actions,
metrics, logs and downloads. Imports ``_plan`` and below; drivers (``_api``) run them."""
