import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy.stats import false_discovery_control, fisher_exact, hypergeom

import sngep
from sngep._gene_sets import annotate, load_gene_sets
from sngep._ora import bh, over_representation


def _collection(rng, n_genes=300, n_sets=60):
    genes = np.array([f"G{i}" for i in range(n_genes)], dtype=object)
    sets = {
        f"S{j}": rng.choice(genes, size=int(rng.integers(5, 40)), replace=False).tolist()
        for j in range(n_sets)
    }
    sets["S0"] = genes[:20].tolist()  # the planted module below
    return genes, sets


def _adata(genes, labels, key="darlc"):
    a = ad.AnnData(np.zeros((3, len(genes)), np.float32), var=pd.DataFrame(index=list(genes)))
    a.var[key] = pd.Categorical(np.asarray(labels).astype(str))
    return a


@pytest.fixture
def planted():
    rng = np.random.default_rng(0)
    genes, sets = _collection(rng)
    labels = rng.integers(1, 5, len(genes))
    labels[:20] = 0
    return _adata(genes, labels), sets


def test_planted_module_found(planted):
    a, sets = planted
    df = sngep.tl.module_enrichment(a, gene_sets=sets)
    top = df[df["module"] == "0"].iloc[0]
    assert top["term"] == "S0" and top["name"] == "S0"
    assert top["qval"] < 1e-10 and top["qval_global"] < 1e-10
    assert top["n_overlap"] == top["n_module"] == top["n_term"] == 20
    assert top["genes"] == ";".join(sorted(f"G{i}" for i in range(20)))
    n_bg = a.uns["darlc_enrichment"]["params"]["n_background"]
    np.testing.assert_allclose(top["fold"], n_bg / 20)
    assert list(df.columns) == [
        "module",
        "term",
        "name",
        "n_module",
        "n_term",
        "n_overlap",
        "expected",
        "fold",
        "pval",
        "qval",
        "qval_global",
        "genes",
    ]
    # sorted by module, then p-value
    codes = df["module"].cat.codes.to_numpy()
    assert np.all(np.diff(codes) >= 0)
    for _, g in df.groupby("module", observed=True):
        assert np.all(np.diff(g["pval"].to_numpy()) >= 0)
    mods = a.uns["darlc_enrichment"]["modules"]
    assert mods.set_index("module").loc["0", "best_term"] == "S0"
    assert mods["n_genes"].sum() == a.n_vars


def test_pvalue_matches_fisher_exact_and_hand_count(planted):
    a, sets = planted
    df = sngep.tl.module_enrichment(a, gene_sets=sets)
    n_bg = a.uns["darlc_enrichment"]["params"]["n_background"]
    for _, row in df.sample(20, random_state=0).iterrows():
        k, n, big_k = row["n_overlap"], row["n_module"], row["n_term"]
        table = [[k, n - k], [big_k - k, n_bg - n - big_k + k]]
        p_fisher = fisher_exact(table, alternative="greater").pvalue
        np.testing.assert_allclose(row["pval"], p_fisher, rtol=1e-9)
        by_hand = sum(hypergeom.pmf(i, n_bg, big_k, n) for i in range(k, min(n, big_k) + 1))
        np.testing.assert_allclose(row["pval"], by_hand, rtol=1e-9)
        np.testing.assert_allclose(row["expected"], n * big_k / n_bg)


def test_bh_matches_scipy_and_counts_untested_as_one():
    rng = np.random.default_rng(1)
    p = rng.random(50) ** 3
    np.testing.assert_allclose(bh(p), false_discovery_control(p, method="bh"))
    full = np.concatenate([p, np.ones(30)])
    np.testing.assert_allclose(bh(p, 80), false_discovery_control(full, method="bh")[:50])


def test_background_is_clustered_annotated_genes_and_size_limits_within_it(planted):
    a, sets = planted
    sets = dict(sets, extra=["G0", "G1", "NOT_IN_DATA1", "NOT_IN_DATA2", "NOT_IN_DATA3"])
    a.var.loc[a.var_names[-10:], "darlc"] = np.nan  # unclustered genes are not tested
    df = sngep.tl.module_enrichment(a, gene_sets=sets, min_size=2, max_size=25)
    params = a.uns["darlc_enrichment"]["params"]
    annotated = set().union(*map(set, sets.values()))
    expected_bg = sum(g in annotated for g in a.var_names[:-10])
    assert params["n_background"] == expected_bg
    # 'extra' has 2 genes in the background: tested with min_size=2, size 2
    assert (df.loc[df["term"] == "extra", "n_term"] == 2).all()
    assert df["n_term"].max() <= 25
    assert not set(df["genes"].str.split(";").explode()) & set(a.var_names[-10:])


def test_shuffled_labels_give_nominal_error_rates():
    rng = np.random.default_rng(2)
    genes, sets = _collection(rng, n_genes=600, n_sets=150)
    gs = load_gene_sets(sets)
    ann = annotate(list(genes), gs)
    n_mod, pvals, any_hit = 8, [], []
    for _ in range(100):
        codes = rng.integers(0, n_mod, len(genes))
        res = over_representation(
            ann.incidence,
            codes,
            [str(i) for i in range(n_mod)],
            term_ids=gs.ids,
            term_names=gs.names,
        )
        n_tests = res.n_terms * n_mod
        p = np.concatenate([res.table["pval"], np.ones(n_tests - len(res.table))])
        pvals.append(p)
        any_hit.append((res.modules["best_qval"] < 0.05).to_numpy())
    pvals = np.concatenate(pvals)
    frac = np.mean(pvals < 0.05)
    assert 0.02 < frac <= 0.055  # hypergeometric p is discrete, hence slightly conservative
    assert np.mean(np.concatenate(any_hit)) <= 0.06  # BH: P(any q < 0.05 | all null) <= 0.05


def test_ensembl_ids_map_to_symbols():
    ids = {
        "ENSG00000131095.12": "GFAP",  # version suffix ignored
        "ENSG00000171885": "AQP4",
        "ENSG00000123560": "PLP1",
        "ENSG00000197971": "MBP",
        "ENSG00000168314": "MOBP",
        "ENSG00000132639": "SNAP25",
        "ENSG00000067715": "SYT1",
        "ENSG00000277586": "NEFL",
        "ENSG00000244734": "HBB",
        "ENSG99999999999": "unknown",
    }
    sets = {"glia": ["GFAP", "AQP4", "PLP1", "MBP", "MOBP"], "neuron": ["SNAP25", "SYT1", "NEFL"]}
    labels = ["g", "g", "g", "g", "g", "n", "n", "n", "n", "g"]
    a = _adata(list(ids), labels)
    df = sngep.tl.module_enrichment(a, gene_sets=sets, min_size=2)
    row = df[(df["module"] == "g") & (df["term"] == "glia")].iloc[0]
    assert row["genes"] == "AQP4;GFAP;MBP;MOBP;PLP1"
    assert row["n_overlap"] == 5 and row["n_module"] == 5
    row = df[(df["module"] == "n") & (df["term"] == "neuron")].iloc[0]
    assert row["genes"] == "NEFL;SNAP25;SYT1"
    assert a.uns["darlc_enrichment"]["params"]["n_background"] == 8  # HBB, unknown: in no set
    # the same through a var column of ids (scanpy's gene_symbols)
    b = _adata([f"gene{i}" for i in range(len(ids))], labels)
    b.var["ids"] = list(ids)
    df2 = sngep.tl.module_enrichment(b, gene_sets=sets, min_size=2, gene_symbols="ids")
    pd.testing.assert_frame_equal(df, df2)


def test_collection_of_ensembl_ids():
    sets = {"glia": ["ENSG00000131095", "ENSG00000171885", "ENSG00000123560"]}
    a = _adata(["ENSG00000131095.3", "AQP4", "PLP1", "SNAP25"], ["g", "g", "g", "n"])
    df = sngep.tl.module_enrichment(a, gene_sets=sets, min_size=2)
    row = df[(df["module"] == "g") & (df["term"] == "glia")].iloc[0]
    assert row["n_overlap"] == 3 and row["genes"] == "AQP4;ENSG00000131095.3;PLP1"


def test_mouse_symbols_upper_cased():
    sets = {"glia": ["GFAP", "AQP4", "PLP1", "MBP", "MOBP"], "neuron": ["SNAP25", "SYT1", "NEFL"]}
    genes = ["Gfap", "Aqp4", "Plp1", "Mbp", "Mobp", "Snap25", "Syt1", "Nefl", "Gm12345"]
    a = _adata(genes, ["g"] * 5 + ["n"] * 4)
    df = sngep.tl.module_enrichment(a, gene_sets=sets, organism="mouse", min_size=2)
    row = df[(df["module"] == "g") & (df["term"] == "glia")].iloc[0]
    assert row["genes"] == "Aqp4;Gfap;Mbp;Mobp;Plp1"  # the data's own names are shown
    assert a.uns["darlc_enrichment"]["params"]["n_background"] == 8
    with pytest.raises(ValueError, match="organism='mouse'"):
        sngep.tl.module_enrichment(a, gene_sets=sets, min_size=2)  # human: nothing matches


def test_h5ad_round_trip(planted, tmp_path):
    a, sets = planted
    sngep.tl.module_enrichment(a, gene_sets=sets, key_added="enr")
    a.write_h5ad(tmp_path / "a.h5ad")
    b = ad.read_h5ad(tmp_path / "a.h5ad")
    for part in ("results", "modules"):
        pd.testing.assert_frame_equal(b.uns["enr"][part], a.uns["enr"][part])
    assert b.uns["enr"]["params"] == a.uns["enr"]["params"]


def test_copy_semantics(planted):
    a, sets = planted
    out = sngep.tl.module_enrichment(a, gene_sets=sets, copy=True)
    assert isinstance(out, ad.AnnData) and out is not a
    assert "darlc_enrichment" not in a.uns and "darlc_enrichment" in out.uns
    df = sngep.tl.module_enrichment(a, gene_sets=sets)
    assert isinstance(df, pd.DataFrame)
    assert a.uns["darlc_enrichment"]["results"] is df
    pd.testing.assert_frame_equal(df, out.uns["darlc_enrichment"]["results"])


def test_gmt_file_and_descriptions(planted, tmp_path):
    a, sets = planted
    path = tmp_path / "sets.gmt"
    path.write_text(
        "".join(f"{k}\tdescription of {k}\t" + "\t".join(v) + "\n" for k, v in sets.items())
    )
    df = sngep.tl.module_enrichment(a, gene_sets=path)
    top = df[df["module"] == "0"].iloc[0]
    assert top["term"] == "S0" and top["name"] == "description of S0"
    assert a.uns["darlc_enrichment"]["params"]["gene_sets"] == str(path)


def test_clear_errors(planted):
    a, sets = planted
    with pytest.raises(KeyError, match="sngep.tl.darlc"):
        sngep.tl.module_enrichment(a, gene_sets=sets, key="missing")
    with pytest.raises(ValueError, match="unknown gene set collection"):
        sngep.tl.module_enrichment(a, gene_sets="go_xx")
    with pytest.raises(ValueError, match="organism"):
        sngep.tl.module_enrichment(a, gene_sets=sets, organism="zebrafish")
    with pytest.raises(ValueError, match="no clustered gene is annotated"):
        sngep.tl.module_enrichment(a, gene_sets={"s": ["X1", "X2", "X3", "X4", "X5"]})
    with pytest.raises(KeyError, match="gene_symbols"):
        sngep.tl.module_enrichment(a, gene_sets=sets, gene_symbols="nope")
    with pytest.raises(TypeError, match="list of gene ids"):
        sngep.tl.module_enrichment(a, gene_sets={"s": "G1"})
    with pytest.raises(ValueError, match="min_size"):
        sngep.tl.module_enrichment(a, gene_sets=sets, min_size=10, max_size=5)
    with pytest.raises(ValueError, match="integers 1 <= min_size"):
        sngep.tl.module_enrichment(a, gene_sets=sets, min_size=2.5)


def test_bundled_go_bp():
    gs = load_gene_sets("go_bp")
    assert gs.n_terms == 9006 and gs.ids[0] == "GO:0000002"
    assert gs.names[0] == "mitochondrial genome maintenance"
    urea = gs.genes[gs.matrix[np.flatnonzero(gs.ids == "GO:0000050")[0]].indices].tolist()
    assert "CPS1" in urea and "OTC" in urea
    rng = np.random.default_rng(3)
    others = rng.choice(np.setdiff1d(gs.genes, urea), 400, replace=False)
    genes = np.concatenate([urea, others])
    labels = np.concatenate([np.zeros(len(urea), int), rng.integers(1, 6, len(others))])
    a = _adata(genes, labels)
    df = sngep.tl.module_enrichment(a)  # gene_sets='go_bp'
    top = df[df["module"] == "0"].iloc[0]
    assert top["qval"] < 1e-10
    assert top["n_overlap"] == len(urea)
    assert a.uns["darlc_enrichment"]["params"]["gene_sets"] == "go_bp"


def test_mouse_olfactory_bulb_with_bundled_go():
    # real data shipped with the package: mouse symbols, upper-cased onto the human GO BP
    a = sngep.datasets.mouse_olfactory_bulb()
    gs = load_gene_sets("go_bp")
    upper = pd.Index(a.var_names.str.upper())
    term = np.flatnonzero(gs.ids == "GO:0006119")[0]  # oxidative phosphorylation
    members = np.flatnonzero(upper.isin(gs.genes[gs.matrix[term].indices]))
    assert members.size >= 20
    rng = np.random.default_rng(0)
    labels = rng.integers(1, 8, a.n_vars)
    labels[members] = 0
    a.var["darlc"] = pd.Categorical(labels.astype(str))
    x_before = a.X.toarray() if hasattr(a.X, "toarray") else a.X.copy()
    df = sngep.tl.module_enrichment(a, "go_bp", organism="mouse")  # gene_sets positional
    top = df[df["module"] == "0"].iloc[0]
    assert top["term"] == "GO:0006119" and top["qval"] < 1e-10
    # the random modules: few significant terms (BH within each module at 5 %)
    others = df[(df["module"] != "0") & (df["qval"] < 0.05)]
    assert others["module"].nunique() <= 2
    assert np.array_equal(a.X.toarray() if hasattr(a.X, "toarray") else a.X, x_before)
