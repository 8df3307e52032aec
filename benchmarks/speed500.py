"""Issue 11's 500-gene bar: DARLC's default preset against Hotspot, same genes, same run.

The genes are the lab's DLPFC 151673 case (`benchmarks.lab`, case ``dlpfc``: the top 500
Moran's I genes, K = 17, the seeding similarity precomputed, as every lab fit gets it).
Each method runs in a fresh spawned process with the thread count set before it imports
anything (torch, BLAS, OpenMP, numba), one after the other, alternating methods so that a
drift of the machine's load touches both; the ratio is DARLC's wall time over Hotspot's at
the same thread count in this run. DARLC's own stage times (`summary_['seconds']`) and the
GO pair lift of both methods' modules come with it, so a faster configuration shows what
it costs.

    python -m benchmarks.speed500                       # 1 and 2 threads, seed 0
    python -m benchmarks.speed500 --threads 2 --darlc-set clr_view=masked

Output: ``benchmarks/results/speed500.json`` (``speed500_<tag>.json`` with ``--tag``).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from benchmarks._common import (
    in_fresh_process,
    machine,
    parse_set,
    peak_rss_mb,
    set_thread_env,
    write_json,
)


def _run(method: str, threads: int, seed: int, darlc_set: dict[str, Any]) -> dict[str, Any]:
    """One method on the lab's DLPFC case, in this (fresh) process."""
    from benchmarks.lab import load_case, scores

    case = load_case("dlpfc", seed)
    t = time.perf_counter()
    if method == "darlc":
        import torch

        from sngep.models import DARLC

        torch.set_num_threads(threads)
        model = DARLC(case["k"], device="cpu", random_state=seed, preset="default", **darlc_set)
        model.fit(
            case["images"],
            mask=case["mask"],
            similarity=case["similarity"],
            show_progress_bar=False,
        )
        labels, stages = model.labels_, dict(model.summary_["seconds"])
    else:
        from benchmarks.peers import hotspot_method

        labels, stages = hotspot_method(case["adata"].copy(), case["k"], seed)["labels"], {}
    wall = time.perf_counter() - t
    sc = scores(case, labels)
    return {
        "method": method,
        "threads": threads,
        "wall_s": wall,
        "stages_s": stages,
        "peak_rss_mb": peak_rss_mb(),
        "go_lift": sc.get("go_lift"),
        "min_size": sc.get("min_size"),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--darlc-set", nargs="*", default=[], metavar="KEY=VALUE")
    p.add_argument("--tag", default="", help="suffix of the output file")
    args = p.parse_args(argv)
    darlc_set = parse_set(args.darlc_set)
    runs = []
    for threads in args.threads:
        set_thread_env(threads)  # inherited by the spawned processes
        for method in ("hotspot", "darlc"):
            res = in_fresh_process(_run, method, threads, args.seed, darlc_set)
            print(json.dumps(res), flush=True)
            runs.append(res)
    ratios = {}
    for threads in args.threads:
        by = {r["method"]: r["wall_s"] for r in runs if r["threads"] == threads}
        ratios[str(threads)] = by["darlc"] / by["hotspot"]
    payload = {
        "what": "DARLC default preset vs Hotspot, top 500 Moran's I genes of DLPFC 151673",
        "darlc_overrides": darlc_set,
        "seed": args.seed,
        "runs": runs,
        "ratio_darlc_over_hotspot_by_threads": ratios,
        "machine": machine(),
    }
    name = "speed500" + (f"_{args.tag}" if args.tag else "") + ".json"
    print(write_json(name, payload))
    print("DARLC / Hotspot wall time:", {k: round(v, 2) for k, v in ratios.items()})


if __name__ == "__main__":
    main()
