"""How the benchmarks judge a gene partition: the one place these scores are defined.

Biology first (``/work/shared/DESIGN.md`` section 6): Gene Ontology enrichment of the modules
and GO pair lift (:mod:`sngep.metrics`), agreement with gene families, reproducibility of the
same genes on an adjacent section (10-nearest-gene overlap of a representation, partition
ARI / NMI), then cluster sizes and the internal indices on the raw images (DBIE, DBIP, SAM),
the latter only on clusters of >= 3 genes because they reward one-gene clusters.

Every function takes plain arrays (labels, symbols, images); :func:`label_scores` bundles
the scores that need nothing but a partition, so a stored partition can be re-scored later
(``python -m benchmarks.run --rescore``) without re-running the method that made it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

MIN_SIZE = 3  # clusters smaller than this are left out of the internal indices
KNN = 10  # neighbours of the cross-section overlap
N_SHUFFLES = 5  # label permutations of the shuffled baseline row

# Gene families (case-insensitive regular expressions on gene symbols; human and mouse
# spellings). The paper's four come first and alone make ``family_NMI`` / ``family_ARI``
# (comparable with results from before the extension); the extended set makes
# ``family_ext_NMI`` / ``family_ext_ARI``. A family is added only where its members are known
# to be co-regulated, so that a module holding them is a biological program, not a naming
# accident:
PAPER_FAMILIES = {
    "MHC (HLA-/H2-)": r"^(HLA-|H2-)",
    "GABA receptor (GABR)": r"^GABR",
    # ribosomal proteins only (not RPS6KA kinases or RPL pseudo-names)
    "ribosomal (RPL/RPS)": r"^(RP[LS]\d+[A-Z]?\d*|RPLP\d|RPSA)$",
    "mitochondrial (MT-)": r"^MT-",
}
EXTRA_FAMILIES = {
    # fibroblast fibrillar collagens: co-induced by TGF-beta, COL1A1:COL1A2 form one trimer
    "fibrillar collagen (COL1/3/5)": r"^COL(1A[12]|3A1|5A[123])$",
    # epithelial keratins KRT1-24 and KRT76-80 (not hair / hair-follicle keratins KRT25-40,
    # KRT71-75, KRT81-86, not KRT222, KRTAP or KRT..P pseudogenes): obligate type I / II
    # pairs, epithelium-specific
    "epithelial keratin (KRT)": r"^KRT([1-9]|1\d|2[0-4]|7[6-9]|80)[A-C]?$",
    # replication-dependent histones (old HIST names and the HGNC 2020 cluster names; not the
    # polyadenylated replacement variants H2AZ1, H3-3A, H1-0): S-phase co-regulation (NPAT)
    "replication-dependent histone": r"^(HIST[1-4]H\w+|H1-[1-6]|H2AC\d+|H2BC\d+|H3C\d+|H4C\d+)$",
    # globins (human HBA1/2, HBB, HBD, HBG1/2 ...; mouse Hba-a1, Hbb-bs ...): erythroid, LCR
    "haemoglobin (HB)": r"^(HB[ABDEGMQZ]\d?|HBA-A\d|HBB-\w+)$",
    # immunoglobulin constant / variable genes and the J chain: the plasma-cell program
    "immunoglobulin (IGH/IGK/IGL)": r"^(IGH[ADEGM]\d?|IGHV\d\S*|IGK[CV]\S*|IGL[CV]\S*|JCHAIN)$",
    # C1QA/B/C: one locus, co-expressed in macrophages / microglia
    "complement C1Q": r"^C1Q[ABC]$",
    # inducible metallothioneins (MTF-1: metals, glucocorticoids); not brain-specific MT3
    "metallothionein (MT1/MT2)": r"^(MT1[A-Z]?|MT2A?)$",
}
FAMILY_PATTERNS = {**PAPER_FAMILIES, **EXTRA_FAMILIES}


def gene_families(symbols, patterns: dict[str, str] | None = None) -> np.ndarray:
    """Family of each gene symbol (first matching pattern), ``'other'`` for the rest."""
    compiled = [
        (name, re.compile(p, flags=re.IGNORECASE))
        for name, p in (patterns or FAMILY_PATTERNS).items()
    ]
    out = []
    for s in symbols:
        out.append(next((name for name, p in compiled if p.match(str(s))), "other"))
    return np.array(out, dtype=object)


def family_genes(families: np.ndarray, min_members: int = 3) -> np.ndarray | None:
    """Mask of the genes of families with >= ``min_members`` members, or ``None`` when fewer
    than two families qualify (family NMI / ARI would be meaningless)."""
    names, counts = np.unique(families[families != "other"], return_counts=True)
    use = names[counts >= min_members]
    return np.isin(families, use) if len(use) >= 2 else None


# ---------------------------------------------------------------------------------------------
# one partition


@dataclass
class Context:
    """What scoring a partition of one data set's genes needs.

    ``genes`` go to the GO metrics (symbols or human Ensembl ids), ``symbols`` to the family
    patterns, ``images`` / ``mask`` (raw gene images and tissue mask) to the internal indices,
    ``truth`` (planted patterns) replaces GO and families on synthetic data.
    """

    genes: np.ndarray
    symbols: np.ndarray
    images: np.ndarray | None = None
    mask: np.ndarray | None = None
    organism: str | None = "human"  # None: no GO (synthetic gene names)
    truth: np.ndarray | None = None

    @classmethod
    def from_adata(cls, adata, organism: str | None) -> Context:
        from sngep._validate import get_gene_images

        images, mask = get_gene_images(adata, "gene_images")
        truth = adata.var["pattern"].astype(str).to_numpy() if "pattern" in adata.var else None
        symbols = adata.var["symbol"] if "symbol" in adata.var else adata.var_names
        return cls(
            genes=np.asarray(adata.var_names, dtype=object),
            symbols=np.asarray(symbols, dtype=object),
            images=images,
            mask=mask,
            organism=None if truth is not None else organism,
            truth=truth,
        )

    @property
    def families(self) -> np.ndarray:
        return gene_families(self.symbols)

    @property
    def paper_families(self) -> np.ndarray:
        return gene_families(self.symbols, PAPER_FAMILIES)


def sizes(labels: np.ndarray) -> dict[str, Any]:
    """Cluster sizes (largest first) and how much of the partition is in clusters >= 3."""
    keep = labels >= 0
    s = np.sort(np.bincount(np.unique(labels[keep], return_inverse=True)[1]))[::-1]
    big = s >= MIN_SIZE
    return {
        "n_scored": int(keep.sum()),
        "n_clusters_used": len(s),
        "cluster_sizes": s.tolist(),
        "n_singletons": int((s == 1).sum()),
        "n_clusters_ge3": int(big.sum()),
        "coverage_ge3": float(s[big].sum() / max(keep.sum(), 1)),
        "size_median": float(np.median(s)) if len(s) else float("nan"),
        "size_max_frac": float(s[0] / max(keep.sum(), 1)) if len(s) else float("nan"),
    }


def internal(
    images: np.ndarray, mask: np.ndarray, labels: np.ndarray, min_size: int = 1
) -> dict[str, Any]:
    """DBIE, DBIP, SAM on the raw images of the genes in clusters of >= ``min_size`` genes.

    Keys carry a ``_ge3`` suffix for ``min_size=3``; with fewer than two such clusters the
    scores are an ``'n/a: ...'`` string.
    """
    import sngep

    suffix = "" if min_size <= 1 else f"_ge{min_size}"
    keep = labels >= 0
    if min_size > 1:
        u, inv, cnt = np.unique(labels[keep], return_inverse=True, return_counts=True)
        big = np.zeros_like(keep)
        big[np.flatnonzero(keep)] = cnt[inv] >= min_size
        keep = big
    lab = labels[keep]
    if len(np.unique(lab)) < 2:
        why = f"n/a: fewer than 2 clusters{f' of >= {min_size} genes' if min_size > 1 else ''}"
        return {f"{m}{suffix}": why for m in ("DBIE", "DBIP", "SAM")}
    x = images[keep]
    return {
        f"DBIE{suffix}": sngep.metrics.dbi_euclidean(x, lab, mask=mask),
        f"DBIP{suffix}": sngep.metrics.dbi_pearson(x, lab, mask=mask),
        f"SAM{suffix}": sngep.metrics.sam(x, lab, mask=mask),
    }


def go_scores(labels: np.ndarray, genes: np.ndarray, organism: str | None) -> dict[str, Any]:
    """GO BP module enrichment (fraction of modules >= 3 genes with a term at BH q < 0.05
    within the module, median best q) and GO pair lift (terms of <= 100 genes).

    Genes with label ``-1`` (left unassigned by a method's own modules) are left out.
    """
    import sngep

    if organism is None:
        why = "n/a: synthetic genes (no GO)"
        return {k: why for k in ("GO_frac", "GO_median_q", "GO_lift")}
    keep = labels >= 0
    lab, g = labels[keep], genes[keep]
    try:
        mod = sngep.metrics.go_module_scores(lab, g, organism=organism)
        lift = sngep.metrics.go_pair_lift(lab, g, organism=organism)
    except ValueError as err:  # e.g. no gene annotated
        why = f"n/a: {err}"
        return {k: why for k in ("GO_frac", "GO_median_q", "GO_lift")}
    return {
        "GO_frac": mod["fraction_enriched"],
        "GO_median_q": mod["median_best_q"],
        "GO_lift": lift,
        "GO_n_modules": mod["n_modules"],
        "GO_n_enriched": mod["n_enriched"],
        "GO_n_background": mod["n_background"],
    }


def family_scores(labels: np.ndarray, families: np.ndarray, prefix: str) -> dict[str, Any]:
    """NMI / ARI of the labels against gene families, on the genes of families with >= 3
    members (``'n/a: ...'`` when fewer than two families qualify)."""
    import sngep

    keep = labels >= 0
    fam, lab = families[keep], labels[keep]
    sel = family_genes(fam)
    if sel is None:
        why = "n/a: < 2 families with >= 3 genes"
        return {f"{prefix}_NMI": why, f"{prefix}_ARI": why}
    return {
        f"{prefix}_NMI": sngep.metrics.nmi(fam[sel], lab[sel]),
        f"{prefix}_ARI": sngep.metrics.ari(fam[sel], lab[sel]),
        f"{prefix}_n_genes": int(sel.sum()),
    }


def label_scores(ctx: Context, labels, *, internal_all: bool = True) -> dict[str, Any]:
    """Every score that needs only the partition (``-1``: unassigned, left out)."""
    import sngep

    labels = np.asarray(labels).astype(int)
    out = sizes(labels)
    if out["n_clusters_used"] < 2:
        out["metrics_error"] = "fewer than 2 clusters"
        return out
    if ctx.images is not None:
        if internal_all:
            out.update(internal(ctx.images, ctx.mask, labels))
        out.update(internal(ctx.images, ctx.mask, labels, MIN_SIZE))
    keep = labels >= 0
    if ctx.truth is not None:
        out["truth_NMI"] = sngep.metrics.nmi(ctx.truth[keep], labels[keep])
        out["truth_ARI"] = sngep.metrics.ari(ctx.truth[keep], labels[keep])
        out.update(go_scores(labels, ctx.genes, None))
        return out
    out.update(go_scores(labels, ctx.genes, ctx.organism))
    out.update(family_scores(labels, ctx.paper_families, "family"))
    out.update(family_scores(labels, ctx.families, "family_ext"))
    return out


def leiden_labels(rep: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Leiden (``sngep.tl.gene_leiden``, resolution bisected to ``k`` clusters, 15-NN graph)
    on a per-gene representation ``(n_genes, n_features)``."""
    import anndata as ad

    import sngep

    g = ad.AnnData(np.zeros((1, rep.shape[0]), dtype=np.float32))
    g.varm["rep"] = np.asarray(rep, dtype=np.float32)
    sngep.tl.gene_leiden(g, use_rep="rep", n_clusters=k, random_state=seed, key_added="leiden")
    return g.var["leiden"].astype(int).to_numpy()


def leiden_scores(ctx: Context, labels: np.ndarray | None, why: str = "") -> dict[str, Any]:
    """Family / truth NMI / ARI of Leiden labels on a representation, as ``leiden_*``;
    ``labels=None``: every such score is ``why`` (an ``'n/a: ...'`` string)."""
    import sngep

    if labels is None:
        keys = ("truth_NMI", "truth_ARI") if ctx.truth is not None else ("family_ext_NMI",)
        return {f"leiden_{key}": why for key in keys}
    out: dict[str, Any] = {"leiden_n_clusters": int(len(np.unique(labels)))}
    if ctx.truth is not None:
        out["leiden_truth_NMI"] = sngep.metrics.nmi(ctx.truth, labels)
        out["leiden_truth_ARI"] = sngep.metrics.ari(ctx.truth, labels)
        return out
    for prefix, fam in (("family", ctx.paper_families), ("family_ext", ctx.families)):
        out.update({f"leiden_{k}": v for k, v in family_scores(labels, fam, prefix).items()})
    return out


# ---------------------------------------------------------------------------------------------
# baselines and two sections


def shuffled(labels, seed: int) -> np.ndarray:
    """The labels permuted across genes: same sizes, no relation to the genes."""
    return np.random.default_rng(seed).permutation(np.asarray(labels))


HUB_FRAC = 0.05  # the genes most often among the others' nearest: the "hubs"


def _knn(x: np.ndarray, k: int, candidates: np.ndarray | None = None) -> np.ndarray:
    """Each row's ``k`` nearest rows (Euclidean, itself excluded), drawn from ``candidates``."""
    from sklearn.neighbors import NearestNeighbors

    pool = np.arange(len(x)) if candidates is None else np.asarray(candidates)
    idx = NearestNeighbors(n_neighbors=min(k + 1, len(pool))).fit(x[pool]).kneighbors(x)[1]
    found = pool[idx]
    own = found == np.arange(len(x))[:, None]
    # drop each row's own index where it appears, else the farthest of the k + 1
    keep = np.where(own.any(1)[:, None], ~own, np.arange(found.shape[1]) < k)
    return found[keep].reshape(len(x), -1)[:, :k]


def hubs(x: np.ndarray, k: int = KNN, frac: float = HUB_FRAC) -> tuple[np.ndarray, float]:
    """The ``frac`` of genes that occur most often in the other genes' ``k`` nearest genes,
    and the share of all nearest-gene slots they take (``frac`` when nothing is a hub).

    High-dimensional representations have hubs (Radovanovic et al., JMLR 2010): a few
    points near the centre of the cloud are everybody's neighbour. On DLPFC 151673 (500
    genes, standardised images) 25 genes fill 75 % of the 10-nearest-gene lists."""
    x = np.asarray(x, dtype=np.float64)
    k = min(k, x.shape[0] - 1)
    occ = np.bincount(_knn(x, k).ravel(), minlength=len(x))
    n_hub = max(1, round(frac * len(x)))
    top = np.argsort(-occ, kind="stable")[:n_hub]
    return np.sort(top), float(occ[top].sum() / occ.sum())


def knn_overlap(a: np.ndarray, b: np.ndarray, k: int = KNN, *, drop_hubs: bool = False) -> float:
    """Mean overlap of each gene's ``k`` nearest genes (Euclidean) in two representations of
    the same genes (rows), e.g. one per tissue section. Chance is ``k / (n - 1)``; 1 means
    identical neighbourhoods. K-free and blind to cluster sizes.

    ``drop_hubs``: the neighbours are drawn from the genes that are a hub (:func:`hubs`) in
    neither representation, so that a few genes in everybody's list, the same on both
    sections, cannot carry the score; every gene is still scored."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape[0] != b.shape[0]:
        msg = f"different numbers of genes: {a.shape[0]} and {b.shape[0]}"
        raise ValueError(msg)
    k = min(k, a.shape[0] - 1)
    pool = None
    if drop_hubs:
        pool = np.setdiff1d(np.arange(len(a)), np.union1d(hubs(a, k)[0], hubs(b, k)[0]))
        k = min(k, len(pool) - 1)
    na, nb = _knn(a, k, pool), _knn(b, k, pool)
    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(na, nb, strict=True)]))


def knn_chance(n_genes: int, k: int = KNN) -> float:
    """Expected :func:`knn_overlap` of two unrelated representations of ``n_genes`` genes."""
    return min(k, n_genes - 1) / (n_genes - 1)


def partition_agreement(a, b) -> dict[str, Any]:
    """ARI / NMI between two partitions of the same genes (``-1`` in either: left out)."""
    import sngep

    a, b = np.asarray(a).astype(int), np.asarray(b).astype(int)
    keep = (a >= 0) & (b >= 0)
    return {
        "xsec_ARI": sngep.metrics.ari(a[keep], b[keep]),
        "xsec_NMI": sngep.metrics.nmi(a[keep], b[keep]),
        "xsec_n_genes": int(keep.sum()),
    }


def standardized_pixels(images: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """In-tissue pixels of each gene image, standardised per gene (``sngep.pp``'s scaling)."""
    from sngep.pp._standardize import standardize

    return standardize(images, mask)[:, mask]


__all__ = [
    "FAMILY_PATTERNS",
    "PAPER_FAMILIES",
    "Context",
    "family_genes",
    "family_scores",
    "gene_families",
    "go_scores",
    "internal",
    "knn_chance",
    "knn_overlap",
    "label_scores",
    "leiden_labels",
    "leiden_scores",
    "partition_agreement",
    "shuffled",
    "sizes",
    "standardized_pixels",
]
