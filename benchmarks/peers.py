"""The gene-clustering methods compared by ``benchmarks.run``, one function each.

Every method takes the same prepared AnnData (top Moran's I genes, log-normalised ``.X``,
raw counts in ``layers['counts']`` where the data has counts, gene images in
``varm['gene_images']``) and a K, and returns one label per gene of ``adata.var_names``. Besides the peers (Hotspot,
Smoothie, a squidpy neighbour-average baseline) there are the baselines a user tries first
(Leiden on per-gene standardised images, k-means on their first 20 principal components,
k-means on the raw images) and DARLC.
Methods whose own algorithm picks the number of modules (Hotspot, Smoothie/Infomap) also
return their native labels, with ``-1`` for genes they leave unassigned. Methods with a
per-gene representation (DARLC's embedding, the smoothed expression of Smoothie and the
squidpy baseline, the images or PCs the baselines cluster) return it too, for the Leiden
scores and the cross-section 10-nearest-gene overlap of ``benchmarks.run``; Hotspot has none (its modules come from a gene x gene z matrix).

:func:`run_in_worker` is the entry point of the spawned processes: it loads the pickled
AnnData, runs one method under :func:`benchmarks._common.measure` and returns plain data.
"""

from __future__ import annotations

import pickle
import time
import traceback
from typing import Any

import numpy as np

from benchmarks._common import vm_mb, zscore_rows

# ---------------------------------------------------------------------------------------------
# helpers


def _dense(x) -> np.ndarray:
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)


def _flat_images(adata, key: str = "gene_images") -> np.ndarray:
    from sngep._validate import get_gene_images

    images, mask = get_gene_images(adata, key)
    return images[:, mask].astype(np.float64)


def _average_linkage_cut(dist: np.ndarray, k: int) -> np.ndarray:
    """Average-linkage hierarchical clustering on a square distance matrix, cut at K."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    d = np.clip((dist + dist.T) / 2, 0, None)
    np.fill_diagonal(d, 0.0)
    z = linkage(squareform(d, checks=False), method="average")
    return fcluster(z, k, criterion="maxclust") - 1


def _one_minus_pearson(x: np.ndarray) -> np.ndarray:
    """``1 - r`` between the columns of ``x`` (spots x genes); constant genes get r = 0."""
    xc = x - x.mean(axis=0, keepdims=True)
    norm = np.linalg.norm(xc, axis=0)
    norm[norm == 0] = np.inf
    xs = xc / norm
    return 1.0 - np.clip(xs.T @ xs, -1, 1)


def _cut_linkage_k(z: np.ndarray, k: int) -> tuple[np.ndarray, str]:
    """Cut a (possibly non-monotonic) linkage into K clusters; say how."""
    from scipy.cluster.hierarchy import cut_tree, fcluster

    labels = fcluster(z, k, criterion="maxclust") - 1
    if len(np.unique(labels)) == k:
        return labels, "fcluster(maxclust)"
    # Hotspot's heights are (offset - z-score) and need not be monotonic; cut by merge order.
    return cut_tree(z, n_clusters=k).ravel(), "cut_tree (merge order; fcluster gave fewer)"


# ---------------------------------------------------------------------------------------------
# methods: each returns a dict with 'labels' (or 'seeds': list of per-seed dicts) and 'info'


def hotspot_method(adata, k: int, seed: int = 0, **_: Any) -> dict[str, Any]:
    """Hotspot (DeTomaso & Yosef 2021): local autocorrelation, pairwise local correlation z,
    its own modules (``create_modules``) and its linkage cut at K."""
    import hotspot

    has_counts = "counts" in adata.layers
    ad = adata.copy()
    ad.layers["hs"] = ad.layers["counts"] if has_counts else ad.X
    ad.layers["hs"] = (
        ad.layers["hs"].tocsc() if hasattr(ad.layers["hs"], "tocsc") else ad.layers["hs"]
    )
    model = "danb" if has_counts else "normal"
    if "total_counts_all_genes" not in ad.obs:
        ad.obs["total_counts_all_genes"] = np.asarray(_dense(ad.layers["hs"]).sum(axis=1)).ravel()
    n_neighbors = int(min(30, max(6, ad.n_obs // 40)))
    min_gene_threshold = int(max(5, ad.n_vars // 50))
    hs = hotspot.Hotspot(
        ad,
        layer_key="hs",
        model=model,
        latent_obsm_key="spatial",
        umi_counts_obs_key="total_counts_all_genes",
    )
    hs.create_knn_graph(weighted_graph=False, n_neighbors=n_neighbors)
    auto = hs.compute_autocorrelations(jobs=1)
    genes = list(ad.var_names)  # every gene, for a label per gene (not only FDR < 0.05)
    lcz = hs.compute_local_correlations(genes, jobs=1)
    modules = hs.create_modules(
        min_gene_threshold=min_gene_threshold, core_only=True, fdr_threshold=0.05
    )
    order = list(lcz.index)
    cut, how = _cut_linkage_k(hs.linkage, k)
    cut_s = dict(zip(order, cut, strict=True))
    native = modules.reindex(ad.var_names).fillna(-1).astype(int).to_numpy()
    return {
        "labels": np.array([cut_s[g] for g in ad.var_names]),
        "native_labels": native,
        "info": {
            "model": model,
            "counts": "raw counts (layers['counts']), umi counts = totals over all genes before the gene subset"
            if has_counts
            else "no raw counts in this data set: model='normal' on log1p(count-normalised) values",
            "n_neighbors": n_neighbors,
            "min_gene_threshold": min_gene_threshold,
            "n_autocorr_fdr_lt_0.05": int((auto["FDR"] < 0.05).sum()),
            "native_n_modules": int(len(set(native) - {-1})),
            "native_n_unassigned": int((native == -1).sum()),
            "k_cut": how,
        },
    }


def _smoothie_smooth(adata):
    """Smoothie's in-place Gaussian smoothing; sd = one spot spacing, or more where spots are
    sparse.

    Smoothie skips (and above 15 % refuses) locations with fewer than
    ``min_spots_under_gaussian`` spots within 3 sd. On Visium / ST grids one spacing puts
    ~30 spots there; the sparse Slide-seq puck needs a wider kernel, so sd is raised until
    90 % of the spots have 10 spots (themselves included) within 3 sd.
    """
    import smoothie
    from scipy.spatial import cKDTree

    ad = adata.copy()
    xy = np.asarray(ad.obsm["spatial"], dtype=np.float64)
    ad.obsm["spatial"] = xy
    d, _ = cKDTree(xy).query(xy, min(10, len(xy)))
    sd = float(max(np.median(d[:, 1]), np.quantile(d[:, -1], 0.9) / 3))
    params = dict(grid_based_or_not=False, gaussian_sd=sd, min_spots_under_gaussian=10)
    sm = smoothie.run_parallelized_smoothing(ad, num_processes=1, **params)
    return ad, sm, params


def smoothie_method(adata, k: int, seed: int = 0, **_: Any) -> dict[str, Any]:
    """Smoothie (Holdener & De Vlaminck 2025): Gaussian smoothing, Pearson network with a
    shuffled-null PCC cutoff, Infomap modules (native count). The K-matched labels are our
    adaptation: average-linkage on ``1 - r`` of the smoothed genes, cut at K."""
    import smoothie

    ad, sm, params = _smoothie_smooth(adata)
    x = _dense(sm.X)
    pcc, _ = smoothie.compute_correlation_matrix(x.copy())
    p95, p99, p999 = smoothie.compute_shuffled_correlation_percentiles(
        ad, num_processes=1, seed=seed, **params
    )
    cutoff = float(max(p999, 0.4))
    power = 4
    _, nodes = smoothie.make_spatial_network(
        pcc,
        list(sm.var_names),
        pcc_cutoff=cutoff,
        clustering_power=power,
        trials=20,
        random_seed=seed,
    )
    mod = dict(zip(nodes["name"], nodes["module_label"], strict=True))
    native = np.array([mod[g] for g in adata.var_names])
    sizes = {m: int((native == m).sum()) for m in np.unique(native)}
    native = np.array([m if sizes[m] >= 3 else -1 for m in native])  # min_genes_for_module=3
    labels = _average_linkage_cut(1.0 - np.clip(pcc, -1, 1), k)
    return {
        "labels": labels,
        "native_labels": native,
        "representation": zscore_rows(x.T),
        "info": {
            "representation": "Smoothie-smoothed expression per gene, z-scored",
            "smoothing": {**params, "num_processes": 1},
            "shuffled_pcc_p95_p99_p999": [float(p95), float(p99), float(p999)],
            "pcc_cutoff": cutoff,
            "pcc_cutoff_rule": "max(shuffled 99.9th percentile, 0.4)",
            "clustering_power": power,
            "native_min_genes_for_module": 3,
            "native_n_modules": int(len(set(native) - {-1})),
            "native_n_unassigned": int((native == -1).sum()),
            "k_matched": "average-linkage on 1 - Pearson of Smoothie-smoothed expression (our adaptation; Infomap has no K)",
        },
    }


def neighbour_average(adata) -> np.ndarray:
    """``(n_spots, n_genes)`` expression averaged over each spot and its 6 nearest spots,
    ``D^-1 (A + I) X`` on squidpy's generic spatial graph."""
    import scipy.sparse as sp
    import squidpy as sq

    ad = adata.copy()
    sq.gr.spatial_neighbors(ad, coord_type="generic", n_neighs=6, key_added="bench")
    a = ad.obsp["bench_connectivities"]
    a = (a > 0).astype(np.float64) + sp.eye(ad.n_obs)
    a = sp.diags(1.0 / np.asarray(a.sum(axis=1)).ravel()) @ a
    return np.asarray(a @ _dense(ad.X))


def squidpy_method(adata, k: int, seed: int = 0, **_: Any) -> dict[str, Any]:
    """Baseline: squidpy spatial graph, neighbour-averaged expression ``D^-1 (A + I) X``,
    ``1 - r`` between genes, average linkage cut at K."""
    x = neighbour_average(adata)
    return {
        "labels": _average_linkage_cut(_one_minus_pearson(x), k),
        "representation": zscore_rows(x.T),
        "info": {
            "graph": "squidpy.gr.spatial_neighbors(coord_type='generic', n_neighs=6)",
            "representation": "neighbour-averaged expression per gene, z-scored",
        },
    }


def kmeans_method(
    adata, k: int, seed: int = 0, images_key: str = "gene_images", **_: Any
) -> dict[str, Any]:
    """k-means (n_init=10) on the flattened in-tissue pixels of the gene images."""
    from sklearn.cluster import KMeans

    x = _flat_images(adata, images_key)
    return {
        "labels": KMeans(k, n_init=10, random_state=seed).fit_predict(x),
        "representation": zscore_rows(x),
        "info": {"images": images_key, "representation": "in-tissue pixels, z-scored per gene"},
    }


def leiden_std_method(adata, k: int, seed: int = 0, **_: Any) -> dict[str, Any]:
    """Baseline a user tries first: Leiden (``sngep.tl.gene_leiden``, resolution bisected to
    K) on the per-gene standardised images of ``sngep.pp.standardize_images``."""
    import sngep

    sngep.pp.standardize_images(adata, key_added="gene_images_std")
    sngep.tl.gene_leiden(
        adata, use_rep="gene_images_std", n_clusters=k, random_state=seed, key_added="leiden_std"
    )
    mask = np.asarray(adata.uns["gene_images_std"]["mask"], dtype=bool)
    labels = adata.var["leiden_std"].astype(int).to_numpy()
    return {
        "labels": labels,
        "representation": adata.varm["gene_images_std"][:, mask],
        "info": {
            "call": "sngep.pp.standardize_images; sngep.tl.gene_leiden(use_rep='gene_images_std', "
            "n_clusters=K)",
            "representation": "standardised in-tissue pixels (the Leiden input)",
            "n_clusters_found": int(len(np.unique(labels))),
            "resolution": float(adata.uns["leiden_std"]["resolution"]),
        },
    }


def kmeans_pca_method(adata, k: int, seed: int = 0, n_pcs: int = 20, **_: Any) -> dict[str, Any]:
    """Baseline: k-means (n_init=10) on the first 20 principal components of the per-gene
    standardised images (``sngep.pp.standardize_images``, in-tissue pixels)."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    import sngep

    sngep.pp.standardize_images(adata, key_added="gene_images_std")
    mask = np.asarray(adata.uns["gene_images_std"]["mask"], dtype=bool)
    x = adata.varm["gene_images_std"][:, mask]
    n_pcs = int(min(n_pcs, *x.shape))
    pcs = PCA(n_pcs, random_state=seed).fit_transform(x)
    return {
        "labels": KMeans(k, n_init=10, random_state=seed).fit_predict(pcs),
        "representation": pcs.astype(np.float32),
        "info": {"n_pcs": n_pcs, "representation": f"the first {n_pcs} PCs (the k-means input)"},
    }


def darlc_method(
    adata, k: int, seed: int = 0, darlc_kw: dict | None = None, **_: Any
) -> dict[str, Any]:
    """``sngep.tl.darlc`` (preset, stage lengths and ablation switches in ``darlc_kw``)."""
    import sngep

    kw = dict(preset="default", show_progress_bar=False, device="cpu")
    kw.update(darlc_kw or {})
    computed_s = "seed_similarity" not in adata.varp  # the *_all data sets skip it in prepare
    if computed_s:  # DARLC needs it; its time counts as DARLC's, as a user would pay it
        sngep.tl.seed_similarity(adata, show_progress_bar=False)
    out = sngep.tl.darlc(adata, n_clusters=k, random_state=seed, copy=True, **kw)
    uns = out.uns["darlc"]
    phase = np.asarray(uns["history"].get("phase", []))
    training = {
        key: (val.item() if isinstance(val, np.generic) else val)
        for key, val in dict(uns.get("training", {})).items()
    }
    return {
        "labels": out.var["darlc"].astype(int).to_numpy(),
        "denoised": np.asarray(out.varm["darlc_denoised"], dtype=np.float32),
        "representation": np.asarray(out.varm["X_darlc"], dtype=np.float32),
        "training": training,
        "info": {
            "darlc_kw": kw,
            "representation": "varm['X_darlc'] (the embedding z), as is",
            "seed_similarity": "computed in the run (in its wall time)" if computed_s else "given",
            "pretrain_epochs_run": int(np.sum(phase == 0)) if phase.size else None,
            "joint_epochs_run": int(np.sum(phase == 1)) if phase.size else None,
        },
    }


METHODS = {
    "hotspot": hotspot_method,
    "smoothie": smoothie_method,
    "squidpy_hc": squidpy_method,
    "kmeans": kmeans_method,
    "leiden_std": leiden_std_method,
    "kmeans_pca": kmeans_pca_method,
    "darlc": darlc_method,
}


_IMPORTS = {
    "hotspot": "hotspot",
    "smoothie": "smoothie",
    "squidpy_hc": "squidpy",
    "kmeans": "sklearn.cluster",
    "leiden_std": "scanpy",
    "kmeans_pca": "sklearn.decomposition",
    "darlc": "sngep.models.darlc.model",
}


def _reset_hwm() -> bool:
    """Reset the kernel's peak-RSS mark of this process (``echo 5 > /proc/self/clear_refs``)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def run_in_worker(method: str, pickle_path: str, k: int, seed: int, kwargs: dict) -> dict[str, Any]:
    """Load the pickled AnnData and run one method, timed (entry point of fresh processes).

    Peak memory comes from ``VmHWM``, not ``ru_maxrss``: a spawned child is forked from the
    driver before it execs, and Linux keeps the driver's peak in the child's ``ru_maxrss``
    (so ``_common.measure`` would report at least the driver's RSS). ``peak_rss_mb`` is this
    process's own peak (Python, imports, the loaded AnnData and the method);
    ``step_peak_mb`` is the method's peak above the RSS it started from.
    """
    import importlib
    import os

    import torch

    from benchmarks._common import measure

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", torch.get_num_threads())))
    with open(pickle_path, "rb") as fh:
        adata = pickle.load(fh)
    extra = kwargs.pop("_extra_varm", None)
    if extra is not None:  # e.g. DARLC's denoised images for k-means
        name, arr = extra
        adata.varm[name] = arr
    importlib.import_module(_IMPORTS[method])  # import time is not the method's run time
    hwm_load = vm_mb("VmHWM")
    reset = _reset_hwm()
    rss_before = vm_mb("VmRSS")
    try:
        out, stats = measure(METHODS[method], adata, k, seed=seed, **kwargs)
    except Exception as err:  # noqa: BLE001 - recorded, not hidden
        return {
            "error": f"{type(err).__name__}: {err}",
            "traceback": traceback.format_exc(),
            "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
    hwm_step = vm_mb("VmHWM")
    stats = {
        "wall_s": stats["wall_s"],
        "rss_before_mb": rss_before,
        "peak_rss_mb": max(hwm_load, hwm_step),
        "step_peak_mb": hwm_step - rss_before if reset else float("nan"),
        "peak_source": "VmHWM (clear_refs reset before the method)" if reset else "VmHWM",
    }
    out["stats"] = stats
    for key in ("labels", "native_labels"):
        if key in out:
            out[key] = np.asarray(out[key]).astype(int)
    return out
