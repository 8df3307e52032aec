from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

import sngep

_REFERENCE = Path(__file__).parent / "data" / "estimate_k_eigengap_reference.npz"


def _adata_with_similarity(s, key="seed_similarity") -> ad.AnnData:
    n = s.shape[0]
    adata = ad.AnnData(X=np.zeros((3, n), dtype=np.float32))
    adata.varp[key] = s
    return adata


def _block_similarity(sizes, seed=0, noise=0.05, negative=0.1):
    """Block-diagonal similarity: strong within blocks, weak noise (some negative) between."""
    rng = np.random.default_rng(seed)
    n = sum(sizes)
    s = rng.uniform(-negative, noise, (n, n))
    start = 0
    for size in sizes:
        s[start : start + size, start : start + size] = rng.uniform(0.3, 0.9, (size, size))
        start += size
    s = (s + s.T) / 2
    np.fill_diagonal(s, 0.0)
    perm = rng.permutation(n)  # order must not matter
    return s[np.ix_(perm, perm)].astype(np.float32)


@pytest.mark.parametrize("method", ["knn_eigengap", "eigengap"])
@pytest.mark.parametrize("solver", ["dense", "sparse"])
def test_five_blocks_give_five(solver, method):
    s = _block_similarity([8, 10, 12, 9, 11])
    adata = _adata_with_similarity(s)
    sngep.tl.estimate_k(adata, method=method, solver=solver, k_max=20)
    res = adata.uns["estimate_k"]
    assert res["k"] == 5
    assert res["eigenvalues"].shape == (21,)
    assert res["gaps"].shape == (20,)
    assert np.all(np.diff(res["eigenvalues"]) >= -1e-9)
    np.testing.assert_allclose(res["gaps"], np.diff(res["eigenvalues"]))
    assert res["params"]["solver"] == solver


def test_hand_computed_spectrum():
    # two disconnected pairs with weight 1 (plus a negative entry, clipped to 0):
    # D = I, each block L = [[1,-1],[-1,1]], L^2 = 2L, L' = 3L -> eigenvalues 0, 0, 6, 6
    s = np.zeros((4, 4))
    s[0, 1] = s[1, 0] = s[2, 3] = s[3, 2] = 1.0
    s[0, 2] = s[2, 0] = -0.7
    adata = _adata_with_similarity(s)
    sngep.tl.estimate_k(adata, method="eigengap", k_min=1, k_max=3)
    res = adata.uns["estimate_k"]
    np.testing.assert_allclose(res["eigenvalues"], [0, 0, 6, 6], atol=1e-10)
    np.testing.assert_allclose(res["gaps"], [0, 6, 0], atol=1e-10)
    assert res["k"] == 2


def test_hand_computed_weighted_degrees():
    # path 0 - 1 - 2 with weights a, b: checks D^-1/2 (L + L^2) D^-1/2 entry by entry
    a, b = 2.0, 0.5
    w = np.array([[0, a, 0], [a, 0, b], [0, b, 0]])
    d = np.array([a, a + b, b])
    lap = np.diag(d) - w
    expected_matrix = np.diag(d**-0.5) @ (lap + lap @ lap) @ np.diag(d**-0.5)
    # the path graph is connected: one zero eigenvalue; trace = sum of eigenvalues
    adata = _adata_with_similarity(w)
    sngep.tl.estimate_k(adata, method="eigengap", k_min=1, k_max=2)
    ev = adata.uns["estimate_k"]["eigenvalues"]
    assert abs(ev[0]) < 1e-10
    np.testing.assert_allclose(ev.sum(), np.trace(expected_matrix))
    # hand value of the trace: sum_i (d_i + d_i^2 + sum_j w_ij^2) / d_i
    hand = sum((d[i] + d[i] ** 2 + (w[i] ** 2).sum()) / d[i] for i in range(3))
    np.testing.assert_allclose(ev.sum(), hand)


def test_sparse_solver_matches_dense_on_medium_case():
    s = _block_similarity([30, 50, 70, 60, 40, 50, 100], seed=3, noise=0.2, negative=0.05)
    dense = _adata_with_similarity(s)
    sparse = _adata_with_similarity(s)
    sngep.tl.estimate_k(dense, method="eigengap", solver="dense", k_max=30)
    sngep.tl.estimate_k(sparse, method="eigengap", solver="sparse", k_max=30)
    np.testing.assert_allclose(
        sparse.uns["estimate_k"]["eigenvalues"],
        dense.uns["estimate_k"]["eigenvalues"],
        rtol=1e-7,
        atol=1e-8,
    )
    assert sparse.uns["estimate_k"]["k"] == dense.uns["estimate_k"]["k"] == 7


def test_sparse_similarity_input_matches_dense_input():
    s = _block_similarity([20, 25, 30], seed=1)
    s[s < 0.2] = 0.0  # a kNN-like sparse graph
    a = _adata_with_similarity(sp.csr_matrix(s))
    b = _adata_with_similarity(s)
    sngep.tl.estimate_k(a, method="eigengap", solver="sparse", k_max=10)
    sngep.tl.estimate_k(b, method="eigengap", solver="dense", k_max=10)
    np.testing.assert_allclose(
        a.uns["estimate_k"]["eigenvalues"], b.uns["estimate_k"]["eigenvalues"], atol=1e-8
    )
    assert a.uns["estimate_k"]["k"] == 3


def test_negative_entries_are_clipped():
    s = _block_similarity([5, 6, 7], seed=2, negative=0.5)
    assert (s < 0).any()
    a = _adata_with_similarity(s)
    b = _adata_with_similarity(np.maximum(s, 0))
    sngep.tl.estimate_k(a, method="eigengap", k_max=8)
    sngep.tl.estimate_k(b, method="eigengap", k_max=8)
    np.testing.assert_allclose(
        a.uns["estimate_k"]["eigenvalues"], b.uns["estimate_k"]["eigenvalues"]
    )
    assert np.all(np.isfinite(a.uns["estimate_k"]["eigenvalues"]))


def test_isolated_gene_is_its_own_component():
    s = _block_similarity([6, 6], seed=4, negative=0.0, noise=0.0)
    s = np.pad(s, ((0, 1), (0, 1)))  # gene 12 has no similarity to anyone
    adata = _adata_with_similarity(s)
    sngep.tl.estimate_k(adata, method="eigengap", k_min=1, k_max=6)
    res = adata.uns["estimate_k"]
    assert np.all(np.isfinite(res["eigenvalues"]))
    np.testing.assert_allclose(res["eigenvalues"][:3], 0.0, atol=1e-10)
    assert res["k"] == 3


@pytest.mark.parametrize("method", ["knn_eigengap", "eigengap"])
def test_k_range_is_respected(method):
    s = _block_similarity([10, 10, 10, 10, 10])
    adata = _adata_with_similarity(s)
    sngep.tl.estimate_k(adata, method=method, k_min=6, k_max=12)
    res = adata.uns["estimate_k"]
    assert 6 <= res["k"] <= 12
    assert list(res["params"]["window"]) == [6, 12]
    assert res["k_unrestricted"] == 5  # the blocks, outside the range asked for


def test_default_k_max():
    s = _block_similarity([4, 4, 4])
    adata = _adata_with_similarity(s)
    sngep.tl.estimate_k(adata, method="eigengap")
    assert adata.uns["estimate_k"]["params"]["k_max"] == 6  # n_genes // 2
    assert adata.uns["estimate_k"]["k"] == 3


def test_pathway_size():
    adata = ad.AnnData(X=np.zeros((2, 95)))
    sngep.tl.estimate_k(adata, method="pathway_size")  # no similarity needed
    assert adata.uns["estimate_k"]["k"] == 3  # 95 / 30 = 3.17
    sngep.tl.estimate_k(adata, method="pathway_size", k_min=5)
    assert adata.uns["estimate_k"]["k"] == 5
    adata = ad.AnnData(X=np.zeros((2, 75)))
    sngep.tl.estimate_k(adata, method="pathway_size")
    assert adata.uns["estimate_k"]["k"] == 3  # 2.5 rounds up
    assert adata.uns["estimate_k"]["eigenvalues"].size == 0


def test_end_to_end_with_seed_similarity():
    rng = np.random.default_rng(0)
    h = w = 16
    yy, xx = np.mgrid[:h, :w]
    patterns = [
        np.exp(-((yy - 4) ** 2 + (xx - 4) ** 2) / 6.0),
        (np.abs(xx - 12) < 2).astype(float),
        (np.abs(yy - 12) < 2).astype(float),
    ]
    images = np.concatenate(
        [p + 0.2 * rng.random((8, h, w)) * (rng.random((8, h, w)) < 0.2) for p in patterns]
    ).astype(np.float32)
    adata = ad.AnnData(X=np.zeros((h * w, 24), dtype=np.float32))
    adata.varm["gene_images"] = images
    adata.uns["gene_images"] = {"shape": np.array([h, w]), "mask": np.ones((h, w), bool)}
    sngep.tl.seed_similarity(adata, show_progress_bar=False)
    sngep.tl.estimate_k(adata, k_max=10)
    assert adata.uns["estimate_k"]["k"] == 3


@pytest.mark.parametrize("method", ["knn_eigengap", "eigengap", "pathway_size"])
def test_copy_and_h5ad_round_trip(tmp_path, method):
    s = _block_similarity([12, 12, 12])
    adata = _adata_with_similarity(s)
    out = sngep.tl.estimate_k(adata, method=method, copy=True, key_added="kk")
    assert "kk" not in adata.uns
    path = tmp_path / "a.h5ad"
    out.write_h5ad(path)
    back = ad.read_h5ad(path).uns["kk"]
    res = out.uns["kk"]
    assert int(back["k"]) == res["k"] == (3 if method != "pathway_size" else 2)
    for key in ("eigenvalues", "gaps"):
        np.testing.assert_array_equal(back[key], res[key])
    for key in ("runner_up", "gap_ratio", "k_unrestricted"):
        np.testing.assert_equal(back[key], res[key])
    assert back["params"]["method"] == method
    assert back["params"]["criterion"] == res["params"]["criterion"]
    if method != "pathway_size":
        np.testing.assert_array_equal(back["params"]["window"], res["params"]["window"])


def test_errors():
    s = _block_similarity([4, 4])
    adata = _adata_with_similarity(s)
    with pytest.raises(KeyError, match="tl.seed_similarity"):
        sngep.tl.estimate_k(adata, similarity_key="missing")
    with pytest.raises(ValueError, match="k_max"):
        sngep.tl.estimate_k(adata, k_max=8)
    with pytest.raises(ValueError, match="k_max"):
        sngep.tl.estimate_k(adata, k_min=5, k_max=4)
    with pytest.raises(ValueError, match="k_min"):
        sngep.tl.estimate_k(adata, k_min=0)
    with pytest.raises(ValueError, match="method"):
        sngep.tl.estimate_k(adata, method="silhouette")
    with pytest.raises(ValueError, match="solver='dense'"):
        sngep.tl.estimate_k(adata, k_max=7, solver="sparse")
    bad = s.copy()
    bad[0, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        sngep.tl.estimate_k(_adata_with_similarity(bad))


# ------------------------------------------------------------------ large similarities (issue: UX)
def _naive_knn(s, k):
    """Reference kNN graph: (S + S.T) / 2, negatives 0, no self, top k per row, union."""
    w = np.maximum((s + s.T) / 2, 0.0)
    np.fill_diagonal(w, -np.inf)
    keep = np.zeros(w.shape, dtype=bool)
    for i, row in enumerate(w):
        keep[i, np.argsort(-row, kind="stable")[:k]] = True
    keep |= keep.T
    np.fill_diagonal(w, 0.0)
    return np.where(keep, w, 0.0)


def test_knn_graph_matches_naive_reference():
    from sngep.tl._estimate_k import _knn_graph

    rng = np.random.default_rng(5)
    s = rng.uniform(-0.3, 1.0, (70, 70))
    s = (s + s.T) / 2
    got = _knn_graph(s.astype(np.float32), "s", 6)
    assert sp.issparse(got) and (abs(got - got.T) > 0).nnz == 0
    np.testing.assert_allclose(got.toarray(), _naive_knn(s.astype(np.float32), 6), atol=1e-7)


def test_knn_solver_on_dense_equals_seed_similarity_knn():
    a = sngep.datasets.synthetic(
        10, patterns=("band", "blob", "ring"), n_variants=2, shape=(14, 14), random_state=2
    )
    a.X = np.log1p(a.X)
    sngep.pp.gene_images(a)
    dense = a.copy()
    sngep.tl.seed_similarity(dense, show_progress_bar=False)
    sngep.tl.estimate_k(dense, method="eigengap", solver="knn", n_neighbors=5, k_max=12)
    knn = a.copy()
    sngep.tl.seed_similarity(knn, n_neighbors=5, show_progress_bar=False)
    sngep.tl.estimate_k(knn, method="eigengap", solver="sparse", k_max=12)
    got, ref = dense.uns["estimate_k"], knn.uns["estimate_k"]
    np.testing.assert_allclose(got["eigenvalues"], ref["eigenvalues"], rtol=1e-5, atol=1e-7)
    assert got["k"] == ref["k"]
    assert got["params"]["solver"] == "knn" and got["params"]["n_neighbors"] == 5
    assert ref["params"]["n_neighbors"] is None


def test_auto_uses_knn_graph_of_a_large_dense_similarity(monkeypatch, sc_log):
    import scanpy as sc

    from sngep.tl import _estimate_k

    monkeypatch.setattr(_estimate_k, "_DENSE_MAX_GENES", 100)  # "large" = more than 100 genes
    s = _block_similarity([40, 50, 60, 30], seed=6)
    sc.settings.verbosity = "info"
    a = _adata_with_similarity(s)
    sngep.tl.estimate_k(a, method="eigengap", k_max=20)
    res = a.uns["estimate_k"]
    assert res["params"]["solver"] == "knn" and res["params"]["n_neighbors"] == 15
    assert res["k"] == 4
    ref = _adata_with_similarity(sp.csr_matrix(_naive_knn(s.astype(np.float64), 15)))
    sngep.tl.estimate_k(ref, method="eigengap", solver="sparse", k_max=20)
    np.testing.assert_allclose(res["eigenvalues"], ref.uns["estimate_k"]["eigenvalues"], atol=1e-8)
    log = sc_log.getvalue()
    assert "15-nearest-neighbour graph" in log and "solver='sparse'" in log  # says what it did
    assert "Lanczos for the 21 smallest eigenvalues" in log
    # a sparse similarity is used as it is, silently; the exact solvers stay available
    sc_log.seek(0)
    sc_log.truncate()
    b = _adata_with_similarity(sp.csr_matrix(s * (s > 0.25)))
    sngep.tl.estimate_k(b, method="eigengap", k_max=20)
    assert b.uns["estimate_k"]["params"]["solver"] == "sparse"
    assert "WARNING" not in sc_log.getvalue()
    c = _adata_with_similarity(s)
    sngep.tl.estimate_k(c, method="eigengap", k_max=20, solver="sparse")
    d = _adata_with_similarity(s)
    sngep.tl.estimate_k(d, method="eigengap", k_max=20, solver="dense")
    np.testing.assert_allclose(
        c.uns["estimate_k"]["eigenvalues"], d.uns["estimate_k"]["eigenvalues"], atol=1e-8
    )
    with pytest.raises(ValueError, match="n_neighbors"):
        sngep.tl.estimate_k(c, method="eigengap", solver="knn", n_neighbors=0, k_max=20)


# ------------------------------------------------------------------ the paper's eigengap, frozen
@pytest.mark.parametrize("name", ["block", "synthetic"])
@pytest.mark.parametrize("solver", ["dense", "sparse"])
def test_eigengap_matches_stored_reference(name, solver):
    # outputs of method='eigengap' stored before the default changed
    # (tests/tl/data/make_estimate_k_reference.py); inputs stored with them
    ref = np.load(_REFERENCE)
    adata = _adata_with_similarity(ref[f"{name}_similarity"])
    sngep.tl.estimate_k(adata, method="eigengap", solver=solver)
    res = adata.uns["estimate_k"]
    assert res["k"] == int(ref[f"{name}_{solver}_k"])
    assert res["params"]["k_max"] == int(ref[f"{name}_{solver}_k_max"])
    assert res["params"]["k_min"] == 2
    np.testing.assert_allclose(
        res["eigenvalues"], ref[f"{name}_{solver}_eigenvalues"], rtol=1e-8, atol=1e-9
    )
    np.testing.assert_allclose(res["gaps"], np.diff(ref[f"{name}_{solver}_eigenvalues"]), atol=1e-8)


# ------------------------------------------------------------------ the default: knn_eigengap
def _planted(n_variants: int, dropout: float) -> ad.AnnData:
    """Four pattern kinds x ``n_variants`` planted clusters of 12 genes on 24 x 24 spots."""
    import scanpy as sc

    a = sngep.datasets.synthetic(
        12, n_variants=n_variants, dropout=dropout, shape=(24, 24), random_state=0
    )
    sc.pp.normalize_total(a)
    sc.pp.log1p(a)
    sngep.pp.gene_images(a)
    sngep.tl.seed_similarity(a, show_progress_bar=False)
    return a


@pytest.mark.parametrize("dropout", [0.3, 0.6])
@pytest.mark.parametrize("n_variants", [1, 2, 3])
def test_planted_k_is_recovered(n_variants, dropout):
    a = _planted(n_variants, dropout)
    sngep.tl.estimate_k(a)
    res = a.uns["estimate_k"]
    assert res["params"]["method"] == "knn_eigengap"
    assert res["params"]["n_neighbors"] == 15
    assert res["k"] == a.var["pattern"].nunique() == 4 * n_variants
    lo, hi = res["params"]["window"]
    assert lo <= res["k"] <= hi
    assert res["gap_ratio"] > 2  # a clear gap, not a coin toss
    assert res["eigenvalues"].shape == (hi + 1,) and res["gaps"].shape == (hi,)


@pytest.mark.parametrize(
    ("n", "window"),
    [(25, (2, 2)), (80, (2, 8)), (500, (5, 50)), (3000, (30, 100)), (12000, (50, 100))],
)
def test_default_window(n, window):
    from sngep.tl._estimate_k import _window

    # mean cluster of 10 to 100 genes, clipped to [<= 50, <= 100] clusters
    assert _window(n, None, None, (10, 100)) == window


def test_window_bounds_given_explicitly_win():
    from sngep.tl._estimate_k import _window

    assert _window(500, None, None, (20, 50)) == (10, 25)
    assert _window(500, 3, None, (10, 100)) == (3, 50)
    assert _window(500, 60, None, (10, 100)) == (60, 60)  # k_max is at least k_min
    assert _window(500, None, 4, (10, 100)) == (4, 4)
    assert _window(500, 7, 9, (10, 100)) == (7, 9)


def test_window_excludes_a_coarse_split():
    s = _block_similarity([20, 20, 20])  # three groups, linked only by noise
    a = _adata_with_similarity(s)
    sngep.tl.estimate_k(a, mean_cluster_size=(5, 15))  # K in [ceil(60 / 15), 60 // 5]
    res = a.uns["estimate_k"]
    assert list(res["params"]["window"]) == [4, 12]
    assert 4 <= res["k"] <= 12
    assert res["k_unrestricted"] == 3  # what the gap says without the window, recorded
    assert res["params"]["mean_cluster_size"] == [5, 15]
    assert "K in [4, 12]" in res["params"]["criterion"]


def test_separated_groups_are_never_merged():
    # 12 groups of 5 genes without any positive link between groups: the default window
    # (mean cluster of >= 10 genes: K <= 6) is widened to the 12 separated groups
    s = _block_similarity([5] * 12, noise=0.0)
    a = _adata_with_similarity(s)
    sngep.tl.estimate_k(a)
    res = a.uns["estimate_k"]
    assert res["params"]["n_separated_groups"] == 12
    assert res["k"] == 12
    assert list(res["params"]["window"]) == [12, 12]
    b = _adata_with_similarity(s)
    sngep.tl.estimate_k(b, k_max=6)  # an explicit bound still wins
    assert b.uns["estimate_k"]["k"] <= 6


def test_logs_the_choice_and_why(sc_log):
    import scanpy as sc

    sc.settings.verbosity = "info"
    s = _block_similarity([20, 20, 20])
    sngep.tl.estimate_k(_adata_with_similarity(s), mean_cluster_size=(5, 15))
    log = sc_log.getvalue()
    assert "15-nearest-neighbour graph of the similarity" in log
    assert "for K in [4, 12]" in log
    assert "finished: K = " in log and "runner-up K = " in log
    assert "without the window K = 3" in log


def test_large_similarity_uses_lanczos_on_the_knn_graph(monkeypatch):
    from sngep.tl import _estimate_k

    s = _block_similarity([40, 50, 60, 30], seed=6)
    small = _adata_with_similarity(s)
    sngep.tl.estimate_k(small)  # dense eigendecomposition of the kNN graph
    monkeypatch.setattr(_estimate_k, "_DENSE_MAX_GENES", 100)  # "large" = more than 100 genes
    large = _adata_with_similarity(s)
    sngep.tl.estimate_k(large)
    got, ref = large.uns["estimate_k"], small.uns["estimate_k"]
    assert ref["params"]["solver"] == "dense" and got["params"]["solver"] == "sparse"
    np.testing.assert_allclose(got["eigenvalues"], ref["eigenvalues"], atol=1e-8)
    assert got["k"] == ref["k"] == 4
    # a stored kNN graph (seed_similarity(n_neighbors=15)) is used as it is: same spectrum
    stored = _adata_with_similarity(sp.csr_matrix(_naive_knn(s.astype(np.float64), 15)))
    sngep.tl.estimate_k(stored)
    res = stored.uns["estimate_k"]
    assert res["params"]["n_neighbors"] is None
    assert "sparse similarity as stored" in res["params"]["criterion"]
    np.testing.assert_allclose(res["eigenvalues"], ref["eigenvalues"], atol=1e-8)


def test_knn_eigengap_errors():
    s = _block_similarity([12, 12, 12])
    adata = _adata_with_similarity(s)
    for bad in [(0, 10), (50, 10), "ab", (10,)]:
        with pytest.raises(ValueError, match="mean_cluster_size"):
            sngep.tl.estimate_k(adata, mean_cluster_size=bad)
    with pytest.raises(ValueError, match="n_neighbors"):
        sngep.tl.estimate_k(adata, n_neighbors=0)
    with pytest.raises(ValueError, match="k_min"):
        sngep.tl.estimate_k(adata, k_min=2.5)
    with pytest.raises(ValueError, match="k_max"):
        sngep.tl.estimate_k(adata, k_min=4, k_max=3)
