"""The one progress bar: ``with progress(total=n, desc="similarity", disable=not show) as bar``.

What it does differently from a bare ``tqdm.auto.tqdm``:

- In Jupyter it draws the widget bar only when ``ipywidgets`` is installed; otherwise (and
  outside Jupyter) the plain text bar, without tqdm's "IProgress not found" warning.
- The finished bar stays (``leave=True``): one line per stage with its count, duration and
  rate, a record of how long each stage took.
- When the output is not a terminal (a log file, a pipe, a batch job) the bar is redrawn at
  most every :data:`NON_TTY_MININTERVAL` seconds instead of ten times a second, so a short
  run leaves its final line only and a long one a line every half minute.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tqdm import tqdm

#: Seconds between redraws when the output is not a terminal (tqdm's ``mininterval``).
NON_TTY_MININTERVAL = 30.0


def progress(
    iterable: Iterable | None = None,
    *,
    total: float | None = None,
    desc: str | None = None,
    unit: str = "it",
    disable: bool = False,
    leave: bool = True,
    file: IO[str] | None = None,
    **kwargs: Any,
) -> tqdm:
    """A tqdm progress bar with sngep's defaults (see the module docstring).

    Parameters
    ----------
    iterable
        Iterable to wrap (``for epoch in progress(range(n), desc="DARLC")``); or ``None``
        and call ``bar.update(k)`` yourself.
    total
        Number of expected iterations (default: ``len(iterable)`` when defined).
    desc
        Label in front of the bar; change it later with ``bar.set_description(...)``.
    unit
        Name of one iteration (``'epoch'``, ``'block'``, ...).
    disable
        No bar at all (pass ``disable=not show_progress_bar``).
    leave
        Keep the finished bar as a one-line summary.
    file
        Where to write; default ``sys.stderr`` at the time of the call.
    **kwargs
        Passed on to tqdm (e.g. ``postfix``, ``mininterval`` to override the throttling).

    Returns
    -------
    The tqdm instance: a context manager and an iterator, with ``update``,
    ``set_postfix``, ``set_description`` and ``close``.
    """
    stream = sys.stderr if file is None else file
    notebook = _in_notebook()
    if notebook and _has_ipywidgets():
        from tqdm.notebook import tqdm as bar_class
    else:
        from tqdm.std import tqdm as bar_class
    if not notebook and not _is_tty(stream):
        kwargs.setdefault("mininterval", NON_TTY_MININTERVAL)
        kwargs.setdefault("ncols", 100)
    return bar_class(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        disable=disable,
        leave=leave,
        file=stream,
        **kwargs,
    )


def _in_notebook() -> bool:
    """True inside a Jupyter kernel (notebook, lab, VS Code), not in a terminal IPython."""
    if "ipykernel.zmqshell" not in sys.modules or "IPython" not in sys.modules:
        return False
    shell = sys.modules["IPython"].get_ipython()
    return type(shell).__name__ == "ZMQInteractiveShell"


def _has_ipywidgets() -> bool:
    return importlib.util.find_spec("ipywidgets") is not None


def _is_tty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
