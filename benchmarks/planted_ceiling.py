"""How much of the planted truth can any method recover? (issue 10, "Done means" 1)

``datasets.synthetic`` plants 8 profiles ``f_p``; gene ``g`` of cluster ``p`` has counts
``NB(mu = s_g (background + mean_counts f_p), dispersion)`` zeroed with probability
``dropout``. Two references, on the same 5 seeds the lab uses:

* ``oracle``: the generator's own likelihood with the true profiles, dispersion and dropout
  known; each gene goes to the profile of highest zero-inflated NB likelihood, its scale
  ``s_g`` maximised on a grid. No unsupervised method knows the profiles, so its ARI is an
  upper bound (a Bayes classifier, up to the scale grid).
* ``smooth_leiden``: Leiden at K on per-gene standardised images after a Gaussian smoothing
  inside the tissue (normalised convolution, ``sigma`` in pixels); ``sigma=0`` is the
  ``Leiden on standardised images`` baseline. An empirical ceiling of what smoothing and
  correlation alone reach.

    python -m benchmarks.planted_ceiling syn_d80 syn_d65 --seeds 0 1 2 3 4
    python -m benchmarks.planted_ceiling semi_d80 semi_d65 --seeds 0 1 2   # the DLPFC-based one
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd

from benchmarks._common import RESULTS

SCALE_GRID = np.exp(np.linspace(-2.5, 2.5, 101))  # s_g ~ LogNormal(0, 0.5): +-5 sd
SIGMAS = (0.0, 1.0, 1.5, 2.0, 3.0)


def oracle_labels(adata) -> np.ndarray:
    """Most likely planted profile of every gene under the generator's own model."""
    from scipy import stats

    p = adata.uns["synthetic"]["params"]
    if p["noise"] != "nb":
        msg = f"the oracle models noise='nb' data, got noise={p['noise']!r}"
        raise ValueError(msg)
    x = adata.X.toarray() if hasattr(adata.X, "toarray") else np.asarray(adata.X)
    profiles = adata.obsm["synthetic_patterns"].to_numpy()
    d, r = float(p["dropout"]), 1.0 / float(p["dispersion"])
    shape = float(p["background"]) + float(p["mean_counts"]) * profiles
    best = np.full((x.shape[1], profiles.shape[1]), -np.inf)
    zero = x == 0
    for k in range(profiles.shape[1]):
        for s in SCALE_GRID:
            prob = r / (r + s * shape[:, k])[:, None]
            log_nb = stats.nbinom.logpmf(x, r, prob)
            log_zero = np.log(d + (1 - d) * prob**r)  # P(0) after dropout
            ll = np.where(zero, log_zero, np.log1p(-d) + log_nb).sum(axis=0)
            best[:, k] = np.maximum(best[:, k], ll)
    return best.argmax(axis=1)


def smoothed(images: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    """Per-gene standardised in-tissue pixels after the Gaussian smoothing within the tissue
    of ``augment='gks'`` (:func:`sngep.models.darlc.gat.denoise_gks`; ``sigma=0``: none)."""
    from benchmarks.lab import std_flat
    from sngep.models.darlc.gat import denoise_gks

    return std_flat(denoise_gks(images, mask, sigma=sigma), mask)


def run(case_name: str, seed: int) -> dict:
    import sngep
    from benchmarks.lab import SYN_LEVELS, leiden, load_case
    from sklearn.metrics import adjusted_rand_score as ari

    case = load_case(case_name, seed)
    truth = case["truth"]
    if case_name.startswith("semi"):  # the lab's second generator, in the same layout
        import anndata as ad

        from benchmarks.lab import SEMI_LEVELS, semi_profiles

        raw = ad.AnnData(np.asarray(case["adata"].layers["counts"]))
        raw.obsm["synthetic_patterns"] = pd.DataFrame(semi_profiles()[1].T, index=raw.obs_names)
        raw.uns["synthetic"] = {"params": SEMI_LEVELS[case_name]}
    else:
        raw = sngep.datasets.synthetic(random_state=seed, **SYN_LEVELS[case_name])
    out = {"case": case_name, "seed": seed, "oracle": float(ari(truth, oracle_labels(raw)))}
    for sigma in SIGMAS:
        rep = smoothed(case["images"], case["mask"], sigma)
        out[f"smooth_leiden_sigma{sigma:g}"] = float(ari(truth, leiden(rep, case["k"], seed)))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cases", nargs="+")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = ap.parse_args(argv)
    rows = [run(c, s) for c in args.cases for s in args.seeds]
    summary = {}
    for c in args.cases:
        these = [r for r in rows if r["case"] == c]
        summary[c] = {}
        for k in these[0]:
            if k not in ("case", "seed"):
                v = [r[k] for r in these]
                summary[c][k] = {"mean": float(np.mean(v)), "sd": float(np.std(v, ddof=1))}
        line = ", ".join(f"{k} {v['mean']:.3f} ± {v['sd']:.3f}" for k, v in summary[c].items())
        print(f"{c} ({len(these)} seeds): {line}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "planted_ceiling.json"
    if path.exists():  # keep the cases not rerun
        old = json.loads(path.read_text())
        rows = [r for r in old["rows"] if r["case"] not in args.cases] + rows
        summary = {**{c: v for c, v in old["summary"].items() if c not in args.cases}, **summary}
    path.write_text(json.dumps({"rows": rows, "summary": summary}, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
