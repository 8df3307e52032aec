"""``sngep.tl.module_enrichment``: gene-set over-representation in every gene module."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from sngep import _keys
from sngep import _logging as logg
from sngep._gene_sets import annotate, check_organism, describe, load_gene_sets, no_annotation_hint
from sngep._ora import over_representation
from sngep._validate import is_int

if TYPE_CHECKING:
    from anndata import AnnData


def module_enrichment(
    adata: AnnData,
    gene_sets: str | os.PathLike | Mapping[str, Iterable[str]] = "go_bp",
    *,
    key: str = _keys.DARLC,
    gene_symbols: str | None = None,
    organism: str = "human",
    min_size: int = 5,
    max_size: int = 500,
    fdr: float = 0.05,
    key_added: str | None = None,
    copy: bool = False,
) -> pd.DataFrame | AnnData:
    """Over-representation of every gene set in every gene module (hypergeometric test).

    For module ``m`` (genes with ``adata.var[key] == m``) and gene set ``t``, with ``N`` the
    background, ``K`` the background genes in ``t``, ``n`` those in ``m`` and ``k`` the
    overlap, the p-value is ``P(X >= k)`` for ``X ~ Hypergeometric(N, K, n)`` (the one-sided
    Fisher exact test). The background is the clustered genes (a label in ``adata.var[key]``)
    that are annotated in the collection, not the genome: the genes that could have been
    grouped. Gene sets are restricted to the background first, then kept when
    ``min_size <= K <= max_size``. q-values are Benjamini-Hochberg within each module
    (``qval``, over all tested sets) and over all modules together (``qval_global``).

    Gene ids are matched one by one: human Ensembl ids (``ENSG...``, e.g. 10x Visium
    ``gene_ids``) through the bundled Ensembl-to-symbol table, anything else as a symbol.
    ``organism='mouse'`` upper-cases mouse symbols to stand for their human orthologs
    (``Gfap`` -> ``GFAP``): an approximation (no ortholog table offline) that misses genes
    whose names differ (``H2-*`` vs ``HLA-*``, ``Gm*``, ``*Rik``); the number of genes matched
    is logged. Aliases (previous symbols) are not resolved.

    Parameters
    ----------
    adata
        Spots x genes with gene module labels, e.g. after :func:`sngep.tl.darlc` or
        :func:`sngep.tl.gene_leiden`. Genes without a label (NaN) are not tested.
    gene_sets
        ``'go_bp'`` (bundled GO Biological Process, human, 9,006 terms of 5-500 genes;
        Gene Ontology Consortium, CC BY 4.0, via Bioconductor org.Hs.eg.db 3.16), the path of
        a GMT file (``.gmt`` or ``.gmt.gz``; the second column is kept as the description),
        or a dict ``{set name: [genes]}`` in the data's gene ids or human symbols.
    key
        ``adata.var`` column of the module labels.
    gene_symbols
        ``adata.var`` column holding the gene ids to match (default: ``adata.var_names``),
        like scanpy's ``gene_symbols``.
    organism
        ``'human'`` or ``'mouse'`` (upper-cased symbols; see above).
    min_size, max_size
        Size limits of a tested gene set, counted within the background.
    fdr
        q-value threshold for the per-module count of significant sets (``n_significant``).
    key_added
        ``adata.uns`` key of the results (default ``f'{key}_enrichment'``).
    copy
        Return a copy of ``adata`` with the results instead of writing into ``adata``.

    Returns
    -------
    The results table (a :class:`pandas.DataFrame`, also stored), or with ``copy=True`` the
    AnnData copy. The table has one row per module and gene set sharing at least one gene,
    sorted by module, then p-value, with columns ``module``, ``term`` (id), ``name``
    (description), ``n_module`` (annotated module genes), ``n_term`` (set size within the
    background), ``n_overlap``, ``expected`` (``n_module * n_term / N``), ``fold``
    (``n_overlap / expected``), ``pval``, ``qval``, ``qval_global`` and ``genes`` (the
    overlap, ``';'``-joined; symbols for Ensembl input). Writes

    ``adata.uns[key_added]``
        ``{'results': the table, 'modules': one row per module (n_genes, n_annotated,
        n_tests, n_significant, best_term, best_name, best_pval, best_qval), 'params': {...}}``;
        round-trips through ``.h5ad``.
    """
    adata = adata.copy() if copy else adata
    key_added = f"{key}_enrichment" if key_added is None else key_added
    if key not in adata.var:
        msg = (
            f"adata.var[{key!r}] not found; run sngep.tl.darlc(adata) or sngep.tl.gene_leiden "
            f"first, or pass key= (var columns: {list(adata.var.columns)})"
        )
        raise KeyError(msg)
    if gene_symbols is not None and gene_symbols not in adata.var:
        msg = f"adata.var[{gene_symbols!r}] not found (gene_symbols= names a var column of ids)"
        raise KeyError(msg)
    check_organism(organism)
    if not (is_int(min_size) and is_int(max_size)) or not 1 <= min_size <= max_size:
        msg = (
            "need integers 1 <= min_size <= max_size, "
            f"got min_size={min_size!r}, max_size={max_size!r}"
        )
        raise ValueError(msg)
    if not 0 < fdr <= 1:
        msg = f"fdr must be in (0, 1], got {fdr}"
        raise ValueError(msg)

    start = logg.info(f"testing gene sets in the gene modules of {key!r}")
    collection = load_gene_sets(gene_sets)
    labels = adata.var[key].astype("category")
    modules = [str(m) for m in labels.cat.categories]
    codes = labels.cat.codes.to_numpy(np.int64)
    ids = adata.var_names if gene_symbols is None else adata.var[gene_symbols].astype(str)
    ann = annotate(list(ids), collection, organism=organism)
    clustered = codes >= 0
    n_bg = int((ann.annotated & clustered).sum())
    n_clustered = int(clustered.sum())
    mapped = (
        f", {ann.n_ensembl_mapped} of {ann.n_ensembl} Ensembl ids mapped to symbols"
        if ann.n_ensembl
        else ""
    )
    logg.info(
        f"    {n_bg} of {n_clustered} clustered genes annotated in {describe(gene_sets)!r} "
        f"({collection.n_terms} sets, organism {organism!r}{mapped})"
    )
    if n_bg == 0:
        msg = f"no clustered gene is annotated in {describe(gene_sets)!r}; " + no_annotation_hint(
            np.asarray(ids)[clustered], organism
        )
        raise ValueError(msg)
    res = over_representation(
        ann.incidence,
        codes,
        modules,
        term_ids=collection.ids,
        term_names=collection.names,
        min_size=min_size,
        max_size=max_size,
        fdr=fdr,
        gene_labels=ann.labels,
    )
    if res.n_terms == 0:
        logg.warning(
            f"module_enrichment: no gene set has {min_size}-{max_size} genes among the "
            f"{n_bg} background genes; nothing was tested"
        )
    adata.uns[key_added] = {
        "results": res.table,
        "modules": res.modules,
        "params": {
            "key": key,
            "gene_sets": describe(gene_sets),
            "gene_symbols": "var_names" if gene_symbols is None else gene_symbols,
            "organism": organism,
            "min_size": int(min_size),
            "max_size": int(max_size),
            "fdr": float(fdr),
            "n_clustered": n_clustered,
            "n_background": res.n_background,
            "n_tested_sets": res.n_terms,
        },
    }
    n_enriched = int((res.modules["n_significant"] > 0).sum())
    logg.info(
        f"    {n_enriched} of {len(modules)} modules have a set at q < {fdr} "
        f"({res.n_terms} sets tested)",
        time=start,
        deep=f"added\n    {key_added!r}, enrichment results (adata.uns)",
    )
    return adata if copy else res.table
