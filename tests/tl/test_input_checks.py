"""Bad inputs to ``sngep.tl`` fail early with a message that names the problem."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import sngep


@pytest.fixture
def embedded():
    """12 genes with a 4-d embedding in ``varm['X_darlc']``; no images needed."""
    rng = np.random.default_rng(0)
    a = ad.AnnData(np.zeros((3, 12), np.float32))
    a.varm["X_darlc"] = rng.normal(size=(12, 4)).astype(np.float32)
    return a


@pytest.mark.parametrize("n_clusters", [2.7, "3", True])
def test_gene_leiden_needs_an_integer_n_clusters(embedded, n_clusters):
    with pytest.raises(ValueError, match="n_clusters must be None or an integer"):
        sngep.tl.gene_leiden(embedded, n_clusters=n_clusters)


@pytest.mark.parametrize("resolution", [np.nan, np.inf, "1"])
def test_gene_leiden_needs_a_finite_resolution(embedded, resolution):
    with pytest.raises(ValueError, match="resolution must be a finite number > 0"):
        sngep.tl.gene_leiden(embedded, resolution=resolution)


@pytest.mark.parametrize("n_neighbors", [0, 1, 2.5])
def test_gene_leiden_needs_at_least_two_neighbours(embedded, n_neighbors):
    with pytest.raises(ValueError, match="n_neighbors must be an integer >= 2"):
        sngep.tl.gene_leiden(embedded, n_neighbors=n_neighbors)


def test_gene_leiden_does_not_overwrite_another_tools_result(embedded):
    darlc_uns = {"params": {"preset": "default"}, "smm": {}, "n_clusters": 3}
    embedded.uns["darlc"] = darlc_uns
    embedded.var["darlc"] = pd.Categorical(["0", "1", "2"] * 4)
    with pytest.raises(ValueError, match=r"would overwrite adata.uns\['darlc'\]"):
        sngep.tl.gene_leiden(embedded, key_added="darlc")
    assert embedded.uns["darlc"] is darlc_uns
    assert list(embedded.var["darlc"][:3]) == ["0", "1", "2"]
    # its own earlier result under one key is replaced, as in scanpy
    sngep.tl.gene_leiden(embedded, n_clusters=2, key_added="mine")
    sngep.tl.gene_leiden(embedded, n_clusters=3, key_added="mine")
    assert embedded.uns["mine"]["n_clusters"] == 3


@pytest.mark.parametrize("sigma", ["1", None, True])
def test_seed_similarity_needs_a_number_sigma(sigma):
    a = ad.AnnData(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="sigma must be a finite number >= 0"):
        sngep.tl.seed_similarity(a, sigma=sigma)


def test_module_scores_after_subsetting_away_a_cluster():
    """Subsetting genes drops the emptied category; the soft columns still match by name."""
    rng = np.random.default_rng(1)
    a = ad.AnnData(rng.random((30, 9)).astype(np.float32))
    labels = np.repeat([0, 1, 2], 3)
    a.var["darlc"] = pd.Categorical(labels.astype(str), categories=["0", "1", "2"])
    soft = rng.random((9, 3)).astype(np.float32)
    a.varm["darlc_soft"] = soft / soft.sum(axis=1, keepdims=True)
    sngep.tl.module_scores(a, add_to_obs=False)
    b = a[:, labels != 0].copy()
    assert list(b.var["darlc"].cat.categories) == ["1", "2"]
    sngep.tl.module_scores(b, add_to_obs=False)
    full, sub = a.obsm["darlc_scores"], b.obsm["darlc_scores"]
    np.testing.assert_allclose(sub[["1", "2"]].to_numpy(), full[["1", "2"]].to_numpy(), rtol=1e-5)


def test_module_scores_soft_that_matches_no_category():
    a = ad.AnnData(np.random.default_rng(2).random((10, 4)).astype(np.float32))
    a.var["lab"] = pd.Categorical(["a", "a", "b", "c"])
    a.varm["lab_soft"] = np.full((4, 2), 0.5, np.float32)
    with pytest.raises(ValueError, match="has 2 columns but adata.var\\['lab'\\] has 3 categories"):
        sngep.tl.module_scores(a, key="lab")


@pytest.mark.parametrize("n_clusters", [2.7, "3", True])
def test_darlc_needs_an_integer_n_clusters(tiny, fast_kwargs, n_clusters):
    with pytest.raises(ValueError, match="n_clusters must be None or an integer"):
        sngep.tl.darlc(tiny, n_clusters=n_clusters, **fast_kwargs)


def test_darlc_names_where_a_bad_k_came_from(tiny, fast_kwargs):
    tiny.uns["estimate_k"] = {"k": 30}  # e.g. estimated before subsetting the genes
    with pytest.raises(ValueError, match=r"estimate_k.*re-run it on these genes"):
        sngep.tl.darlc(tiny, **fast_kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(epochs=0.5), TypeError, "epochs must be an integer"),
        (dict(batch_size="32"), TypeError, "batch_size must be an integer"),
        (dict(lr="1e-3"), TypeError, "lr must be a number"),
        (dict(random_state="x"), TypeError, "random_state must be None or an integer"),
        (dict(key_added=""), ValueError, "key_added must be a non-empty string"),
    ],
)
def test_darlc_refuses_badly_typed_options_before_training(tiny, fast_kwargs, kwargs, error, match):
    before = set(tiny.varm) | set(tiny.var) | set(tiny.uns)
    with pytest.raises(error, match=match):
        sngep.tl.darlc(tiny, n_clusters=4, **{**fast_kwargs, **kwargs})
    assert set(tiny.varm) | set(tiny.var) | set(tiny.uns) == before


def test_darlc_names_a_non_finite_similarity(tiny, fast_kwargs):
    s = np.array(tiny.varp["seed_similarity"], dtype=np.float64)
    s[0, 1] = np.nan
    tiny.varp["seed_similarity"] = s
    with pytest.raises(ValueError, match=r"adata.varp\['seed_similarity'\]"):
        sngep.tl.darlc(tiny, n_clusters=4, **fast_kwargs)
