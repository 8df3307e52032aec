"""DARLC against peer gene-module methods on real data (issue 5).

Per data set, every method gets the same preprocessed AnnData, the same genes and the same K,
and every clustering is scored on the same raw gene images (``sngep.metrics``: DBIE, DBIP,
SAM; all lower is better), plus NMI / ARI against gene-family labels (HLA / H2, GABR, RPL/RPS,
MT) where the selected genes hold enough family members, or against the planted patterns of
the synthetic data. Each method runs in a fresh spawned process (clean peak RSS).

Methods: Hotspot (``hotspotsc``), Smoothie (``smoothie-st``), a squidpy neighbour-averaged
correlation + average-linkage baseline, k-means on raw and on DARLC's GAT-denoised images,
``sngep.tl.darlc`` (preset 'fast') and the ablations of the paper's Table 4.

    python -m benchmarks.run --datasets mob dlpfc151673            # N = 500 genes, 3 seeds
    python -m benchmarks.run --datasets mob dlpfc151673 --quick    # N = 200 genes, 1 seed,
                                          # DARLC 50 GAT + 5 + 5 epochs, no ablations
    python -m benchmarks.report                                    # table + plot from the JSONs

Output: ``benchmarks/results/<dataset>[_quick].json``, ``benchmarks/results/README.md`` and
``benchmarks/results/dbip_vs_time.png``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import pickle
import re
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import RESULTS, SCRATCH, machine, write_json

DATA = Path(__file__).parent / "data"

# Paper Table 4 switches, each on top of preset='fast'
QUICK_DARLC = {"pretrain_epochs": 5, "epochs": 5, "gat_epochs": 50}

ABLATIONS: dict[str, dict[str, Any]] = {
    "darlc_fast -clr": {"use_clr": False},
    "darlc_fast augment=gks": {"augment": "gks"},
    "darlc_fast mixture=gmm": {"mixture": "gmm"},
    "darlc_fast mixture=None": {"mixture": None},
    "darlc_fast -lap": {"use_lap": False},
    "darlc_fast -size": {"use_size": False},
    "darlc_fast pretrain=0": {"pretrain_epochs": 0},
}

FAMILY_PATTERNS = {
    # case-insensitive; human and mouse spellings. RP: ribosomal proteins only (not RPS6KA...).
    "MHC (HLA-/H2-)": r"^(HLA-|H2-)",
    "GABA receptor (GABR)": r"^GABR",
    "ribosomal (RPL/RPS)": r"^(RP[LS]\d+[A-Z]?\d*|RPLP\d|RPSA)$",
    "mitochondrial (MT-)": r"^MT-",
}


def _keep_counts_and_normalise(adata) -> None:
    """Raw counts to ``layers['counts']`` (Hotspot's input), then normalize_total + log1p."""
    import scanpy as sc

    adata.layers["counts"] = adata.X.copy()
    adata.obs["total_counts_all_genes"] = np.asarray(adata.X.sum(axis=1)).ravel()
    sc.pp.normalize_total(adata)
    sc.pp.log1p(adata)


def gene_families(symbols) -> np.ndarray:
    out = []
    for s in symbols:
        fam = "other"
        for name, pat in FAMILY_PATTERNS.items():
            if re.match(pat, str(s), flags=re.IGNORECASE):
                fam = name
                break
        out.append(fam)
    return np.array(out, dtype=object)


def family_genes(families: np.ndarray) -> np.ndarray | None:
    """Mask of the genes of families with >= 3 members, or ``None`` when fewer than two
    families qualify (family NMI / ARI would be meaningless)."""
    names, counts = np.unique(families[families != "other"], return_counts=True)
    use = names[counts >= 3]
    return np.isin(families, use) if len(use) >= 2 else None


def _dlpfc_symbols(ids) -> list[str]:
    path = DATA / "dlpfc_symbols.tsv"
    table = {}
    if path.exists():
        for line in path.read_text().splitlines()[1:]:
            ens, sym = line.split("\t")
            table[ens] = sym.split("|")[0]
    return [table.get(i, i) for i in ids]


# ---------------------------------------------------------------------------------------------
# data


def prepare(dataset: str, n_top: int) -> tuple[Any, dict[str, Any]]:
    """Preprocessed AnnData with gene images and seed similarity, and a description."""
    import scanpy as sc

    import sngep
    from benchmarks._common import prepared_dlpfc

    desc: dict[str, Any] = {}
    image_kw: dict[str, Any] = {}
    counts_loaders = {
        "mob": sngep.datasets.mouse_olfactory_bulb,
        "breast_cancer": sngep.datasets.breast_cancer,
        "slideseq_purkinje": sngep.datasets.slideseq_purkinje,
    }
    if dataset in counts_loaders:  # raw counts: keep them for Hotspot, then normalise
        adata = counts_loaders[dataset]()
        prefix = ""
        if dataset == "breast_cancer":  # four stacked sections sharing one frame: use one
            adata = adata[adata.obs["slice"] == "1"].copy()
            prefix = "slice 1 of 4, "
        desc["n_genes_loaded"] = adata.n_vars
        sc.pp.filter_genes(adata, min_cells=10)
        _keep_counts_and_normalise(adata)
        desc["preprocessing"] = (
            f"{prefix}filter_genes(min_cells=10), counts kept in layers['counts'], "
            "normalize_total, log1p"
        )
        adata.var["symbol"] = list(adata.var_names)
        if dataset == "slideseq_purkinje":
            # Beads are off-grid: bin them. The default pixel (the median bead spacing) gives a
            # 263 x 271 image holding 883 beads (1 % of pixels filled, ~1,100 ViT tokens); 48
            # pixels along the longer side averages ~1-3 beads per filled pixel and keeps the
            # ViT cheap.
            xy = adata.obsm["spatial"]
            image_kw = {"grid": "bin", "resolution": float(np.ptp(xy, axis=0).max() / 47)}
            desc["image_params"] = (
                f"gene_images(grid='bin', resolution={image_kw['resolution']:.1f})"
            )
    elif dataset.startswith("dlpfc"):
        adata = prepared_dlpfc(dataset.removeprefix("dlpfc"))
        desc["n_genes_loaded"] = int(adata.uns["bench_n_genes_loaded"])
        desc["preprocessing"] = (
            "filter_genes(min_cells=10), log1p (the loader's expression is already count-normalised; "
            "no raw counts exist, so Hotspot uses model='normal')"
        )
        adata.var["symbol"] = _dlpfc_symbols(adata.var_names)
        desc["symbols"] = (
            "Ensembl ids mapped with benchmarks/data/dlpfc_symbols.tsv (org.Hs.eg.db 3.16)"
        )
    elif dataset == "synthetic":
        adata = sngep.datasets.synthetic(random_state=0)
        desc["n_genes_loaded"] = adata.n_vars
        _keep_counts_and_normalise(adata)
        desc["preprocessing"] = (
            "sngep.datasets.synthetic(random_state=0), normalize_total, log1p; all genes"
        )
        adata.var["symbol"] = list(adata.var_names)
    else:
        msg = f"unknown dataset {dataset!r}"
        raise ValueError(msg)
    desc["n_genes_after_filter"] = adata.n_vars
    desc["n_spots"] = adata.n_obs
    t = time.perf_counter()
    if dataset == "synthetic":
        desc["gene_selection"] = "all planted genes"
    elif adata.n_vars <= n_top:
        desc["gene_selection"] = f"all {adata.n_vars} genes detected in >= 10 spots"
    elif dataset == "breast_cancer":
        # Top Moran's I genes plus every detected gene of a family, so that gene-family NMI /
        # ARI can be measured (the top-N genes alone hold too few family members).
        sngep.pp.spatial_genes(adata, n_top=n_top)
        fam = gene_families(adata.var_names) != "other"
        keep = adata.var["spatially_variable"].to_numpy(bool) | fam
        n_moran = int(adata.var["spatially_variable"].sum())
        adata = adata[:, keep].copy()
        desc["gene_selection"] = (
            f"top {n_moran} Moran's I genes (sngep.pp.spatial_genes(n_top={n_top})) of "
            f"{desc['n_genes_after_filter']}, plus every gene of the four families detected in "
            f">= 10 spots ({int(keep.sum()) - n_moran} more), so that family NMI / ARI is measurable"
        )
    else:
        sngep.pp.spatial_genes(adata, n_top=n_top, subset=True)
        desc["gene_selection"] = (
            f"top {adata.n_vars} Moran's I genes (sngep.pp.spatial_genes(n_top={n_top}, subset=True)) of "
            f"{desc['n_genes_after_filter']}: the 2-core CPU cannot run DARLC on every gene in the time available"
        )
    sngep.pp.gene_images(adata, **image_kw)
    sngep.tl.seed_similarity(adata, show_progress_bar=False)
    sngep.tl.estimate_k(adata)
    desc["prep_s"] = time.perf_counter() - t
    desc["image_shape"] = list(adata.varm["gene_images"].shape[1:])
    k_est = int(adata.uns["estimate_k"]["k"])
    k_n30 = max(2, round(adata.n_vars / 30))
    if dataset == "synthetic":
        k = int(adata.var["pattern"].nunique())
        rule = "K = number of planted patterns"
    else:
        k = int(np.clip(k_est, k_n30, 2 * k_n30))
        rule = (
            "K = estimate_k clipped to [round(n/30), 2 round(n/30)]: the eigengap gave K = 2-3 on "
            "some real data (trivial comparisons) and K = 82 for 200 DLPFC genes (singleton-"
            "dominated partitions for every method); n/30 is the paper's pathway-size default (4.1.5)"
        )
    desc.update(K=k, estimate_k=k_est, k_n_over_30=k_n30, K_rule=rule, n_genes=adata.n_vars)
    return adata, desc


# ---------------------------------------------------------------------------------------------
# scoring


def score(
    adata, labels: np.ndarray, truth: np.ndarray | None, families: np.ndarray
) -> dict[str, Any]:
    """Metrics of one clustering on the raw gene images; ``-1`` labels are left out."""
    import sngep
    from sngep._validate import get_gene_images

    images, mask = get_gene_images(adata, "gene_images")
    keep = labels >= 0
    out: dict[str, Any] = {
        "n_scored": int(keep.sum()),
        "n_clusters_used": int(len(np.unique(labels[keep]))),
    }
    out["cluster_sizes"] = sorted(
        np.bincount(np.unique(labels[keep], return_inverse=True)[1]).tolist(), reverse=True
    )
    if out["n_clusters_used"] < 2:
        out["metrics_error"] = "fewer than 2 clusters"
        return out
    x, lab = images[keep], labels[keep]
    out["DBIE"] = sngep.metrics.dbi_euclidean(x, lab, mask=mask)
    out["DBIP"] = sngep.metrics.dbi_pearson(x, lab, mask=mask)
    out["SAM"] = sngep.metrics.sam(x, lab, mask=mask)
    if truth is not None:
        out["truth_NMI"] = sngep.metrics.nmi(truth[keep], lab)
        out["truth_ARI"] = sngep.metrics.ari(truth[keep], lab)
    fam = families[keep]
    sel = family_genes(fam)
    if sel is not None:
        out["family_NMI"] = sngep.metrics.nmi(fam[sel], lab[sel])
        out["family_ARI"] = sngep.metrics.ari(fam[sel], lab[sel])
        out["family_n_genes"] = int(sel.sum())
    else:
        out["family_NMI"] = out["family_ARI"] = "n/a: too few family genes"
    return out


def leiden_scores(
    rep: np.ndarray, k: int, truth: np.ndarray | None, families: np.ndarray, seed: int
) -> dict[str, Any]:
    """Leiden (``sngep.tl.gene_leiden``, resolution bisected to K clusters) on a method's
    per-gene representation, scored against the planted patterns / gene families."""
    import anndata as ad

    import sngep

    g = ad.AnnData(np.zeros((1, rep.shape[0]), dtype=np.float32))
    g.varm["rep"] = np.asarray(rep, dtype=np.float32)
    sngep.tl.gene_leiden(g, use_rep="rep", n_clusters=k, random_state=seed, key_added="leiden")
    lab = g.var["leiden"].astype(int).to_numpy()
    out: dict[str, Any] = {"leiden_n_clusters": int(len(np.unique(lab)))}
    if truth is not None:
        out["leiden_truth_NMI"] = sngep.metrics.nmi(truth, lab)
        out["leiden_truth_ARI"] = sngep.metrics.ari(truth, lab)
    sel = family_genes(families)
    if sel is not None:
        out["leiden_family_NMI"] = sngep.metrics.nmi(families[sel], lab[sel])
        out["leiden_family_ARI"] = sngep.metrics.ari(families[sel], lab[sel])
    return out


def _agg(seed_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sd over seeds of every numeric metric."""
    ok = [r for r in seed_rows if "error" not in r]
    out: dict[str, Any] = {"n_seeds": len(ok), "seeds": [r["seed"] for r in ok]}
    errors = [r for r in seed_rows if "error" in r]
    if errors:
        out["errors"] = [{"seed": r["seed"], "error": r["error"]} for r in errors]
    if not ok:
        out["error"] = errors[0]["error"]
        return out
    keys = [
        "DBIE",
        "DBIP",
        "SAM",
        "truth_NMI",
        "truth_ARI",
        "family_NMI",
        "family_ARI",
        "leiden_truth_NMI",
        "leiden_truth_ARI",
        "leiden_family_NMI",
        "leiden_family_ARI",
        "wall_s",
        "peak_rss_mb",
        "step_peak_mb",
        "n_clusters_used",
        "n_scored",
    ]
    for key in keys:
        vals = [r.get(key) for r in ok]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
            out[key] = float(np.mean(vals))
            out[key + "_sd"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else None
        elif vals and isinstance(vals[0], str):
            out[key] = vals[0]
    return out


# ---------------------------------------------------------------------------------------------
# driver


def _call(method: str, pkl: str, k: int, seed: int, kwargs: dict) -> dict[str, Any]:
    from benchmarks.peers import run_in_worker

    try:
        # not _common.in_fresh_process: Pool workers are daemonic and Smoothie starts its own pool
        with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
            return pool.submit(run_in_worker, method, pkl, k, seed, kwargs).result()
    except Exception as err:  # noqa: BLE001 - a crashed worker (e.g. killed for memory)
        return {"error": f"worker failed: {type(err).__name__}: {err}"}


def run_dataset(
    dataset: str,
    quick: bool,
    only: list[str] | None = None,
    seeds: list[int] | None = None,
    ablation_seeds: list[int] | None = None,
    paper_schedule: list[int] | None = None,
) -> dict[str, Any]:
    n_top = 200 if quick else 500
    seeds = seeds or ([0] if quick else [0, 1, 2])
    ablation_seeds = ablation_seeds or [0]
    # --quick shortens every DARLC schedule so the run fits in < 15 min on 2 CPU cores
    darlc_over = dict(QUICK_DARLC) if quick else {}
    t_start = time.perf_counter()
    adata, desc = prepare(dataset, n_top)
    k = desc["K"]
    truth = adata.var["pattern"].astype(str).to_numpy() if "pattern" in adata.var else None
    families = gene_families(adata.var["symbol"])
    fam_names, fam_counts = np.unique(families, return_counts=True)
    desc["families_in_selected_genes"] = {
        str(n): int(c) for n, c in zip(fam_names, fam_counts, strict=True)
    }
    SCRATCH.mkdir(parents=True, exist_ok=True)
    pkl = str(SCRATCH / f"bench_{dataset}_{os.getpid()}.pkl")
    with open(pkl, "wb") as fh:
        pickle.dump(adata, fh)

    name = f"{dataset}{'_quick' if quick else ''}.json"
    payload: dict[str, Any] = {
        "dataset": dataset,
        "quick": quick,
        "data": desc,
        "seeds": seeds,
        "ablation_seeds": ablation_seeds,
        "torch_threads_per_method": os.environ.get("BENCH_THREADS", "torch default"),
        "darlc_overrides": darlc_over
        or "none (full 'fast' schedule: GAT 200, 30 pretrain + 20 joint epochs)",
        "metrics_note": (
            "DBIE, DBIP (Davies-Bouldin, Euclidean / 1 - Pearson) and SAM (mean spectral angle to "
            "the cluster mean, radians) are computed on the same raw gene images for every method; "
            "lower is better for all three. Native-count rows (Hotspot / Smoothie own modules) are "
            "scored on their assigned genes only (n_scored). wall_s and peak RSS are per method, "
            "each method in a fresh process (peak includes the ~loaded AnnData and imports)."
        ),
        "methods": {},
        "machine": machine(),
    }
    methods = payload["methods"]
    if only is not None and (RESULTS / name).exists():  # partial re-run: keep the other methods
        import json

        old = json.loads((RESULTS / name).read_text())
        methods.update(old.get("methods", {}))
        for key in ("seeds", "ablation_seeds"):
            payload[key] = sorted(set(payload[key]) | set(old.get(key, [])))

    def want(m: str) -> bool:
        return only is None or any(m.startswith(o) for o in only)

    def record(
        method: str, seed_rows: list[dict[str, Any]], info: dict | None = None, native: bool = False
    ):
        previous = methods.get(method, {}).get("per_seed", []) if only is not None else []
        if previous:  # partial re-run with other seeds: keep the seeds measured before
            new = {r["seed"] for r in seed_rows}
            seed_rows = [r for r in previous if r.get("seed") not in new] + seed_rows
            seed_rows.sort(key=lambda r: r.get("seed", 0))
        row = _agg(seed_rows)
        row.update(
            method=method, K=(None if native else k), n_genes=adata.n_vars, per_seed=seed_rows
        )
        if info:
            row["info"] = info
        methods[method] = row
        write_json(name, payload)  # partial results survive an interrupted run
        print(
            f"[{dataset}] {method}: "
            + ", ".join(
                f"{c}={row.get(c):.3g}" if isinstance(row.get(c), float) else f"{c}={row.get(c)}"
                for c in (
                    "DBIE",
                    "DBIP",
                    "SAM",
                    "truth_NMI",
                    "family_NMI",
                    "wall_s",
                    "n_seeds",
                    "error",
                )
                if c in row
            ),
            flush=True,
        )

    def seed_row(res: dict[str, Any], seed: int, labels_key: str = "labels") -> dict[str, Any]:
        if "error" in res:
            return {"seed": seed, "error": res["error"], "traceback": res.get("traceback")}
        r = {"seed": seed, **res["stats"]}
        r.update(score(adata, res[labels_key], truth, families))
        r["labels"] = np.asarray(res[labels_key]).astype(int).tolist()  # to re-score later
        if labels_key == "labels" and res.get("representation") is not None:
            r.update(leiden_scores(res["representation"], k, truth, families, seed))
        return r

    # peers with their own module count + K-matched cut
    for method in ("hotspot", "smoothie"):
        if not want(method):
            continue
        res = _call(method, pkl, k, 0, {})
        info = res.get("info")
        record(f"{method} (cut at K)", [seed_row(res, 0)], info)
        if "error" not in res:
            record(
                f"{method} (own modules)", [seed_row(res, 0, "native_labels")], info, native=True
            )
    if want("squidpy"):
        res = _call("squidpy_hc", pkl, k, 0, {})
        record("squidpy neighbour-avg + avg-linkage", [seed_row(res, 0)], res.get("info"))
    if want("kmeans"):
        record("kmeans raw images", [seed_row(_call("kmeans", pkl, k, s, {}), s) for s in seeds])

    # DARLC fast, seeds; the seed-0 denoised images feed k-means
    denoised = None
    if want("darlc"):
        rows = []
        info = None
        for s in seeds:
            res = _call("darlc", pkl, k, s, {"darlc_kw": dict(darlc_over)})
            rows.append(seed_row(res, s))
            if "error" not in res:
                info = res["info"]
                if denoised is None:
                    denoised = res["denoised"]
        record("darlc_fast", rows, info)
    if want("kmeans") and denoised is not None:
        extra = ("darlc_denoised", denoised)
        rows = [
            seed_row(
                _call(
                    "kmeans",
                    pkl,
                    k,
                    s,
                    {"images_key": "darlc_denoised", "_extra_varm": extra},
                ),
                s,
            )
            for s in seeds
        ]
        record(
            "kmeans GAT-denoised images",
            rows,
            {
                "note": "images from the seed-0 darlc_fast run; wall time excludes the GAT (in darlc_fast)"
            },
        )
    if (only is None and not quick) or (only is not None and "ablations" in only):  # not in --quick
        for label, kw in ABLATIONS.items():
            kw = {**darlc_over, **kw}
            rows = [
                seed_row(_call("darlc", pkl, k, s, {"darlc_kw": kw}), s) for s in ablation_seeds
            ]
            record(label, rows, {"darlc_kw": {"preset": "fast", **kw}})
    if paper_schedule:
        pre, joint, gat = paper_schedule
        kw = {"preset": "paper", "pretrain_epochs": pre, "epochs": joint, "gat_epochs": gat}
        if (pre, joint, gat) == (50, 50, 1000):
            label = "darlc_paper (full schedule: 1000 GAT + 50 + 50 epochs)"
        else:
            label = f"darlc_paper (REDUCED: {gat} GAT + {pre} + {joint} epochs, not 1000 + 50 + 50)"
        methods.pop("darlc_paper", None)
        record(label, [seed_row(_call("darlc", pkl, k, 0, {"darlc_kw": kw}), 0)], {"darlc_kw": kw})
    elif not any(m.startswith("darlc_paper") for m in methods):
        methods["darlc_paper"] = {
            "method": "darlc_paper",
            "error": "not run: CPU cost",
            "info": _paper_cost_note(),
        }
    payload["total_s"] = time.perf_counter() - t_start
    path = write_json(name, payload)
    os.remove(pkl)
    print(f"wrote {path} ({payload['total_s']:.0f} s)")
    return payload


def _paper_cost_note() -> dict[str, Any]:
    import json

    note: dict[str, Any] = {
        "reason": "preset='paper' is ~20+ s per 256-image step on this 2-core CPU"
    }
    ref = RESULTS / "darlc_epoch_quick.json"
    if ref.exists():
        d = json.loads(ref.read_text())
        paper = d.get("flops", {}).get("paper", {})
        note["step_s_median"] = paper.get("step_s_median")
        note["batch_size"] = paper.get("batch_size")
        note["extrapolated_full_dlpfc_h"] = (
            d.get("extrapolated", {}).get("paper", {}).get("total_h")
        )
        note["source"] = "benchmarks/results/darlc_epoch_quick.json"
    return note


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=["mob", "dlpfc151673"],
        help="mob, dlpfc151673 (any DLPFC sample), breast_cancer, slideseq_purkinje, synthetic",
    )
    parser.add_argument("--quick", action="store_true", help="200 genes, 1 seed")
    parser.add_argument(
        "--only",
        nargs="+",
        default=None,
        help="method prefixes to run (hotspot smoothie squidpy kmeans darlc ablations)",
    )
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=None,
        help="seeds of darlc_fast and k-means (default 0 1 2; 0 with --quick)",
    )
    parser.add_argument(
        "--ablation-seeds",
        nargs="+",
        type=int,
        default=None,
        help="seeds of the Table 4 ablations (default 0)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads per method process (torch, BLAS, OpenMP, numba; default 1: every method "
        "single-threaded; torch with 2 threads on 2 busy cores was 40x slower than with 1)",
    )
    parser.add_argument(
        "--paper-schedule",
        nargs=3,
        type=int,
        default=None,
        metavar=("PRE", "JOINT", "GAT"),
        help="also run preset='paper' (seed 0) with this reduced schedule; default: not run",
    )
    parser.add_argument("--no-report", action="store_true")
    parser.add_argument(
        "--no-synthetic",
        action="store_true",
        help="skip the synthetic data set (planted patterns) that runs first otherwise",
    )
    args = parser.parse_args(argv)
    datasets = list(args.datasets)
    if not args.no_synthetic and "synthetic" not in datasets:
        datasets.insert(0, "synthetic")
    if args.threads:  # inherited by the spawned method processes
        for var in (
            "BENCH_THREADS",
            "OMP_NUM_THREADS",
            "OPENBLAS_NUM_THREADS",
            "MKL_NUM_THREADS",
            "NUMBA_NUM_THREADS",
        ):
            os.environ[var] = str(args.threads)
    for ds in datasets:
        run_dataset(ds, args.quick, args.only, args.seeds, args.ablation_seeds, args.paper_schedule)
    if not args.no_report:
        from benchmarks.report import main as report

        report()


if __name__ == "__main__":
    main()
