import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.spatial import cKDTree
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

import sngep
from sngep.datasets import synthetic


@pytest.fixture(scope="module")
def default():
    return synthetic()


def _kmeans_ari(adata, *, smooth=True, seed=0):
    """k-means on library-normalised, log1p, spatially smoothed, z-scored gene profiles."""
    x = adata.X.toarray().astype(np.float64)
    lib = x.sum(axis=1, keepdims=True)
    x = np.log1p(x / np.maximum(lib, 1) * np.median(lib))
    if smooth:
        xy = adata.obsm["spatial"]
        spacing = adata.uns["synthetic"]["spacing"]
        neighbours = cKDTree(xy).query_ball_point(xy, r=1.6 * spacing)
        w = np.zeros((xy.shape[0], xy.shape[0]))
        for i, js in enumerate(neighbours):
            w[i, js] = 1.0
        x = (w / w.sum(axis=1, keepdims=True)) @ x
    z = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-9)
    k = adata.var["pattern"].cat.categories.size
    labels = KMeans(k, n_init=10, random_state=seed).fit_predict(z.T)
    return adjusted_rand_score(adata.var["pattern"].cat.codes, labels)


def test_default_layout(default):
    a = default
    assert a.shape == (900, 160)
    assert sp.issparse(a.X) and a.X.format == "csr" and a.X.dtype == np.float32
    data = a.X.data
    np.testing.assert_array_equal(data, np.round(data))  # counts
    assert (data > 0).all()
    counts = a.var["pattern"].value_counts()
    assert list(a.var["pattern"].cat.categories) == [
        f"{k}_{i}" for k in ("band", "blob", "ring", "gradient") for i in range(2)
    ]
    assert (counts == 20).all()
    assert list(a.var["pattern_kind"].cat.categories) == ["band", "blob", "ring", "gradient"]
    assert set(a.uns["synthetic"]["params"]) >= {
        "n_variants",
        "grid",
        "noise",
        "dropout",
        "random_state",
    }
    assert list(a.obsm["synthetic_patterns"].columns) == a.uns["synthetic"]["clusters"]


def test_visium_lattice(default):
    row = default.obs["array_row"].to_numpy()
    col = default.obs["array_col"].to_numpy()
    assert np.issubdtype(row.dtype, np.integer) and np.issubdtype(col.dtype, np.integer)
    assert np.all((row + col) % 2 == 0)
    assert len(set(zip(row, col, strict=True))) == default.n_obs
    xy = default.obsm["spatial"]
    assert xy.shape == (default.n_obs, 2) and np.isfinite(xy).all()
    # interior spots have exactly 6 neighbours at the spot spacing (100 um)
    dist, _ = cKDTree(xy).query(xy, k=7)
    interior = (row > 0) & (row < row.max()) & (col > 1) & (col < col.max() - 1)
    np.testing.assert_allclose(dist[interior, 1:], 100.0, rtol=1e-9)
    # gene_images recognises the lattice as Visium without a hint
    assert sngep.pp.gene_images(default, copy=True).uns["gene_images"]["params"]["grid"] == "visium"


def test_square_grid():
    a = synthetic(shape=(12, 15), grid="square", n_genes_per_pattern=3)
    assert a.n_obs == 180
    dist, _ = cKDTree(a.obsm["spatial"]).query(a.obsm["spatial"], k=5)
    row, col = a.obs["array_row"].to_numpy(), a.obs["array_col"].to_numpy()
    interior = (row > 0) & (row < 11) & (col > 0) & (col < 14)
    np.testing.assert_allclose(dist[interior, 1:], 100.0)
    assert sngep.pp.gene_images(a, copy=True).varm["gene_images"].shape == (a.n_vars, 12, 15)


def test_mean_model_without_noise():
    a = synthetic(n_genes_per_pattern=4, noise="none", dropout=0.0, mean_counts=3.0, background=0.2)
    profiles = a.obsm["synthetic_patterns"]
    scale = a.var["scale"].to_numpy(np.float64)
    expected = np.column_stack(
        [
            scale[g] * (0.2 + 3.0 * profiles[p].to_numpy(np.float64))
            for g, p in enumerate(a.var["pattern"])
        ]
    )
    np.testing.assert_allclose(a.X.toarray(), expected, rtol=1e-5)
    assert profiles.to_numpy().min() >= 0 and profiles.to_numpy().max() <= 1 + 1e-6


def test_negative_binomial_moments_and_dropout():
    kw = dict(
        n_genes_per_pattern=400, patterns=("blob",), n_variants=1, gene_scale_sd=0.0, shape=(10, 10)
    )
    phi = 0.5
    a = synthetic(noise="nb", dispersion=phi, dropout=0.0, **kw)
    mu = 0.5 + 5.0 * a.obsm["synthetic_patterns"]["blob_0"].to_numpy()
    x = a.X.toarray()
    # every gene has the same mean at a spot: compare moments across genes
    np.testing.assert_allclose(x.mean(axis=1).mean(), mu.mean(), rtol=0.03)
    var_ratio = x.var(axis=1) / (mu + phi * mu**2)
    assert 0.85 < np.median(var_ratio) < 1.15
    pois = synthetic(noise="poisson", dropout=0.0, **kw).X.toarray()
    assert 0.85 < np.median(pois.var(axis=1) / mu) < 1.15
    dropped = synthetic(noise="none", dropout=0.3, **kw).X.toarray()
    assert abs((dropped == 0).mean() - 0.3) < 0.01


def test_seed():
    a, b, c = synthetic(random_state=3), synthetic(random_state=3), synthetic(random_state=4)
    assert (a.X != b.X).nnz == 0
    np.testing.assert_array_equal(a.var["scale"], b.var["scale"])
    assert (a.X != c.X).nnz > 0
    np.testing.assert_array_equal(a.obsm["spatial"], c.obsm["spatial"])  # geometry is fixed


def test_patterns_are_distinct(default):
    corr = np.corrcoef(default.obsm["synthetic_patterns"].to_numpy().T)
    np.fill_diagonal(corr, 0)
    assert corr.max() < 0.3


def test_kmeans_recovers_planted_clusters(default):
    assert _kmeans_ari(default) > 0.5


def test_kmeans_fails_without_signal():
    # the same pipeline cannot recover clusters that carry no spatial signal: the test can fail
    flat = synthetic(mean_counts=1e-3, background=1.0)
    assert _kmeans_ari(flat) < 0.2


def test_variants_noise_genes_and_h5ad_roundtrip(tmp_path):
    a = synthetic(
        n_genes_per_pattern=2, patterns=("ring", "gradient"), n_variants=3, n_noise_genes=5
    )
    assert a.n_vars == 2 * 3 * 2 + 5
    assert a.var["pattern"].cat.categories[-1] == "noise"
    assert (a.var["pattern"] == "noise").sum() == 5
    assert a.var_names.is_unique
    a.write_h5ad(tmp_path / "s.h5ad")
    b = ad.read_h5ad(tmp_path / "s.h5ad")
    np.testing.assert_array_equal(a.X.toarray(), b.X.toarray())
    assert b.uns["synthetic"]["params"]["n_variants"] == 3
    np.testing.assert_array_equal(a.obsm["synthetic_patterns"], b.obsm["synthetic_patterns"])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"patterns": ("stripe",)},
        {"patterns": ("band", "band")},
        {"n_variants": 0},
        {"n_genes_per_pattern": 0},
        {"grid": "hex"},
        {"noise": "gaussian"},
        {"dropout": 1.0},
        {"dispersion": 0.0},
        {"shape": (1, 10)},
        {"mean_counts": -1.0},
    ],
)
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        synthetic(**kwargs)
