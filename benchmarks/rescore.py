"""New scores for stored partitions, and the cross-section scores of the section pairs.

Every result JSON keeps each seed's labels (``methods[m]['per_seed'][i]['labels']``, in the
order of ``data['genes']``), so the label-based scores of ``benchmarks.scores`` (GO, gene
families, sizes, internal indices on clusters >= 3, the shuffled row) can be recomputed
without re-running any method::

    python -m benchmarks.run --rescore                      # every result JSON
    python -m benchmarks.run --rescore --datasets mob       # one (mob.json; mob_quick.json with --quick)

The genes are rebuilt with ``benchmarks.prepare`` (deterministic). Older JSONs lack the gene
list; there the rebuilt genes are accepted only if a stored DBIP is reproduced from the
stored labels on the rebuilt images. Seeds run before labels were stored keep their old
scores and get ``rescore_note``.

:func:`update_cross_section` compares the two sections of a pair method by method and seed by
seed (ARI / NMI of the partitions; overlap of each gene's 10 nearest genes in the saved
per-gene representations, ``$SNGEP_BENCH_DIR/reps/``) and writes the result into both JSONs.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import scores
from benchmarks._common import RESULTS, SCRATCH, write_json
from benchmarks.prepare import PAIRS, prepare
from benchmarks.run import (
    SHUFFLED_PREFIX,
    add_shuffled,
    json_name,
    n_top_for,
    reaggregate,
    shuffled_source,
)

NO_LABELS = "labels not stored (run before labels were kept): re-run the method for new scores"


def _result_files() -> list[Path]:
    out = []
    for path in sorted(RESULTS.glob("*.json")):
        try:
            if "methods" in json.loads(path.read_text()):
                out.append(path)
        except json.JSONDecodeError:
            continue
    return out


def _check_genes(payload: dict[str, Any], adata, ctx: scores.Context) -> str | None:
    """``None`` when the rebuilt genes are the stored ones, else why not."""
    stored = payload["data"].get("genes")
    genes = list(map(str, adata.var_names))
    if stored is not None:
        return None if stored == genes else "the rebuilt gene list differs from data['genes']"
    if payload["data"].get("n_genes") != len(genes):
        return f"{len(genes)} genes rebuilt, {payload['data'].get('n_genes')} stored"
    for row in payload["methods"].values():
        for r in row.get("per_seed", []):
            if r.get("labels") and isinstance(r.get("DBIP"), float):
                labels = np.asarray(r["labels"])
                dbip = scores.internal(ctx.images, ctx.mask, labels)["DBIP"]
                if abs(dbip - r["DBIP"]) > 1e-6 * max(1.0, abs(r["DBIP"])):
                    return (
                        f"stored DBIP {r['DBIP']:.6g} of {row.get('method')} seed {r['seed']} "
                        f"not reproduced on the rebuilt genes ({dbip:.6g})"
                    )
                return None
    return None  # no stored labels: nothing will be rescored


def rescore_file(path: Path) -> str:
    """Recompute the label-based scores of one result JSON in place; a one-line summary."""
    payload = json.loads(path.read_text())
    dataset, quick = payload["dataset"], bool(payload.get("quick"))
    t = time.perf_counter()
    adata, desc = prepare(dataset, n_top_for(quick), for_methods=False)
    ctx = scores.Context.from_adata(adata, desc["organism"])
    problem = _check_genes(payload, adata, ctx)
    if problem is not None:
        return f"{path.name}: NOT rescored: {problem}"
    methods = payload["methods"]
    n_done = n_missing = 0
    for name, row in list(methods.items()):
        if name.startswith(SHUFFLED_PREFIX) or not row.get("per_seed"):
            continue
        for r in row["per_seed"]:
            if "error" in r:
                continue
            if not r.get("labels"):
                r["rescore_note"] = NO_LABELS
                n_missing += 1
                continue
            r.update(scores.label_scores(ctx, np.asarray(r["labels"])))
            if r.get("leiden_labels"):
                r.update(scores.leiden_scores(ctx, np.asarray(r["leiden_labels"])))
            n_done += 1
        methods[name] = reaggregate(row)
    add_shuffled(methods, ctx, payload["data"]["K"])
    data = payload["data"]
    data["genes"] = list(map(str, adata.var_names))
    data["organism"] = desc["organism"]
    data["families_in_selected_genes"] = desc["families_in_selected_genes"]
    payload["rescored"] = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "how": "python -m benchmarks.run --rescore (stored per-seed labels, rebuilt genes)",
        "n_seed_rows_rescored": n_done,
        "n_seed_rows_without_labels": n_missing,
        "seconds": round(time.perf_counter() - t, 1),
    }
    write_json(path.name, payload)
    return (
        f"{path.name}: rescored {n_done} seed rows, {n_missing} without stored labels "
        f"({payload['rescored']['seconds']:.0f} s)"
    )


def rescore_all(datasets: list[str] | None = None, quick: bool = False) -> None:
    if datasets is None:
        paths = _result_files()
    else:
        paths = [RESULTS / json_name(d, quick) for d in datasets]
    for path in paths:
        if not path.exists():
            print(f"{path.name}: no such result")
            continue
        print(rescore_file(path), flush=True)
    for a, b in PAIRS.values():
        for q in (False, True):
            if (RESULTS / json_name(a, q)).exists() or (RESULTS / json_name(b, q)).exists():
                print(update_cross_section(a, b, q))


# ---------------------------------------------------------------------------------------------
# two sections


def _usable(row: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {r["seed"]: r for r in row.get("per_seed", []) if r.get("labels") and "error" not in r}


def update_cross_section(a: str, b: str, quick: bool) -> str:
    """Cross-section scores of every method run on both sections ``a`` and ``b``."""
    pa, pb = RESULTS / json_name(a, quick), RESULTS / json_name(b, quick)
    missing = [p.name for p in (pa, pb) if not p.exists()]
    if missing:
        return f"cross-section {pa.name} / {pb.name}: waiting for {', '.join(missing)}"
    ja, jb = json.loads(pa.read_text()), json.loads(pb.read_text())
    genes = ja["data"].get("genes")
    if genes is None or genes != jb["data"].get("genes"):
        return f"cross-section {pa.name} / {pb.name}: NOT computed, the gene lists differ"
    n = len(genes)
    dirs = [SCRATCH / "reps" / p.stem for p in (pa, pb)]
    done = []
    for name in [m for m in ja["methods"] if m in jb["methods"]]:
        if name.startswith(SHUFFLED_PREFIX):
            continue
        ra, rb = ja["methods"][name], jb["methods"][name]
        sa, sb = _usable(ra), _usable(rb)
        common = sorted(set(sa) & set(sb))
        for seed in common:
            x: dict[str, Any] = scores.partition_agreement(sa[seed]["labels"], sb[seed]["labels"])
            fa, fb = sa[seed].get("rep_file"), sb[seed].get("rep_file")
            if fa and fb:
                files = [dirs[0] / fa, dirs[1] / fb]
                if all(f.exists() for f in files):
                    rep_a, rep_b = np.load(files[0]), np.load(files[1])
                    x["knn10_overlap"] = scores.knn_overlap(rep_a, rep_b)
                    x["knn10_overlap_nohubs"] = scores.knn_overlap(rep_a, rep_b, drop_hubs=True)
                elif not isinstance(sa[seed].get("knn10_overlap"), float):
                    x["knn10_overlap"] = "n/a: representation files missing (scratch cleaned?)"
            else:
                x["knn10_overlap"] = "n/a: no per-gene representation"
            sa[seed].update(x)
            sb[seed].update(x)
        if common:
            ja["methods"][name] = reaggregate(ra)
            jb["methods"][name] = reaggregate(rb)
            done.append(name)
    _shuffled_cross(ja, jb, n)
    for payload, other in ((ja, b), (jb, a)):
        payload["cross_section"] = {
            "partner": other,
            "knn_chance": scores.knn_chance(n),
            "when": time.strftime("%Y-%m-%d %H:%M:%S"),
            "methods": done,
        }
    write_json(pa.name, ja)
    write_json(pb.name, jb)
    return f"cross-section {pa.name} / {pb.name}: {len(done)} methods"


def _shuffled_cross(ja: dict[str, Any], jb: dict[str, Any], n: int) -> None:
    """Chance level of the cross-section scores: independent permutations on each section."""
    src_a, src_b = shuffled_source(ja["methods"]), shuffled_source(jb["methods"])
    rows = [
        (ja, next((m for m in ja["methods"] if m.startswith(SHUFFLED_PREFIX)), None)),
        (jb, next((m for m in jb["methods"] if m.startswith(SHUFFLED_PREFIX)), None)),
    ]
    if src_a is None or src_b is None or any(name is None for _, name in rows):
        return
    for i in range(scores.N_SHUFFLES):
        x = scores.partition_agreement(
            scores.shuffled(src_a[1], i), scores.shuffled(src_b[1], 1000 + i)
        )
        x["knn10_overlap"] = scores.knn_chance(n)
        for payload, name in rows:
            for r in payload["methods"][name]["per_seed"]:
                if r["seed"] == i:
                    r.update(x)
    for payload, name in rows:
        row = payload["methods"][name]
        extra = (
            "; cross-section: independent permutations on the two sections, knn10_overlap is "
            "the chance value k / (n - 1), not measured"
        )
        if extra not in row.get("note", ""):
            row["note"] = row.get("note", "") + extra
        payload["methods"][name] = reaggregate(row)
