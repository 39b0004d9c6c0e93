"""Pydantic models of the Determined master's JSON, shared by the SDK and detorm.local.

Names follow the proto messages without their ``v1`` prefix. See ``_base`` for the conventions
(camelCase, int64 strings, NaN strings, nanosecond timestamps, presence rules).
"""

from ._api import *  # noqa: F403
from ._base import *  # noqa: F403
from ._common import *  # noqa: F403
from ._enums import *  # noqa: F403
from ._experiments import *  # noqa: F403
from ._filter import *  # noqa: F403
from ._registry import *  # noqa: F403
