"""Gene Ontology scores of a gene partition: shared-term pair lift and module enrichment."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike

from sngep._gene_sets import annotate, check_organism, load_gene_sets, no_annotation_hint
from sngep._ora import over_representation
from sngep.metrics._common import encode_labels

GeneSetsArg = str | os.PathLike | Mapping[str, Iterable[str]]


def go_pair_lift(
    labels: ArrayLike,
    genes: ArrayLike,
    gene_sets: GeneSetsArg = "go_bp",
    *,
    max_term_size: int = 100,
    organism: str = "human",
) -> float:
    """How much more often two genes of one module share a specific gene set than two genes.

    Among the annotated genes (in at least one set of the collection), the fraction of
    same-module pairs that share at least one specific set (at most ``max_term_size``
    annotated genes, counted among the given genes) divided by the same fraction over all
    pairs. 1.0 is chance: for randomly permuted labels the expected same-module fraction is
    the overall one; higher is better. Computed with sparse gene x set products, in blocks.

    Parameters
    ----------
    labels
        Module of each gene (ints, strings or a Categorical; no missing values).
    genes
        Gene ids, one per label: human symbols or Ensembl ids, or mouse symbols with
        ``organism='mouse'`` (matched as in :func:`sngep.tl.module_enrichment`).
    gene_sets
        ``'go_bp'`` (bundled), a GMT path or a dict ``{set name: [genes]}``.
    max_term_size
        Largest set (in annotated genes) that counts as specific.
    organism
        ``'human'`` or ``'mouse'`` (upper-cased symbols).

    Returns
    -------
    The lift (float); NaN when there is no same-module pair of annotated genes or no pair
    shares a specific set.
    """
    codes, _, _, incidence = _inputs(labels, genes, gene_sets, organism)
    if max_term_size < 2:
        msg = (
            f"max_term_size must be >= 2 (a set shared by a pair has 2 genes), got {max_term_size}"
        )
        raise ValueError(msg)
    annotated = np.diff(incidence.indptr) > 0
    a = incidence[annotated].astype(np.int32)
    codes = codes[annotated]
    size = np.asarray(a.sum(axis=0)).ravel()
    a = a[:, np.flatnonzero((size >= 2) & (size <= max_term_size))].tocsr()
    n = a.shape[0]
    all_pairs = n * (n - 1) / 2
    all_shared = _sharing_pairs(a)
    same_pairs = same_shared = 0.0
    for m in np.unique(codes):
        sub = a[codes == m]
        same_pairs += sub.shape[0] * (sub.shape[0] - 1) / 2
        same_shared += _sharing_pairs(sub)
    if same_pairs == 0 or all_shared == 0:
        return float("nan")
    return float((same_shared / same_pairs) / (all_shared / all_pairs))


def go_module_scores(
    labels: ArrayLike,
    genes: ArrayLike,
    gene_sets: GeneSetsArg = "go_bp",
    *,
    min_module_size: int = 3,
    fdr: float = 0.05,
    min_size: int = 5,
    max_size: int = 500,
    organism: str = "human",
) -> dict[str, Any]:
    """Share of modules with an over-represented gene set, and the median best q-value.

    Runs the hypergeometric test of :func:`sngep.tl.module_enrichment` (same code: background
    = the annotated genes among ``genes``, set sizes within it, Benjamini-Hochberg within
    each module) and summarises it over the modules of at least ``min_module_size`` genes
    (counted among all ``genes``, annotated or not). A module without annotated genes counts
    as not enriched, with best q = 1.

    Parameters
    ----------
    labels
        Module of each gene (ints, strings or a Categorical; no missing values).
    genes
        Gene ids, one per label (see :func:`go_pair_lift`).
    gene_sets
        ``'go_bp'`` (bundled), a GMT path or a dict ``{set name: [genes]}``.
    min_module_size
        Smallest module scored (1 scores every module).
    fdr
        A module is enriched when its best within-module q-value is below ``fdr``.
    min_size, max_size
        Size limits of a tested set, counted within the background.
    organism
        ``'human'`` or ``'mouse'`` (upper-cased symbols).

    Returns
    -------
    ``{'fraction_enriched', 'median_best_q', 'n_modules' (scored), 'n_enriched',
    'n_genes', 'n_background'}``; the two scores are NaN when no module is scored.
    """
    if not 1 <= min_size <= max_size:
        msg = f"need 1 <= min_size <= max_size, got min_size={min_size}, max_size={max_size}"
        raise ValueError(msg)
    if not 0 < fdr <= 1:
        msg = f"fdr must be in (0, 1], got {fdr}"
        raise ValueError(msg)
    if not min_module_size >= 1:
        msg = f"min_module_size must be >= 1, got {min_module_size}"
        raise ValueError(msg)
    codes, uniques, collection, incidence = _inputs(labels, genes, gene_sets, organism)
    res = over_representation(
        incidence,
        codes,
        [str(u) for u in uniques],
        term_ids=collection.ids,
        term_names=collection.names,
        min_size=min_size,
        max_size=max_size,
        fdr=fdr,
    )
    mods = res.modules[res.modules["n_genes"] >= min_module_size]
    best_q = mods["best_qval"].fillna(1.0).to_numpy(np.float64)
    n_enriched = int((best_q < fdr).sum())
    return {
        "fraction_enriched": float(n_enriched / len(best_q)) if len(best_q) else float("nan"),
        "median_best_q": float(np.median(best_q)) if len(best_q) else float("nan"),
        "n_modules": len(best_q),
        "n_enriched": n_enriched,
        "n_genes": len(codes),
        "n_background": res.n_background,
    }


def _inputs(labels, genes, gene_sets, organism):
    """``(codes, uniques, collection, incidence)`` after validating labels, genes and ids."""
    check_organism(organism)
    genes = np.asarray(genes, dtype=object).ravel()
    codes, uniques = encode_labels(labels, n=len(genes), what="labels", of="gene")
    collection = load_gene_sets(gene_sets)
    ann = annotate(list(genes), collection, organism=organism)
    if ann.n_annotated == 0:
        msg = "no gene is annotated in the gene set collection; " + no_annotation_hint(
            genes, organism
        )
        raise ValueError(msg)
    return codes, uniques, collection, ann.incidence


def _sharing_pairs(a: sp.csr_matrix, block: int = 1024) -> float:
    """Number of unordered gene pairs (rows of ``a``) sharing at least one column."""
    n = a.shape[0]
    if n < 2:
        return 0.0
    at = a.T.tocsc()
    has_any = int((np.diff(a.indptr) > 0).sum())
    nnz = 0
    for s in range(0, n, block):
        nnz += (a[s : s + block] @ at).nnz
    return (nnz - has_any) / 2
