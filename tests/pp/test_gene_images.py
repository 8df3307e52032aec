import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import sngep


def _hex_patch():
    rows, cols = [], []
    for r in range(3):
        for c in range(r % 2, 6, 2):
            rows.append(r)
            cols.append(c)
    x = np.arange(1, 10 * 2 + 1, dtype=np.float32)[: 9 * 2].reshape(9, 2)
    obs = pd.DataFrame({"array_row": rows, "array_col": cols}, index=[f"s{i}" for i in range(9)])
    return ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=["g0", "g1"]))


def test_hex_patch_maps_to_expected_pixels():
    adata = _hex_patch()
    sngep.pp.gene_images(adata)
    expected = np.array([[0, 0], [0, 1], [0, 2], [1, 1], [1, 2], [1, 3], [2, 0], [2, 1], [2, 2]])
    np.testing.assert_array_equal(adata.obsm["gene_image_pixel"], expected)
    assert adata.uns["gene_images"]["params"]["grid"] == "visium"
    imgs = adata.varm["gene_images"]
    assert imgs.shape == (2, 3, 4)
    mask = adata.uns["gene_images"]["mask"]
    assert mask.sum() == 9 and not mask[0, 3] and not mask[1, 0]
    for i, (r, c) in enumerate(expected):
        np.testing.assert_allclose(imgs[:, r, c], adata.X[i])
    assert imgs[0, 0, 3] == 0


def test_sparse_equals_dense_and_layer():
    adata = _hex_patch()
    dense = sngep.pp.gene_images(adata, copy=True)
    adata.X = sp.csr_matrix(adata.X)
    adata.layers["other"] = adata.X * 2
    sparse = sngep.pp.gene_images(adata, copy=True)
    np.testing.assert_array_equal(dense.varm["gene_images"], sparse.varm["gene_images"])
    lay = sngep.pp.gene_images(adata, layer="other", copy=True)
    np.testing.assert_allclose(lay.varm["gene_images"], 2 * dense.varm["gene_images"])


def test_square_array_and_binning_average():
    obs = pd.DataFrame({"array_row": [0, 0, 1, 1], "array_col": [0, 1, 0, 1]}, index=list("abcd"))
    adata = ad.AnnData(X=np.eye(4, dtype=np.float32), obs=obs)
    sngep.pp.gene_images(adata)
    assert adata.uns["gene_images"]["params"]["grid"] == "array"
    assert adata.varm["gene_images"].shape == (4, 2, 2)
    # arbitrary coordinates: two spots share a pixel and are averaged
    coords = np.array([[0.0, 0.0], [0.1, 0.05], [1.0, 0.0], [0.0, 1.0]])
    b = ad.AnnData(X=np.array([[2.0], [4.0], [1.0], [5.0]], dtype=np.float32))
    b.obsm["spatial"] = coords
    sngep.pp.gene_images(b, resolution=1.0)
    img = b.varm["gene_images"][0]
    assert b.uns["gene_images"]["params"]["grid"] == "bin"
    assert img[0, 0] == pytest.approx(3.0)  # mean of 2 and 4
    assert img[0, 1] == pytest.approx(1.0)  # x -> column
    assert img[1, 0] == pytest.approx(5.0)  # y -> row
    assert b.uns["gene_images"]["params"]["n_spots_per_pixel_max"] == 2


def test_shape_and_pad_to_never_crop():
    adata = _hex_patch()
    sngep.pp.gene_images(adata, pad_to=4)
    assert adata.varm["gene_images"].shape == (2, 4, 4)
    sngep.pp.gene_images(adata, shape=(10, 12))
    assert adata.varm["gene_images"].shape == (2, 10, 12)
    with pytest.raises(ValueError, match="never cropped"):
        sngep.pp.gene_images(adata, shape=(2, 2))


def test_copy_leaves_input_unchanged_and_roundtrip(tmp_path):
    adata = _hex_patch()
    before = adata.copy()
    out = sngep.pp.gene_images(adata, copy=True, key_added="imgs")
    assert "imgs" not in adata.varm and "gene_image_pixel" not in adata.obsm
    np.testing.assert_array_equal(adata.X, before.X)
    out.write_h5ad(tmp_path / "a.h5ad")
    back = ad.read_h5ad(tmp_path / "a.h5ad")
    np.testing.assert_array_equal(back.varm["imgs"], out.varm["imgs"])
    np.testing.assert_array_equal(back.uns["imgs"]["mask"], out.uns["imgs"]["mask"])
    np.testing.assert_array_equal(back.uns["imgs"]["shape"], out.uns["imgs"]["shape"])
    np.testing.assert_array_equal(back.obsm["gene_image_pixel"], out.obsm["gene_image_pixel"])


def test_errors():
    adata = ad.AnnData(X=np.ones((3, 2), dtype=np.float32))
    with pytest.raises(KeyError, match="no spatial coordinates"):
        sngep.pp.gene_images(adata)
    adata = _hex_patch()
    adata.X[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        sngep.pp.gene_images(adata)
    with pytest.raises(KeyError, match="layer"):
        sngep.pp.gene_images(_hex_patch(), layer="missing")
    dup = _hex_patch()
    dup.obs["array_col"] = 0
    dup.obs["array_row"] = 0
    with pytest.raises(ValueError, match="same pixel"):
        sngep.pp.gene_images(dup, grid="array")


def test_read_visium_output_flows(shared_data):
    import warnings

    import squidpy as sq

    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # sc.read_visium warns; the README's call not
        adata = sq.read.visium(shared_data / "visium_spaceranger_format")
    adata.var_names_make_unique()
    sngep.pp.gene_images(adata)
    assert adata.uns["gene_images"]["params"]["grid"] == "visium"
    imgs = adata.varm["gene_images"]
    pix = adata.obsm["gene_image_pixel"]
    x = adata.X.toarray()
    # every spot's value lands in its own pixel
    np.testing.assert_allclose(imgs[:, pix[:, 0], pix[:, 1]].T, x)
    assert adata.uns["gene_images"]["mask"].sum() == adata.n_obs
    assert imgs.shape[1] <= 78 and imgs.shape[2] <= 65


def test_large_scatter_is_vectorised():
    # 16k genes x 4k spots must be a single sparse product, not a per-gene loop (shape check only;
    # the time is measured in benchmarks/)
    rng = np.random.default_rng(0)
    n_spots, n_genes = 400, 1600
    x = sp.random(n_spots, n_genes, density=0.05, random_state=0, format="csr", dtype=np.float32)
    a = ad.AnnData(X=x)
    a.obsm["spatial"] = rng.uniform(0, 20, size=(n_spots, 2))
    sngep.pp.gene_images(a, resolution=1.0)
    imgs = a.varm["gene_images"]
    pix = a.obsm["gene_image_pixel"]
    # pixel values are means of their spots
    flat = pix[:, 0] * imgs.shape[2] + pix[:, 1]
    g = 7
    expected = np.bincount(
        flat, weights=x[:, g].toarray().ravel(), minlength=imgs.shape[1] * imgs.shape[2]
    )
    cnt = np.bincount(flat, minlength=expected.size)
    expected = np.divide(expected, cnt, out=np.zeros_like(expected), where=cnt > 0)
    np.testing.assert_allclose(imgs[g].ravel(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.integration
def test_dlpfc_gene_images_every_spot_lands_in_its_pixel(shared_data):
    adata = sngep.datasets.dlpfc("151673", path=shared_data)[:, :300].copy()
    sngep.pp.gene_images(adata)
    imgs = adata.varm["gene_images"]
    rows = adata.obs["array_row"].to_numpy()
    cols = adata.obs["array_col"].to_numpy()
    # hex mapping of main 4.1.1: (row - min, ceil((col - min) / 2)); a full slide is at most 78 x 65
    h = rows.max() - rows.min() + 1
    w = -(-(cols.max() - cols.min()) // 2) + 1
    assert imgs.shape == (300, h, w) and h <= 78 and w <= 65
    assert adata.uns["gene_images"]["mask"].sum() == adata.n_obs  # collision-free
    pix = adata.obsm["gene_image_pixel"]
    np.testing.assert_allclose(imgs[:, pix[:, 0], pix[:, 1]].T, adata.X.toarray(), rtol=1e-6)


# --------------------------------------------------------------- input checks (issue: UX)
def _counts(random_state=0):
    return sngep.datasets.synthetic(
        3, patterns=("band", "blob"), n_variants=1, shape=(10, 10), random_state=random_state
    )


def test_warns_on_raw_counts_not_after_normalising(sc_log):
    import scanpy as sc

    a = _counts()
    x = a.X.toarray() if sp.issparse(a.X) else a.X
    assert np.array_equal(x, np.rint(x)) and x.max() > 1  # synthetic() gives counts
    sngep.pp.gene_images(a)
    assert "raw counts" in sc_log.getvalue() and "normalize_total" in sc_log.getvalue()
    sc_log.seek(0)
    sc_log.truncate()
    sc.pp.normalize_total(a)
    sc.pp.log1p(a)
    sngep.pp.gene_images(a)
    binary = _counts()
    binary.X = (binary.X > 0).astype(np.float32)  # 0/1 presence data is not "raw counts"
    sngep.pp.gene_images(binary)
    assert sc_log.getvalue() == ""


def test_warns_on_negative_values(sc_log):
    import scanpy as sc

    a = _counts()
    sc.pp.normalize_total(a)
    sc.pp.log1p(a)
    a.layers["lognorm"] = a.X.copy()
    sc.pp.scale(a)
    sngep.pp.gene_images(a)
    log = sc_log.getvalue()
    assert "adata.X has negative values" in log and "sc.pp.scale" in log and "layer=" in log
    sc_log.seek(0)
    sc_log.truncate()
    sngep.pp.gene_images(a, layer="lognorm")
    assert sc_log.getvalue() == ""


def test_duplicate_gene_names_raise():
    a = _counts()
    a.var_names = ["g0", "g0", "g1", "g2", "g2", "g3"]
    with pytest.raises(ValueError, match=r"var_names_make_unique\(\)") as err:
        sngep.pp.gene_images(a)
    assert "2 duplicated names" in str(err.value) and "'g0'" in str(err.value)
    a.var_names_make_unique()
    sngep.pp.gene_images(a)


def test_records_the_spots_it_imaged(tmp_path):
    a = _counts()
    sngep.pp.gene_images(a)
    assert a.uns["gene_images"]["n_obs"] == a.n_obs
    a.write_h5ad(tmp_path / "a.h5ad")
    assert int(ad.read_h5ad(tmp_path / "a.h5ad").uns["gene_images"]["n_obs"]) == a.n_obs
