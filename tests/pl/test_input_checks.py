"""Bad inputs to ``sngep.pl`` fail early with a message that names the problem."""

import matplotlib

matplotlib.use("Agg")

import anndata as ad  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import sngep  # noqa: E402


@pytest.fixture
def clustered():
    """8 genes in clusters 'c0' / 'c1' (by pattern), soft assignments and a similarity."""
    a = sngep.datasets.synthetic(
        4, patterns=("band", "blob"), n_variants=1, shape=(10, 10), random_state=0
    )
    sngep.pp.gene_images(a)
    truth = a.var["pattern"].cat.codes.to_numpy()
    a.var["darlc"] = pd.Categorical(truth.astype(str))
    p = np.linspace(0.6, 0.95, a.n_vars)  # distinct confidences
    soft = np.where(np.arange(2)[None, :] == truth[:, None], p[:, None], 1 - p[:, None])
    a.varm["darlc_soft"] = soft.astype(np.float32)
    a.varp["seed_similarity"] = np.eye(a.n_vars, dtype=np.float32)
    a.uns["estimate_k"] = {"k": 2, "eigenvalues": np.array([0.0, 0.01, 0.9, 1.0])}
    yield a
    plt.close("all")


def _titles(axes):
    return [a.get_title() for a in np.ravel(axes) if a.get_title()]


def test_plots_skip_genes_without_a_label(clustered):
    a = clustered
    labels = a.var["darlc"].astype(object)
    labels.iloc[0] = np.nan
    a.var["darlc"] = pd.Categorical(labels)
    axes = sngep.pl.gene_clusters(a, n_genes=4, show=False)
    assert a.var_names[0] not in _titles(axes)
    assert len(sngep.pl.cluster_patterns(a, show=False).ravel()) == 2
    ax = sngep.pl.similarity(a, show=False)
    assert ax.get_images()[0].get_array().shape == (a.n_vars - 1, a.n_vars - 1)


def test_plots_take_one_cluster_name(clustered):
    a = clustered
    a.var["darlc"] = a.var["darlc"].cat.rename_categories(["c0", "c1"])
    del a.varm["darlc_soft"]
    axes = sngep.pl.gene_clusters(a, clusters="c1", show=False)
    assert axes.shape[0] == 1
    axes = sngep.pl.cluster_patterns(a, clusters="c1", show=False)
    assert _titles(axes) == ["cluster c1 (n=4)"]
    with pytest.raises(ValueError, match="clusters is empty"):
        sngep.pl.gene_clusters(a, clusters=[], show=False)
    with pytest.raises(ValueError, match="clusters is empty"):
        sngep.pl.cluster_patterns(a, clusters=[], show=False)


def test_confidence_order_after_subsetting_away_a_cluster(clustered):
    a = clustered
    b = a[:, (a.var["darlc"] == "1").to_numpy()].copy()
    assert list(b.var["darlc"].cat.categories) == ["1"]  # '0' dropped, soft keeps 2 columns
    axes = sngep.pl.gene_clusters(b, n_genes=4, show=False)
    by_confidence = b.var_names[np.argsort(-b.varm["darlc_soft"][:, 1])]
    assert _titles(axes) == list(by_confidence)


@pytest.mark.parametrize(
    ("plot", "kwargs", "name"),
    [
        ("gene_clusters", {"n_genes": 0}, "n_genes"),
        ("gene_clusters", {"n_genes": 2.5}, "n_genes"),
        ("cluster_patterns", {"ncols": 0}, "ncols"),
        ("cluster_patterns", {"ncols": -1}, "ncols"),
        ("similarity", {"max_genes": 0}, "max_genes"),
        ("eigengap", {"n_show": 0}, "n_show"),
        ("eigengap", {"n_show": 2.5}, "n_show"),
    ],
)
def test_plots_need_positive_integer_sizes(clustered, plot, kwargs, name):
    with pytest.raises(ValueError, match=f"{name} must be .*a positive integer"):
        getattr(sngep.pl, plot)(clustered, show=False, **kwargs)


def test_eigengap_names_a_malformed_result(clustered):
    clustered.uns["estimate_k"] = {"k": 3}
    with pytest.raises(ValueError, match="not a result of sngep.tl.estimate_k"):
        sngep.pl.eigengap(clustered, show=False)


def test_module_enrichment_plot_takes_one_module_name():
    a = ad.AnnData(np.zeros((1, 2), np.float32))
    a.uns["darlc_enrichment"] = {
        "results": pd.DataFrame(
            {
                "module": pd.Categorical(["m1", "m2"]),
                "term": ["t1", "t2"],
                "name": ["set one", "set two"],
                "n_overlap": [3, 4],
                "fold": [2.0, 3.0],
                "pval": [0.01, 0.02],
                "qval": [0.02, 0.04],
            }
        )
    }
    ax = sngep.pl.module_enrichment(a, modules="m2", show=False)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["m2"]
    with pytest.raises(ValueError, match="n_terms must be a positive integer"):
        sngep.pl.module_enrichment(a, n_terms=2.5, show=False)
    plt.close("all")
