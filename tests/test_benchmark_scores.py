"""The benchmark's scores (``benchmarks/scores.py``): chance levels and what they leave out.

The benchmarks are not part of the package; these checks run where the repository root is
importable (``python -m pytest`` from the root) and skip otherwise. No peer method needed.
"""

from __future__ import annotations

import numpy as np
import pytest

scores = pytest.importorskip("benchmarks.scores")


def test_families_match_real_members_only():
    symbols = ["HLA-A", "H2-K1", "Gabra1", "RPL13A", "RPS6KA1", "MT-CO1", "mt-Nd1", "MT1X",
               "MT3", "COL1A1", "COL4A1", "KRT5", "KRT222", "KRTAP1-1", "HBB", "HBEGF",
               "IGKC", "IGLON5", "H2BC12", "H2AZ1", "C1QB", "ACTB"]  # fmt: skip
    fam = dict(zip(symbols, scores.gene_families(symbols), strict=True))
    assert fam["HLA-A"] == fam["H2-K1"] == "MHC (HLA-/H2-)"
    assert fam["MT-CO1"] == fam["mt-Nd1"] == "mitochondrial (MT-)"
    assert fam["MT1X"] == "metallothionein (MT1/MT2)"
    assert fam["H2BC12"] == "replication-dependent histone"
    for other in ("RPS6KA1", "MT3", "COL4A1", "KRT222", "KRTAP1-1", "HBEGF", "IGLON5",
                  "H2AZ1", "ACTB"):  # fmt: skip
        assert fam[other] == "other", other
    paper = scores.gene_families(symbols, scores.PAPER_FAMILIES)
    assert set(paper) == {"MHC (HLA-/H2-)", "GABA receptor (GABR)", "ribosomal (RPL/RPS)",
                          "mitochondrial (MT-)", "other"}  # fmt: skip


def test_internal_indices_leave_out_small_clusters():
    import sngep

    rng = np.random.default_rng(0)
    images = rng.normal(size=(23, 6, 5)).astype(np.float32)
    mask = np.ones((6, 5), dtype=bool)
    labels = np.array([0] * 10 + [1] * 10 + [2, 3, 3])  # a singleton and a pair
    out = scores.internal(images, mask, labels, min_size=3)
    big = labels < 2
    ref = sngep.metrics.dbi_pearson(images[big], labels[big], mask=mask)
    assert out["DBIP_ge3"] == pytest.approx(ref)
    s = scores.sizes(labels)
    assert s["n_singletons"] == 1
    assert s["n_clusters_ge3"] == 2
    assert s["coverage_ge3"] == pytest.approx(20 / 23)
    one_big = scores.internal(images, mask, np.array([0] * 20 + [1, 2, 2]), min_size=3)
    assert str(one_big["DBIP_ge3"]).startswith("n/a")


def test_knn_overlap_identity_and_chance():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(300, 8))
    assert scores.knn_overlap(a, a + 1e-9 * rng.normal(size=a.shape)) == pytest.approx(1.0)
    chance = np.mean([scores.knn_overlap(a, rng.normal(size=(300, 8))) for _ in range(3)])
    assert chance == pytest.approx(scores.knn_chance(300), abs=0.015)


def test_hubs_found_and_dropped_from_the_overlap():
    """Genes at the centre of a high-dimensional cloud are everybody's nearest gene; two
    sections that share only those hubs overlap well unless the hubs are dropped."""
    rng = np.random.default_rng(0)
    n, d, n_hub = 200, 400, 10

    def section():
        x = rng.normal(size=(n, d))  # unrelated between the sections
        x[:n_hub] *= 0.3  # the same genes shrunk towards the centre on both: hubs
        return x

    a, b = section(), section()
    found, share = scores.hubs(a, frac=n_hub / n)
    assert set(found) == set(range(n_hub))
    assert share > 0.5
    with_hubs = scores.knn_overlap(a, b)
    without = scores.knn_overlap(a, b, drop_hubs=True)
    assert with_hubs > 0.4
    assert without < 3 * scores.knn_chance(n)
    # a representation without hubs keeps its overlap when hubs are dropped
    c = rng.normal(size=(n, 8))
    assert scores.knn_overlap(c, c + 1e-9, drop_hubs=True) == pytest.approx(1.0)
    _, flat_share = scores.hubs(c)
    assert flat_share < 0.2


def test_partition_agreement_ignores_unassigned():
    a = np.array([0, 0, 1, 1, -1, 2])
    b = np.array([5, 5, 7, 7, 3, -1])
    out = scores.partition_agreement(a, b)
    assert out["xsec_ARI"] == pytest.approx(1.0)
    assert out["xsec_n_genes"] == 4


def test_go_lift_of_shuffled_modules_is_chance():
    from sngep._gene_sets import load_gene_sets

    go = load_gene_sets("go_bp")
    sizes = np.asarray(go.matrix.sum(axis=1)).ravel()
    terms = np.flatnonzero((sizes >= 15) & (sizes <= 40))[::97][:8]
    genes, labels, seen = [], [], set()
    for i, t in enumerate(terms):  # each module: the genes of one specific GO term
        for g in go.genes[go.matrix[t].indices]:
            if g not in seen:
                seen.add(g)
                genes.append(g)
                labels.append(i)
    genes, labels = np.array(genes, dtype=object), np.array(labels)
    real = scores.go_scores(labels, genes, "human")
    assert real["GO_lift"] > 1.5
    assert real["GO_frac"] == 1.0
    lifts = [scores.go_scores(scores.shuffled(labels, s), genes, "human") for s in range(5)]
    assert np.mean([x["GO_lift"] for x in lifts]) == pytest.approx(1.0, abs=0.25)
    assert np.mean([x["GO_frac"] for x in lifts]) < 0.5
    assert str(scores.go_scores(labels, genes, None)["GO_lift"]).startswith("n/a")


def test_report_shows_the_hub_free_overlap_only_where_measured():
    from benchmarks import report

    heads = [h for h, _ in report._columns(truth=False, paired=True)]
    assert "10-NN overlap" in heads and "10-NN overlap, no hubs" not in heads
    heads = [h for h, _ in report._columns(truth=False, paired=True, nohubs=True)]
    assert heads.index("10-NN overlap, no hubs") == heads.index("10-NN overlap") + 1


def test_planted_ceiling_oracle_recovers_truth_and_not_noise():
    """The planted-data oracle (benchmarks/planted_ceiling.py) is a bound only if it reads
    the generator right: near-perfect on mild noise, at chance when the profiles carry no
    signal (mean_counts near 0 leaves every gene at its flat background)."""
    from sklearn.metrics import adjusted_rand_score

    import sngep

    ceiling = pytest.importorskip("benchmarks.planted_ceiling")
    kw = dict(n_genes_per_pattern=6, shape=(12, 12), random_state=3)
    mild = sngep.datasets.synthetic(dropout=0.3, **kw)
    truth = mild.var["pattern"].cat.codes.to_numpy()
    assert adjusted_rand_score(truth, ceiling.oracle_labels(mild)) > 0.95
    flat = sngep.datasets.synthetic(dropout=0.3, mean_counts=1e-9, **kw)
    assert abs(adjusted_rand_score(truth, ceiling.oracle_labels(flat))) < 0.15


def test_report_gives_a_reason_for_every_missing_score():
    from benchmarks import report

    shuffled = {"method": report.SHUFFLED + " (of darlc_default)", "K": 17, "per_seed": [{}]}
    assert report._num(shuffled, "wall_s") == "n/a (no fit)"
    assert report._num(shuffled, "knn10_overlap") == "n/a (labels only)"
    old = {"method": "leiden standardised images", "K": 17, "knn10_overlap": 0.7, "per_seed": [{}]}
    assert report._num(old, "knn10_overlap_nohubs") == "n/a (representation files missing)"
    fam = {"method": "hotspot", "K": 17, "family_NMI": "n/a: < 2 families with >= 3 genes"}
    assert report._num(fam, "family_NMI") == "n/a (< 2 families of >= 3 genes)"
    dbi = {"method": "x", "K": 6, "DBIE_ge3": "n/a: fewer than 2 clusters of >= 3 genes"}
    assert report._num(dbi, "DBIE_ge3") == "n/a (< 2 clusters of >= 3 genes)"
