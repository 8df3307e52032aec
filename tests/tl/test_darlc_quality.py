"""DARLC recovers planted gene clusters (the science, not only shapes). ~1 min on 2 CPU cores."""

import pytest
import scanpy as sc
from sklearn.cluster import KMeans

import sngep


@pytest.mark.parametrize("seed", [0])
def test_fast_preset_recovers_planted_patterns_and_beats_kmeans(seed):
    a = sngep.datasets.synthetic(
        random_state=seed
    )  # 8 planted clusters x 20 genes, NB noise, dropout
    sc.pp.normalize_total(a)
    sc.pp.log1p(a)
    sngep.pp.gene_images(a)
    sngep.tl.seed_similarity(a, show_progress_bar=False)
    truth = a.var["pattern"].astype(str).to_numpy()
    k = len(set(truth))
    sngep.tl.darlc(a, n_clusters=k, preset="fast", show_progress_bar=False)
    ari_darlc = sngep.metrics.ari(truth, a.var["darlc"].to_numpy())
    raw = a.varm["gene_images"].reshape(a.n_vars, -1)
    ari_kmeans = sngep.metrics.ari(truth, KMeans(k, n_init=10, random_state=0).fit_predict(raw))
    print(f"ARI DARLC {ari_darlc:.3f} vs k-means on raw images {ari_kmeans:.3f}")
    assert ari_darlc >= 0.8
    assert ari_darlc > ari_kmeans
