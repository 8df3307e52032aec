import itertools

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import sngep
from sngep import metrics


def _collection(rng, n_genes=400, n_sets=80):
    genes = np.array([f"G{i}" for i in range(n_genes)], dtype=object)
    sets = {
        f"S{j}": rng.choice(genes, size=int(rng.integers(3, 30)), replace=False).tolist()
        for j in range(n_sets)
    }
    return genes, sets


def _lift_naive(labels, genes, sets, max_term_size):
    members = {g: set() for g in genes}
    for name, s in sets.items():
        for g in s:
            if g in members:
                members[g].add(name)
    annotated = [i for i, g in enumerate(genes) if members[genes[i]]]
    sizes = {n: sum(n in members[genes[i]] for i in annotated) for n in sets}
    spec = {g: {t for t in members[g] if sizes[t] <= max_term_size} for g in genes}
    same = [0, 0]
    every = [0, 0]
    for i, j in itertools.combinations(annotated, 2):
        shared = bool(spec[genes[i]] & spec[genes[j]])
        every[0] += shared
        every[1] += 1
        if labels[i] == labels[j]:
            same[0] += shared
            same[1] += 1
    return (same[0] / same[1]) / (every[0] / every[1])


def test_pair_lift_matches_naive_pair_count():
    rng = np.random.default_rng(0)
    genes, sets = _collection(rng, n_genes=120, n_sets=40)
    genes = np.concatenate([genes, ["UNANNOTATED1", "UNANNOTATED2"]])
    labels = rng.integers(0, 4, len(genes))
    got = metrics.go_pair_lift(labels, genes, sets, max_term_size=15)
    np.testing.assert_allclose(got, _lift_naive(labels, genes, sets, 15), rtol=1e-12)


def test_pair_lift_is_one_for_random_labels_and_high_for_planted():
    rng = np.random.default_rng(1)
    genes, sets = _collection(rng)
    lifts = [
        metrics.go_pair_lift(rng.permutation(np.repeat(np.arange(8), 50)), genes, sets)
        for _ in range(60)
    ]
    se = np.std(lifts) / np.sqrt(len(lifts))
    assert abs(np.mean(lifts) - 1.0) < 4 * se + 0.01
    # planted: modules equal to (disjoint) gene sets
    planted = {f"P{m}": genes[m * 50 : (m + 1) * 50].tolist() for m in range(8)}
    labels = np.repeat(np.arange(8), 50)
    lift = metrics.go_pair_lift(labels, genes, {**sets, **planted})
    assert lift > 3


def test_module_scores_planted_vs_random():
    rng = np.random.default_rng(2)
    genes, sets = _collection(rng)
    planted = {f"P{m}": genes[m * 50 : (m + 1) * 50 : 2].tolist() for m in range(8)}
    sets = {**sets, **planted}
    labels = np.repeat(np.arange(8), 50)
    good = metrics.go_module_scores(labels, genes, sets)
    assert good["fraction_enriched"] == 1.0 and good["median_best_q"] < 1e-6
    assert good["n_modules"] == 8 and good["n_genes"] == 400
    rand = metrics.go_module_scores(rng.permutation(labels), genes, sets)
    assert rand["fraction_enriched"] <= 0.25 and rand["median_best_q"] > 0.05


def test_module_scores_share_the_enrichment_core():
    rng = np.random.default_rng(3)
    genes, sets = _collection(rng)
    labels = rng.integers(0, 6, len(genes))
    labels[:4] = 6  # a small module, left out by min_module_size=5
    a = ad.AnnData(np.zeros((2, len(genes)), np.float32), var=pd.DataFrame(index=list(genes)))
    a.var["darlc"] = pd.Categorical(labels.astype(str))
    sngep.tl.module_enrichment(a, gene_sets=sets, min_size=3, max_size=40, fdr=0.2)
    mods = a.uns["darlc_enrichment"]["modules"]
    mods = mods[mods["n_genes"] >= 5]
    best_q = mods["best_qval"].fillna(1.0)
    got = metrics.go_module_scores(
        labels, genes, sets, min_module_size=5, fdr=0.2, min_size=3, max_size=40
    )
    assert got["n_modules"] == 6
    np.testing.assert_allclose(got["median_best_q"], np.median(best_q))
    np.testing.assert_allclose(got["fraction_enriched"], np.mean(best_q < 0.2))


def test_mouse_and_errors():
    sets = {"glia": ["GFAP", "AQP4", "PLP1", "MBP", "MOBP"], "neuron": ["SNAP25", "SYT1", "NEFL"]}
    genes = ["Gfap", "Aqp4", "Plp1", "Mbp", "Mobp", "Snap25", "Syt1", "Nefl"]
    labels = [0] * 5 + [1] * 3
    assert metrics.go_pair_lift(labels, genes, sets, organism="mouse") > 1
    with pytest.raises(ValueError, match="organism='mouse'"):
        metrics.go_pair_lift(labels, genes, sets)
    with pytest.raises(ValueError, match="organism"):
        metrics.go_module_scores(labels, genes, sets, organism="rat")
    with pytest.raises(ValueError, match="entries"):
        metrics.go_pair_lift(labels[:-1], genes, sets, organism="mouse")
