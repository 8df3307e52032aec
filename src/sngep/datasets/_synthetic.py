"""Seeded synthetic spatial expression with planted gene patterns (like decoupler's ``ds.toy``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from sngep import _keys

PATTERN_KINDS = ("band", "blob", "ring", "gradient")
_SPACING = 100.0  # centre-to-centre distance of neighbouring spots, in micrometres (Visium)
_PATTERNS_KEY = "synthetic_patterns"

Profile = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _band(k: int, n: int) -> Profile:
    # Diagonal first; the normal turns by 180/n degrees per variant, alternating sides.
    angle = np.pi / 4 + np.pi * k / n
    offset = 0.18 * (-1) ** k
    half_width, soft = 0.09, 0.025

    def f(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        d = (u - 0.5) * np.cos(angle) + (v - 0.5) * np.sin(angle) - offset
        return _sigmoid((half_width - np.abs(d)) / soft)

    return f


def _blob(k: int, n: int) -> Profile:
    # Centres spread on a circle around the middle, starting at the upper-right diagonal.
    angle = np.pi / 4 + 2 * np.pi * k / n
    cu, cv = 0.5 + 0.3 * np.cos(angle), 0.5 - 0.3 * np.sin(angle)
    sigma = 0.09

    def f(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return np.exp(-((u - cu) ** 2 + (v - cv) ** 2) / (2 * sigma**2))

    return f


def _ring(k: int, n: int) -> Profile:
    # Concentric rings around the middle, radii from 0.15 to 0.40 of the field.
    radius = 0.15 + (0.25 * k / (n - 1) if n > 1 else 0.0)
    sigma = 0.04

    def f(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        r = np.sqrt((u - 0.5) ** 2 + (v - 0.5) ** 2)
        return np.exp(-((r - radius) ** 2) / (2 * sigma**2))

    return f


def _gradient(k: int, n: int) -> Profile:
    # Linear ramps turning by 90 degrees per variant (360/n beyond 4 variants), so that no two
    # are positively correlated up to n=4: n=2 gives along x and along y.
    angle = 2 * np.pi * k / max(n, 4)

    def f(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        t = (u - 0.5) * np.cos(angle) + (v - 0.5) * np.sin(angle)
        lo, hi = t.min(), t.max()
        return (t - lo) / (hi - lo) if hi > lo else np.zeros_like(t)

    return f


_FACTORIES: dict[str, Callable[[int, int], Profile]] = {
    "band": _band,
    "blob": _blob,
    "ring": _ring,
    "gradient": _gradient,
}


def _lattice(grid: str, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_rows, n_cols = shape
    rows = np.repeat(np.arange(n_rows), n_cols)
    j = np.tile(np.arange(n_cols), n_rows)
    if grid == "visium":
        cols = 2 * j + rows % 2  # row + col even, neighbours in a row 2 apart
        xy = np.column_stack([cols * _SPACING / 2, rows * _SPACING * np.sqrt(3) / 2])
    else:
        cols = j
        xy = np.column_stack([cols * _SPACING, rows * _SPACING])
    return rows.astype(np.int64), cols.astype(np.int64), xy


def _check(
    n_genes_per_pattern: int,
    patterns: Sequence[str],
    n_variants: int,
    grid: str,
    shape: tuple[int, int],
    noise: str,
    dispersion: float,
    dropout: float,
    mean_counts: float,
    background: float,
    gene_scale_sd: float,
    n_noise_genes: int,
) -> tuple[str, ...]:
    if isinstance(patterns, str):
        patterns = (patterns,)
    patterns = tuple(patterns)
    unknown = [p for p in patterns if p not in PATTERN_KINDS]
    if not patterns or unknown or len(set(patterns)) != len(patterns):
        msg = f"patterns must be distinct names from {PATTERN_KINDS}, got {patterns!r}"
        raise ValueError(msg)
    checks = [
        (
            int(n_genes_per_pattern) == n_genes_per_pattern and n_genes_per_pattern >= 1,
            "n_genes_per_pattern must be a positive integer",
        ),
        (
            int(n_variants) == n_variants and n_variants >= 1,
            "n_variants must be a positive integer",
        ),
        (
            int(n_noise_genes) == n_noise_genes and n_noise_genes >= 0,
            "n_noise_genes must be a non-negative integer",
        ),
        (grid in ("visium", "square"), f"grid must be 'visium' or 'square', got {grid!r}"),
        (
            noise in ("nb", "poisson", "none"),
            f"noise must be 'nb', 'poisson' or 'none', got {noise!r}",
        ),
        (
            dispersion > 0,
            f"dispersion must be positive (use noise='poisson' for none), got {dispersion}",
        ),
        (0 <= dropout < 1, f"dropout must be in [0, 1), got {dropout}"),
        (mean_counts > 0, f"mean_counts must be positive, got {mean_counts}"),
        (background >= 0, f"background must be non-negative, got {background}"),
        (gene_scale_sd >= 0, f"gene_scale_sd must be non-negative, got {gene_scale_sd}"),
    ]
    for ok, msg in checks:
        if not ok:
            raise ValueError(msg)
    if len(shape) != 2 or any(int(s) != s or s < 2 for s in shape):
        msg = f"shape must be two integers >= 2 (rows, spots per row), got {shape!r}"
        raise ValueError(msg)
    return patterns


def draw_counts(
    rng: np.random.Generator,
    mu: np.ndarray,
    *,
    noise: str = "nb",
    dispersion: float = 0.5,
    dropout: float = 0.0,
) -> np.ndarray:
    """Counts of mean ``mu`` as :func:`synthetic` draws them: negative binomial (a
    Gamma-Poisson mixture, ``Var = mu + dispersion * mu**2``), Poisson, or ``mu`` itself
    (``noise='none'``), then each entry zeroed with probability ``dropout``."""
    if noise == "nb":
        lam = rng.gamma(shape=1.0 / dispersion, scale=dispersion * mu)
        x = rng.poisson(lam).astype(np.float32)
    elif noise == "poisson":
        x = rng.poisson(mu).astype(np.float32)
    else:
        x = mu.astype(np.float32)
    if dropout > 0:
        x[rng.random(x.shape) < dropout] = 0.0
    return x


def synthetic(
    n_genes_per_pattern: int = 20,
    *,
    patterns: Sequence[str] = PATTERN_KINDS,
    n_variants: int = 2,
    grid: Literal["visium", "square"] = "visium",
    shape: tuple[int, int] = (30, 30),
    noise: Literal["nb", "poisson", "none"] = "nb",
    dispersion: float = 0.5,
    dropout: float = 0.3,
    mean_counts: float = 5.0,
    background: float = 0.5,
    gene_scale_sd: float = 0.5,
    n_noise_genes: int = 0,
    random_state: int | None = 0,
) -> ad.AnnData:
    """Spatial counts with planted gene patterns, for tests and tutorials.

    Spots sit on a Visium-like hexagonal lattice (or a square grid). Every pattern kind has
    ``n_variants`` distinct variants, each a planted gene cluster of
    ``n_genes_per_pattern`` genes:

    ``band``
        A straight stripe, the first one diagonal; the variants turn by ``180 / n_variants``
        degrees and alternate sides of the centre.
    ``blob``
        A Gaussian spot; the variants' centres are spread on a circle around the middle.
    ``ring``
        An annulus around the middle; the variants have radii from 0.15 to 0.40 of the field.
    ``gradient``
        A linear ramp; the variants' directions turn by 90 degrees (``360 / n_variants``
        beyond 4 variants).

    The geometry is fixed; the seed drives the gene scales and the noise. Gene ``g`` of
    cluster ``p`` has mean ``s_g * (background + mean_counts * f_p(spot))`` with the profile
    ``f_p`` in ``[0, 1]`` and ``s_g ~ LogNormal(0, gene_scale_sd)``. Counts are drawn from a
    negative binomial (``noise='nb'``, variance ``mu + dispersion * mu**2``), a Poisson, or
    not at all (``noise='none'``: the means themselves), then each entry is zeroed with
    probability ``dropout``.

    Parameters
    ----------
    n_genes_per_pattern
        Genes per planted cluster.
    patterns
        Pattern kinds to plant, from ``('band', 'blob', 'ring', 'gradient')``.
    n_variants
        Variants per kind; there are ``len(patterns) * n_variants`` clusters.
    grid
        ``'visium'``: hexagonal lattice, ``array_row + array_col`` even, neighbours 100 um
        apart. ``'square'``: square grid with 100 um spacing.
    shape
        ``(rows, spots per row)``; the default gives 900 spots.
    noise
        ``'nb'``, ``'poisson'`` or ``'none'``.
    dispersion
        Negative-binomial overdispersion ``phi`` (``Var = mu + phi * mu**2``).
    dropout
        Probability that an entry is set to 0 after sampling.
    mean_counts
        Mean count added at a pattern's peak (before the per-gene scale).
    background
        Mean count everywhere (before the per-gene scale).
    gene_scale_sd
        Standard deviation of the log per-gene scale.
    n_noise_genes
        Extra genes without a pattern (constant mean), labelled ``'noise'``.
    random_state
        Seed of the local generator; ``None`` draws fresh entropy.

    Returns
    -------
    Spots x genes AnnData:

    ``.X``
        float32 CSR counts (the means when ``noise='none'``).
    ``.obs['array_row']``, ``.obs['array_col']``
        Integer lattice indices.
    ``.obsm['spatial']``
        ``(x, y)`` spot centres in micrometres (y down, like image coordinates).
    ``.var['pattern']``
        Categorical planted cluster, e.g. ``'band_0'`` (``'noise'`` for noise genes).
    ``.var['pattern_kind']``
        Categorical kind, e.g. ``'band'``.
    ``.var['scale']``
        The per-gene scale ``s_g``.
    ``.obsm['synthetic_patterns']``
        DataFrame ``(n_obs, n_clusters)``: the noiseless profile ``f_p`` of every cluster.
    ``.uns['synthetic']``
        The parameters and the cluster names.

    Examples
    --------
    >>> import sngep
    >>> adata = sngep.datasets.synthetic()
    >>> adata.shape
    (900, 160)
    """
    patterns = _check(
        n_genes_per_pattern,
        patterns,
        n_variants,
        grid,
        tuple(shape),
        noise,
        dispersion,
        dropout,
        mean_counts,
        background,
        gene_scale_sd,
        n_noise_genes,
    )
    n_genes_per_pattern, n_variants, n_noise_genes = (
        int(n_genes_per_pattern),
        int(n_variants),
        int(n_noise_genes),
    )
    shape = (int(shape[0]), int(shape[1]))
    rng = np.random.default_rng(random_state)

    rows, cols, xy = _lattice(grid, shape)
    extent = xy.max(axis=0) - xy.min(axis=0)
    uv = (xy - xy.min(axis=0)) / extent
    u, v = uv[:, 0], uv[:, 1]

    clusters: list[str] = []
    kinds: list[str] = []
    profiles: list[np.ndarray] = []
    for kind in patterns:
        for k in range(n_variants):
            clusters.append(f"{kind}_{k}")
            kinds.append(kind)
            profiles.append(_FACTORIES[kind](k, n_variants)(u, v))
    profile = np.column_stack(profiles)  # (n_obs, n_clusters)

    gene_cluster = np.repeat(np.arange(len(clusters)), n_genes_per_pattern)
    n_genes = gene_cluster.size + n_noise_genes
    scale = rng.lognormal(0.0, gene_scale_sd, size=n_genes)
    shape_part = np.empty((xy.shape[0], n_genes))
    shape_part[:, : gene_cluster.size] = profile[:, gene_cluster]
    shape_part[:, gene_cluster.size :] = 0.25  # noise genes: a flat profile
    mu = scale[None, :] * (background + mean_counts * shape_part)

    x = draw_counts(rng, mu, noise=noise, dispersion=dispersion, dropout=dropout)

    width_g = len(str(max(n_genes_per_pattern, n_noise_genes) - 1))
    labels = [clusters[c] for c in gene_cluster] + ["noise"] * n_noise_genes
    kind_labels = [kinds[c] for c in gene_cluster] + ["noise"] * n_noise_genes
    within = list(np.tile(np.arange(n_genes_per_pattern), len(clusters))) + list(
        range(n_noise_genes)
    )
    var_names = [f"{lab}_g{i:0{width_g}d}" for lab, i in zip(labels, within, strict=True)]
    categories = clusters + (["noise"] if n_noise_genes else [])
    kind_categories = list(patterns) + (["noise"] if n_noise_genes else [])
    var = pd.DataFrame(
        {
            "pattern": pd.Categorical(labels, categories=categories),
            "pattern_kind": pd.Categorical(kind_labels, categories=kind_categories),
            "scale": scale.astype(np.float32),
        },
        index=pd.Index(var_names),
    )
    width_s = len(str(xy.shape[0] - 1))
    obs_names = pd.Index([f"spot_{i:0{width_s}d}" for i in range(xy.shape[0])])
    obs = pd.DataFrame({"array_row": rows, "array_col": cols}, index=obs_names)

    adata = ad.AnnData(X=sp.csr_matrix(x), obs=obs, var=var)
    adata.obsm[_keys.SPATIAL] = xy
    adata.obsm[_PATTERNS_KEY] = pd.DataFrame(
        profile.astype(np.float32), index=obs_names, columns=clusters
    )
    adata.uns["synthetic"] = {
        "params": {
            "n_genes_per_pattern": n_genes_per_pattern,
            "patterns": list(patterns),
            "n_variants": n_variants,
            "grid": grid,
            "shape": list(shape),
            "noise": noise,
            "dispersion": float(dispersion),
            "dropout": float(dropout),
            "mean_counts": float(mean_counts),
            "background": float(background),
            "gene_scale_sd": float(gene_scale_sd),
            "n_noise_genes": n_noise_genes,
            "random_state": -1 if random_state is None else int(random_state),
        },
        "clusters": clusters,
        "spacing": _SPACING,
    }
    return adata
