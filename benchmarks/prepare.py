"""The benchmark's data sets: loading, preprocessing, gene selection and K.

Keys (``python -m benchmarks.run --datasets KEY ...``):

``synthetic``
    ``sngep.datasets.synthetic(random_state=0)``: planted patterns, every gene.
``mob``, ``slideseq_purkinje``, ``breast_cancer`` (slice 1 of 4), ``dlpfc<sample>``
    The top N Moran's I genes (N = 500, 200 with ``--quick``); breast cancer adds every
    detected gene of the paper's four families.
``dlpfc151673_3k``
    DLPFC 151673, the top 3,000 Moran's I genes plus every detected gene of the (extended)
    gene families: a gene set large enough to hold the families.
``dlpfc151673_pair`` + ``dlpfc151674_pair``, ``breast_cancer1_pair`` + ``breast_cancer2_pair``
    Two sections on the same genes and K, for reproducibility: the genes detected on both
    sections, the top N Moran's I genes of the first section (breast cancer: plus every
    detected family gene), K from the first section. ``dlpfc_pair`` and
    ``breast_cancer_pair`` name both sections.
``<key>_all`` (``mob_all``, ``breast_cancer_all``, ``dlpfc151673_all``)
    Every gene detected in >= 10 spots, K = round(n / 30); the peers and the cheap baselines
    only (DARLC is not run on these).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.scores import PAPER_FAMILIES, gene_families

DATA = Path(__file__).parent / "data"

# both sections of a pair, first section first
PAIRS = {
    "dlpfc_pair": ("dlpfc151673_pair", "dlpfc151674_pair"),
    "breast_cancer_pair": ("breast_cancer1_pair", "breast_cancer2_pair"),
}
ALL_GENES_SUFFIX = "_all"
BIG_DLPFC = {"dlpfc151673_3k": ("151673", 3000)}
MOUSE = ("mob", "slideseq_purkinje")


def expand(keys: list[str]) -> list[str]:
    """Data set keys with the pair aliases (``dlpfc_pair``) replaced by both sections."""
    out: list[str] = []
    for key in keys:
        for k in PAIRS.get(key, (key,)):
            if k not in out:
                out.append(k)
    return out


def partner(dataset: str) -> str | None:
    """The other section of a pair data set, else ``None``."""
    for a, b in PAIRS.values():
        if dataset == a:
            return b
        if dataset == b:
            return a
    return None


def pair_of(dataset: str) -> tuple[str, str] | None:
    for pair in PAIRS.values():
        if dataset in pair:
            return pair
    return None


def organism(dataset: str) -> str | None:
    """``'mouse'``, ``'human'`` or ``None`` (synthetic genes: no GO)."""
    if dataset.startswith("synthetic"):
        return None
    return "mouse" if dataset.startswith(MOUSE) else "human"


def is_all_genes(dataset: str) -> bool:
    return dataset.endswith(ALL_GENES_SUFFIX)


def dlpfc_symbols(ids) -> list[str]:
    """Ensembl ids to symbols with ``data/dlpfc_symbols.tsv`` (the id where unmapped)."""
    path = DATA / "dlpfc_symbols.tsv"
    table = {}
    if path.exists():
        for line in path.read_text().splitlines()[1:]:
            ens, sym = line.split("\t")
            table[ens] = sym.split("|")[0]
    return [table.get(i, i) for i in ids]


# ---------------------------------------------------------------------------------------------
# sections


def _keep_counts_and_normalise(adata) -> None:
    """Raw counts to ``layers['counts']`` (Hotspot's input), then normalize_total + log1p."""
    import scanpy as sc

    adata.layers["counts"] = adata.X.copy()
    adata.obs["total_counts_all_genes"] = np.asarray(adata.X.sum(axis=1)).ravel()
    sc.pp.normalize_total(adata)
    sc.pp.log1p(adata)


def _counts_section(name: str, slice_: str | None = None):
    """A raw-count data set, genes in >= 10 spots, counts kept, normalize_total + log1p."""
    import scanpy as sc

    import sngep

    loaders = {
        "mob": sngep.datasets.mouse_olfactory_bulb,
        "breast_cancer": sngep.datasets.breast_cancer,
        "slideseq_purkinje": sngep.datasets.slideseq_purkinje,
    }
    adata = loaders[name]()
    prefix = ""
    if slice_ is not None:  # four stacked sections sharing one frame: use one
        adata = adata[adata.obs["slice"] == slice_].copy()
        prefix = f"slice {slice_} of 4, "
    n_loaded = adata.n_vars
    sc.pp.filter_genes(adata, min_cells=10)
    _keep_counts_and_normalise(adata)
    adata.var["symbol"] = list(adata.var_names)
    pre = (
        f"{prefix}filter_genes(min_cells=10), counts kept in layers['counts'], "
        "normalize_total, log1p"
    )
    return adata, {"n_genes_loaded": n_loaded, "preprocessing": pre}


def _dlpfc_section(sample: str):
    from benchmarks._common import prepared_dlpfc

    adata = prepared_dlpfc(sample)
    raw = bool(adata.uns.get("bench_raw_counts", False))
    adata.var["symbol"] = dlpfc_symbols(adata.var_names)
    pre = (
        "filter_genes(min_cells=10), normalize_total, log1p (this sample's file holds raw counts; "
        "no counts kept, so that Hotspot uses model='normal' on both sections of the pair)"
        if raw
        else "filter_genes(min_cells=10), log1p (the loader's expression is already "
        "count-normalised; no raw counts exist, so Hotspot uses model='normal')"
    )
    return adata, {
        "n_genes_loaded": int(adata.uns["bench_n_genes_loaded"]),
        "preprocessing": pre,
        "symbols": "Ensembl ids mapped with benchmarks/data/dlpfc_symbols.tsv (org.Hs.eg.db 3.16)",
    }


def _section(dataset: str):
    """``(adata, desc)`` of one section, preprocessed, all genes detected in >= 10 spots."""
    import sngep

    if dataset == "synthetic":
        adata = sngep.datasets.synthetic(random_state=0)
        n = adata.n_vars
        _keep_counts_and_normalise(adata)
        adata.var["symbol"] = list(adata.var_names)
        pre = "sngep.datasets.synthetic(random_state=0), normalize_total, log1p; all genes"
        return adata, {"n_genes_loaded": n, "preprocessing": pre}
    if dataset in ("mob", "slideseq_purkinje"):
        return _counts_section(dataset)
    if dataset == "breast_cancer":
        return _counts_section("breast_cancer", "1")
    m = re.fullmatch(r"breast_cancer(\d)_pair", dataset)
    if m:
        return _counts_section("breast_cancer", m.group(1))
    m = re.fullmatch(r"dlpfc(\d{6})(_pair)?", dataset)
    if m:
        return _dlpfc_section(m.group(1))
    msg = f"unknown dataset {dataset!r}"
    raise ValueError(msg)


# ---------------------------------------------------------------------------------------------
# gene selection


def _top_moran(adata, n_top: int, candidates: np.ndarray | None = None) -> np.ndarray:
    """Mask of the top ``n_top`` Moran's I genes (among ``candidates`` when given)."""
    import sngep

    sub = adata if candidates is None else adata[:, candidates].copy()
    sngep.pp.spatial_genes(sub, n_top=min(n_top, sub.n_vars))
    chosen = set(sub.var_names[sub.var["spatially_variable"].to_numpy(bool)])
    return np.isin(adata.var_names, list(chosen))


def _select(dataset: str, adata, n_top: int, desc: dict[str, Any]):
    """Subset ``adata`` to the data set's genes (in ``adata``'s order); say which in desc."""
    n_filt = adata.n_vars
    if dataset == "synthetic":
        desc["gene_selection"] = "all planted genes"
        return adata
    if is_all_genes(dataset):
        desc["gene_selection"] = f"all {n_filt} genes detected in >= 10 spots"
        return adata
    if dataset in BIG_DLPFC:
        n_top = BIG_DLPFC[dataset][1]
        keep = _top_moran(adata, n_top)
        fam = gene_families(adata.var["symbol"]) != "other"
        desc["gene_selection"] = (
            f"top {int(keep.sum())} Moran's I genes of {n_filt} (sngep.pp.spatial_genes"
            f"(n_top={n_top})), plus every gene of the extended families detected in >= 10 "
            f"spots ({int((fam & ~keep).sum())} more): a set large enough to hold the families"
        )
        return adata[:, keep | fam].copy()
    if adata.n_vars <= n_top:
        desc["gene_selection"] = f"all {n_filt} genes detected in >= 10 spots"
        return adata
    if dataset == "breast_cancer":
        # Top Moran's I genes plus every detected gene of the paper's four families (the
        # selection of the stored results; the top N alone holds too few family members).
        keep = _top_moran(adata, n_top)
        fam = gene_families(adata.var_names, PAPER_FAMILIES) != "other"
        desc["gene_selection"] = (
            f"top {int(keep.sum())} Moran's I genes (sngep.pp.spatial_genes(n_top={n_top})) of "
            f"{n_filt}, plus every gene of the four families detected in >= 10 spots "
            f"({int((fam & ~keep).sum())} more), so that family NMI / ARI is measurable"
        )
        return adata[:, keep | fam].copy()
    keep = _top_moran(adata, n_top)
    desc["gene_selection"] = (
        f"top {int(keep.sum())} Moran's I genes (sngep.pp.spatial_genes(n_top={n_top}, "
        f"subset=True)) of {n_filt}: the 2-core CPU cannot run DARLC on every gene in the "
        "time available"
    )
    return adata[:, keep].copy()


def _select_pair(first: str, a, b, n_top: int, desc: dict[str, Any]):
    """Both sections on the same genes: detected on both, chosen on the first."""
    shared = np.isin(a.var_names, b.var_names)
    keep = _top_moran(a, n_top, candidates=shared)
    extra = ""
    if first.startswith("breast_cancer"):
        fam = (gene_families(a.var["symbol"]) != "other") & shared
        extra = (
            f", plus every gene of the extended families detected on both "
            f"({int((fam & ~keep).sum())} more)"
        )
        keep = keep | fam
    genes = a.var_names[keep]
    desc["gene_selection"] = (
        f"top {n_top} Moran's I genes of the first section ({first}) among the "
        f"{int(shared.sum())} genes detected in >= 10 spots on both sections{extra}; the "
        "same genes, in the same order, on both sections"
    )
    return a[:, genes].copy(), b[:, genes].copy()


# ---------------------------------------------------------------------------------------------
# the prepared data set


def k_rule(n_genes: int, k_est: int | None, dataset: str) -> tuple[int, str]:
    k_n30 = max(2, round(n_genes / 30))
    if k_est is None:
        return k_n30, "K = round(n/30), the paper's pathway-size default (4.1.5)"
    k = int(np.clip(k_est, k_n30, 2 * k_n30))
    return k, (
        "K = estimate_k clipped to [round(n/30), 2 round(n/30)]: the eigengap gave K = 2-3 on "
        "some real data (trivial comparisons) and K = 82 for 200 DLPFC genes (singleton-"
        "dominated partitions for every method); n/30 is the paper's pathway-size default (4.1.5)"
    )


def prepare(dataset: str, n_top: int, *, for_methods: bool = True) -> tuple[Any, dict[str, Any]]:
    """Preprocessed AnnData with gene images (and, ``for_methods``, the seed similarity and
    K), and a description. ``for_methods=False`` (re-scoring stored labels) skips the seed
    similarity and ``estimate_k``."""
    import sngep

    t = time.perf_counter()
    desc: dict[str, Any] = {"organism": organism(dataset)}
    base = dataset.removesuffix(ALL_GENES_SUFFIX)
    if base in BIG_DLPFC:
        base = "dlpfc" + BIG_DLPFC[base][0]
    pair = pair_of(dataset)
    if pair is not None:
        a, da = _section(pair[0])
        b, db = _section(pair[1])
        desc.update(db if dataset == pair[1] else da)
        desc["n_genes_after_filter"] = (a if dataset == pair[0] else b).n_vars
        a, b = _select_pair(pair[0], a, b, n_top, desc)
        desc["pair"] = {"sections": list(pair), "partner": partner(dataset)}
        adata = b if dataset == pair[1] else a
        k_source = a  # K from the first section, for both
    else:
        adata, d = _section(base)
        desc.update(d)
        desc["n_genes_after_filter"] = adata.n_vars
        adata = _select(dataset, adata, n_top, desc)
        k_source = adata
    desc["n_spots"] = adata.n_obs
    image_kw: dict[str, Any] = {}
    if base == "slideseq_purkinje":
        # Beads are off-grid: bin them. The default pixel (the median bead spacing) gives a
        # 263 x 271 image holding 883 beads (1 % of pixels filled, ~1,100 ViT tokens); 48
        # pixels along the longer side averages ~1-3 beads per filled pixel and keeps the
        # ViT cheap.
        xy = adata.obsm["spatial"]
        image_kw = {"grid": "bin", "resolution": float(np.ptp(xy, axis=0).max() / 47)}
        desc["image_params"] = f"gene_images(grid='bin', resolution={image_kw['resolution']:.1f})"
    sngep.pp.gene_images(adata, **image_kw)
    desc["image_shape"] = list(adata.varm["gene_images"].shape[1:])
    k_est = None
    if for_methods and not is_all_genes(dataset):  # DARLC's input, and estimate_k
        if k_source is not adata:
            sngep.pp.gene_images(k_source, **image_kw)
            sngep.tl.seed_similarity(k_source, show_progress_bar=False)
        sngep.tl.seed_similarity(adata, show_progress_bar=False)
        sngep.tl.estimate_k(k_source)
        k_est = int(k_source.uns["estimate_k"]["k"])
    if dataset == "synthetic":
        k, rule = int(adata.var["pattern"].nunique()), "K = number of planted patterns"
    else:
        k, rule = k_rule(adata.n_vars, k_est, dataset)
        if pair is not None:
            rule += f"; computed on the first section ({pair[0]}), used for both"
    desc["prep_s"] = time.perf_counter() - t
    desc.update(
        K=k,
        estimate_k=k_est,
        k_n_over_30=max(2, round(adata.n_vars / 30)),
        K_rule=rule,
        n_genes=adata.n_vars,
    )
    fam_names, fam_counts = np.unique(gene_families(adata.var["symbol"]), return_counts=True)
    desc["families_in_selected_genes"] = {
        str(n): int(c) for n, c in zip(fam_names, fam_counts, strict=True)
    }
    return adata, desc
