"""Device selection shared by everything in :mod:`sngep.models.darlc` that trains."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

__all__ = ["adam", "resolve_device"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn a user's ``device`` argument into a :class:`torch.device`.

    Parameters
    ----------
    device
        ``"auto"`` (CUDA when :func:`torch.cuda.is_available`, else CPU), any string that
        :class:`torch.device` accepts (``"cpu"``, ``"cuda"``, ``"cuda:1"``), or a
        :class:`torch.device`.

    Returns
    -------
    The resolved device.

    Raises
    ------
    ValueError
        If the string is not a device name, or CUDA is asked for on a machine without it.
    """
    if isinstance(device, torch.device):
        resolved = device
    elif isinstance(device, str):
        if device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            resolved = torch.device(device)
        except RuntimeError as err:
            msg = f"device={device!r} is not a torch device name; use 'auto', 'cpu' or 'cuda'"
            raise ValueError(msg) from err
    else:
        msg = f"device must be a string or torch.device, got {type(device).__name__}"
        raise TypeError(msg)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        msg = f"device={str(resolved)!r} requested but CUDA is not available; use 'auto' or 'cpu'"
        raise ValueError(msg)
    return resolved


def adam(params: Iterable[Any], **kwargs: Any) -> torch.optim.Adam:
    """:class:`torch.optim.Adam` with the fused kernel where this torch has it for the
    parameters' device, else the ``foreach`` one (same update rule either way).

    On the CPU the fused step is 3-4x faster than ``foreach`` on DARLC's 5.8 M parameters
    (17 -> 5 ms a step, one thread): most of them are the decoder's last layer (main 4.1.5,
    D-128-256-512-1024-H*W), whose update costs the same whatever the batch size. Fused
    Adam on the CPU needs torch >= 2.4; older builds raise at construction and get
    ``foreach``.
    """
    groups = list(params)
    try:
        return torch.optim.Adam(groups, fused=True, **kwargs)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(groups, foreach=True, **kwargs)
