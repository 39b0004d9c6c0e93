"""Pydantic models of the Determined master's JSON, shared by the SDK and detorm.local.

Names follow the proto messages without their ``v1`` prefix. See ``_base`` for the conventions
(camelCase, int64 strings, NaN strings, nanosecond timestamps, presence rules).
"""

from ._api import *
from ._base import *
from ._cluster import *
from ._common import *
from ._enums import *
from ._experiments import *
from ._filter import *
from ._registry import *
from ._tasks import *
