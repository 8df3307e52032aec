"""Torch models. ``import sngep.models`` is cheap; torch loads on first use of ``DARLC``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sngep.models.darlc import DARLC, DARLCConfig

__all__ = ["DARLC", "DARLCConfig"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from sngep.models import darlc

        return getattr(darlc, name)
    msg = f"module 'sngep.models' has no attribute {name!r}"
    raise AttributeError(msg)
