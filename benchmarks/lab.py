"""DARLC lab: small cached cases, simple baselines and biology-first scores (issue 10).

One place to answer "did this change help?" on >= 3 seeds and >= 2 data sets in minutes:

* cases (cached under ``$SNGEP_BENCH_DIR/lab``): planted patterns at three noise levels
  (``syn_d30``, ``syn_d65``, ``syn_d80``), the mouse olfactory bulb top 500 Moran's I genes
  (``mob``), breast cancer slice 1 top 500 + every family gene (``bc``, slice 2 of the same
  genes for reproducibility), DLPFC 151673 top 500 (``dlpfc``, 151674 for reproducibility);
* baselines at the same K: Leiden on per-gene standardised images, the squidpy
  neighbour-average + 1 - Pearson average linkage, k-means on the first 20 PCs, Leiden on
  the rows of the seeding similarity (``leiden_seedsim``), Leiden on DARLC's own positive
  views (each image Gaussian-smoothed inside the tissue at its own bandwidth, the default's
  ``gks_detections=4``; ``leiden_views``): what the encoder is given to learn from;
* scores: ARI / NMI against planted truth, gene-family NMI, GO Biological Process pair lift
  and module enrichment (``sngep.metrics``), the overlap of each gene's 10 nearest genes
  between adjacent sections, and cluster sizes.

    python -m benchmarks.lab baselines syn_d30 syn_d65 mob bc
    python -m benchmarks.lab peers syn_d30 syn_d65 --seeds 0 1 2 3 4   # Hotspot, Smoothie
    python -m benchmarks.lab darlc syn_d30 mob --seeds 0 1 2 --set mask_ratio=0.5 --tag m05
"""

from __future__ import annotations

import argparse
import functools
import json
import pickle
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import RESULTS, SCRATCH, parse_set, zscore_rows
from benchmarks.scores import knn_overlap
from benchmarks.run import ABLATIONS
from benchmarks.scores import leiden_labels as leiden

LAB = SCRATCH / "lab"
# the baselines whose representation `baselines` saves (save_rep), under these names
REP_OF_BASELINE = {"leiden_std": "std", "leiden_seedsim": "seedsim", "leiden_views": "views"}
OUT = RESULTS / "lab"

SYN_LEVELS = {
    "syn_d30": {},  # the generator's defaults: NB, dropout 0.3, mean_counts 5
    "syn_d60": {"dropout": 0.6},
    "syn_d70": {"dropout": 0.7, "dispersion": 1.0},
    "syn_d65": {"dropout": 0.65, "mean_counts": 3.0},
    "syn_d80": {"dropout": 0.8, "mean_counts": 3.0},
}
# A second planted generator (issue 10: "checked on data that is not in this repository,
# another generator of planted patterns"): the spot geometry of DLPFC 151673 (a real Visium
# section, 3,639 spots, 77 x 59 pixels) and 8 spatial programmes of that tissue instead of
# `datasets.synthetic`'s geometric bands, blobs, rings and ramps on 900 spots.
_SEMI = {"noise": "nb", "dispersion": 0.5, "background": 0.5, "mean_counts": 3.0}
SEMI_LEVELS = {"semi_d65": {**_SEMI, "dropout": 0.65}, "semi_d80": {**_SEMI, "dropout": 0.8}}
FAMILY_PATTERNS = {
    "MHC": r"^(HLA-|H2-)",
    "GABR": r"^GABR",
    "RPL/RPS": r"^(RP[LS]\d+[A-Z]?\d*|RPLP\d|RPSA)$",
    "MT": r"^MT-",
}


# --------------------------------------------------------------------------------------
# cases
def _prep_images(adata) -> None:
    import sngep

    sngep.pp.gene_images(adata)
    sngep.tl.seed_similarity(adata, show_progress_bar=False)


def _pack(ad_, k: int, **extra: Any) -> dict[str, Any]:
    from sngep._validate import get_gene_images

    images, mask = get_gene_images(ad_)
    sim = ad_.varp["seed_similarity"]
    return {
        "images": images,
        "mask": mask,
        "similarity": np.asarray(sim, dtype=np.float32),
        "k": int(k),
        "genes": list(map(str, ad_.var_names)),
        "symbols": list(map(str, ad_.var.get("symbol", ad_.var_names))),
        **extra,
    }


def _synthetic(name: str, seed: int) -> dict[str, Any]:
    import scanpy as sc

    import sngep

    adata = sngep.datasets.synthetic(random_state=seed, **SYN_LEVELS[name])
    sc.pp.normalize_total(adata)
    sc.pp.log1p(adata)
    _prep_images(adata)
    truth = adata.var["pattern"].cat.codes.to_numpy()
    return _pack(adata, len(set(truth)), truth=truth, adata=adata)


@functools.lru_cache(maxsize=1)
def semi_profiles(n_profiles: int = 8) -> tuple[Any, np.ndarray]:
    """The spots of DLPFC 151673 and ``n_profiles`` of its spatial programmes ``(n_profiles,
    n_spots)`` in [0, 1]: k-means (16 clusters, fixed seed) of the lab's 500 genes on their
    neighbour-averaged (each spot and its 6 nearest, as the squidpy baseline), per-gene
    standardised expression; a programme is a
    cluster's mean, taken from the largest cluster down when it correlates < 0.6 with every
    programme already taken (so that the planted truth is identifiable), rescaled to [0, 1].
    Deterministic: every seed of a semi case plants the same programmes."""
    from sklearn.cluster import KMeans

    from benchmarks.peers import neighbour_average

    real = load_case("dlpfc")["adata"]
    z = zscore_rows(neighbour_average(real).T).T  # (spots, genes), each gene standardised
    labels = KMeans(2 * n_profiles, n_init=10, random_state=0).fit_predict(z.T)
    sizes = np.bincount(labels)
    cand = [z[:, labels == p].mean(axis=1) for p in np.argsort(-sizes)]
    chosen: list[np.ndarray] = []
    for c in cand:  # the largest programmes, each correlated < 0.6 with those already kept
        if all(np.corrcoef(c, o)[0, 1] < 0.6 for o in chosen):
            chosen.append(c)
        if len(chosen) == n_profiles:
            break
    prof = np.stack(chosen)
    prof = (prof - prof.min(1, keepdims=True)) / np.ptp(prof, axis=1, keepdims=True)
    return real, prof


def _semi(name: str, seed: int) -> dict[str, Any]:
    """A semi-synthetic case: 20 genes per programme of :func:`semi_profiles`, counts drawn
    at the real spots as ``datasets.synthetic`` draws them (gene scale ~ LogNormal(0, 0.5),
    mean ``s_g * (background + mean_counts * f_p)``, negative binomial, then ``dropout``;
    ``SEMI_LEVELS``), log-normalised like every lab case; the raw counts stay in ``.layers``."""
    import anndata as ad
    import pandas as pd
    import scanpy as sc

    from sngep.datasets._synthetic import draw_counts

    real, prof = semi_profiles()
    lv = SEMI_LEVELS[name]
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(len(prof)), 20)
    scale = rng.lognormal(0.0, 0.5, size=truth.size)
    mu = scale[None, :] * (lv["background"] + lv["mean_counts"] * prof[truth].T)
    counts = draw_counts(
        rng, mu, noise=lv["noise"], dispersion=lv["dispersion"], dropout=lv["dropout"]
    )
    var = pd.DataFrame(
        {"pattern": pd.Categorical([f"programme_{p}" for p in truth])},
        index=[f"gene_{i}" for i in range(truth.size)],
    )
    keep = ["array_row", "array_col"]
    adata = ad.AnnData(counts, obs=real.obs[keep].copy(), var=var)
    adata.obsm["spatial"] = np.asarray(real.obsm["spatial"]).copy()
    adata.layers["counts"] = counts.copy()
    adata.obs["total_counts_all_genes"] = counts.sum(axis=1)
    sc.pp.normalize_total(adata)
    sc.pp.log1p(adata)
    _prep_images(adata)
    return _pack(adata, len(prof), truth=truth, adata=adata)


def _real(name: str) -> dict[str, Any]:
    """Real cases; ``bc2`` / ``dlpfc2`` are the adjacent sections on the same genes and K."""
    import scanpy as sc

    import sngep
    from benchmarks._common import prepared_dlpfc
    from benchmarks.prepare import dlpfc_symbols

    if name == "mob":
        adata = sngep.datasets.mouse_olfactory_bulb()
        sc.pp.filter_genes(adata, min_cells=10)
        sc.pp.normalize_total(adata)
        sc.pp.log1p(adata)
        sngep.pp.spatial_genes(adata, n_top=500, subset=True)
        adata.var["symbol"] = list(adata.var_names)
        pair = [adata]
    elif name in ("bc", "bc2"):
        full = sngep.datasets.breast_cancer()
        adata = full[full.obs["slice"] == "1"].copy()
        other = full[full.obs["slice"] == "2"].copy()
        for a in (adata, other):
            sc.pp.filter_genes(a, min_cells=10)
            sc.pp.normalize_total(a)
            sc.pp.log1p(a)
        adata = adata[:, adata.var_names.isin(other.var_names)].copy()
        sngep.pp.spatial_genes(adata, n_top=500)
        fam = np.array([_family(g) != "other" for g in adata.var_names])
        adata = adata[:, adata.var["spatially_variable"].to_numpy(bool) | fam].copy()
        pair = [adata, other[:, adata.var_names].copy()]
        for a in pair:
            a.var["symbol"] = list(a.var_names)
    elif name in ("dlpfc", "dlpfc2"):
        adata = prepared_dlpfc("151673")
        other = prepared_dlpfc("151674")
        adata = adata[:, adata.var_names.isin(other.var_names)].copy()
        sngep.pp.spatial_genes(adata, n_top=500, subset=True)
        pair = [adata, other[:, adata.var_names].copy()]
        for a in pair:
            a.var["symbol"] = dlpfc_symbols(a.var_names)
    else:
        msg = f"unknown case {name!r}"
        raise ValueError(msg)
    adata = pair[-1] if name.endswith("2") else pair[0]
    _prep_images(adata)
    k = max(2, round(adata.n_vars / 30))
    return _pack(adata, k, adata=adata)


def planted(name: str) -> bool:
    """Whether a case has a planted truth (scored by ARI; a fresh data set per seed)."""
    return name.startswith(("syn", "semi"))


def load_case(name: str, seed: int = 0) -> dict[str, Any]:
    """A cached case; synthetic cases depend on the data seed, real ones do not."""
    LAB.mkdir(parents=True, exist_ok=True)
    key = f"{name}_s{seed}" if planted(name) else name
    path = LAB / f"{key}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    if name.startswith("syn"):
        case = _synthetic(name, seed)
    elif name.startswith("semi"):
        case = _semi(name, seed)
    else:
        case = _real(name)
    case["name"] = key
    path.write_bytes(pickle.dumps(case))
    return case


# --------------------------------------------------------------------------------------
# scores
def _family(symbol: str) -> str:
    for fam, pat in FAMILY_PATTERNS.items():
        if re.match(pat, symbol, flags=re.IGNORECASE):
            return fam
    return "other"


def std_flat(images: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return zscore_rows(images[:, mask])


def scores(case: dict[str, Any], labels: np.ndarray) -> dict:
    from sklearn.metrics import adjusted_rand_score as ari
    from sklearn.metrics import normalized_mutual_info_score as nmi

    labels = np.asarray(labels)
    sizes = np.bincount(np.unique(labels, return_inverse=True)[1])
    out: dict[str, Any] = {
        "n_clusters": int(len(sizes)),
        "min_size": int(sizes.min()),
        "max_frac": float(sizes.max() / len(labels)),
        "n_small": int((sizes < 3).sum()),
    }
    if "truth" in case:
        out["ARI"] = float(ari(case["truth"], labels))
        out["NMI"] = float(nmi(case["truth"], labels))
        return out
    fam = np.array([_family(s) for s in case["symbols"]])
    names, counts = np.unique(fam[fam != "other"], return_counts=True)
    use = np.isin(fam, names[counts >= 3])
    if len(names[counts >= 3]) >= 2:
        out["fam_NMI"] = float(nmi(fam[use], labels[use]))
    import sngep

    organism = "mouse" if case["name"] == "mob" else "human"
    out["go_lift"] = sngep.metrics.go_pair_lift(labels, case["genes"], organism=organism)
    go = sngep.metrics.go_module_scores(labels, case["genes"], organism=organism)
    out["go_frac"] = go["fraction_enriched"]
    out["go_medq"] = go["median_best_q"]
    return out


def save_rep(case: dict[str, Any], tag: str, seed: int, rep: np.ndarray) -> None:
    """Keep a per-gene representation for the cross-section comparison (``cross``)."""
    (LAB / "reps").mkdir(parents=True, exist_ok=True)
    np.save(LAB / "reps" / f"{case['name']}__{tag}__s{seed}.npy", np.asarray(rep, np.float32))


def cross(name: str, tag: str, seed: int, drop_hubs: bool = False) -> float | None:
    """10-NN overlap of ``tag``'s representation between ``name`` and ``name + '2'``
    (``drop_hubs``: neighbours drawn from the genes that are a hub on neither section)."""
    a = LAB / "reps" / f"{name}__{tag}__s{seed}.npy"
    b = LAB / "reps" / f"{name}2__{tag}__s{seed}.npy"
    if not (a.exists() and b.exists()):
        return None
    return knn_overlap(np.load(a), np.load(b), drop_hubs=drop_hubs)


# --------------------------------------------------------------------------------------
# baselines
def baselines(case: dict[str, Any], seed: int = 0) -> dict[str, dict]:
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    from benchmarks.peers import squidpy_method

    from sngep.models.darlc.train import similarity_rows

    k = case["k"]
    x = std_flat(case["images"], case["mask"])
    out = {}
    out["leiden_std"] = scores(case, leiden(x, k, seed))
    save_rep(case, "std", seed, x)
    pcs = PCA(min(20, x.shape[0] - 1), random_state=seed).fit_transform(x)
    out["kmeans_pca20"] = scores(case, KMeans(k, n_init=10, random_state=seed).fit_predict(pcs))
    # a linear 64-dimensional compression of the same images (X_darlc's width), to read
    # the cross-section 10-NN overlap of a 64-dimensional embedding against
    save_rep(
        case, "std_pca64", seed, PCA(min(64, x.shape[0] - 1), random_state=seed).fit_transform(x)
    )
    sq = squidpy_method(case["adata"], k)
    out["squidpy"] = scores(case, sq["labels"])
    save_rep(case, "squidpy", seed, sq["representation"])
    rows = similarity_rows(case["similarity"])  # what cluster_init='seed_similarity' reads
    out["leiden_seedsim"] = scores(case, leiden(rows, k, seed))
    save_rep(case, "seedsim", seed, rows)
    views = default_views(case["images"], case["mask"])
    out["leiden_views"] = scores(case, leiden(views, k, seed))
    save_rep(case, "views", seed, views)
    return out


def default_views(images: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The default preset's positive views of ``images``, flattened over the tissue: each
    image standardised, smoothed at its own bandwidth (``gks_detections``) and standardised
    again, as ``tl.darlc`` makes them."""
    from sngep.models.darlc.config import DARLCConfig
    from sngep.models.darlc.train import normalise_images
    from sngep.models.darlc.views import denoise_new

    x = normalise_images(images, mask)
    views = denoise_new(x, mask, DARLCConfig.from_preset("default"), None)
    return normalise_images(views, mask)[:, mask]


def peers(case: dict[str, Any], seed: int = 0) -> dict[str, dict]:
    """Hotspot and Smoothie at the same K (``benchmarks.peers``). Planted and breast-cancer
    cases get their raw counts back (the generator is deterministic; the loader keeps counts)
    so that Hotspot runs its count model; MOB and DLPFC run it on log-normalised values."""
    from benchmarks.peers import hotspot_method, smoothie_method

    import sngep

    adata = case["adata"].copy()
    raw = None
    if case["name"].startswith("syn"):
        level = case["name"].rsplit("_s", 1)[0]
        raw = sngep.datasets.synthetic(random_state=seed, **SYN_LEVELS[level])
    elif case["name"] in ("bc", "bc2"):  # the loader's raw counts of the same slice
        full = sngep.datasets.breast_cancer()
        raw = full[full.obs["slice"] == ("2" if case["name"] == "bc2" else "1")]
    if raw is not None and "counts" not in adata.layers:
        assert list(raw.obs_names) == list(adata.obs_names)
        adata.layers["counts"] = raw[:, adata.var_names].X.copy()
        adata.obs["total_counts_all_genes"] = np.asarray(raw.X.sum(axis=1)).ravel()
    out = {"hotspot": scores(case, hotspot_method(adata, case["k"], seed)["labels"])}
    try:
        out["smoothie"] = scores(case, smoothie_method(adata, case["k"], seed)["labels"])
    except IndexError as err:  # smoothie 1.0.2 on a network with no edge (very sparse genes)
        out["smoothie"] = {"error": f"{type(err).__name__}: {err}"}
    return out


# --------------------------------------------------------------------------------------
# DARLC
def run_darlc(
    case: dict[str, Any],
    seed: int,
    overrides: dict[str, Any],
    tag: str,
    probe: bool = False,
    preset: str = "default",
) -> dict[str, Any]:
    import torch

    from sngep.models import DARLC

    torch.set_num_threads(1)
    t = time.perf_counter()
    kw = {"preset": preset, **overrides}
    model = DARLC(case["k"], device="cpu", random_state=seed, **kw)
    model.fit(
        case["images"],
        mask=case["mask"],
        similarity=case["similarity"],
        show_progress_bar=False,
    )
    wall = time.perf_counter() - t
    res = {"wall_s": wall, "labels": model.labels_.tolist()}
    res.update(scores(case, model.labels_))
    res["leiden_emb"] = scores(case, leiden(model.embedding_, case["k"], seed))
    save_rep(case, tag or "darlc", seed, model.embedding_)
    if probe:
        from sklearn.cluster import KMeans

        from benchmarks.darlc_diagnose import features

        reps = features(model, case["images"])
        reps.update({f"{k}_of_views": v for k, v in features(model, model.views_).items()})
        for name in ("cls", "e", "z"):
            save_rep(case, f"{tag}_{name}", seed, reps[name])
        for name, rep in reps.items():
            if name.startswith("patch mean") or name.startswith("z_"):
                continue
            km = KMeans(case["k"], n_init=10, random_state=seed).fit_predict(rep)
            res[f"km_{name}"] = scores(case, km)
    res["summary"] = {k: v for k, v in model.summary_.items()}
    hist = model.history_
    if "label_change" in hist:
        res["label_change"] = [round(float(v), 4) for v in hist["label_change"]]
    return res


# One switch at a time on top of preset 'default' (3 seeds, >= 2 data sets each):
# the departures from the paper, each reverted to the paper's value, and paper Table 4.
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    # departures reverted
    "paper_patch": {"patch_size": 4},
    "paper_schedule": {
        "pretrain_steps": None,
        "pretrain_epochs": 50,
        "lr_schedule": "constant",
        "joint_lr": None,
    },
    "paper_rec_target": {"rec_target": "raw"},
    "paper_head_input": {"head_input": "e"},
    "paper_covariance": {"covariance": "full"},
    # paper Table 4 (one component removed or replaced): the benchmark's switches; the log
    # names the pretraining one '-pretrain'
    **{("-pretrain" if k == "pretrain=0" else k): v for k, v in ABLATIONS.items()},
}


def _records(path: Path = OUT / "log.jsonl") -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _mean_sd(vals: list[float]) -> str:
    vals = [v for v in vals if v is not None and v == v]
    if not vals:
        return ""
    if len(vals) == 1:
        return f"{vals[0]:.3f}"
    return f"{np.mean(vals):.3f} ± {np.std(vals, ddof=1):.3f}"


def report(cases: list[str], tags: list[str], preset: str = "default") -> str:
    """Markdown: per case, one row per baseline and per DARLC variant (mean ± sd over seeds).

    DARLC rows: the latest record per (case, tag, seed) run with ``preset`` ('any': whatever
    preset; tags before presets existed carry their full config in ``overrides``). Columns: the
    mixture's labels, Leiden on ``X_darlc`` ('emb'), sizes, stop reason, cross-section
    10-NN overlap of ``X_darlc`` (cases with an adjacent section), wall time.
    """
    recs = _records()
    out = []
    for case in cases:
        synthetic = planted(case)
        score_cols = ["ARI", "NMI"] if synthetic else ["go_lift", "go_frac", "fam_NMI"]
        cols = [
            *score_cols,
            *[f"emb {c}" for c in score_cols],
            "min size",
            "max frac",
            "stopped by tol",
            "knn10 cross",
            "knn10 cross, no hubs",
            "wall s",
            "seeds",
        ]
        rows = []
        base: dict[str, dict[int, dict]] = {}
        for r in recs:
            if r["case"] == case and r["what"] == "baselines":
                for method, res in r["result"].items():
                    base.setdefault(method, {})[r["seed"]] = res
        for method, by_seed in sorted(base.items()):
            vals = [v for v in by_seed.values() if "error" not in v]
            if not vals:  # the method failed on every seed
                rows.append([f"baseline: {method}", "failed", *[""] * (len(cols) - 1)])
                continue
            cells = [_mean_sd([v.get(c) for v in vals]) for c in score_cols]
            cells += [""] * len(score_cols)
            cells += [
                _mean_sd([v["min_size"] for v in vals]),
                _mean_sd([v["max_frac"] for v in vals]),
            ]
            tag = REP_OF_BASELINE.get(method, method)  # the name its representation is saved as
            knn = [cross(case, tag, sd) for sd in by_seed] if not synthetic else []
            nohub = [cross(case, tag, sd, True) for sd in by_seed] if not synthetic else []
            cells += ["", _mean_sd(knn), _mean_sd(nohub), "", str(len(vals))]
            rows.append([f"baseline: {method}", *cells])
        for tag in tags:
            by_seed = {}
            for r in recs:
                same = (r["case"], r["tag"]) == (case, tag) and r["what"] == "darlc"
                if same and preset in ("any", r.get("preset")):
                    by_seed[r["seed"]] = r["result"]
            if not by_seed:
                continue
            vals = list(by_seed.values())
            cells = [_mean_sd([v.get(c) for v in vals]) for c in score_cols]
            cells += [_mean_sd([v["leiden_emb"].get(c) for v in vals]) for c in score_cols]
            cells += [
                _mean_sd([v["min_size"] for v in vals]),
                _mean_sd([v["max_frac"] for v in vals]),
            ]
            n_tol = sum(v.get("summary", {}).get("stop_reason") == "tol" for v in vals)
            knn = [cross(case, tag, sd) for sd in by_seed] if not synthetic else []
            nohub = [cross(case, tag, sd, True) for sd in by_seed] if not synthetic else []
            cells += [f"{n_tol}/{len(vals)}", _mean_sd(knn), _mean_sd(nohub)]
            cells += [_mean_sd([v["wall_s"] for v in vals])]
            cells += [str(len(vals))]
            rows.append([f"DARLC {tag}", *cells])
        out.append(f"### {case}\n")
        out.append("| row | " + " | ".join(cols) + " |")
        out.append("|---" * (len(cols) + 1) + "|")
        out += ["| " + " | ".join(row) + " |" for row in rows]
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["baselines", "peers", "darlc", "prep", "cross", "report"])
    p.add_argument("cases", nargs="+")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--set", nargs="*", default=[], help="DARLCConfig overrides key=value")
    p.add_argument("--tag", default="")
    p.add_argument("--probe", action="store_true", help="also k-means on CLS / e / z")
    p.add_argument("--preset", default="default")
    p.add_argument("--variant", choices=sorted(VARIANTS), help="a named switch set (its tag)")
    args = p.parse_args(argv)
    overrides = parse_set(args.set)
    if args.variant is not None:
        overrides = {**VARIANTS[args.variant], **overrides}
        args.tag = args.tag or args.variant
    OUT.mkdir(parents=True, exist_ok=True)
    if args.what == "report":
        print(report(args.cases, args.tag.split(","), args.preset))
        return
    for name in args.cases:
        for seed in args.seeds if args.what != "prep" else [0]:
            if args.what == "cross":
                for tag in args.tag.split(","):
                    print(
                        name,
                        seed,
                        tag,
                        "knn10 cross-section",
                        cross(name, tag, seed),
                        "hubs dropped",
                        cross(name, tag, seed, True),
                    )
                continue
            case = load_case(name, seed if planted(name) else 0)
            if args.what == "prep":
                continue
            if args.what in ("baselines", "peers"):
                res = {"baselines": baselines, "peers": peers}[args.what](case, seed)
            else:
                res = run_darlc(case, seed, overrides, args.tag, args.probe, args.preset)
            rec = {
                "case": name,
                "seed": seed,
                "what": "baselines" if args.what == "peers" else args.what,
                "tag": args.tag,
                "preset": args.preset,
                "overrides": overrides,
                "result": res,
            }
            with (OUT / "log.jsonl").open("a") as fh:
                fh.write(json.dumps(rec) + "\n")
            brief = {k: v for k, v in res.items() if k not in ("labels", "label_change")}
            print(name, seed, args.tag, json.dumps(brief, default=str), flush=True)


if __name__ == "__main__":
    main()
