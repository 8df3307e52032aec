"""gene_adata, gene_leiden and module_scores (issue 4)."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
import scipy.sparse as sp

import sngep
from sngep.metrics import ari


@pytest.fixture
def planted():
    """Synthetic spots x genes; gene 'clusters' = planted patterns, embedding = noisy one-hot."""
    a = sngep.datasets.synthetic(
        8, patterns=("band", "blob", "ring"), n_variants=2, shape=(20, 20), random_state=3
    )
    sc.pp.normalize_total(a)
    sc.pp.log1p(a)
    sngep.pp.gene_images(a)
    truth = a.var["pattern"].cat.codes.to_numpy()
    k = truth.max() + 1
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(k, 8)) * 4
    a.varm["X_darlc"] = (centres[truth] + rng.normal(size=(a.n_vars, 8))).astype(np.float32)
    a.var["darlc"] = pd.Categorical(truth.astype(str), categories=[str(i) for i in range(k)])
    soft = np.full((a.n_vars, k), 0.02, np.float32)
    soft[np.arange(a.n_vars), truth] = 1 - 0.02 * (k - 1)
    a.varm["darlc_soft"] = soft
    a.varp["seed_similarity"] = sp.random(a.n_vars, a.n_vars, density=0.1, random_state=0).tocsr()
    a.uns["darlc"] = {"n_clusters": int(k)}
    return a, truth


# --------------------------------------------------------------------------- gene_adata
def test_gene_adata_carries_gene_level_data(planted):
    a, truth = planted
    before = a.copy()
    g = sngep.tl.gene_adata(a)
    assert g.n_obs == a.n_vars and list(g.obs_names) == list(a.var_names)
    np.testing.assert_array_equal(g.X, a.varm["X_darlc"])
    np.testing.assert_array_equal(g.obsm["X_darlc"], a.varm["X_darlc"])
    np.testing.assert_array_equal(g.obsm["gene_images"], a.varm["gene_images"])
    assert (g.obs["darlc"].to_numpy() == a.var["darlc"].to_numpy()).all()
    assert "pattern" in g.obs
    assert (g.obsp["seed_similarity"] != a.varp["seed_similarity"]).nnz == 0
    np.testing.assert_array_equal(g.uns["gene_images"]["mask"], a.uns["gene_images"]["mask"])
    # a copy, not a view: editing g leaves the input alone
    g.obsm["X_darlc"][:] = 0
    g.obs["darlc"] = "x"
    np.testing.assert_array_equal(a.varm["X_darlc"], before.varm["X_darlc"])
    assert (a.var["darlc"] == before.var["darlc"]).all()
    # scanpy's graph tools run on it and recover the planted clusters
    g = sngep.tl.gene_adata(a)
    sc.pp.neighbors(g, use_rep="X_darlc", n_neighbors=10, random_state=0)
    sc.tl.leiden(g, flavor="igraph", n_iterations=-1, directed=False, random_state=0)
    assert ari(truth, g.obs["leiden"].to_numpy()) > 0.9


def test_gene_adata_errors(planted):
    a, _ = planted
    with pytest.raises(KeyError, match="sngep.tl.darlc"):
        sngep.tl.gene_adata(a, use_rep="X_missing")
    a.varm["bad"] = np.zeros((a.n_vars, 2, 2), np.float32)
    with pytest.raises(ValueError, match="n_dims"):
        sngep.tl.gene_adata(a, use_rep="bad")


# --------------------------------------------------------------------------- gene_leiden
def test_gene_leiden_recovers_planted_clusters(planted):
    a, truth = planted
    sngep.tl.gene_leiden(a, n_neighbors=10)
    assert a.var["darlc_leiden"].dtype == "category"
    assert ari(truth, a.var["darlc_leiden"].to_numpy()) > 0.9
    assert a.uns["darlc_leiden"]["n_clusters"] == a.var["darlc_leiden"].nunique()


@pytest.mark.parametrize("k", [3, 6, 9])
def test_gene_leiden_hits_n_clusters(planted, k):
    a, truth = planted
    # start far off (resolution 0.01 gives one cluster) so the bisection has to work
    sngep.tl.gene_leiden(a, n_clusters=k, resolution=0.01, n_neighbors=10, key_added="gl")
    assert a.var["gl"].nunique() == k
    assert a.uns["gl"]["n_clusters"] == k
    assert a.uns["gl"]["resolution"] != 0.01
    if k == len(np.unique(truth)):
        assert ari(truth, a.var["gl"].to_numpy()) > 0.9


def test_gene_leiden_copy_and_errors(planted):
    a, _ = planted
    out = sngep.tl.gene_leiden(a, copy=True, n_neighbors=10)
    assert "darlc_leiden" in out.var and "darlc_leiden" not in a.var
    with pytest.raises(ValueError, match="n_clusters"):
        sngep.tl.gene_leiden(a, n_clusters=a.n_vars + 1)
    with pytest.raises(KeyError, match="X_nope"):
        sngep.tl.gene_leiden(a, use_rep="X_nope")


# --------------------------------------------------------------------------- module_scores
def test_module_scores_follow_the_planted_patterns(planted):
    a, truth = planted
    sngep.tl.module_scores(a)
    scores = a.obsm["darlc_scores"]
    k = len(np.unique(truth))
    assert isinstance(scores, pd.DataFrame)
    assert scores.shape == (a.n_obs, k) and list(scores.index) == list(a.obs_names)
    profiles = a.obsm["synthetic_patterns"]
    names = a.var["pattern"].cat.categories
    for c in range(k):
        s = scores[str(c)].to_numpy()
        corr = [np.corrcoef(s, profiles[n].to_numpy())[0, 1] for n in names]
        assert corr[c] > 0.45, (c, corr)  # noisy data: NB counts, 30 % dropout, 8 genes
        assert np.argmax(corr) == c
        # pooling the members beats every single noisy member gene
        x = a.X.toarray()[:, truth == c]
        single = [np.corrcoef(x[:, j], profiles[names[c]].to_numpy())[0, 1] for j in range(8)]
        assert corr[c] > max(single) + 0.1, (corr[c], single)
    # obs columns for squidpy / scanpy plotting, same numbers
    cols = a.uns["darlc_scores"]["obs_columns"]
    assert cols == [f"darlc_scores_{c}" for c in range(k)]
    np.testing.assert_allclose(a.obs[cols].to_numpy(), scores.to_numpy())
    # the h5ad round trip keeps them
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        a.write_h5ad(Path(d) / "a.h5ad")
        back = ad.read_h5ad(Path(d) / "a.h5ad")
    np.testing.assert_allclose(np.asarray(back.obsm["darlc_scores"]), scores.to_numpy())


def test_module_scores_naive_reference_sparse_and_dense(planted):
    a, _ = planted
    dense = a.copy()
    dense.X = a.X.toarray()
    sngep.tl.module_scores(a, add_to_obs=False)
    sngep.tl.module_scores(dense, add_to_obs=False)
    np.testing.assert_allclose(
        a.obsm["darlc_scores"].to_numpy(), dense.obsm["darlc_scores"].to_numpy(), atol=1e-5
    )
    # naive: z-score every gene, weighted mean over members with the soft weights
    x = dense.X
    z = (x - x.mean(0)) / x.std(0)
    soft = a.varm["darlc_soft"]
    lab = a.var["darlc"].astype(int).to_numpy()
    for c in range(soft.shape[1]):
        w = soft[lab == c, c]
        ref = (z[:, lab == c] * w).sum(1) / w.sum()
        np.testing.assert_allclose(a.obsm["darlc_scores"][str(c)], ref, rtol=1e-4, atol=1e-5)
    assert not any(col.startswith("darlc_scores_") for col in a.obs)


def test_module_scores_unweighted_constant_genes_and_errors(planted):
    a, _ = planted
    a.X = a.X.toarray()
    a.X[:, 0] = 3.0  # a constant gene: no z-score, no weight
    out = sngep.tl.module_scores(a, use_soft=False, copy=True, key_added="plain")
    assert "plain" not in a.obsm and "plain" in out.obsm
    assert out.uns["plain"]["params"]["use_soft"] is False
    assert np.isfinite(out.obsm["plain"].to_numpy()).all()
    with pytest.raises(KeyError, match="sngep.tl.darlc"):
        sngep.tl.module_scores(a, key="nope")
    with pytest.raises(KeyError, match="layers"):
        sngep.tl.module_scores(a, layer="counts")
    a.X[0, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        sngep.tl.module_scores(a)


def test_gene_leiden_on_standardized_images(planted):
    a, truth = planted
    sngep.pp.standardize_images(a)
    k = len(np.unique(truth))
    sngep.tl.gene_leiden(
        a, use_rep="gene_images_std", n_clusters=k, n_neighbors=10, key_added="std_leiden"
    )
    assert a.var["std_leiden"].nunique() == k
    assert ari(truth, a.var["std_leiden"].to_numpy()) > 0.75  # k-means on these: 0.81
    # only in-tissue pixels are features: same labels as on the flattened masked pixels
    mask = a.uns["gene_images_std"]["mask"]
    a.varm["flat"] = a.varm["gene_images_std"][:, mask]
    sngep.tl.gene_leiden(a, use_rep="flat", n_clusters=k, n_neighbors=10, key_added="flat_leiden")
    assert ari(a.var["flat_leiden"].to_numpy(), a.var["std_leiden"].to_numpy()) == 1.0
    with pytest.raises(KeyError, match="standardize_images"):
        sngep.tl.gene_leiden(a, use_rep="gene_images_nope")


def test_module_scores_default_key_follows_the_labels(planted):
    a, _ = planted
    sngep.tl.gene_leiden(a, n_neighbors=10)
    sngep.tl.module_scores(a, key="darlc_leiden")
    assert "darlc_leiden_scores" in a.obsm and "darlc_scores" not in a.obsm
    assert a.uns["darlc_leiden_scores"]["obs_columns"][0] == "darlc_leiden_scores_0"
    sngep.tl.module_scores(a)  # the DARLC clusters keep their key, next to the first
    assert {"darlc_scores", "darlc_leiden_scores"} <= set(a.obsm)
    sngep.tl.module_scores(a, key="darlc_leiden", key_added="mine")
    assert "mine" in a.obsm


def test_module_scores_rerun_with_fewer_clusters_leaves_no_stale_columns(planted):
    a, _ = planted
    a.obs["mine_7"] = 1.0  # the user's own column, not written by module_scores
    sngep.tl.gene_leiden(a, n_clusters=4, n_neighbors=10, key_added="gl")
    sngep.tl.module_scores(a, key="gl", key_added="mine")
    assert {f"mine_{c}" for c in range(4)} <= set(a.obs.columns)
    sngep.tl.gene_leiden(a, n_clusters=2, n_neighbors=10, key_added="gl")
    sngep.tl.module_scores(a, key="gl", key_added="mine")
    written = [c for c in a.obs.columns if c.startswith("mine_")]
    assert sorted(written) == ["mine_0", "mine_1", "mine_7"]  # 2 and 3 gone, the user's kept


def test_leiden_labels_above_scanpys_exact_knn_limit():
    """From 8,192 genes scanpy switches to approximate neighbours (pynndescent), whose sparse
    array its own code could not read with a recent scipy; a whole transcriptome is that big.
    The gene graph is exact at every size."""
    from sngep.tl._gene_leiden import leiden_labels

    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(4), -(-(8192 + 8) // 4))
    x = np.eye(4)[truth] * 10 + rng.normal(size=(truth.size, 4))
    labels, _ = leiden_labels(x, n_clusters=4, random_state=0)
    assert ari(truth, labels) > 0.99


@pytest.mark.parametrize("n", [40, 300])
def test_gene_graph_weights_equal_scanpys_neighbors(n):
    """The Leiden graph (sngep.tl._knn) is the one scanpy.pp.neighbors builds by default:
    the same exact 15-NN and UMAP's fuzzy weights (to float32 rounding), without UMAP's
    numba kernels."""
    from sngep.tl._knn import connectivities

    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, 6)) + np.repeat(rng.standard_normal((4, 6)) * 3, n // 4, 0)
    g = ad.AnnData(np.zeros((n, 1), dtype=np.float32))
    g.obsm["rep"] = x
    sc.pp.neighbors(g, use_rep="rep", n_neighbors=15, random_state=0)
    ours = connectivities(x, 15)
    ref = g.obsp["connectivities"]
    assert (ours != 0).sum() == (ref != 0).sum()
    assert abs(ours - ref).max() < 1e-6
