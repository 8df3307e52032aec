"""Seeding gene-gene similarity from image descriptors (supplementary 1.2, eqs. 20-25)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import scipy.sparse as sp

from sngep import _keys
from sngep import _logging as logg
from sngep._progress import progress
from sngep._validate import check_n_genes, get_gene_images
from sngep.tl._image_descriptors import CANNY_THRESHOLDS, DESCRIPTORS, iter_descriptors, margin

if TYPE_CHECKING:
    from anndata import AnnData

# A descriptor map whose in-tissue standard deviation is below this fraction of its largest
# absolute value is treated as constant (float32 input carries ~7 significant digits).
_CONSTANT_RTOL = 1e-6


def seed_similarity(
    adata: AnnData,
    *,
    images_key: str = _keys.GENE_IMAGES,
    sigma: float = 1.0,
    descriptors: Literal["all"] | Sequence[str] = "all",
    n_neighbors: int | None = None,
    chunk_size: int = 1024,
    show_progress_bar: bool = True,
    key_added: str = _keys.SEED_SIMILARITY,
    copy: bool = False,
) -> AnnData | None:
    """Seeding gene-gene similarity from hand-crafted image descriptors.

    Supplementary 1.2 of the DARLC paper: each gene image is smoothed with a Gaussian
    (eqs. 20-21); nine descriptor maps are computed on the smoothed image; for every
    descriptor the Pearson correlation between two genes is taken over the in-tissue
    pixels, and the similarity is the mean over descriptors, with a zero diagonal (eq. 25).
    It regularises DARLC's training (``L_lap``) and feeds :func:`sngep.tl.estimate_k`.

    Parameters
    ----------
    adata
        AnnData with gene images from :func:`sngep.pp.gene_images`.
    images_key
        Key of the images in ``adata.varm`` (and of their mask in ``adata.uns``).
    sigma
        Standard deviation, in pixels, of the Gaussian smoothing (eq. 20; kernel truncated at
        4 sigma). ``0`` skips the smoothing.
    descriptors
        ``'all'`` or a subset of:

        ``'mean_1'``, ``'mean_3'``, ``'mean_5'``
            mean over the k x k window centred on each pixel (eq. 22; ``mean_1`` is the
            smoothed image itself);
        ``'std_3'``, ``'std_5'``
            population standard deviation over the k x k window (eq. 23);
        ``'gradient_magnitude'``, ``'gradient_orientation'``
            Sobel gradient magnitude and orientation ``arctan2(d/drow, d/dcol)``;
        ``'laplacian'``
            5-point Laplacian (gradient divergence);
        ``'canny'``
            binary Canny edge map (skimage; no extra smoothing, image scaled to
            max ``|value|`` = 1, hysteresis thresholds 0.1 and 0.2).
    n_neighbors
        If given, keep for each gene its ``n_neighbors`` most similar genes, symmetrise
        (an entry is kept if either gene keeps it) and store a sparse CSR matrix. The dense
        ``n_genes x n_genes`` matrix is then never formed.
    chunk_size
        Genes per block, both when computing descriptors and when accumulating the
        similarity. Memory: about ``n_genes**2 * 4`` bytes for the dense result plus
        ``n_genes * n_descriptors * n_pixels * 4`` bytes for the standardised descriptors.
    show_progress_bar
        Show a progress bar (two stages: descriptors, then similarity), kept as a one-line
        summary when done.
    key_added
        Key of the result in ``adata.varp`` and ``adata.uns``.
    copy
        Return a modified copy instead of writing to ``adata``.

    Returns
    -------
    ``None``, or a copy of ``adata`` if ``copy=True``. Sets

    ``adata.varp[key_added]``
        ``(n_vars, n_vars)`` float32 similarity in [-1, 1], symmetric, zero diagonal; dense,
        or ``scipy.sparse.csr_matrix`` when ``n_neighbors`` is set.
    ``adata.uns[key_added]['params']``
        The parameters used.

    Notes
    -----
    Borders: everything outside the tissue, including beyond the image grid, is zero, and
    every filter sees that infinite zero plane, so the result does not depend on how much
    zero padding the images carry. Pooling windows at the tissue edge therefore average in
    the out-of-tissue zeros, as the paper's zero padding implies.

    Constant descriptor maps (e.g. an all-zero gene, or a gene without Canny edges) have no
    defined Pearson correlation; they contribute a correlation of 0 and the average is
    always taken over **all** requested descriptors. An undefined correlation is the absence
    of evidence for similarity, not a vote for it: averaging only over the defined
    descriptors would let a nearly empty image reach a high similarity from a single noisy
    descriptor. This also keeps ``S`` (before zeroing the diagonal) a mean of positive
    semi-definite correlation matrices, and avoids an ``n_genes x n_genes`` count matrix.
    """
    names = _check_descriptors(descriptors)
    if (
        not isinstance(sigma, int | float | np.number)
        or isinstance(sigma, bool)
        or not np.isfinite(sigma)
        or sigma < 0
    ):
        msg = f"sigma must be a finite number >= 0, got {sigma!r}"
        raise ValueError(msg)
    if not isinstance(chunk_size, int | np.integer) or chunk_size < 1:
        msg = f"chunk_size must be a positive integer, got {chunk_size!r}"
        raise ValueError(msg)
    images, mask = get_gene_images(adata, images_key)
    n_genes = images.shape[0]
    check_n_genes(n_genes)
    if n_neighbors is not None and (
        not isinstance(n_neighbors, int | np.integer) or not 1 <= n_neighbors < n_genes
    ):
        msg = (
            f"n_neighbors must be None or an integer in [1, n_genes - 1 = {n_genes - 1}], "
            f"got {n_neighbors!r}"
        )
        raise ValueError(msg)
    if not mask.any():
        msg = (
            f"adata.uns[{images_key!r}]['mask'] has no in-tissue pixel; rerun sngep.pp.gene_images"
        )
        raise ValueError(msg)

    kind = "dense" if n_neighbors is None else f"sparse kNN (n_neighbors={n_neighbors})"
    start = logg.info(
        f"computing the seeding similarity of {n_genes} genes ({len(names)} descriptors, {kind})"
    )
    adata = adata.copy() if copy else adata
    n_blocks = -(-n_genes // chunk_size)
    with progress(
        total=2 * n_blocks, desc="descriptors", unit="block", disable=not show_progress_bar
    ) as bar:
        z, n_constant = _standardised_descriptors(images, mask, names, sigma, chunk_size, bar)
        bar.set_description("similarity")
        if n_neighbors is None:
            sim = _dense_gram(z, chunk_size, bar)
        else:
            sim = _knn_gram(z, int(n_neighbors), chunk_size, bar)
    del z
    if n_constant.any():
        worst = int(n_constant.max())
        logg.warning(
            f"{int((n_constant > 0).sum())} genes have a constant descriptor map inside the tissue "
            f"(up to {worst} of {len(names)} descriptors); those correlations count as 0"
        )

    adata.varp[key_added] = sim
    adata.uns[key_added] = {
        "params": {
            "images_key": images_key,
            "sigma": float(sigma),
            "descriptors": list(names),
            "n_neighbors": None if n_neighbors is None else int(n_neighbors),
            "canny_thresholds": list(CANNY_THRESHOLDS),
        }
    }
    logg.info(
        "    finished",
        time=start,
        deep=f"added\n    {key_added!r}, {kind} gene-gene similarity (adata.varp)",
    )
    return adata if copy else None


def _check_descriptors(descriptors: str | Sequence[str]) -> list[str]:
    if isinstance(descriptors, str):
        if descriptors == "all":
            return list(DESCRIPTORS)
        descriptors = [descriptors]
    names = list(descriptors)
    unknown = [d for d in names if d not in DESCRIPTORS]
    if unknown or not names:
        msg = (
            f"descriptors must be 'all' or a non-empty subset of {list(DESCRIPTORS)}, "
            f"got {descriptors!r}"
        )
        raise ValueError(msg)
    if len(set(names)) != len(names):
        msg = f"descriptors contains duplicates: {names}"
        raise ValueError(msg)
    return names


def _standardised_descriptors(
    images: np.ndarray,
    mask: np.ndarray,
    names: list[str],
    sigma: float,
    chunk_size: int,
    bar,
) -> tuple[np.ndarray, np.ndarray]:
    """``(n_genes, n_descriptors * n_pixels)`` float32 matrix Z with ``S = Z @ Z.T``.

    Each descriptor map, restricted to the in-tissue pixels, is centred and divided by its
    (population) standard deviation and by ``sqrt(n_descriptors * n_pixels)``, so that the
    dot product of two rows is the mean over descriptors of the Pearson correlations.
    Constant maps get a zero block. Also returns, per gene, the number of constant maps.
    """
    n_genes, h, w = images.shape
    m = margin(sigma)
    grid = (slice(m, m + h), slice(m, m + w))
    padded_mask = np.zeros((h + 2 * m, w + 2 * m), dtype=bool)
    padded_mask[grid] = mask
    n_pix = int(mask.sum())
    n_desc = len(names)
    scale = 1.0 / np.sqrt(n_desc * n_pix)

    z = np.empty((n_genes, n_desc * n_pix), dtype=np.float32)
    n_constant = np.zeros(n_genes, dtype=np.int64)
    for s in range(0, n_genes, chunk_size):
        e = min(s + chunk_size, n_genes)
        padded = np.pad(images[s:e], ((0, 0), (m, m), (m, m)))
        for d, (_, dmap) in enumerate(iter_descriptors(padded, names, sigma=sigma, grid=grid)):
            v = dmap[:, padded_mask]  # (chunk, n_pix) float64, a copy
            amax = np.max(np.abs(v), axis=1)
            v -= v.mean(axis=1, keepdims=True)
            sd = np.sqrt(np.mean(v * v, axis=1))
            constant = sd <= _CONSTANT_RTOL * amax
            n_constant[s:e] += constant
            factor = np.where(constant, 0.0, scale / np.where(constant, 1.0, sd))
            z[s:e, d * n_pix : (d + 1) * n_pix] = v * factor[:, None]
        bar.update(1)
    return z, n_constant


def _dense_gram(z: np.ndarray, chunk_size: int, bar) -> np.ndarray:
    """``S = Z Z^T`` as float32, upper block-triangle only (half the flops), zero diagonal."""
    n = z.shape[0]
    sim = np.empty((n, n), dtype=np.float32)
    for s in range(0, n, chunk_size):
        e = min(s + chunk_size, n)
        block = z[s:e] @ z[s:].T  # rows s:e, columns s:n
        diag = block[:, : e - s]
        diag[...] = 0.5 * (diag + diag.T)  # exact symmetry of the diagonal block
        sim[s:e, s:] = block
        sim[s:, s:e] = block.T
        bar.update(1)
    np.fill_diagonal(sim, 0.0)
    np.clip(sim, -1.0, 1.0, out=sim)
    return sim


class _TopK:
    """Running top-``k`` (largest values) per row, merged block by block."""

    def __init__(self, n: int, k: int) -> None:
        self.k = k
        self.val = np.full((n, k), -np.inf, dtype=np.float32)
        self.idx = np.full((n, k), -1, dtype=np.int64)

    def update(self, r0: int, r1: int, vals: np.ndarray, cols: np.ndarray) -> None:
        if r1 <= r0 or vals.shape[1] == 0:
            return
        cand_v = np.concatenate([self.val[r0:r1], vals], axis=1)
        cand_i = np.concatenate(
            [self.idx[r0:r1], np.broadcast_to(cols, (r1 - r0, cols.size))], axis=1
        )
        keep = np.argpartition(-cand_v, self.k - 1, axis=1)[:, : self.k]
        self.val[r0:r1] = np.take_along_axis(cand_v, keep, axis=1)
        self.idx[r0:r1] = np.take_along_axis(cand_i, keep, axis=1)


def _knn_gram(z: np.ndarray, n_neighbors: int, chunk_size: int, bar) -> sp.csr_matrix:
    """Top-``n_neighbors`` similarities per gene, symmetrised, without the dense matrix.

    Each block of ``S`` is computed once (upper block-triangle) and offered to the rows on
    both sides. Since ``S`` is symmetric, ``max(A, A^T)`` over the kept entries is the union
    of the two kNN sets with the values of ``S``.
    """
    n = z.shape[0]
    top = _TopK(n, n_neighbors)
    for s in range(0, n, chunk_size):
        e = min(s + chunk_size, n)
        block = z[s:e] @ z[s:].T
        diag = block[:, : e - s]
        diag[...] = 0.5 * (diag + diag.T)
        np.clip(block, -1.0, 1.0, out=block)
        np.fill_diagonal(diag, -np.inf)  # a gene is not its own neighbour
        top.update(e, n, np.ascontiguousarray(block[:, e - s :].T), np.arange(s, e))
        top.update(s, e, block, np.arange(s, n))
        bar.update(1)
    rows = np.repeat(np.arange(n), n_neighbors)
    cols = top.idx.ravel()
    vals = top.val.ravel()
    # union of (i, j) and (j, i); identical values because S is symmetric
    r = np.concatenate([rows, cols])
    c = np.concatenate([cols, rows])
    v = np.concatenate([vals, vals])
    _, first = np.unique(r * n + c, return_index=True)
    out = sp.csr_matrix((v[first], (r[first], c[first])), shape=(n, n), dtype=np.float32)
    out.eliminate_zeros()
    out.sort_indices()
    return out
