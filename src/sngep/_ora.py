"""Over-representation analysis: the one hypergeometric core behind enrichment and GO metrics.

For every module ``m`` and gene set ``t`` of a gene x term incidence matrix: background
``N`` = the clustered genes annotated in the collection, ``K_t`` = background genes in ``t``,
``n_m`` = background genes in ``m``, ``k`` = their overlap, and
``p = P(X >= k)``, ``X ~ Hypergeometric(N, K_t, n_m)`` (one-sided Fisher's exact test).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.stats import hypergeom

TABLE_COLUMNS = [
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


@dataclass(frozen=True, eq=False)
class OraResult:
    """``table``: one row per (module, term) with overlap >= 1; ``modules``: one per module."""

    table: pd.DataFrame
    modules: pd.DataFrame
    n_background: int
    n_terms: int


def bh(pvals: np.ndarray, n_tests: int | None = None) -> np.ndarray:
    """Benjamini-Hochberg q-values of ``pvals`` among ``n_tests`` tests (default: their number).

    Tests left out of ``pvals`` are taken to have p = 1 (e.g. terms without overlap): they
    rank last and leave the q-values of the others as if they had been passed.
    """
    p = np.asarray(pvals, dtype=np.float64)
    m = p.size if n_tests is None else int(n_tests)
    if p.size == 0:
        return p.copy()
    if m < p.size:
        msg = f"n_tests ({m}) is smaller than the number of p-values ({p.size})"
        raise ValueError(msg)
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m / np.arange(1, p.size + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty_like(q)
    out[order] = np.minimum(q, 1.0)
    return out


def over_representation(
    incidence: sp.csr_matrix,
    codes: np.ndarray,
    modules: list[str],
    *,
    term_ids: np.ndarray,
    term_names: np.ndarray,
    min_size: int = 5,
    max_size: int = 500,
    fdr: float = 0.05,
    gene_labels: np.ndarray | None = None,
) -> OraResult:
    """Test every term in every module.

    Parameters
    ----------
    incidence
        ``(n_genes, n_terms)`` boolean gene x term matrix.
    codes
        Module of each gene, ``0..len(modules)-1``; ``-1`` for genes that were not clustered.
    modules
        Module names.
    term_ids, term_names
        Id and description of each term (column of ``incidence``).
    min_size, max_size
        Terms are tested when ``min_size <= K_t <= max_size`` genes of the background.
    fdr
        Threshold on the within-module q-value for ``n_significant`` in the module summary.
    gene_labels
        Names of the genes, for the ``genes`` column (overlap genes joined by ``';'``);
        ``None`` leaves it out (faster, for metrics).

    Returns
    -------
    An :class:`OraResult`. q-values: Benjamini-Hochberg within each module over all tested
    terms (``qval``) and over all tests of all modules (``qval_global``); terms without
    overlap count as tests with p = 1 but get no row.
    """
    incidence = sp.csr_matrix(incidence)
    codes = np.asarray(codes, dtype=np.int64)
    n_mod = len(modules)
    annotated = np.diff(incidence.indptr) > 0
    bg = (codes >= 0) & annotated
    a = incidence[bg].astype(np.int64).tocsc()
    c = codes[bg]
    n_bg = int(bg.sum())
    term_size = np.asarray(a.sum(axis=0)).ravel()
    keep = np.flatnonzero((term_size >= min_size) & (term_size <= max_size))
    a = a[:, keep]
    k_t = term_size[keep]
    n_terms = len(keep)
    n_m = np.bincount(c, minlength=n_mod)
    onehot = sp.csr_matrix((np.ones(n_bg, np.int64), (c, np.arange(n_bg))), shape=(n_mod, n_bg))
    overlap = sp.coo_matrix(onehot @ a)
    mod, term, k = overlap.row, overlap.col, overlap.data.astype(np.int64)
    pval = np.clip(hypergeom.sf(k - 1, n_bg, k_t[term], n_m[mod]), 0.0, 1.0)
    qval = np.empty_like(pval)
    for m in range(n_mod):
        sel = mod == m
        qval[sel] = bh(pval[sel], n_terms)
    n_tested_modules = int((n_m > 0).sum())
    qval_global = bh(pval, n_terms * n_tested_modules)
    expected = n_m[mod] * k_t[term] / max(n_bg, 1)

    order = np.lexsort((term_ids[keep][term], pval, mod))
    table = pd.DataFrame(
        {
            "module": pd.Categorical.from_codes(mod[order], categories=list(modules)),
            "term": np.asarray(term_ids[keep][term][order], dtype=object),
            "name": np.asarray(term_names[keep][term][order], dtype=object),
            "n_module": n_m[mod][order],
            "n_term": k_t[term][order],
            "n_overlap": k[order],
            "expected": expected[order],
            "fold": k[order] / expected[order],
            "pval": pval[order],
            "qval": qval[order],
            "qval_global": qval_global[order],
        }
    )
    if gene_labels is not None:
        table["genes"] = _overlap_genes(a, c, np.asarray(gene_labels)[bg], mod[order], term[order])
    table.index = pd.RangeIndex(len(table))

    summary = _module_summary(table, modules, codes, n_m, n_terms, fdr)
    return OraResult(table=table, modules=summary, n_background=n_bg, n_terms=n_terms)


def _overlap_genes(a: sp.csc_matrix, c, labels, mod, term) -> np.ndarray:
    """``';'``-joined names of the module genes in each (module, term) row."""
    out = np.empty(len(mod), dtype=object)
    for m in np.unique(mod):
        rows = np.flatnonzero(mod == m)
        members = np.flatnonzero(c == m)
        sub = a[members].tocsc()
        sub.sort_indices()
        names = labels[members]
        for r in rows:
            t = term[r]
            out[r] = ";".join(sorted(names[sub.indices[sub.indptr[t] : sub.indptr[t + 1]]]))
    return out


def _module_summary(table, modules, codes, n_m, n_terms, fdr) -> pd.DataFrame:
    n_genes = np.bincount(codes[codes >= 0], minlength=len(modules))
    first = table.drop_duplicates("module")  # table is sorted by module, then p
    best = first.set_index(first["module"].astype(str))
    sig = table[table["qval"] < fdr]["module"].astype(str).value_counts()
    names = [str(m) for m in modules]
    return pd.DataFrame(
        {
            "module": pd.Categorical(names, categories=names),
            "n_genes": n_genes,
            "n_annotated": n_m,
            "n_tests": np.where(n_m > 0, n_terms, 0),
            "n_significant": sig.reindex(names, fill_value=0).to_numpy(np.int64),
            "best_term": best["term"].reindex(names, fill_value="").to_numpy(object),
            "best_name": best["name"].reindex(names, fill_value="").to_numpy(object),
            "best_pval": best["pval"].reindex(names).to_numpy(np.float64),
            "best_qval": best["qval"].reindex(names).to_numpy(np.float64),
        }
    )
