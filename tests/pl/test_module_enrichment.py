import matplotlib

matplotlib.use("Agg")

import anndata as ad  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import sngep  # noqa: E402


@pytest.fixture
def enriched():
    rng = np.random.default_rng(0)
    genes = np.array([f"G{i}" for i in range(200)], dtype=object)
    sets = {f"set {j}": rng.choice(genes, 15, replace=False).tolist() for j in range(30)}
    sets["a long description of the first planted gene set, cut in the plot"] = genes[:20].tolist()
    sets["second planted"] = genes[20:40].tolist()
    labels = rng.integers(2, 5, len(genes))
    labels[:20], labels[20:40] = 0, 1
    a = ad.AnnData(np.zeros((2, len(genes)), np.float32), var=pd.DataFrame(index=list(genes)))
    a.var["darlc"] = pd.Categorical(labels.astype(str))
    sngep.tl.module_enrichment(a, gene_sets=sets)
    return a


def test_module_enrichment_plot(enriched):
    fig = sngep.pl.module_enrichment(enriched, n_terms=2, return_fig=True)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2", "3", "4"]
    assert len(ax.get_yticklabels()) <= 2 * 5
    assert ax.get_yticklabels()[0].get_text().startswith("a long description")
    plt.close(fig)
    fig, axes = plt.subplots(1, 2)
    out = sngep.pl.module_enrichment(
        enriched, modules=["1"], fdr=0.05, size_by="fold", ax=axes[1], show=False
    )
    assert out is axes[1]
    assert [t.get_text() for t in out.get_yticklabels()] == ["second planted"]
    plt.close("all")


def test_module_enrichment_plot_errors(enriched):
    with pytest.raises(KeyError, match="sngep.tl.module_enrichment"):
        sngep.pl.module_enrichment(enriched, key="missing")
    with pytest.raises(ValueError, match="not in"):
        sngep.pl.module_enrichment(enriched, modules=["9"])
