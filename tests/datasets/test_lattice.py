import numpy as np
import pytest

from sngep.datasets._lattice import hex_lattice, square_lattice


def _hex(n_rows=18, n_cols=25):
    r, c = np.meshgrid(np.arange(n_rows), np.arange(2 * n_cols), indexing="ij")
    keep = (r + c) % 2 == 0
    r, c = r[keep], c[keep]
    return r, c, np.column_stack([c * 0.5, r * np.sqrt(3) / 2])  # unit spot spacing


def _transform(xy, degrees, scale, shift, jitter, seed=0):
    t = np.radians(degrees)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    rng = np.random.default_rng(seed)
    return (xy @ rot.T) * scale + shift + rng.normal(0, jitter * scale, xy.shape)


@pytest.mark.parametrize("degrees", [0.0, 0.4, -12.0, 25.0])
def test_hex_lattice_recovers_indices(degrees):
    r, c, xy = _hex()
    # drop a tissue-like subset so the lattice is not a full rectangle
    keep = np.hypot(xy[:, 0] - 12, xy[:, 1] - 7) < 8
    r, c, xy = r[keep], c[keep], xy[keep]
    fit = hex_lattice(_transform(xy, degrees, 137.0, (500.0, -40.0), 0.03))
    assert fit is not None
    assert np.all((fit.row + fit.col) % 2 == 0)
    assert fit.row.min() == 0 and fit.col.min() in (0, 1)
    assert np.unique(fit.row - r).size == 1 and np.unique(fit.col - c).size == 1  # a translation
    assert fit.residual < 0.15
    assert fit.spacing == pytest.approx(137.0, rel=0.05)
    assert fit.angle == pytest.approx(degrees, abs=1.0)


def test_square_lattice_recovers_indices_under_rotation_and_jitter():
    r, c = np.meshgrid(np.arange(20), np.arange(22), indexing="ij")
    r, c = r.ravel(), c.ravel()
    keep = np.hypot(r - 10, c - 11) < 9
    r, c = r[keep], c[keep]
    xy = _transform(np.column_stack([c, r]).astype(float), 31.5, 1.0, (-3.0, 2.0), 0.07, seed=2)
    fit = square_lattice(xy)
    assert fit is not None
    assert np.unique(fit.row - r).size == 1 and np.unique(fit.col - c).size == 1
    assert fit.residual < 0.3


def test_unstructured_points_are_rejected():
    pts = np.random.default_rng(0).uniform(0, 100, size=(400, 2))
    assert hex_lattice(pts) is None
    assert square_lattice(pts) is None


def test_two_spots_on_one_node_are_rejected():
    r, c, xy = _hex(8, 8)
    xy = np.vstack([xy, xy[10] + 0.01])
    assert hex_lattice(xy) is None


def test_square_array_is_not_taken_for_hex():
    r, c = np.meshgrid(np.arange(15), np.arange(15), indexing="ij")
    assert hex_lattice(np.column_stack([c.ravel(), r.ravel()]).astype(float)) is None
