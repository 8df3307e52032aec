"""The Student's t mixture at whole-transcriptome scale: the diagonal-covariance product path
against the general triangular-solve path, in one process (issue 11: "EM in O(N K D)").

On every gene of breast cancer (9,612 genes, K = 320 = n/30) the default preset's joint stage
spent 1,693 s of 3,722 in its MAP-EM and 650 s in L1 (one thread, before this path existed;
``results/breast_cancer_all.json``). Both the EM's Mahalanobis distances and its covariance
scatter cost ``O(N K D^2)`` there, although the default's covariances are diagonal. This
script times, on random data of that shape (N genes, K components, D = 32 dimensions, the
default's head width):

- 20 warm-started MAP-EM iterations (the joint stage's per-epoch EM, ``init='current'``), once
  with the general path forced (the ``_mahalanobis`` / ``_weighted_scatter`` of every
  covariance) and once as it runs (the product path for diagonal covariances);
- the log-likelihood forward and backward pass over all points (L1's mixture term) through
  a ``covariance='full'`` module holding the same diagonal matrices (the general path, whose
  off-diagonal Cholesky entries are trained) and through ``covariance='diag'``.

It checks that both paths end at the same log-posterior and labels, and writes the medians
and the ratios to ``results/smm_scale.json``::

    python -m benchmarks.smm_scale            # N = 9,612, K = 320
    python -m benchmarks.smm_scale --quick    # N = 2,000, K = 64
"""

from __future__ import annotations

import argparse
import json
import time
from unittest import mock

import numpy as np
import torch

from benchmarks._common import machine, write_json
from sngep.models.darlc import smm


def _data(n: int, k: int, d: int, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 2.0
    x = centres[rng.integers(k, size=n)] + rng.normal(size=(n, d))
    return torch.tensor(x, dtype=torch.float32)


def _general_mahalanobis(z, mu, chol, diagonal=False):  # noqa: ARG001
    return _ORIGINAL_MAHALANOBIS(z, mu, chol, diagonal=False)


def _general_scatter(x, w, mu, diagonal=False):  # noqa: ARG001
    out = _ORIGINAL_SCATTER(x, w, mu, diagonal=False)
    return torch.diag_embed(out.diagonal(dim1=-2, dim2=-1)) if diagonal else out


_ORIGINAL_MAHALANOBIS = smm._mahalanobis
_ORIGINAL_SCATTER = smm._weighted_scatter


def _em(z: torch.Tensor, k: int, general: bool, n_iter: int) -> tuple[float, float, np.ndarray]:
    m = smm.StudentTMixture(k, z.shape[1], covariance="diag")
    m.fit_em(z, n_iter=0, n_init=1, random_state=0)  # the same k-means++ start for both
    patches = (
        [
            mock.patch.object(smm, "_mahalanobis", _general_mahalanobis),
            mock.patch.object(smm, "_weighted_scatter", _general_scatter),
        ]
        if general
        else []
    )
    for p in patches:
        p.start()
    try:
        t = time.perf_counter()
        hist = m.fit_em(z, n_iter=n_iter, tol=0.0, init="current")
        seconds = time.perf_counter() - t
    finally:
        for p in patches:
            p.stop()
    return seconds, float(hist["log_posterior"][-1]), m.predict(z).numpy()


def _likelihood_pass(z: torch.Tensor, k: int, covariance: str, repeats: int) -> float:
    fit = smm.StudentTMixture(k, z.shape[1], covariance="diag")
    fit.fit_em(z, n_iter=2, n_init=1, random_state=0)
    p = fit.get_parameters()
    m = smm.StudentTMixture(k, z.shape[1], covariance=covariance)
    m.set_parameters(p["pi"], p["mu"], p["sigma"], p["nu"])
    times = []
    for _ in range(repeats):
        zz = z.clone().requires_grad_(True)
        m.zero_grad()
        t = time.perf_counter()
        m.log_likelihood(zz).backward()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    n, k, d = (2000, 64, 32) if args.quick else (9612, 320, 32)
    n_iter, repeats = 20, 5
    z = _data(n, k, d)
    general = _em(z, k, general=True, n_iter=n_iter)
    product = _em(z, k, general=False, n_iter=n_iter)
    ll_general = _likelihood_pass(z, k, "full", repeats)
    ll_product = _likelihood_pass(z, k, "diag", repeats)
    out = {
        "shape": {"n_points": n, "n_components": k, "n_features": d},
        "threads": args.threads,
        "em": {
            "iterations": n_iter,
            "general_s": general[0],
            "product_s": product[0],
            "ratio": general[0] / product[0],
            "log_posterior_general": general[1],
            "log_posterior_product": product[1],
            "same_labels": bool((general[2] == product[2]).all()),
        },
        "log_likelihood_forward_backward": {
            "repeats": repeats,
            "general_median_s": ll_general,
            "product_median_s": ll_product,
            "ratio": ll_general / ll_product,
        },
        "machine": machine(),
    }
    path = write_json("smm_scale_quick.json" if args.quick else "smm_scale.json", out)
    print(
        json.dumps(
            {k: out[k] for k in ("shape", "em", "log_likelihood_forward_backward")}, indent=1
        )
    )
    print("wrote", path)
    return out


if __name__ == "__main__":
    main()
