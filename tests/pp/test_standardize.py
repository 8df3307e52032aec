"""pp.standardize_images and the pure numpy standardize() behind it."""

import subprocess
import sys

import anndata as ad
import numpy as np
import pytest
import scanpy as sc

import sngep
from sngep.pp._standardize import standardize


def _naive(images, mask):
    out = np.zeros(images.shape, dtype=np.float64)
    for i, img in enumerate(images.astype(np.float64)):
        v = img[mask]
        if v.std() > 1e-6 * np.abs(v).max(initial=0.0):
            out[i][mask] = (v - v.mean()) / v.std()
    return out


def test_standardize_against_naive_reference():
    rng = np.random.default_rng(0)
    mask = rng.random((9, 7)) < 0.7
    images = rng.gamma(1.5, 2.0, (6, 9, 7)).astype(np.float32) * mask
    images[1] = 0.0  # an all-zero gene
    images[2] = np.where(mask, 0.1, 0.0)  # constant inside the tissue (float32 0.1)
    images[3, ~mask] = 5.0  # outside the tissue ignored
    got = standardize(images, mask)
    assert got.dtype == np.float32 and got.shape == images.shape
    np.testing.assert_allclose(got, _naive(images, mask), atol=1e-6)
    inside = got[:, mask]
    np.testing.assert_allclose(inside[[0, 3, 4, 5]].mean(axis=1), 0, atol=1e-6)
    np.testing.assert_allclose(inside[[0, 3, 4, 5]].std(axis=1), 1, rtol=1e-5)
    assert not got[1].any() and not got[2].any()  # constant images -> 0, not rounding noise
    assert not got[:, ~mask].any()
    np.testing.assert_allclose(
        standardize(images), _naive(images, np.ones((9, 7), bool)), atol=1e-6
    )
    with pytest.raises(ValueError, match="mask"):
        standardize(images, mask[:-1])
    with pytest.raises(ValueError, match=r"\(n, H, W\)"):
        standardize(images[0], mask)


def test_standardize_matches_the_darlc_copy():
    train = pytest.importorskip("sngep.models.darlc.train")
    if not hasattr(train, "normalise_images"):
        pytest.skip("the DARLC core no longer has its own copy")
    rng = np.random.default_rng(1)
    mask = rng.random((8, 8)) < 0.8
    images = rng.gamma(1.5, 2.0, (5, 8, 8)).astype(np.float32) * mask
    np.testing.assert_allclose(
        standardize(images, mask), train.normalise_images(images, mask), atol=2e-6
    )


def test_pure_function_imports_without_torch():
    code = (
        "import sys; from sngep.pp._standardize import standardize; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_standardize_images_writes_varm_uns_copy_and_round_trip(tmp_path):
    a = sngep.datasets.synthetic(
        4, patterns=("band", "blob"), n_variants=1, shape=(12, 12), random_state=0
    )
    sc.pp.normalize_total(a)
    sc.pp.log1p(a)
    sngep.pp.gene_images(a)
    out = sngep.pp.standardize_images(a, copy=True)
    assert "gene_images_std" not in a.varm
    std = out.varm["gene_images_std"]
    images, mask = a.varm["gene_images"], a.uns["gene_images"]["mask"]
    assert std.dtype == np.float32 and std.shape == images.shape
    np.testing.assert_allclose(std, standardize(images, mask))
    info = out.uns["gene_images_std"]
    np.testing.assert_array_equal(info["mask"], mask)
    assert info["n_obs"] == a.n_obs and info["params"]["images_key"] == "gene_images"
    sngep.pp.standardize_images(a, key_added="z")
    np.testing.assert_array_equal(a.varm["z"], std)
    # the result is a valid images_key for the tl calls
    sngep.tl.seed_similarity(a, images_key="z", show_progress_bar=False)
    a.write_h5ad(tmp_path / "a.h5ad")
    back = ad.read_h5ad(tmp_path / "a.h5ad")
    np.testing.assert_array_equal(back.varm["z"], a.varm["z"])
    with pytest.raises(KeyError, match="pp.gene_images"):
        sngep.pp.standardize_images(a, images_key="missing")
