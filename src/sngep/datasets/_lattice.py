"""Recover integer array indices (``array_row``, ``array_col``) from spot coordinates.

Spots of Visium (hexagonal) and classic Spatial Transcriptomics (square) arrays sit on a
lattice. Given only their (x, y) coordinates, possibly rotated, scaled and shifted, the
lattice is found from the nearest-neighbour vectors (their dominant direction with 6- or
4-fold symmetry, and their length), every spot is snapped to the nearest lattice node, an
affine map from indices to coordinates is refit by least squares, and the snapping is
repeated until no index changes. The result is accepted only when it is clean: every spot
lies within ``tol`` spot spacings of its fitted node and no two spots share a node.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree


@dataclass
class Lattice:
    """Recovered array indices and the quality of the fit.

    ``row``/``col`` are int64 and start at 0 (hexagonal: ``row + col`` even, so the column
    minimum may be 1). ``residual`` is the largest distance between a spot and its fitted
    node in units of ``spacing``, the centre-to-centre distance of neighbouring spots
    (snapping becomes ambiguous at 0.5); ``angle`` (degrees) is the direction of the rows
    in the input frame.
    """

    row: np.ndarray
    col: np.ndarray
    residual: float
    angle: float
    spacing: float


def _dominant_angle(xy: np.ndarray, fold: int) -> tuple[float, float, np.ndarray]:
    """Direction (radians, modulo 360/fold) and length of the nearest-neighbour vectors."""
    dist, idx = cKDTree(xy).query(xy, k=min(fold + 1, xy.shape[0]))
    nn = float(np.median(dist[:, 1]))
    vec = xy[idx[:, 1:]] - xy[:, None, :]
    near = dist[:, 1:] < 1.3 * nn
    angles = np.arctan2(vec[..., 1], vec[..., 0])[near]
    theta = float(np.angle(np.exp(1j * fold * angles).mean()) / fold)
    return theta, nn, vec[near]


def _rotation(theta: float) -> np.ndarray:
    """Matrix that rotates by ``-theta`` (applied as ``xy @ R.T``)."""
    return np.array([[np.cos(theta), np.sin(theta)], [-np.sin(theta), np.cos(theta)]])


def _circular_offset(v: np.ndarray, period: float = 1.0) -> float:
    return float(np.angle(np.exp(2j * np.pi * v / period).mean()) / (2 * np.pi) * period)


def _refine(
    xy: np.ndarray, index: np.ndarray, snap: Callable[[np.ndarray], np.ndarray], n_iter: int = 20
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Alternate an affine least-squares fit (index -> xy) and snapping of its inverse.

    Returns the indices, the fitted node position of every spot and the linear part of the
    map (``2 x 2``, index units -> coordinates).
    """
    for _ in range(n_iter + 1):
        design = np.column_stack([index, np.ones(index.shape[0])])
        coef, *_ = np.linalg.lstsq(design, xy, rcond=None)
        m, b = coef[:2].T, coef[2]
        if abs(np.linalg.det(m)) < 1e-12:
            break
        new = snap(np.linalg.solve(m, (xy - b).T).T)
        if np.array_equal(new, index):
            break
        index = new
    return index, design @ coef, m


def _unique_nodes(row: np.ndarray, col: np.ndarray) -> bool:
    keys = (row - row.min()) * (col.max() - col.min() + 1) + (col - col.min())
    return np.unique(keys).size == row.size


def hex_lattice(xy: np.ndarray, *, tol: float = 0.25) -> Lattice | None:
    """Visium-style hexagonal indices from coordinates, or ``None`` if they are not clean.

    ``xy`` is ``(n, 2)`` with y pointing down (image convention). Rows run along the
    neighbour direction closest to the x axis; ``array_row`` grows with y, ``array_col`` with
    x, and neighbours within a row differ by 2 in ``array_col`` (Visium's convention).
    """
    xy = np.asarray(xy, dtype=np.float64)
    if xy.shape[0] < 7:
        return None
    theta, nn, _ = _dominant_angle(xy, 6)
    p = xy @ _rotation(theta).T  # rows become horizontal
    col_f = p[:, 0] / (nn / 2)
    row_f = p[:, 1] / (nn * np.sqrt(3) / 2)
    row0 = np.round(row_f - _circular_offset(row_f))
    col0 = row0 + 2 * np.round((col_f - row0 - _circular_offset(col_f - row0, 2.0)) / 2)

    def snap(frac: np.ndarray) -> np.ndarray:
        r = np.round(frac[:, 0])
        return np.column_stack([r, r + 2 * np.round((frac[:, 1] - r) / 2)])

    index, nodes, m = _refine(xy, np.column_stack([row0, col0]), snap)
    spacing = float(np.linalg.norm(m @ np.array([0.0, 2.0])))  # two columns = one spot
    residual = float(np.linalg.norm(xy - nodes, axis=1).max() / spacing)
    row, col = index[:, 0].astype(np.int64), index[:, 1].astype(np.int64)
    if residual > tol or not _unique_nodes(row, col):
        return None
    r_min, c_min = row.min(), col.min()
    if (r_min + c_min) % 2:
        c_min -= 1  # keep row + col even
    return Lattice(row - r_min, col - c_min, residual, float(np.degrees(theta)), spacing)


def square_lattice(xy: np.ndarray, *, tol: float = 0.35) -> Lattice | None:
    """Square-array indices from coordinates, or ``None`` if they are not clean.

    ``array_row`` follows y and ``array_col`` x after undoing the lattice rotation; both
    start at 0. Jitter of the spot positions (Spatial Transcriptomics spot detection moves
    spots by up to ~0.2 spacings) is absorbed by the snapping.
    """
    xy = np.asarray(xy, dtype=np.float64)
    if xy.shape[0] < 5:
        return None
    theta, nn, vec = _dominant_angle(xy, 4)
    rot = _rotation(theta)
    p, v = xy @ rot.T, vec @ rot.T
    along_x = np.abs(v[:, 0]) > np.abs(v[:, 1])
    sx = np.median(np.abs(v[along_x, 0])) if along_x.any() else nn
    sy = np.median(np.abs(v[~along_x, 1])) if (~along_x).any() else nn
    q = p / np.array([sx, sy])
    col0 = np.round(q[:, 0] - _circular_offset(q[:, 0]))
    row0 = np.round(q[:, 1] - _circular_offset(q[:, 1]))
    index, nodes, m = _refine(xy, np.column_stack([row0, col0]), np.round)
    spacing = float(np.sqrt(abs(np.linalg.det(m))))
    residual = float(np.linalg.norm(xy - nodes, axis=1).max() / spacing)
    row, col = index[:, 0].astype(np.int64), index[:, 1].astype(np.int64)
    if residual > tol or not _unique_nodes(row, col):
        return None
    return Lattice(row - row.min(), col - col.min(), residual, float(np.degrees(theta)), spacing)
