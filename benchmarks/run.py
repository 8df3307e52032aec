"""DARLC against peer gene-module methods and simple baselines, judged as a biologist would.

Per data set (``benchmarks.prepare``), every method gets the same preprocessed AnnData, the
same genes and the same K, and every partition is scored the same way (``benchmarks.scores``):
GO BP module enrichment and pair lift, gene-family NMI / ARI (K-matched labels and Leiden on
the method's per-gene representation), cluster sizes, and DBIE / DBIP / SAM on the raw images
of clusters of >= 3 genes; on the two sections of a pair also the overlap of each gene's 10
nearest genes and the partition ARI / NMI between the sections. A label-shuffled row is the
chance level. Each method runs in a fresh spawned process (clean wall time and peak RSS).

Methods: Hotspot (``hotspotsc``), Smoothie (``smoothie-st``), a squidpy neighbour-averaged
correlation + average-linkage baseline, Leiden on per-gene standardised images, k-means on
their first 20 PCs, k-means on raw and on DARLC's GAT-denoised images, ``sngep.tl.darlc``
(``--preset``, default 'default') and the ablations of the paper's Table 4.

    python -m benchmarks.run --datasets mob dlpfc151673            # N = 500 genes, 3 seeds
    python -m benchmarks.run --datasets mob --quick                # N = 200 genes, 1 seed,
                                           # short DARLC schedule, no ablations
    python -m benchmarks.run --datasets dlpfc_pair                 # both sections, then the
                                           # cross-section scores
    python -m benchmarks.run --rescore                             # new scores from stored labels
    python -m benchmarks.report                                    # tables + plot from the JSONs

Output: ``benchmarks/results/<dataset>[_quick].json``, ``benchmarks/results/README.md`` and
``benchmarks/results/lift_vs_time.png``; per-gene representations (for the cross-section
overlap) in ``$SNGEP_BENCH_DIR/reps/<dataset>[_quick]/``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import pickle
import re
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import numpy as np

from benchmarks import scores
from benchmarks._common import (
    RESULTS,
    SCRATCH,
    darlc_main_rows,
    machine,
    parse_set,
    set_thread_env,
    write_json,
)
from benchmarks.prepare import expand, is_all_genes, partner, prepare

# --quick: every DARLC schedule shortened (GAT epochs, pretraining steps, joint epochs)
QUICK_DARLC = {"gat_epochs": 50, "pretrain_steps": 20, "epochs": 5}

# Paper Table 4 switches, each on top of the --preset
ABLATIONS: dict[str, dict[str, Any]] = {
    "-clr": {"use_clr": False},
    "augment=gks": {"augment": "gks"},
    "mixture=gmm": {"mixture": "gmm"},
    "mixture=None": {"mixture": None},
    "-lap": {"use_lap": False, "lap_prox": 0.0},  # L_lap in neither form (eq. 17)
    "-size": {"use_size": False},
    "pretrain=0": {"pretrain_steps": 0},
}

# the rows of each method, and the file names of their representations
HOTSPOT_K, HOTSPOT_OWN = "hotspot (cut at K)", "hotspot (own modules)"
SMOOTHIE_K, SMOOTHIE_OWN = "smoothie (cut at K)", "smoothie (own modules)"
SQUIDPY = "squidpy neighbour-avg + avg-linkage"
LEIDEN_STD = "leiden standardised images"
KMEANS_PCA = "kmeans PCA20 standardised images"
KMEANS_RAW = "kmeans raw images"
KMEANS_GAT = "kmeans GAT-denoised images"
SHUFFLED_PREFIX = "shuffled labels"

DEFAULT_TIMEOUT_MIN = 30.0  # every method but DARLC
DEFAULT_MAX_MEM_GB = 14.0  # every method: a 23 GiB machine shared with other jobs


def n_top_for(quick: bool) -> int:
    return 200 if quick else 500


def json_name(dataset: str, quick: bool) -> str:
    return f"{dataset}{'_quick' if quick else ''}.json"


def slug(method: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", method).strip("_")


# ---------------------------------------------------------------------------------------------
# aggregation


_NOT_AGGREGATED = {"seed", "labels", "leiden_labels", "cluster_sizes", "training", "rep_file"}


def agg(seed_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sd over seeds of every numeric per-seed score.

    A score present in only some seeds (older seeds without stored labels) is averaged over
    those, and ``<key>_n_seeds`` says how many.
    """
    ok = [r for r in seed_rows if "error" not in r]
    out: dict[str, Any] = {"n_seeds": len(ok), "seeds": [r["seed"] for r in ok]}
    errors = [r for r in seed_rows if "error" in r]
    if errors:
        out["errors"] = [{"seed": r["seed"], "error": r["error"]} for r in errors]
    if not ok:
        out["error"] = errors[0]["error"]
        return out
    keys = list(dict.fromkeys(k for r in ok for k in r if k not in _NOT_AGGREGATED))
    for key in keys:
        vals = [r[key] for r in ok if key in r]
        nums = [v for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if nums and len(nums) == len(vals):
            arr = np.asarray(nums, dtype=np.float64)
            out[key] = float(np.mean(arr))
            out[key + "_sd"] = float(np.std(arr, ddof=1)) if len(arr) > 1 else None
            if len(nums) < len(ok):
                out[key + "_n_seeds"] = len(nums)
        elif vals and isinstance(vals[0], str):
            out[key] = vals[0]
    stops = [r["training"].get("stop_reason") for r in ok if isinstance(r.get("training"), dict)]
    if stops:
        out["stop_reasons"] = stops
        out["n_joint_epochs"] = [r["training"].get("n_joint_epochs") for r in ok if "training" in r]
    return out


def reaggregate(row: dict[str, Any]) -> dict[str, Any]:
    """The row's aggregates recomputed from its ``per_seed`` (other fields kept)."""
    keep = {
        k: row[k]
        for k in ("method", "K", "n_genes", "info", "per_seed", "source", "note")
        if k in row
    }
    return {**agg(row.get("per_seed", [])), **keep}


# ---------------------------------------------------------------------------------------------
# fresh-process calls with a time-out


def _workers(pool: ProcessPoolExecutor) -> list:
    """The pool's worker processes and the processes they started (Smoothie has its own)."""
    import psutil

    out = []
    for proc in list(getattr(pool, "_processes", {}).values()):
        try:
            p = psutil.Process(proc.pid)
            out += [p, *p.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    return out


def _kill_pool(pool: ProcessPoolExecutor) -> None:
    import psutil

    for p in reversed(_workers(pool)):
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass


def _rss_gb(pool: ProcessPoolExecutor) -> float:
    import psutil

    total = 0
    for p in _workers(pool):
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**30


def call(
    method: str,
    pkl: str,
    k: int,
    seed: int,
    kwargs: dict,
    timeout_s: float | None = None,
    max_mem_gb: float | None = None,
) -> dict[str, Any]:
    """Run ``peers.run_in_worker`` in a fresh spawned process.

    The run is stopped (and recorded as not run) after ``timeout_s`` seconds or once the
    worker and its children hold more than ``max_mem_gb`` GiB (resident): on a shared machine
    an out-of-memory kill would hit other jobs too.
    """
    from benchmarks.peers import run_in_worker

    # not _common.in_fresh_process: Pool workers are daemonic and Smoothie starts its own pool
    pool = ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"))
    t0 = time.monotonic()
    try:
        fut = pool.submit(run_in_worker, method, pkl, k, seed, kwargs)
        while True:
            try:
                return fut.result(timeout=2.0)
            except FutureTimeout:
                if timeout_s is not None and time.monotonic() - t0 > timeout_s:
                    _kill_pool(pool)
                    return {"error": f"not run: > {timeout_s / 60:.0f} min (time-out)"}
                if max_mem_gb is not None and (mem := _rss_gb(pool)) > max_mem_gb:
                    _kill_pool(pool)
                    return {
                        "error": f"not run: > {max_mem_gb:g} GiB memory (stopped at {mem:.1f} "
                        f"GiB after {time.monotonic() - t0:.0f} s)"
                    }
    except Exception as err:  # noqa: BLE001 - a crashed worker (e.g. killed for memory)
        return {"error": f"worker failed: {type(err).__name__}: {err}"}
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


# ---------------------------------------------------------------------------------------------
# shuffled baseline


def shuffled_source(methods: dict[str, dict[str, Any]]) -> tuple[str, list[int]] | None:
    """The partition to permute: the main DARLC row's first stored labels, else the Leiden
    baseline's (balanced sizes), else another row's."""
    names = darlc_main_rows(methods)
    names += [LEIDEN_STD, KMEANS_PCA]
    names += [m for m in methods if m.startswith("darlc_paper")]
    names += [SQUIDPY, KMEANS_RAW]
    for name in names:
        for r in methods.get(name, {}).get("per_seed", []):
            if r.get("labels") and "error" not in r:
                return name, r["labels"]
    return None


def add_shuffled(methods: dict[str, dict[str, Any]], ctx: scores.Context, k: int) -> None:
    """(Re)make the shuffled-labels row: ``N_SHUFFLES`` permutations of one partition."""
    for name in [m for m in methods if m.startswith(SHUFFLED_PREFIX)]:
        del methods[name]
    src = shuffled_source(methods)
    if src is None:
        return
    name, labels = src
    rows = []
    for i in range(scores.N_SHUFFLES):
        perm = scores.shuffled(labels, i)
        rows.append({"seed": i, **scores.label_scores(ctx, perm)})
    row = agg(rows)
    row.update(
        method=f"{SHUFFLED_PREFIX} (of {name})",
        K=k,
        n_genes=len(labels),
        per_seed=rows,
        source=name,
        note=f"{scores.N_SHUFFLES} permutations (seeds 0-{scores.N_SHUFFLES - 1}) of the "
        "first stored partition of the source row: same sizes, no relation to the genes",
    )
    methods[row["method"]] = row


# ---------------------------------------------------------------------------------------------
# driver


def run_dataset(
    dataset: str,
    quick: bool,
    only: list[str] | None = None,
    seeds: list[int] | None = None,
    ablation_seeds: list[int] | None = None,
    paper_schedule: list[int] | None = None,
    preset: str = "default",
    darlc_set: dict[str, Any] | None = None,
    timeout_min: float | None = DEFAULT_TIMEOUT_MIN,
    max_mem_gb: float | None = DEFAULT_MAX_MEM_GB,
) -> dict[str, Any]:
    from benchmarks.rescore import update_cross_section

    seeds = seeds or ([0] if quick else [0, 1, 2])
    ablation_seeds = ablation_seeds or [0]
    darlc_over = {**(QUICK_DARLC if quick else {}), **(darlc_set or {})}
    timeout_s = timeout_min * 60 if timeout_min else None
    all_genes = is_all_genes(dataset)
    t_start = time.perf_counter()
    adata, desc = prepare(dataset, n_top_for(quick))
    k = desc["K"]
    ctx = scores.Context.from_adata(adata, desc["organism"])
    desc["genes"] = list(map(str, adata.var_names))
    SCRATCH.mkdir(parents=True, exist_ok=True)
    pkl = str(SCRATCH / f"bench_{dataset}_{os.getpid()}.pkl")
    with open(pkl, "wb") as fh:
        pickle.dump(adata, fh)
    name = json_name(dataset, quick)
    rep_dir = SCRATCH / "reps" / name.removesuffix(".json")
    rep_dir.mkdir(parents=True, exist_ok=True)

    darlc_row = f"darlc_{preset}"
    payload: dict[str, Any] = {
        "dataset": dataset,
        "quick": quick,
        "data": desc,
        "seeds": seeds,
        "ablation_seeds": ablation_seeds,
        "torch_threads_per_method": os.environ.get("BENCH_THREADS", "torch default"),
        "darlc_preset": preset,
        "darlc_overrides": darlc_over or f"none (the full {preset!r} schedule)",
        "timeout_min": timeout_min,
        "max_mem_gb": max_mem_gb,
        "metrics_note": (
            "GO: BP modules (>= 3 genes) with a term at BH q < 0.05 within the module "
            "(GO_frac), their median best q, pair lift on terms of <= 100 genes (GO_lift; 1 = "
            "chance). family_NMI/ARI: the paper's four families; family_ext_*: the extended "
            "families (benchmarks/scores.py). DBIE/DBIP/SAM (lower is better) on the raw gene "
            "images: *_ge3 only on clusters of >= 3 genes (coverage_ge3 = their share of the "
            "genes), the plain keys on every cluster. xsec_* and knn10_overlap: the same "
            "genes on the other section of a pair (knn10_overlap_nohubs: neighbours drawn "
            "from the genes that are a hub on neither section, scores.hubs). wall_s and "
            "peak RSS are per method, each in a fresh process (peak includes the loaded "
            "AnnData and imports)."
        ),
        "methods": {},
        "machine": machine(),
    }
    methods = payload["methods"]

    def want(m: str) -> bool:
        return only is None or any(m.startswith(o) for o in only)

    if only is not None and (RESULTS / name).exists():  # partial re-run: keep the other methods
        old = json.loads((RESULTS / name).read_text())
        old_genes = old.get("data", {}).get("genes")
        if old_genes is not None and old_genes != desc["genes"]:
            msg = f"{name}: the stored gene list differs from the rebuilt one; not merging"
            raise RuntimeError(msg)
        if old.get("data", {}).get("K", k) != k:
            msg = f"{name}: stored K = {old['data']['K']}, rebuilt K = {k}; not merging"
            raise RuntimeError(msg)
        methods.update(old.get("methods", {}))
        for key in ("seeds", "ablation_seeds"):
            payload[key] = sorted(set(payload[key]) | set(old.get(key, [])))
        kept = ["rescored", "cross_section", "total_s"]
        if not want("darlc"):  # the stored DARLC rows keep their description
            kept += ["darlc_preset", "darlc_overrides"]
        payload.update({key: old[key] for key in kept if key in old})

    def record(method: str, seed_rows: list[dict[str, Any]], info=None, native: bool = False):
        previous = methods.get(method, {}).get("per_seed", []) if only is not None else []
        if previous:  # partial re-run with other seeds: keep the seeds measured before
            new = {r["seed"] for r in seed_rows}
            seed_rows = [r for r in previous if r.get("seed") not in new] + seed_rows
            seed_rows.sort(key=lambda r: r.get("seed", 0))
        row = agg(seed_rows)
        row.update(
            method=method, K=(None if native else k), n_genes=adata.n_vars, per_seed=seed_rows
        )
        if info:
            row["info"] = info
        methods[method] = row
        write_json(name, payload)  # partial results survive an interrupted run
        shown = ("GO_lift", "GO_frac", "family_ext_NMI", "truth_ARI", "DBIP_ge3", "coverage_ge3")
        print(
            f"[{dataset}] {method}: "
            + ", ".join(
                f"{c}={row[c]:.3g}" if isinstance(row[c], float) else f"{c}={row[c]}"
                for c in (*shown, "wall_s", "n_seeds", "error")
                if c in row and not str(row[c]).startswith("n/a")
            ),
            flush=True,
        )

    def seed_row(
        res: dict[str, Any], seed: int, rep_name: str, labels_key: str = "labels"
    ) -> dict[str, Any]:
        if "error" in res:
            return {"seed": seed, "error": res["error"], "traceback": res.get("traceback")}
        r: dict[str, Any] = {"seed": seed, **res["stats"]}
        labels = np.asarray(res[labels_key]).astype(int)
        r.update(scores.label_scores(ctx, labels))
        r["labels"] = labels.tolist()  # to re-score later
        rep = res.get("representation")
        if rep is not None:
            r["rep_file"] = f"{slug(rep_name)}__s{seed}.npy"
            if labels_key == "labels":
                np.save(rep_dir / r["rep_file"], np.asarray(rep, dtype=np.float32))
                try:
                    lei = scores.leiden_labels(rep, k, seed)
                except Exception as err:  # noqa: BLE001 - recorded; the other scores stand
                    why = f"n/a: sngep.tl.gene_leiden failed: {type(err).__name__}: {err}"
                    r["leiden_error"] = why
                    r.update(scores.leiden_scores(ctx, None, why))
                else:
                    r.update(scores.leiden_scores(ctx, lei))
                    r["leiden_labels"] = lei.tolist()
        if res.get("training"):
            r["training"] = res["training"]
        return r

    def run(method: str, seed: int, kwargs: dict, timed: bool = True) -> dict[str, Any]:
        """One method run; every method but DARLC under the time-out."""
        limit = timeout_s if timed else None
        return call(method, pkl, k, seed, kwargs, limit, max_mem_gb)

    # peers with their own module count + K-matched cut
    for method, row_k, row_own in (
        ("hotspot", HOTSPOT_K, HOTSPOT_OWN),
        ("smoothie", SMOOTHIE_K, SMOOTHIE_OWN),
    ):
        if not want(method):
            continue
        res = run(method, 0, {})
        info = res.get("info")
        record(row_k, [seed_row(res, 0, row_k)], info)
        own = (
            [seed_row(res, 0, row_k, "native_labels")]
            if "error" not in res
            else [{"seed": 0, "error": res["error"]}]
        )
        record(row_own, own, info, native=True)
    if want("squidpy"):
        res = run("squidpy_hc", 0, {})
        record(SQUIDPY, [seed_row(res, 0, SQUIDPY)], res.get("info"))
    for method, row in (("leiden_std", LEIDEN_STD), ("kmeans_pca", KMEANS_PCA)):
        if want(method):
            rows, info = [], None
            for s in seeds:
                res = run(method, s, {})
                rows.append(seed_row(res, s, row))
                info = res.get("info", info)
            record(row, rows, info)
    if want("kmeans"):
        rows = [seed_row(run("kmeans", s, {}), s, KMEANS_RAW) for s in seeds]
        record(KMEANS_RAW, rows)

    # DARLC, seeds; the first seed's denoised images feed k-means
    denoised = None
    if all_genes and (only is None or "darlc" not in only):  # run on every gene when asked
        methods.setdefault(
            darlc_row,
            {
                "method": darlc_row,
                "error": (
                    "not run here (one seed costs ~20 min; run it with --only darlc): "
                    "benchmarks/whole.py runs every DLPFC 151673 gene end to end "
                    "(results/whole_dlpfc151673.json)"
                ),
            },
        )
    elif want("darlc"):
        rows, info = [], None
        for s in seeds:
            res = run("darlc", s, {"darlc_kw": {"preset": preset, **darlc_over}}, timed=False)
            rows.append(seed_row(res, s, darlc_row))
            if "error" not in res:
                info = res["info"]
                if denoised is None:
                    denoised = res["denoised"]
        record(darlc_row, rows, info)
    if want("kmeans") and denoised is not None:
        extra = ("darlc_denoised", denoised)
        kw = {"images_key": "darlc_denoised", "_extra_varm": extra}
        rows = [seed_row(run("kmeans", s, dict(kw)), s, KMEANS_GAT) for s in seeds]
        note = f"images from the seed-{seeds[0]} {darlc_row} run; wall time excludes the GAT"
        record(KMEANS_GAT, rows, {"note": note})
    run_ablations = (only is None and not quick) or (only is not None and "ablations" in only)
    if run_ablations and not all_genes:
        for label, kw in ABLATIONS.items():
            kw = {"preset": preset, **darlc_over, **kw}
            rows = [
                seed_row(run("darlc", s, {"darlc_kw": kw}, timed=False), s, f"{darlc_row} {label}")
                for s in ablation_seeds
            ]
            record(f"{darlc_row} {label}", rows, {"darlc_kw": kw})
    if paper_schedule and not all_genes:
        pre, joint, gat = paper_schedule
        kw = {"preset": "paper", "pretrain_epochs": pre, "epochs": joint, "gat_epochs": gat}
        if (pre, joint, gat) == (50, 50, 1000):
            label = "darlc_paper (full schedule: 1000 GAT + 50 + 50 epochs)"
        else:
            label = f"darlc_paper (REDUCED: {gat} GAT + {pre} + {joint} epochs, not 1000 + 50 + 50)"
        methods.pop("darlc_paper", None)
        res = run("darlc", 0, {"darlc_kw": kw}, timed=False)
        record(label, [seed_row(res, 0, "darlc_paper")], {"darlc_kw": kw})
    elif not any(m.startswith("darlc_paper") for m in methods):
        methods["darlc_paper"] = {
            "method": "darlc_paper",
            "error": "not run: CPU cost",
            "info": _paper_cost_note(),
        }
    add_shuffled(methods, ctx, k)
    payload["total_s"] = time.perf_counter() - t_start
    path = write_json(name, payload)
    os.remove(pkl)
    print(f"wrote {path} ({payload['total_s']:.0f} s)")
    other = partner(dataset)
    if other is not None:
        print(update_cross_section(dataset, other, quick))
    return payload


def _paper_cost_note() -> dict[str, Any]:
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
        default=None,
        help="mob, dlpfc151673 (any DLPFC sample), breast_cancer, slideseq_purkinje, synthetic, "
        "dlpfc151673_3k, the pairs dlpfc_pair / breast_cancer_pair (or one section: "
        "dlpfc151673_pair, ...), every gene: mob_all, breast_cancer_all, dlpfc151673_all "
        "(default: mob dlpfc151673; with --rescore: every result JSON)",
    )
    parser.add_argument("--quick", action="store_true", help="200 genes, 1 seed, short DARLC")
    parser.add_argument(
        "--only",
        nargs="+",
        default=None,
        help="method prefixes to run (hotspot smoothie squidpy leiden_std kmeans_pca kmeans "
        "darlc ablations); the other methods of the JSON are kept",
    )
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=None,
        help="seeds of DARLC, k-means and the Leiden / PCA baselines (default 0 1 2; 0 with --quick)",
    )
    parser.add_argument(
        "--ablation-seeds", nargs="+", type=int, default=None, help="Table 4 seeds (default 0)"
    )
    parser.add_argument(
        "--preset",
        default="default",
        help="DARLC preset of the main row and the ablations (default 'default'; 'fast', 'paper')",
    )
    parser.add_argument(
        "--darlc-set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="extra sngep.tl.darlc arguments, e.g. gat_epochs=5 pretrain_steps=5 epochs=1",
    )
    parser.add_argument(
        "--timeout-min",
        type=float,
        default=DEFAULT_TIMEOUT_MIN,
        help="per-run time-out of every method but DARLC, in minutes (0: none); a method over "
        "it is recorded as 'not run: > N min (time-out)'",
    )
    parser.add_argument(
        "--max-mem-gb",
        type=float,
        default=DEFAULT_MAX_MEM_GB,
        help="stop a method whose processes hold more than this many GiB (0: no limit); "
        "recorded as 'not run: > N GiB memory'",
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
        help="also run preset='paper' (seed 0) with this schedule; default: not run",
    )
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="run nothing: recompute the label-based scores (GO, families, sizes, internal "
        "indices on clusters >= 3, shuffled row, cross-section agreement) of the stored "
        "per-seed labels of --datasets (default: every result JSON), then the report",
    )
    parser.add_argument("--no-report", action="store_true")
    parser.add_argument(
        "--no-synthetic",
        action="store_true",
        help="skip the synthetic data set (planted patterns) that runs first otherwise",
    )
    args = parser.parse_args(argv)
    if args.threads:  # inherited by the spawned method processes
        set_thread_env(args.threads)
    if args.rescore:
        from benchmarks.rescore import rescore_all

        rescore_all(expand(args.datasets) if args.datasets else None, args.quick)
    else:
        datasets = expand(args.datasets or ["mob", "dlpfc151673"])
        if not args.no_synthetic and "synthetic" not in datasets:
            datasets.insert(0, "synthetic")
        for ds in datasets:
            run_dataset(
                ds,
                args.quick,
                args.only,
                args.seeds,
                args.ablation_seeds,
                args.paper_schedule,
                preset=args.preset,
                darlc_set=parse_set(args.darlc_set),
                timeout_min=args.timeout_min or None,
                max_mem_gb=args.max_mem_gb or None,
            )
    if not args.no_report:
        from benchmarks.report import main as report

        report()


if __name__ == "__main__":
    main()
