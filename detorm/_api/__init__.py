"""The two faces of the SDK over one implementation: ``_sync`` (``detorm``) and ``_aio``
(``detorm.aio``). Each declares its session, queries and resource classes as thin methods that
hand the shared ops (``detorm._ops``) to its driver; no logic lives here."""
