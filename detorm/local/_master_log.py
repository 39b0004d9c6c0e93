"""The master's own log (``logger.LogBuffer``): detorm.local's log records kept in memory,
served by ``MasterLogs`` (``_routes/master.py``)."""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from detorm._wire import LogLevel

__all__ = ["LOGGER", "MASTER_LOG", "LogBuffer", "LogEntry", "install_log_buffer"]

LOG_CAPACITY: Final = 25_000  # logStoreSize (cmd/determined-master/root.go)
LOGGER: Final = logging.getLogger("detorm.local")

_PROTO_LEVELS: Final = (
    (logging.CRITICAL, LogLevel.CRITICAL), (logging.ERROR, LogLevel.ERROR),
    (logging.WARNING, LogLevel.WARNING), (logging.INFO, LogLevel.INFO),
    (logging.DEBUG, LogLevel.DEBUG),
)  # fmt: skip


@dataclass(frozen=True)
class LogEntry:
    id: int
    message: str
    time: datetime
    level: LogLevel


class LogBuffer(logging.Handler):
    """``logger.LogBuffer``: the newest :data:`LOG_CAPACITY` records of the process, each with
    its index among every record ever written (the entry's id). One per process, as the
    loggers are: masters served from one process share it."""

    def __init__(self, capacity: int = LOG_CAPACITY) -> None:
        super().__init__(logging.DEBUG)
        self._entries: deque[LogEntry] = deque(maxlen=capacity)
        self._total = 0
        self._changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        level = next((lv for n, lv in _PROTO_LEVELS if record.levelno >= n), LogLevel.TRACE)
        moment = datetime.fromtimestamp(record.created).astimezone()
        with self._changed:
            self._entries.append(LogEntry(self._total, record.getMessage(), moment, level))
            self._total += 1
            self._changed.notify_all()

    def __len__(self) -> int:
        with self._changed:
            return self._total

    def entries(self, start: int, limit: int) -> list[LogEntry]:
        """``Entries(start, -1, limit)``: from id ``start`` (or the oldest kept), at most
        ``limit`` (-1: all)."""
        with self._changed:
            oldest = self._total - len(self._entries)
            first = max(start, oldest, 0)
            count = self._total - first if limit < 0 else min(limit, self._total - first)
            return [self._entries[first - oldest + i] for i in range(max(count, 0))]

    def wait_beyond(self, last: int, timeout: float) -> None:
        """Wait until an entry with an id above ``last`` exists, at most ``timeout`` seconds."""
        with self._changed:
            self._changed.wait_for(lambda: self._total > last + 1, timeout)


MASTER_LOG: Final = LogBuffer()


def install_log_buffer() -> None:
    """Records of detorm.local and its server (uvicorn) go to the buffer, like the master's
    logrus hook; detorm.local logs INFO and above unless the process set its level. Again
    after uvicorn configured its loggers (its dictConfig drops their handlers)."""
    for name in ("detorm.local", "uvicorn.error"):
        logger = logging.getLogger(name)
        if MASTER_LOG not in logger.handlers:
            logger.addHandler(MASTER_LOG)
    if LOGGER.level == logging.NOTSET:
        LOGGER.setLevel(logging.INFO)


install_log_buffer()
