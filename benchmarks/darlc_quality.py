"""Clustering quality of ``sngep.tl.darlc(preset='fast')`` against k-means baselines (issue 3).

For each dataset the genes are clustered three ways with the same K: DARLC (fast preset, its
full schedule, CPU), k-means on the raw gene images (in-tissue pixels) and k-means on per-gene
standardised images (mean 0, sd 1 inside the tissue). Every method is scored on the raw
gene images with ``sngep.metrics.dbi_euclidean``, ``dbi_pearson`` and ``sam`` (lower is
better) and, where planted truth exists, ARI / NMI against ``var['pattern']``.

Datasets: ``sngep.datasets.synthetic(random_state=s)`` for s = 0, 1, 2 (K = number of planted
patterns), and the bundled mouse olfactory bulb (genes in >= 10 spots, normalize_total,
log1p, top 500 Moran's I genes) with K from ``estimate_k`` and K = round(n / 30).
Wall times are recorded. Output: ``benchmarks/results/darlc_quality*.json``.

    python -m benchmarks.darlc_quality           # full fast schedule
    python -m benchmarks.darlc_quality --quick   # seed 0; 3 + 3 epochs, 20 GAT; 200 MOB genes
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks._common import machine, table, write_json, zscore_rows


def _prepare(adata):
    import scanpy as sc

    sc.pp.normalize_total(adata)
    sc.pp.log1p(adata)
    return adata


def _images(adata):
    from sngep._validate import get_gene_images

    return get_gene_images(adata, "gene_images")


def _kmeans(x: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(k, n_init=10, random_state=seed).fit_predict(x)


def evaluate(adata, k: int, dataset: str, darlc_kw: dict, truth: str | None = None) -> list[dict]:
    """Cluster the genes of ``adata`` (with gene images and seed similarity) three ways."""
    import sngep

    images, mask = _images(adata)
    flat = images[:, mask].astype(np.float64)
    runs = {}
    t = time.perf_counter()
    sngep.tl.darlc(
        adata, n_clusters=k, preset="fast", device="cpu", show_progress_bar=False, **darlc_kw
    )
    runs["darlc_fast"] = (adata.var["darlc"].to_numpy(), time.perf_counter() - t)
    t = time.perf_counter()
    runs["kmeans_raw"] = (_kmeans(flat, k), time.perf_counter() - t)
    t = time.perf_counter()
    runs["kmeans_std"] = (_kmeans(zscore_rows(flat), k), time.perf_counter() - t)
    rows = []
    for method, (labels, wall) in runs.items():
        row = {
            "dataset": dataset,
            "n_genes": adata.n_vars,
            "K": k,
            "method": method,
            "n_clusters_used": int(len(np.unique(labels))),
            "wall_s": wall,
            "DBIE": sngep.metrics.dbi_euclidean(images, labels, mask=mask),
            "DBIP": sngep.metrics.dbi_pearson(images, labels, mask=mask),
            "SAM": sngep.metrics.sam(images, labels, mask=mask),
        }
        if truth is not None:
            row["ARI"] = sngep.metrics.ari(adata.var[truth], labels)
            row["NMI"] = sngep.metrics.nmi(adata.var[truth], labels)
        if method == "darlc_fast":
            hist = adata.uns["darlc"]["history"]
            row["joint_epochs_run"] = int(np.sum(np.asarray(hist.get("phase", [])) == 1))
        rows.append(row)
        print(row, flush=True)
    return rows


def synthetic_rows(seed: int, darlc_kw: dict) -> list[dict]:
    import sngep

    adata = _prepare(sngep.datasets.synthetic(random_state=seed))
    t = time.perf_counter()
    sngep.pp.gene_images(adata)
    sngep.tl.seed_similarity(adata, show_progress_bar=False)
    sngep.tl.estimate_k(adata)
    prep = time.perf_counter() - t
    k = int(adata.var["pattern"].nunique())
    rows = evaluate(adata, k, f"synthetic s={seed}", darlc_kw, truth="pattern")
    for r in rows:
        r.update(estimate_k=int(adata.uns["estimate_k"]["k"]), prep_s=prep)
    return rows


def mob_rows(n_top: int, darlc_kw: dict) -> list[dict]:
    import scanpy as sc

    import sngep

    adata = sngep.datasets.mouse_olfactory_bulb()
    sc.pp.filter_genes(adata, min_cells=10)
    _prepare(adata)
    t = time.perf_counter()
    sngep.pp.spatial_genes(adata, n_top=n_top, subset=True)
    sngep.pp.gene_images(adata)
    sngep.tl.seed_similarity(adata, show_progress_bar=False)
    sngep.tl.estimate_k(adata)
    prep = time.perf_counter() - t
    k_est = int(adata.uns["estimate_k"]["k"])
    k_30 = max(2, round(adata.n_vars / 30))
    rows = []
    for k, how in ((k_est, "estimate_k"), (k_30, "n/30")):
        for r in evaluate(adata, k, f"MOB top{adata.n_vars} K={how}", darlc_kw):
            r.update(estimate_k=k_est, prep_s=prep)
            rows.append(r)
    return rows


def main(quick: bool = False) -> dict:
    darlc_kw = dict(pretrain_epochs=3, epochs=3, gat_epochs=20) if quick else {}
    seeds = (0,) if quick else (0, 1, 2)
    name = "darlc_quality_quick.json" if quick else "darlc_quality.json"
    out = {"quick": quick, "darlc_overrides": darlc_kw, "rows": [], "machine": machine()}
    rows = out["rows"]
    for s in seeds:
        rows += synthetic_rows(s, darlc_kw)
        write_json(name, out)  # partial results survive an interrupted run
    rows += mob_rows(200 if quick else 500, darlc_kw)
    path = write_json(name, out)
    cols = ["dataset", "n_genes", "K", "method", "DBIE", "DBIP", "SAM", "ARI", "NMI", "wall_s"]
    print("\nSynthetic (K = planted patterns; lower DBIE/DBIP/SAM is better)")
    print(table([r for r in rows if r["dataset"].startswith("synthetic")], cols))
    print("\nMouse olfactory bulb, top Moran's I genes")
    print(table([r for r in rows if r["dataset"].startswith("MOB")], cols[:7] + ["wall_s"]))
    print(f"wrote {path}")
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced run")
    main(parser.parse_args().quick)
