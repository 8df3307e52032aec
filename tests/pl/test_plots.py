import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import sngep  # noqa: E402


@pytest.fixture
def clustered():
    a = sngep.datasets.synthetic(
        4, patterns=("band", "blob"), n_variants=1, shape=(12, 12), random_state=0
    )
    sngep.pp.gene_images(a)
    truth = a.var["pattern"].cat.codes.to_numpy()
    a.var["darlc"] = pd.Categorical(truth.astype(str))
    soft = np.full((a.n_vars, 2), 0.1, np.float32)
    soft[np.arange(a.n_vars), truth] = 0.9
    soft[0, truth[0]] = 0.99  # most confident gene of its cluster
    a.varm["darlc_soft"] = soft
    a.varm["darlc_denoised"] = a.varm["gene_images"] * 0.5
    a.uns["darlc"] = {
        "history": {
            "L1": np.array([3.0, 2.0]),
            "label_change": np.array([1.0, 0.1]),
            "phase": np.array([1.0, 1.0]),
        }
    }
    a.uns["estimate_k"] = {"k": 2, "eigenvalues": np.array([0.0, 0.01, 0.9, 1.0])}
    return a


def test_gene_clusters_returns_figure_and_orders_by_confidence(clustered):
    fig = sngep.pl.gene_clusters(clustered, n_genes=3, return_fig=True)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2 * 3
    plt.close(fig)
    c0 = str(clustered.var["darlc"].iloc[0])
    fig = sngep.pl.gene_clusters(clustered, clusters=[c0], n_genes=3, return_fig=True)
    assert fig.axes[0].get_title() == clustered.var_names[0]  # the 0.99-confidence gene leads
    plt.close(fig)
    axes = sngep.pl.gene_clusters(clustered, clusters=["1"], n_genes=2, denoised=True, show=False)
    assert axes.shape == (1, 2)
    plt.close("all")


def test_plots_respect_ax(clustered):
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3)
    sngep.pl.eigengap(clustered, ax=ax1, show=False)
    sngep.pl.gene_clusters(clustered, ax=ax2, n_genes=2, show=False)
    sngep.pl.training_history(clustered, ax=ax3, show=False)
    assert all(a.figure is fig for a in fig.axes)
    assert ax1 in fig.axes  # eigengap draws into the given axes
    plt.close(fig)


def test_eigengap_marks_k(clustered):
    ax = sngep.pl.eigengap(clustered, show=False)
    assert any("K = 2" in t.get_text() for t in ax.get_legend().get_texts())
    plt.close("all")


def test_eigengap_shows_window_chosen_gap_and_runner_up():
    import anndata as ad

    rng = np.random.default_rng(0)
    n = 60
    s = rng.uniform(-0.1, 0.05, (n, n))
    for start in range(0, n, 20):  # three groups of 20 genes
        s[start : start + 20, start : start + 20] = rng.uniform(0.3, 0.9, (20, 20))
    s = (s + s.T) / 2
    np.fill_diagonal(s, 0.0)
    a = ad.AnnData(X=np.zeros((2, n), dtype=np.float32))
    a.varp["seed_similarity"] = s.astype(np.float32)
    sngep.tl.estimate_k(a, mean_cluster_size=(5, 15))  # K in [4, 12]; the gap says 3
    est = a.uns["estimate_k"]
    fig = sngep.pl.eigengap(a, return_fig=True)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "window K in [4, 12]" in texts
    assert any(t.startswith(f"K = {est['k']} (largest gap in the window)") for t in texts)
    assert f"runner-up K = {est['runner_up']}" in texts
    assert "without window: K = 3" in texts
    bars = fig.axes[1].patches
    chosen = [b for b in bars if b.get_facecolor()[:3] == matplotlib.colors.to_rgb("C3")]
    assert len(chosen) == 1 and chosen[0].get_x() + chosen[0].get_width() / 2 == est["k"] + 0.5
    plt.close(fig)
    sngep.tl.estimate_k(a, method="pathway_size")  # no spectrum: the axes say so
    ax = sngep.pl.eigengap(a, show=False)
    assert "no spectrum" in ax.texts[0].get_text()
    plt.close("all")


def test_missing_inputs_name_the_tool():
    a = sngep.datasets.synthetic(3, patterns=("band",), n_variants=2, shape=(10, 10))
    with pytest.raises(KeyError, match="tl.darlc"):
        sngep.pl.gene_clusters(a)
    with pytest.raises(KeyError, match="tl.estimate_k"):
        sngep.pl.eigengap(a)
    with pytest.raises(KeyError, match="tl.darlc"):
        sngep.pl.training_history(a)


def test_cluster_patterns_shows_each_cluster_mean(clustered):
    fig = sngep.pl.cluster_patterns(clustered, return_fig=True)
    assert isinstance(fig, Figure)
    titles = [a.get_title() for a in fig.axes if a.get_title()]
    counts = clustered.var["darlc"].value_counts()
    assert sorted(titles) == sorted(f"cluster {c} (n={n})" for c, n in counts.items())
    # the drawn pattern is the (weighted) mean of the standardised member images
    img = next(a for a in fig.axes if a.get_title().startswith("cluster 0")).images[0]
    images, mask = clustered.varm["gene_images"], clustered.uns["gene_images"]["mask"]
    members = np.flatnonzero(clustered.var["darlc"].astype(str) == "0")
    w = clustered.varm["darlc_soft"][members, 0].astype(float)
    x = images[members][:, mask].astype(float)
    z = (x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True)
    np.testing.assert_allclose(img.get_array()[mask], (w[:, None] * z).sum(0) / w.sum(), rtol=1e-5)
    plt.close(fig)


def test_similarity_heatmap_orders_by_cluster(clustered):
    n = clustered.n_vars
    rng = np.random.default_rng(0)
    s = rng.uniform(-1, 1, (n, n)).astype(np.float32)
    clustered.varp["seed_similarity"] = (s + s.T) / 2
    ax = sngep.pl.similarity(clustered, show=False)
    drawn = ax.images[0].get_array()
    lab = clustered.var["darlc"].astype(str).to_numpy()
    # equal-sized clusters in category order; gene 0 (0.99) already leads its cluster
    order = np.concatenate([np.flatnonzero(lab == "0"), np.flatnonzero(lab == "1")])
    np.testing.assert_allclose(drawn, clustered.varp["seed_similarity"][order][:, order])
    plt.close("all")
    # subsetting above max_genes, and sparse input
    import scipy.sparse as sp

    clustered.varp["seed_similarity"] = sp.csr_matrix(clustered.varp["seed_similarity"])
    ax = sngep.pl.similarity(clustered, max_genes=3, show=False)
    assert ax.images[0].get_array().shape == (3, 3)
    assert "3 of" in ax.get_title()
    plt.close("all")


def test_new_plots_respect_ax_and_name_the_tool(clustered):
    fig, (ax1, ax2) = plt.subplots(1, 2)
    clustered.varp["seed_similarity"] = np.eye(clustered.n_vars, dtype=np.float32)
    sngep.pl.cluster_patterns(clustered, ax=ax1, show=False)
    sngep.pl.similarity(clustered, ax=ax2, show=False)
    assert all(a.figure is fig for a in fig.axes)
    plt.close(fig)
    a = sngep.datasets.synthetic(3, patterns=("band",), n_variants=2, shape=(10, 10))
    with pytest.raises(KeyError, match="tl.darlc"):
        sngep.pl.cluster_patterns(a)
    a.var["darlc"] = pd.Categorical(["0"] * a.n_vars)
    with pytest.raises(KeyError, match="tl.seed_similarity"):
        sngep.pl.similarity(a)


def test_plots_warn_when_spots_changed_since_the_images(clustered, sc_log):
    sub = clustered[: clustered.n_obs // 2].copy()
    fig = sngep.pl.gene_clusters(sub, n_genes=2, return_fig=True)  # still draws ...
    assert isinstance(fig, Figure)
    assert "WARNING" in sc_log.getvalue() and "re-run sngep.pp.gene_images" in sc_log.getvalue()
    plt.close("all")


def test_training_history_integer_epochs_and_a_label_under_every_column(clustered):
    names = [f"loss_{i:02d}" for i in range(14)]  # 4 columns, last row of 2 panels
    clustered.uns["darlc"] = {"history": {n: np.array([3.0, 2.0, 1.5]) for n in names}}
    axes = sngep.pl.training_history(clustered, show=False)
    fig = axes[0].get_figure()
    fig.canvas.draw()
    for a in axes:
        lo, hi = a.get_xlim()
        ticks = [t for t in a.get_xticks() if lo <= t <= hi]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
    labelled = [i for i, a in enumerate(axes) if a.get_xlabel() == "epoch"]
    assert labelled == [10, 11, 12, 13]  # the lowest panel of each of the 4 columns
    plt.close("all")


def test_every_plot_returns_its_figure_and_says_how_to_save_it():
    import inspect

    for name in sngep.pl.__all__:
        fn = getattr(sngep.pl, name)
        params = inspect.signature(fn).parameters
        assert "save" not in params  # plots return the Figure instead (STYLE.md)
        assert params["return_fig"].default is False and params["show"].default is None
        assert "fig.savefig(" in fn.__doc__, name
