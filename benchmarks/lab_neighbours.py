"""How good are the neighbour lists that ``clr_neighbours`` makes positives of L_clr?

Each gene's 10 nearest genes by three rankings, on the lab's cached cases: the cosine of the
rows of S (the default, ``train.similarity_neighbours``), the Pearson correlation of the
standardised images, and both correlations summed with hubs discounted by CSLS
(``2 M_ij - r_i - r_j``, ``r_i`` the mean of gene i's 10 largest ``M_ij``; the removed
``clr_neighbour_source='mixed'``, tag ``NBM10``). Planted cases: the share of neighbours in
the same planted pattern; tissue: GO pair lift of the neighbour pairs (pairs sharing a GO BP
term of <= 100 genes, over all annotated pairs) and the hub share (the slots the 5 % most
frequent neighbours take). No training; seconds per case.

    python -m benchmarks.lab_neighbours mob bc bc2 dlpfc dlpfc2 syn_d80 --seed 0
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks import lab
from sngep.models.darlc.train import similarity_neighbours, similarity_rows

K = 10


def _unit(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def _top(m: np.ndarray) -> np.ndarray:
    m = m.astype(np.float64)
    np.fill_diagonal(m, -np.inf)
    return np.argsort(-m, axis=1, kind="stable")[:, :K]


def rankings(case: dict) -> dict[str, np.ndarray]:
    rows = similarity_rows(case["similarity"])
    centred = _unit(rows)
    images = _unit(lab.std_flat(case["images"], case["mask"]))
    corr_images = images @ images.T
    m = centred @ centred.T + corr_images
    off = m.copy()
    np.fill_diagonal(off, -np.inf)
    local = np.sort(off, axis=1)[:, -K:].mean(axis=1)
    return {
        "rows of S (default)": similarity_neighbours(rows, K),
        "images": _top(corr_images),
        "mixed, CSLS": _top(2 * m - local[:, None] - local[None, :]),
    }


def go_share(case: dict) -> tuple[np.ndarray, np.ndarray, float]:
    """(pairs sharing a specific GO BP term, annotated genes, the all-pairs rate)."""
    from sngep.metrics._go import _inputs

    org = "mouse" if case["name"].startswith("mob") else "human"
    _, _, _, inc = _inputs(np.zeros(len(case["genes"]), int), case["genes"], "go_bp", org)
    a = inc.astype(np.int32).tocsr()
    size = np.asarray(a.sum(0)).ravel()
    a = a[:, np.flatnonzero((size >= 2) & (size <= 100))].tocsr()
    share = (a @ a.T).toarray() > 0
    np.fill_diagonal(share, False)
    ann = np.diff(inc.indptr) > 0
    base = share[np.ix_(ann, ann)].sum() / (ann.sum() * (ann.sum() - 1))
    return share, ann, float(base)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="+")
    parser.add_argument("--seed", type=int, default=0, help="planted cases: the data seed")
    args = parser.parse_args(argv)
    for name in args.cases:
        case = lab.load_case(name, args.seed)
        truth = case.get("truth")
        go = None if truth is not None else go_share(case)
        for what, nn in rankings(case).items():
            rows, cols = np.repeat(np.arange(len(nn)), K), nn.ravel()
            hub = np.sort(np.bincount(cols, minlength=len(nn)))[::-1][: len(nn) // 20].sum()
            line = f"{name:8s} {what:20s} hub share {hub / cols.size:.2f}"
            if truth is not None:
                t = np.asarray(truth)
                line += f"  same planted pattern {np.mean(t[nn] == t[:, None]):.3f}"
            else:
                share, ann, base = go
                ok = ann[rows] & ann[cols]
                line += f"  GO pair lift {share[rows[ok], cols[ok]].mean() / base:.3f}"
            print(line)


if __name__ == "__main__":
    main()
