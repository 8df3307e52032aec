"""The one logging shim: ``start = logg.info("..."); logg.info("finished", time=start)``.

Everything goes through scanpy's logging (:mod:`scanpy.logging`), as squidpy does, so that
``sc.settings.verbosity`` decides what is shown and ``sc.settings.logfile`` where it goes
(stderr by default): ``0`` (``'error'``) shows errors only, ``1`` (``'warning'``, scanpy's
default) warnings, ``2`` (``'info'``) also the ``info`` lines with their timings, ``3``
(``'hint'``) also the ``deep`` details (the keys that were added) and ``4`` (``'debug'``)
everything. The root logger is never configured.

``info``/``debug``/``warning`` return a timestamp (a :class:`datetime.datetime`) to pass as
``time=`` to a later call, which appends the time elapsed since.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime


def _scanpy_logging():
    # imported on first use: `import sngep` stays light
    from scanpy import logging as sc_logging

    return sc_logging


def info(msg: str, *, time: datetime | None = None, deep: str | None = None) -> datetime:
    """Log at INFO (shown from ``sc.settings.verbosity = 2``); return a timestamp.

    ``deep`` is appended from verbosity 3 (``'hint'``) on.
    """
    return _scanpy_logging().info(msg, time=time, deep=deep)


def debug(msg: str, *, time: datetime | None = None, deep: str | None = None) -> datetime:
    """Log at DEBUG (shown at ``sc.settings.verbosity = 4``); return a timestamp."""
    return _scanpy_logging().debug(msg, time=time, deep=deep)


def warning(msg: str, *, time: datetime | None = None, deep: str | None = None) -> datetime:
    """Log a warning (shown from ``sc.settings.verbosity = 1``, scanpy's default)."""
    return _scanpy_logging().warning(msg, time=time, deep=deep)
