"""Read R ``.rda`` files with :mod:`rdata`, keeping what its defaults drop.

Two R classes need custom constructors: ``dgCMatrix`` (Matrix package, column-compressed
sparse; :mod:`rdata` has no constructor for it) becomes a :class:`scipy.sparse.csc_matrix`
with its dimnames, and a ``factor`` that carries ``names`` (a named factor such as MERINGUE's
``annot``) becomes a :class:`pandas.Series` indexed by those names instead of losing them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp


@dataclass
class SparseR:
    """A ``dgCMatrix``: ``matrix`` is ``(n_rows, n_cols)`` CSC, with R's row and column names."""

    matrix: sp.csc_matrix
    row_names: np.ndarray | None
    col_names: np.ndarray | None


def _names(x: Any) -> np.ndarray | None:
    if x is None:
        return None
    return np.asarray([str(v) for v in x], dtype=object)


def _dgcmatrix(obj: Any, attrs: dict[str, Any]) -> SparseR:
    n_rows, n_cols = (int(v) for v in attrs["Dim"])
    matrix = sp.csc_matrix(
        (np.asarray(attrs["x"]), np.asarray(attrs["i"]), np.asarray(attrs["p"])),
        shape=(n_rows, n_cols),
    )
    dimnames = attrs.get("Dimnames") or [None, None]
    return SparseR(matrix, _names(dimnames[0]), _names(dimnames[1]))


def _factor(obj: Any, attrs: dict[str, Any]) -> pd.Categorical | pd.Series:
    from rdata.conversion import factor_constructor

    values = factor_constructor(obj, attrs)
    names = attrs.get("names")
    if names is not None:
        return pd.Series(values, index=pd.Index(_names(names)))
    return values


def read_rda(path: str | Path) -> dict[str, Any]:
    """Parse an ``.rda`` file into Python objects (``{name: object}``).

    Needs the optional dependency :mod:`rdata` (``pip install rdata``).
    """
    try:
        import rdata
        from rdata.conversion import DEFAULT_CLASS_MAP
    except ImportError as err:  # pragma: no cover - depends on the environment
        msg = (
            "reading the source .rda files needs the 'rdata' package: "
            "pip install rdata (or pip install 'sngep[data]')"
        )
        raise ImportError(msg) from err
    constructors = {**DEFAULT_CLASS_MAP, "dgCMatrix": _dgcmatrix, "factor": _factor}
    return rdata.read_rda(str(path), constructor_dict=constructors)


def dense_with_names(x: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(values, row_names, col_names)`` of an R matrix read by :mod:`rdata` (an xarray)."""
    values = np.asarray(x.values)
    dims = list(x.dims)
    rows = _names(x.coords[dims[0]].values)
    cols = _names(x.coords[dims[1]].values)
    return values, rows, cols
