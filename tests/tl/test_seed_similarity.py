from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

import sngep
from sngep.tl._image_descriptors import DESCRIPTORS


def _make_adata(images: np.ndarray, mask: np.ndarray, key: str = "gene_images") -> ad.AnnData:
    n_genes, h, w = images.shape
    adata = ad.AnnData(X=np.zeros((int(mask.sum()), n_genes), dtype=np.float32))
    adata.varm[key] = images.astype(np.float32)
    adata.uns[key] = {"shape": np.array([h, w]), "mask": mask, "params": {}}
    return adata


def _random_images(n_genes=7, h=11, w=9, density=0.3, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    mask = ((yy - h / 2) ** 2 / (h / 2) ** 2 + (xx - w / 2) ** 2 / (w / 2) ** 2) <= 1.05
    images = (rng.random((n_genes, h, w)) < density) * rng.gamma(2.0, 1.0, (n_genes, h, w))
    images *= mask
    return images.astype(np.float32), mask


def _naive_seed_similarity(images, mask, *, sigma=1.0, names=DESCRIPTORS, pad=12):
    """Per-gene loop with skimage calls and explicit windows; zero plane via generous padding."""
    from skimage.feature import canny
    from skimage.filters import gaussian, laplace, sobel

    n, h, w = images.shape
    grid = (slice(pad, pad + h), slice(pad, pad + w))
    per_desc = {name: [] for name in names}
    for u in range(n):
        x = np.pad(images[u].astype(np.float64), pad)
        sm = (
            gaussian(x, sigma=sigma, mode="constant", cval=0, preserve_range=True, truncate=4.0)
            if sigma > 0
            else x
        )
        d = {}
        for k in (1, 3, 5):
            r = (k - 1) // 2
            win = [
                [sm[i - r : i + r + 1, j - r : j + r + 1] for j in range(pad, pad + w)]
                for i in range(pad, pad + h)
            ]
            d[f"mean_{k}"] = np.array([[c.mean() for c in row] for row in win])
            d[f"std_{k}"] = np.array([[c.std() for c in row] for row in win])
        gy = sobel(sm, axis=0, mode="constant")
        gx = sobel(sm, axis=1, mode="constant")
        d["gradient_magnitude"] = np.hypot(gx, gy)[grid]
        d["gradient_orientation"] = np.arctan2(gy, gx)[grid]
        d["laplacian"] = laplace(sm)[grid]
        scale = np.abs(sm[grid]).max()
        edges = (
            canny(sm / scale, sigma=0, low_threshold=0.1, high_threshold=0.2)
            if scale > 0
            else np.zeros_like(sm, dtype=bool)
        )
        d["canny"] = edges[grid].astype(float)
        for name in names:
            per_desc[name].append(d[name][mask])
    s = np.zeros((n, n))
    for name in names:
        m = np.array(per_desc[name])
        with np.errstate(invalid="ignore", divide="ignore"):
            c = np.corrcoef(m)
        const = m.std(axis=1) <= 1e-6 * np.abs(m).max(axis=1)
        c[const, :] = 0.0
        c[:, const] = 0.0
        s += c
    s /= len(names)
    np.fill_diagonal(s, 0.0)
    return s


@pytest.mark.parametrize(
    ("sigma", "names"),
    [
        (1.0, "all"),
        (0.0, ["mean_1", "std_3", "gradient_orientation", "canny"]),
        (1.7, ["laplacian"]),
    ],
)
def test_matches_naive_reference(sigma, names):
    images, mask = _random_images()
    images[3] = 0.0  # an all-zero gene: every descriptor constant
    adata = _make_adata(images, mask)
    sngep.tl.seed_similarity(adata, sigma=sigma, descriptors=names, show_progress_bar=False)
    s = adata.varp["seed_similarity"]
    ref_names = DESCRIPTORS if names == "all" else names
    ref = _naive_seed_similarity(images, mask, sigma=sigma, names=ref_names)
    assert s.dtype == np.float32
    assert np.isfinite(s).all()
    np.testing.assert_allclose(s, ref, atol=2e-5)
    np.testing.assert_array_equal(s, s.T)
    np.testing.assert_array_equal(np.diag(s), 0.0)
    np.testing.assert_array_equal(s[3], 0.0)  # constant image: 0, not NaN
    # the reference is not trivially zero
    assert np.abs(ref).max() > 0.1


def test_each_descriptor_against_reference():
    images, mask = _random_images(n_genes=5, seed=3)
    adata = _make_adata(images, mask)
    for name in DESCRIPTORS:
        sngep.tl.seed_similarity(adata, descriptors=[name], show_progress_bar=False)
        ref = _naive_seed_similarity(images, mask, names=[name])
        np.testing.assert_allclose(adata.varp["seed_similarity"], ref, atol=2e-5, err_msg=name)


def test_chunked_equals_unchunked():
    images, mask = _random_images(n_genes=10, seed=1)
    a = _make_adata(images, mask)
    b = _make_adata(images, mask)
    sngep.tl.seed_similarity(a, chunk_size=3, show_progress_bar=False)
    sngep.tl.seed_similarity(b, chunk_size=1024, show_progress_bar=False)
    np.testing.assert_allclose(a.varp["seed_similarity"], b.varp["seed_similarity"], atol=1e-6)
    np.testing.assert_array_equal(a.varp["seed_similarity"], a.varp["seed_similarity"].T)


def test_invariant_to_zero_padding():
    images, mask = _random_images(n_genes=6, seed=2)
    padded = np.pad(images, ((0, 0), (3, 5), (4, 2)))
    padded_mask = np.pad(mask, ((3, 5), (4, 2)))
    a = _make_adata(images, mask)
    b = _make_adata(padded, padded_mask)
    sngep.tl.seed_similarity(a, show_progress_bar=False)
    sngep.tl.seed_similarity(b, show_progress_bar=False)
    np.testing.assert_allclose(a.varp["seed_similarity"], b.varp["seed_similarity"], atol=1e-6)


def test_planted_groups_are_more_similar():
    rng = np.random.default_rng(4)
    h, w = 20, 20
    yy, xx = np.mgrid[:h, :w]
    blob = np.exp(-((yy - 5) ** 2 + (xx - 5) ** 2) / 8.0)
    band = (np.abs(xx - 14) < 2).astype(float)
    images = np.concatenate(
        [
            blob + 0.3 * rng.random((6, h, w)) * (rng.random((6, h, w)) < 0.2),
            band + 0.3 * rng.random((6, h, w)) * (rng.random((6, h, w)) < 0.2),
        ]
    )
    adata = _make_adata(images, np.ones((h, w), bool))
    sngep.tl.seed_similarity(adata, show_progress_bar=False)
    s = adata.varp["seed_similarity"]
    within = np.r_[s[:6, :6][~np.eye(6, dtype=bool)], s[6:, 6:][~np.eye(6, dtype=bool)]]
    between = s[:6, 6:].ravel()
    assert within.min() > between.max()


def test_knn_keeps_top_entries_and_is_symmetric():
    images, mask = _random_images(n_genes=12, seed=5)
    dense = _make_adata(images, mask)
    knn = _make_adata(images, mask)
    sngep.tl.seed_similarity(dense, show_progress_bar=False)
    sngep.tl.seed_similarity(knn, n_neighbors=3, chunk_size=5, show_progress_bar=False)
    s = dense.varp["seed_similarity"]
    g = knn.varp["seed_similarity"]
    assert sp.issparse(g) and g.format == "csr" and g.dtype == np.float32
    assert abs(g - g.T).max() == 0
    gd = g.toarray()
    expected_pattern = np.zeros_like(s, dtype=bool)
    for i in range(s.shape[0]):
        row = s[i].copy()
        row[i] = -np.inf
        expected_pattern[i, np.argsort(-row)[:3]] = True
    expected_pattern |= expected_pattern.T
    stored = np.zeros_like(expected_pattern)
    stored[g.nonzero()] = True
    np.testing.assert_array_equal(stored, expected_pattern & (s != 0))
    np.testing.assert_allclose(gd[expected_pattern], s[expected_pattern], atol=1e-6)
    assert np.all(g.getnnz(axis=1) >= 3)
    assert np.all(g.diagonal() == 0)


def test_copy_leaves_input_unchanged():
    images, mask = _random_images(n_genes=4)
    adata = _make_adata(images, mask)
    out = sngep.tl.seed_similarity(adata, copy=True, show_progress_bar=False)
    assert isinstance(out, ad.AnnData)
    assert "seed_similarity" not in adata.varp and "seed_similarity" not in adata.uns
    assert "seed_similarity" in out.varp
    assert out.uns["seed_similarity"]["params"]["sigma"] == 1.0
    assert sngep.tl.seed_similarity(adata, show_progress_bar=False) is None


@pytest.mark.parametrize("n_neighbors", [None, 2])
def test_h5ad_round_trip(tmp_path, n_neighbors):
    images, mask = _random_images(n_genes=5)
    adata = _make_adata(images, mask)
    sngep.tl.seed_similarity(
        adata, n_neighbors=n_neighbors, key_added="sim", show_progress_bar=False
    )
    path = tmp_path / "a.h5ad"
    adata.write_h5ad(path)
    back = ad.read_h5ad(path)
    a, b = adata.varp["sim"], back.varp["sim"]
    if n_neighbors is not None:
        assert sp.issparse(b)
        a, b = a.toarray(), b.toarray()
    np.testing.assert_array_equal(a, b)
    params = back.uns["sim"]["params"]
    assert list(params["descriptors"]) == list(DESCRIPTORS)
    assert params["n_neighbors"] == n_neighbors
    assert params["images_key"] == "gene_images"


def test_errors():
    images, mask = _random_images(n_genes=3)
    adata = _make_adata(images, mask)
    with pytest.raises(KeyError, match="pp.gene_images"):
        sngep.tl.seed_similarity(adata, images_key="nope")
    bad = images.copy()
    bad[0, 2, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        sngep.tl.seed_similarity(_make_adata(bad, mask))
    with pytest.raises(ValueError, match="at least 2"):
        sngep.tl.seed_similarity(_make_adata(images[:1], mask))
    with pytest.raises(ValueError, match="descriptors"):
        sngep.tl.seed_similarity(adata, descriptors=["sobel"])
    with pytest.raises(ValueError, match="n_neighbors"):
        sngep.tl.seed_similarity(adata, n_neighbors=3)
    with pytest.raises(ValueError, match="sigma"):
        sngep.tl.seed_similarity(adata, sigma=-1)
    with pytest.raises(ValueError, match="chunk_size"):
        sngep.tl.seed_similarity(adata, chunk_size=0)


def test_spots_subset_after_gene_images_is_caught(sc_log):
    a = sngep.datasets.synthetic(
        3, patterns=("band", "blob"), n_variants=1, shape=(10, 10), random_state=0
    )
    a.X = np.log1p(a.X)
    sngep.pp.gene_images(a)
    sub = a[: a.n_obs // 2].copy()  # obsm['gene_image_pixel'] follows, the images do not
    with pytest.raises(ValueError, match=r"re-run sngep\.pp\.gene_images") as err:
        sngep.tl.seed_similarity(sub, show_progress_bar=False)
    assert f"{sub.n_obs} spots" in str(err.value) and f"made from {a.n_obs}" in str(err.value)
    sngep.pp.gene_images(sub)  # the fix the message names
    sngep.tl.seed_similarity(sub, show_progress_bar=False)
    # reordering or renaming spots changes nothing; images without a record are not checked
    b = a[::-1].copy()
    b.obs_names = [f"spot{i}" for i in range(b.n_obs)]
    sngep.tl.seed_similarity(b, show_progress_bar=False)
    del a.uns["gene_images"]["n_obs"]
    sngep.tl.seed_similarity(a[:10].copy(), show_progress_bar=False)
