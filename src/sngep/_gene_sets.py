"""Gene-set collections (bundled name, GMT file or dict) and gene-id matching.

Shared by :func:`sngep.tl.module_enrichment` and the GO metrics in :mod:`sngep.metrics`: one
loader, one id mapping, one gene x term incidence matrix.
"""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

_GO_DIR = Path(__file__).resolve().parent / "datasets" / "_data" / "go"
BUNDLED = {"go_bp": "go_bp_human.gmt.gz"}
ORGANISMS = ("human", "mouse")
_ENSEMBL_TABLE = "human_ensembl_symbols.tsv.gz"
_HUMAN_ENSEMBL = re.compile(r"^ENSG\d+(\.\d+)?$")
_ANY_ENSEMBL = re.compile(r"^ENS[A-Z]*G\d+(\.\d+)?$")
_MOUSE_LIKE = re.compile(r"^[A-Z][a-z][a-z0-9]*$")  # Gfap, Snap25: mouse-style symbols


@dataclass(frozen=True, eq=False)
class GeneSets:
    """A gene-set collection as a sparse term x gene membership matrix.

    ``ids`` (term ids), ``names`` (descriptions; the GMT's second column), ``genes`` (the
    collection's gene universe) and ``matrix`` (``(n_terms, n_genes)`` boolean CSR).
    ``namespace`` is ``'ensembl'`` when most members are Ensembl ids, else ``'symbol'``.
    """

    ids: np.ndarray
    names: np.ndarray
    genes: pd.Index
    matrix: sp.csr_matrix
    source: str
    namespace: str

    @property
    def n_terms(self) -> int:
        """Number of gene sets."""
        return len(self.ids)


@dataclass(frozen=True, eq=False)
class Annotation:
    """Genes of an experiment matched to a collection.

    ``incidence`` is the ``(n_genes, n_terms)`` boolean CSR gene x term matrix, ``labels``
    the names shown for each gene (the symbol an Ensembl id maps to, else the given name);
    ``n_ensembl`` / ``n_ensembl_mapped`` count the human Ensembl ids mapped to symbols (0 for a
    collection of Ensembl ids, matched directly).
    """

    incidence: sp.csr_matrix
    labels: np.ndarray
    n_genes: int
    n_ensembl: int
    n_ensembl_mapped: int
    n_annotated: int

    @property
    def annotated(self) -> np.ndarray:
        """Boolean mask of the genes in at least one term of the collection."""
        return np.diff(self.incidence.indptr) > 0


def load_gene_sets(gene_sets) -> GeneSets:
    """A :class:`GeneSets` from a bundled name (``'go_bp'``), a GMT path or a dict.

    A dict maps a set name to its member genes (the name doubles as the description).
    GMT files may be gzip-compressed (``.gz``).
    """
    if isinstance(gene_sets, GeneSets):
        return gene_sets
    if isinstance(gene_sets, Mapping):
        return _from_dict(gene_sets)
    if isinstance(gene_sets, str) and gene_sets in BUNDLED:
        return _bundled(gene_sets)
    if isinstance(gene_sets, str | os.PathLike):
        path = Path(gene_sets)
        if path.is_file():
            return _from_gmt(path)
        msg = (
            f"unknown gene set collection {str(gene_sets)!r}: not a bundled name "
            f"({sorted(BUNDLED)}) and not a GMT file; pass one of those or a dict "
            "{set name: [genes]}"
        )
        raise ValueError(msg)
    msg = (
        "gene_sets must be a bundled name (e.g. 'go_bp'), a GMT file path or a dict "
        f"{{set name: [genes]}}, got {type(gene_sets).__name__}"
    )
    raise TypeError(msg)


def describe(gene_sets) -> str:
    """How ``gene_sets`` was given, for ``params`` (a name, a path or ``'dict'``)."""
    if isinstance(gene_sets, GeneSets):
        return gene_sets.source
    if isinstance(gene_sets, Mapping):
        return "dict"
    return str(gene_sets)


def check_organism(organism: str) -> str:
    """Return ``organism`` if supported, else raise ``ValueError``."""
    if organism not in ORGANISMS:
        msg = (
            f"organism must be one of {list(ORGANISMS)}, got {organism!r} (other organisms: "
            "pass gene sets in the data's own gene ids as a GMT file or dict, with "
            "organism='human' for exact matching)"
        )
        raise ValueError(msg)
    return organism


def annotate(genes: Sequence[str], gene_sets: GeneSets, *, organism: str = "human") -> Annotation:
    """Match gene ids to a collection and return the gene x term incidence.

    Each gene is matched on its own: a human Ensembl id (``ENSG...``, version suffix
    ignored) is mapped to its symbol(s) through the bundled table, any other id is taken as
    a symbol. ``organism='mouse'`` matches case-insensitively (upper-cased mouse symbols
    stand for their human orthologs: an approximation). With a collection of Ensembl ids,
    ids are matched directly and human symbols are mapped to Ensembl ids.
    """
    check_organism(organism)
    names = np.asarray([str(g).strip() for g in genes], dtype=object)
    upper = organism == "mouse"
    is_ens = np.fromiter((bool(_HUMAN_ENSEMBL.match(g)) for g in names), bool, len(names))
    keys: list[list[str]] = []
    labels = names.copy()
    n_mapped = 0
    if gene_sets.namespace == "ensembl":
        to_ens = _symbol_to_ensembl() if not all(map(_ANY_ENSEMBL.match, names)) else {}
        for g in names:
            if _ANY_ENSEMBL.match(g):
                keys.append([g.split(".")[0]])
            else:
                keys.append(list(to_ens.get(g.upper() if upper else g, ())))
    else:
        to_sym = _ensembl_to_symbols() if is_ens.any() else {}
        for i, (g, ens) in enumerate(zip(names, is_ens, strict=True)):
            if ens:
                syms = to_sym.get(g.split(".")[0], ())
                n_mapped += bool(syms)
                if syms:
                    labels[i] = syms[0]
                keys.append([s.upper() if upper else s for s in syms])
            else:
                keys.append([g.upper() if upper else g])
    universe, members = _folded(gene_sets, upper)
    rows = np.repeat(np.arange(len(keys)), [len(k) for k in keys])
    cols = universe.get_indexer([k for ks in keys for k in ks])
    hit = cols >= 0
    match = sp.csr_matrix(
        (np.ones(int(hit.sum()), np.int32), (rows[hit], cols[hit])),
        shape=(len(names), len(universe)),
    )
    incidence = _binary(match @ members.T)
    n_annotated = int((np.diff(incidence.indptr) > 0).sum())
    return Annotation(
        incidence=incidence,
        labels=labels,
        n_genes=len(names),
        n_ensembl=int(is_ens.sum()) if gene_sets.namespace == "symbol" else 0,
        n_ensembl_mapped=int(n_mapped),
        n_annotated=n_annotated,
    )


def no_annotation_hint(genes: Sequence[str], organism: str) -> str:
    """A sentence on why ids may not have matched (mouse-style symbols, mouse Ensembl ids)."""
    genes = [str(g) for g in genes]
    n = max(len(genes), 1)
    if organism == "human" and sum(bool(_MOUSE_LIKE.match(g)) for g in genes) > 0.5 * n:
        return "the ids look like mouse symbols: pass organism='mouse'"
    if sum(g.startswith("ENSMUSG") for g in genes) > 0.5 * n:
        return "mouse Ensembl ids cannot be mapped: use mouse symbols with organism='mouse'"
    return (
        "expected human gene symbols or Ensembl ids (ENSG...), or mouse symbols with "
        "organism='mouse' (tl.module_enrichment: gene_symbols= picks a var column of ids)"
    )


# ---------------------------------------------------------------------------------------
# readers


@cache
def _bundled(name: str) -> GeneSets:
    return _from_gmt(_GO_DIR / BUNDLED[name], source=name)


def _from_gmt(path: Path, source: str | None = None) -> GeneSets:
    opener = gzip.open if path.suffix == ".gz" else open
    ids, names, members = [], [], []
    with opener(path, "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) < 2:
                msg = f"{path}: line {n} is not GMT (name <TAB> description <TAB> genes ...)"
                raise ValueError(msg)
            ids.append(fields[0])
            names.append(fields[1] or fields[0])
            members.append([g for g in fields[2:] if g])
    return _build(ids, names, members, source or str(path))


def _from_dict(sets: Mapping) -> GeneSets:
    ids, members = [], []
    for name, genes in sets.items():
        if isinstance(genes, str) or not isinstance(genes, Iterable):
            msg = f"gene set {name!r} must be a list of gene ids, got {type(genes).__name__}"
            raise TypeError(msg)
        ids.append(str(name))
        members.append([str(g) for g in genes])
    return _build(ids, ids, members, "dict")


def _build(ids: list, names: list, members: list[list[str]], source: str) -> GeneSets:
    if not ids:
        msg = f"the gene set collection {source!r} is empty"
        raise ValueError(msg)
    if len(set(ids)) != len(ids):
        msg = f"gene set names in {source!r} are not unique"
        raise ValueError(msg)
    flat = [g for m in members for g in m]
    genes = pd.Index(pd.unique(np.asarray(flat, dtype=object)), dtype=object)
    rows = np.repeat(np.arange(len(members)), [len(m) for m in members])
    cols = genes.get_indexer(flat)
    matrix = _binary(
        sp.csr_matrix((np.ones(len(flat), np.int32), (rows, cols)), shape=(len(ids), len(genes)))
    )
    n_ens = sum(bool(_ANY_ENSEMBL.match(g)) for g in genes)
    return GeneSets(
        ids=np.asarray(ids, dtype=object),
        names=np.asarray(names, dtype=object),
        genes=genes,
        matrix=matrix,
        source=source,
        namespace="ensembl" if n_ens > 0.5 * max(len(genes), 1) else "symbol",
    )


def _binary(m) -> sp.csr_matrix:
    """Boolean CSR with True wherever ``m`` has a positive entry."""
    m = sp.csr_matrix(m)
    m.sum_duplicates()
    m.eliminate_zeros()
    return sp.csr_matrix((np.ones(m.nnz, dtype=bool), m.indices, m.indptr), shape=m.shape)


def _folded(gene_sets: GeneSets, upper: bool) -> tuple[pd.Index, sp.csr_matrix]:
    """The collection's (universe, term x gene matrix), genes merged by upper case if asked."""
    if not upper:
        return gene_sets.genes, gene_sets.matrix.astype(np.int32)
    codes, universe = pd.factorize(gene_sets.genes.str.upper())
    fold = sp.csr_matrix(
        (np.ones(len(codes), np.int32), (np.arange(len(codes)), codes)),
        shape=(len(codes), len(universe)),
    )
    return pd.Index(universe, dtype=object), _binary(
        gene_sets.matrix.astype(np.int32) @ fold
    ).astype(np.int32)


@cache
def _ensembl_table() -> pd.DataFrame:
    return pd.read_csv(_GO_DIR / _ENSEMBL_TABLE, sep="\t", dtype=str)


@cache
def _ensembl_to_symbols() -> dict[str, tuple[str, ...]]:
    t = _ensembl_table()
    return _group(t["ensembl_id"], t["symbol"])


@cache
def _symbol_to_ensembl() -> dict[str, tuple[str, ...]]:
    t = _ensembl_table()
    return _group(t["symbol"], t["ensembl_id"])


def _group(keys, values) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for k, v in zip(keys.tolist(), values.tolist(), strict=True):
        out.setdefault(k, []).append(v)
    return {k: tuple(v) for k, v in out.items()}
