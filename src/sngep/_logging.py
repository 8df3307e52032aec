"""The one logging shim: ``start = logg.info("..."); logg.info("finished", time=start)``.

Uses the ``sngep`` logger from :mod:`logging`; never configures the root logger.
"""

from __future__ import annotations

import logging
import time as _time

_logger = logging.getLogger("sngep")


def _emit(level: int, msg: str, *, time: float | None = None, deep: str | None = None) -> float:
    now = _time.perf_counter()
    if time is not None:
        msg = f"{msg} ({now - time:.2f}s)"
    if deep is not None:
        msg = f"{msg}\n{deep}"
    _logger.log(level, msg)
    return now


def info(msg: str, *, time: float | None = None, deep: str | None = None) -> float:
    """Log at INFO; return a timestamp usable as ``time=`` in a later call."""
    return _emit(logging.INFO, msg, time=time, deep=deep)


def debug(msg: str, *, time: float | None = None, deep: str | None = None) -> float:
    """Log at DEBUG; return a timestamp."""
    return _emit(logging.DEBUG, msg, time=time, deep=deep)


def warning(msg: str) -> None:
    """Log a warning."""
    _logger.warning(msg)
