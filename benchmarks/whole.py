"""Every detected gene, end to end (issue 11): DLPFC 151673, default preset, 2 CPU threads.

What a user runs, timed stage by stage in one process, with the process's peak RSS:

    gene_images -> seed_similarity -> estimate_k -> darlc (default preset, K from estimate_k)

on every gene detected in >= 10 spots (``benchmarks._common.prepared_dlpfc``). Then the
modules are scored as in the benchmark (gene families, the paper's and the extended ones;
GO BP pair lift), beside Leiden on ``X_darlc`` and Leiden on the standardised images at the
same K (paper Table 3 reports family NMI 0.71-0.79 on DLPFC for Leiden on its embeddings).

Hotspot on all genes would take hours here; it is timed on a random subset of
``--hotspot-genes`` genes in the same process and extrapolated to all genes as
``t * (n_all / n_sub) ** 2`` (its pairwise local correlations dominate): an EXTRAPOLATION,
said so in the JSON.

    python -m benchmarks.whole                 # all genes (~25 min on 2 cores)
    python -m benchmarks.whole --max-genes 300 --preset fast   # a check of the script

Output: ``benchmarks/results/whole_dlpfc151673.json`` (``_quick`` with ``--max-genes``).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from benchmarks._common import measure, peak_rss_mb, prepared_dlpfc, write_json


def _timed(stages: dict[str, float], name: str, fn, *args, **kwargs):
    out, stats = measure(fn, *args, **kwargs)
    stages[name] = stats["wall_s"]
    return out


def _random_genes(adata, n: int, seed: int):
    """A copy of ``adata`` with ``n`` genes drawn at random (in their original order)."""
    rng = np.random.default_rng(seed)
    return adata[:, np.sort(rng.choice(adata.n_vars, n, replace=False))].copy()


def _scores(ctx, labels: np.ndarray) -> dict[str, Any]:
    from benchmarks.scores import family_scores, go_scores, sizes

    return {
        **sizes(labels),
        **family_scores(labels, ctx.paper_families, "family_paper"),
        **family_scores(labels, ctx.families, "family_ext"),
        **go_scores(labels, ctx.genes, "human"),
    }


def _hotspot_extrapolated(adata, n_sub: int, k: int, seed: int = 0) -> dict[str, Any]:
    from benchmarks.peers import hotspot_method

    n_sub = min(n_sub, adata.n_vars)
    sub = _random_genes(adata, n_sub, seed)
    _, stats = measure(hotspot_method, sub, max(2, round(n_sub / 30)), seed)
    wall = stats["wall_s"]
    return {
        "n_genes_timed": n_sub,
        "wall_s_timed": wall,
        "wall_s_all_genes_extrapolated": wall * (adata.n_vars / n_sub) ** 2,
        "how": "EXTRAPOLATION: t(subset) * (n_all / n_subset)^2 (pairwise local correlations)",
    }


def main(argv: list[str] | None = None) -> None:
    import torch

    import sngep
    from benchmarks.prepare import dlpfc_symbols
    from benchmarks.scores import Context, leiden_labels, standardized_pixels

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--max-genes", type=int, default=None, help="a random subset (a quick check)")
    p.add_argument("--hotspot-genes", type=int, default=800)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--preset", default="default")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    adata = prepared_dlpfc("151673")
    if args.max_genes is not None and args.max_genes < adata.n_vars:
        adata = _random_genes(adata, args.max_genes, args.seed)
    adata.var["symbol"] = dlpfc_symbols(adata.var_names)
    stages: dict[str, float] = {}
    t0 = time.perf_counter()
    _timed(stages, "gene_images", sngep.pp.gene_images, adata)
    _timed(stages, "seed_similarity", sngep.tl.seed_similarity, adata, show_progress_bar=False)
    _timed(stages, "estimate_k", sngep.tl.estimate_k, adata)
    k = int(adata.uns["estimate_k"]["k"])
    _timed(
        stages, "darlc", sngep.tl.darlc, adata, n_clusters=k, preset=args.preset,
        device="cpu", random_state=args.seed, show_progress_bar=False,
    )
    total = time.perf_counter() - t0
    peak = peak_rss_mb()

    ctx = Context.from_adata(adata, "human")
    ctx.symbols = np.asarray(adata.var["symbol"], dtype=object)
    labels = adata.var["darlc"].cat.codes.to_numpy()
    emb = np.asarray(adata.varm["X_darlc"])
    images = np.asarray(ctx.images)
    rows = {
        "darlc (mixture labels)": _scores(ctx, labels),
        "Leiden on X_darlc": _scores(ctx, leiden_labels(emb, k, args.seed)),
        "Leiden on standardised images": _scores(
            ctx, leiden_labels(standardized_pixels(images, ctx.mask), k, args.seed)
        ),
    }
    training = adata.uns["darlc"].get("training", {})
    payload = {
        "data": {
            "dataset": "DLPFC 151673",
            "n_spots": int(adata.n_obs),
            "n_genes": int(adata.n_vars),
            "gene_selection": "every gene detected in >= 10 spots"
            if args.max_genes is None
            else f"a random {args.max_genes} of the genes detected in >= 10 spots",
            "k_estimate_k": k,
        },
        "threads": args.threads,
        "preset": args.preset,
        "seconds": {**stages, "total": total},
        "darlc_seconds": training.get("seconds"),
        "darlc_stop": {key: training.get(key) for key in ("stop_reason", "n_joint_epochs")},
        "peak_rss_mb": peak,
        "scores": rows,
        "paper_table3_family_nmi_dlpfc": "0.71-0.79 (Leiden on the paper's embeddings)",
        "hotspot": _hotspot_extrapolated(adata, args.hotspot_genes, k, args.seed),
    }
    quick = args.max_genes is not None or args.preset != "default"
    name = "whole_dlpfc151673" + ("_quick" if quick else "") + ".json"
    print(write_json(name, payload))
    print({key: payload[key] for key in ("data", "seconds", "peak_rss_mb")})
    for row, sc in rows.items():
        print(row, {key: sc.get(key) for key in ("family_paper_NMI", "family_ext_NMI", "GO_lift")})


if __name__ == "__main__":
    main()
