"""Write ``estimate_k_eigengap_reference.npz``: inputs and outputs of ``method='eigengap'``.

Run once, from the repository root, on the code *before* ``method='knn_eigengap'`` became the
default (commit d16f6d0, where ``method='eigengap'`` was the default and the only spectrum): ``python tests/tl/data/make_estimate_k_reference.py``. The test
``test_eigengap_matches_stored_reference`` checks that ``method='eigengap'`` still returns
these numbers. The inputs are stored too, so the reference does not depend on the data
generators.
"""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import scanpy as sc

import sngep


def _block(sizes, seed):
    rng = np.random.default_rng(seed)
    n = sum(sizes)
    s = rng.uniform(-0.1, 0.05, (n, n))
    start = 0
    for size in sizes:
        s[start : start + size, start : start + size] = rng.uniform(0.3, 0.9, (size, size))
        start += size
    s = (s + s.T) / 2
    np.fill_diagonal(s, 0.0)
    return s.astype(np.float32)


def main() -> None:
    a = sngep.datasets.synthetic(10, n_variants=2, shape=(16, 16), dropout=0.3, random_state=0)
    sc.pp.normalize_total(a)
    sc.pp.log1p(a)
    sngep.pp.gene_images(a)
    sngep.tl.seed_similarity(a, show_progress_bar=False)
    inputs = {
        "block": _block([8, 10, 12, 9, 11], 0),
        "synthetic": np.asarray(a.varp["seed_similarity"]),
    }
    out = {}
    for name, s in inputs.items():
        out[f"{name}_similarity"] = s
        for solver in ("dense", "sparse"):
            b = ad.AnnData(X=np.zeros((2, s.shape[0]), dtype=np.float32))
            b.varp["seed_similarity"] = s
            sngep.tl.estimate_k(b, method="eigengap", solver=solver)
            res = b.uns["estimate_k"]
            out[f"{name}_{solver}_k"] = np.int64(res["k"])
            out[f"{name}_{solver}_k_max"] = np.int64(res["params"]["k_max"])
            out[f"{name}_{solver}_eigenvalues"] = res["eigenvalues"]
            print(name, solver, res["k"], res["params"]["k_max"], res["eigenvalues"][:8])
    np.savez_compressed(Path(__file__).with_name("estimate_k_eigengap_reference.npz"), **out)


if __name__ == "__main__":
    main()
