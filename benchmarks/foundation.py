"""Foundation steps on the largest real dataset (issue 2): time and peak memory.

Measures, each in a fresh spawned process (so that ``ru_maxrss`` is the step's own peak),
``sngep.pp.gene_images``, ``sngep.tl.seed_similarity`` (dense, and kNN with
``n_neighbors=30``) and ``sngep.tl.estimate_k`` on each similarity, on DLPFC 151673
(genes in >= 10 spots, log1p), and prints genes kept, image shape and K. Also times
``gene_images`` on a synthetic 16,000 genes x 4,000 spots sparse matrix on a Visium hex
lattice (the "about a second" target).

Intermediate AnnData files go to ``$SNGEP_BENCH_DIR`` (default ``/tmp/sngep_bench``); the
results go to ``benchmarks/results/foundation_dlpfc151673.json``.

    python -m benchmarks.foundation            # full run
    python -m benchmarks.foundation --quick    # 1,500 random genes; synthetic 4,000 x 1,000
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks._common import (
    SCRATCH,
    in_fresh_process,
    machine,
    measure,
    prepared_dlpfc,
    table,
    write_json,
)


def _read(name: str):
    import anndata as ad

    return ad.read_h5ad(SCRATCH / name)


def step_gene_images(src: str, dst: str) -> dict:
    import sngep

    adata = _read(src)
    _, stats = measure(sngep.pp.gene_images, adata)
    adata.write_h5ad(SCRATCH / dst)
    shape = tuple(int(s) for s in adata.uns["gene_images"]["shape"])
    n_in = int(adata.uns["gene_images"]["mask"].sum())
    return {
        **stats,
        "n_genes": adata.n_vars,
        "n_spots": adata.n_obs,
        "image_shape": shape,
        "pixels_in_tissue": n_in,
    }


def step_seed_similarity(src: str, dst: str, n_neighbors: int | None) -> dict:
    import sngep

    adata = _read(src)
    _, stats = measure(
        sngep.tl.seed_similarity, adata, n_neighbors=n_neighbors, show_progress_bar=False
    )
    adata.write_h5ad(SCRATCH / dst)
    sim = adata.varp["seed_similarity"]
    return {
        **stats,
        "n_genes": adata.n_vars,
        "similarity": type(sim).__name__,
        "nnz": int(sim.nnz) if hasattr(sim, "nnz") else int(np.count_nonzero(sim)),
    }


def step_estimate_k(src: str) -> dict:
    import sngep

    adata = _read(src)
    _, stats = measure(sngep.tl.estimate_k, adata)
    return {**stats, "n_genes": adata.n_vars, "k": int(adata.uns["estimate_k"]["k"])}


def step_synthetic_gene_images(n_genes: int, n_spots: int, density: float, repeats: int) -> dict:
    """gene_images on a random sparse matrix on a near-square Visium hex lattice."""
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    import sngep

    rng = np.random.default_rng(0)
    per_row = int(np.ceil(np.sqrt(n_spots)))
    i = np.arange(n_spots)
    row = i // per_row
    col = 2 * (i % per_row) + (row % 2)  # hex lattice: row + col even
    x = sp.random(n_spots, n_genes, density=density, format="csr", dtype=np.float32, rng=rng)
    obs = pd.DataFrame({"array_row": row, "array_col": col}, index=[f"s{j}" for j in i])
    adata = ad.AnnData(x, obs=obs)
    adata.obsm["spatial"] = np.c_[col * 50.0, row * 86.6]
    times = []
    for _ in range(repeats):
        _, stats = measure(sngep.pp.gene_images, adata, grid="visium")
        times.append(stats["wall_s"])
    shape = tuple(int(s) for s in adata.uns["gene_images"]["shape"])
    return {
        "n_genes": n_genes,
        "n_spots": n_spots,
        "density": density,
        "image_shape": shape,
        "wall_s_min": min(times),
        "wall_s_median": float(np.median(times)),
        "wall_s_all": times,
        "peak_rss_mb": stats["peak_rss_mb"],
        "rss_before_mb": stats["rss_before_mb"],
    }


def main(quick: bool = False) -> dict:
    SCRATCH.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    adata = prepared_dlpfc("151673")
    n_loaded = int(adata.uns["bench_n_genes_loaded"])
    n_kept = adata.n_vars
    if quick:
        keep = np.sort(np.random.default_rng(0).choice(adata.n_vars, 1500, replace=False))
        adata = adata[:, keep].copy()
    adata.write_h5ad(SCRATCH / "dlpfc_prep.h5ad")
    prep_s = time.perf_counter() - t0
    print(f"prepared DLPFC 151673: {adata.n_obs} spots x {adata.n_vars} genes ({prep_s:.1f} s)")

    steps = {}
    steps["gene_images"] = in_fresh_process(step_gene_images, "dlpfc_prep.h5ad", "dlpfc_img.h5ad")
    print("gene_images", steps["gene_images"])
    steps["seed_similarity"] = in_fresh_process(
        step_seed_similarity, "dlpfc_img.h5ad", "dlpfc_sim.h5ad", None
    )
    print("seed_similarity", steps["seed_similarity"])
    steps["estimate_k"] = in_fresh_process(step_estimate_k, "dlpfc_sim.h5ad")
    print("estimate_k", steps["estimate_k"])
    steps["seed_similarity_knn30"] = in_fresh_process(
        step_seed_similarity, "dlpfc_img.h5ad", "dlpfc_sim_knn30.h5ad", 30
    )
    print("seed_similarity_knn30", steps["seed_similarity_knn30"])
    steps["estimate_k_knn30"] = in_fresh_process(step_estimate_k, "dlpfc_sim_knn30.h5ad")
    print("estimate_k_knn30", steps["estimate_k_knn30"])

    n_syn, s_syn = (4000, 1000) if quick else (16000, 4000)
    synthetic = in_fresh_process(step_synthetic_gene_images, n_syn, s_syn, 0.1, 3)
    print("synthetic gene_images", synthetic)

    result = {
        "dataset": "DLPFC 151673",
        "preprocessing": "filter_genes(min_cells=10), log1p (expression is count-normalised)",
        "quick": quick,
        "n_genes_loaded": n_loaded,
        "n_genes_kept": int(n_kept),
        "n_spots": int(adata.n_obs),
        "image_shape": steps["gene_images"]["image_shape"],
        "steps": steps,
        "synthetic_gene_images": synthetic,
        "machine": machine(),
    }
    path = write_json(
        "foundation_dlpfc151673_quick.json" if quick else "foundation_dlpfc151673.json", result
    )

    rows = [
        {
            "step": name,
            "genes": s["n_genes"],
            "wall s": s["wall_s"],
            "peak RSS MiB": s["peak_rss_mb"],
            "RSS before MiB": s["rss_before_mb"],
            "step peak MiB": ("<= " if s["step_peak_is_upper_bound"] else "")
            + f"{s['step_peak_mb']:.0f}",
            "K": s.get("k", ""),
            "image": s.get("image_shape", ""),
        }
        for name, s in steps.items()
    ]
    print()
    print(
        f"DLPFC 151673: {n_kept} of {n_loaded} genes kept (in >= 10 spots), "
        f"{adata.n_vars} benchmarked, {adata.n_obs} spots, images {result['image_shape']}"
    )
    print(
        table(
            rows,
            [
                "step",
                "genes",
                "wall s",
                "peak RSS MiB",
                "RSS before MiB",
                "step peak MiB",
                "K",
                "image",
            ],
        )
    )
    print()
    print(
        f"synthetic gene_images, {synthetic['n_genes']} genes x {synthetic['n_spots']} spots, "
        f"density {synthetic['density']}: min {synthetic['wall_s_min']:.2f} s, median "
        f"{synthetic['wall_s_median']:.2f} s over {len(synthetic['wall_s_all'])} runs, "
        f"image {synthetic['image_shape']}"
    )
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced run (1,500 genes)")
    main(parser.parse_args().quick)
