"""Planning: conditions, columns and lookups, the planner, client-side evaluation, queries
(``QueryBase`` and the typed filters), edits, loaders, and requests as data (``Call``). Imports
``_resources``, ``_wire``, ``_io`` and ``errors``, no I/O."""
