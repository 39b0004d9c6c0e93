"""detorm.local: a Determined-compatible master on SQLite.

Start it with ``detorm serve`` (add ``--demo`` for a seeded cluster), or from Python:

    from detorm.local import LocalMaster, Seeder

    with LocalMaster() as master:
        with Seeder(master.database) as seed:
            seed.experiment(name="baseline")
        ...  # point detorm, the det CLI or the official SDK at master.url
"""

from ._db import Database
from ._seed import Seeder, default_config
from ._server import LocalMaster, default_db_path, serve

__all__ = ["Database", "LocalMaster", "Seeder", "default_config", "default_db_path", "serve"]
