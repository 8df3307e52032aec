"""Loss functions of DARLC Module I and the Laplacian term of Module II.

Pure functions (tensors in, tensors out) plus :class:`UncertaintyWeighting`, the one loss with
trainable parameters:

- :func:`contrastive_loss`: symmetric contrastive loss of eq. 10;
- :class:`UncertaintyWeighting`: UWL of eq. 11 (used in eq. 11, 16 and the batch loss L2);
- :func:`normalized_similarity` / :func:`laplacian_loss`: ``L_lap`` of eq. 17;
- :func:`eta_schedule`: the decaying weight ``eta`` of eq. 16;
- :func:`decorrelation_loss`: a redundancy-reduction term on a batch of embeddings (not in
  the paper; ``DARLCConfig.decorrelation``).

The masked-image-modelling loss of eq. 7 lives with the model
(:meth:`sngep.models.darlc.vit.ModuleI.mae_loss`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "UncertaintyWeighting",
    "contrastive_loss",
    "decorrelation_loss",
    "eta_schedule",
    "laplacian_loss",
    "normalized_similarity",
]


# --------------------------------------------------------------------------------------
# not in the paper: redundancy reduction
# --------------------------------------------------------------------------------------
def decorrelation_loss(h: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Mean squared off-diagonal correlation of the dimensions of ``h`` over a batch.

    ``h`` is ``(B, D)``; each column is centred and scaled by its batch standard deviation
    (plus ``eps``), ``R = h_std^T h_std / B``, and the loss is
    ``sum_{i != j} R_ij^2 / (D (D - 1))``: 0 when the dimensions are uncorrelated over the
    batch, 1 when they are all one direction. Scale-free (the final LayerNorm fixes each
    token's scale), so it acts on how many directions the embedding uses, not on its size:
    the covariance term of VICReg (Bardes et al. 2022) on correlations, as in Barlow Twins'
    redundancy reduction (Zbontar et al. 2021) within one view. With ``B <= D`` the sample
    correlation has rank ``< B`` and the minimum is above 0; the gradient still spreads the
    batch over more directions.
    """
    if h.ndim != 2 or h.shape[0] < 2 or h.shape[1] < 2:
        msg = f"decorrelation_loss needs (B >= 2, D >= 2) embeddings, got {tuple(h.shape)}"
        raise ValueError(msg)
    b, d = h.shape
    c = h - h.mean(dim=0, keepdim=True)
    c = c / (c.pow(2).mean(dim=0, keepdim=True).sqrt() + eps)
    r = c.T @ c / b
    off = r.pow(2).sum() - r.diagonal().pow(2).sum()
    return off / (d * (d - 1))


# --------------------------------------------------------------------------------------
# eq. 10
# --------------------------------------------------------------------------------------
def contrastive_loss(
    e: torch.Tensor,
    e_bar: torch.Tensor,
    tau: float = 0.5,
    queue: torch.Tensor | None = None,
    queue_mask: torch.Tensor | None = None,
    positives: torch.Tensor | None = None,
    role: str = "positive",
    excluded: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric contrastive loss ``L_clr`` of eq. 10, averaged over the batch.

    With ``s(a, b) = exp(cos(a, b) / tau)``::

        L_i = -log s(e_i, eb_i) / [sum_{k != i} s(e_i, e_k)  + sum_k s(e_i, eb_k)]
              -log s(eb_i, e_i) / [sum_k s(eb_i, e_k)        + sum_{k != i} s(eb_i, eb_k)]

    The positive pair appears in both denominators (in the cross-view sums), exactly as
    written in eq. 10. Computed in log space (``logsumexp``); returns ``mean_i L_i``.

    Parameters
    ----------
    e
        ``(B, d)`` online embeddings (carry gradient).
    e_bar
        ``(B, d)`` embeddings of the smoothed views from the EMA target. They come from
        :meth:`~sngep.models.darlc.vit.ModuleI.target_embed` without gradient, so the second
        term of eq. 10 trains the online branch through ``e`` only, as the paper specifies.
        This function does not detach anything itself.
    tau
        Temperature (paper: 0.5).
    queue
        ``(Q, d)`` target embeddings of earlier batches, extra negatives in both
        denominators (``sum_q s(e_i, eq_q)`` and ``sum_q s(eb_i, eq_q)``); ``None``: eq. 10
        as written (the batch's ``2 N_b - 2`` negatives only).
    queue_mask
        ``(B, Q)`` boolean, True where a queue entry must not count as a negative for row
        ``i`` (the same gene embedded in an earlier batch).
    positives
        ``(B, B)`` boolean, True where gene ``k != i`` of the batch is a positive of gene
        ``i`` as well (``DARLCConfig.clr_neighbours``). Row ``i``'s term then averages
        ``-log s(e_i, p) / den`` over its own view ``eb_i`` and both embeddings ``e_k``,
        ``eb_k`` of every positive ``k`` (the supervised-contrastive "outside" form of
        Khosla et al. 2020, the denominators unchanged); likewise for ``eb_i``. ``None`` or
        no True entry: eq. 10 as written.
    role
        What ``positives`` marks: ``'positive'`` (above) or ``'excluded'``: those genes are
        left out of both denominators and the own view stays the only positive (false
        negatives cancelled without being attracted; Huynh et al. 2022).
    excluded
        ``(B, B)`` boolean, True where gene ``k != i`` leaves row ``i``'s denominators
        (both of its embeddings) without becoming a positive; a positive stays a positive.
        ``None``: nothing excluded.

    Returns
    -------
    Scalar tensor.
    """
    if e.ndim != 2 or e.shape != e_bar.shape:
        msg = f"e and e_bar must both be (B, d) with equal shapes, got {tuple(e.shape)} and "
        msg += f"{tuple(e_bar.shape)}"
        raise ValueError(msg)
    if tau <= 0:
        msg = f"tau must be > 0, got {tau}"
        raise ValueError(msg)
    a = F.normalize(e, dim=1)
    b = F.normalize(e_bar.to(e.dtype), dim=1)
    sim_ab = a @ b.T / tau  # log s(e_i, eb_k)
    sim_aa = a @ a.T / tau  # log s(e_i, e_k)
    sim_bb = b @ b.T / tau  # log s(eb_i, eb_k)
    eye = torch.eye(e.shape[0], dtype=torch.bool, device=e.device)
    sim_aa = sim_aa.masked_fill(eye, float("-inf"))
    sim_bb = sim_bb.masked_fill(eye, float("-inf"))
    pos = torch.diagonal(sim_ab)
    parts_e, parts_b = [sim_aa, sim_ab], [sim_ab.T, sim_bb]
    if queue is not None and queue.shape[0]:
        q = F.normalize(queue.to(e.dtype), dim=1)
        sim_aq, sim_bq = a @ q.T / tau, b @ q.T / tau
        if queue_mask is not None:
            sim_aq = sim_aq.masked_fill(queue_mask, float("-inf"))
            sim_bq = sim_bq.masked_fill(queue_mask, float("-inf"))
        parts_e.append(sim_aq)
        parts_b.append(sim_bq)
    if positives is not None:
        if positives.shape != eye.shape:
            msg = f"positives must be (B, B) = {tuple(eye.shape)}, got {tuple(positives.shape)}"
            raise ValueError(msg)
        if role not in ("positive", "excluded"):
            msg = f"role must be 'positive' or 'excluded', got {role!r}"
            raise ValueError(msg)
        others = positives & ~eye  # the own view is the diagonal already
        if role == "excluded":
            excluded = others if excluded is None else excluded | others
            positives = None
    if excluded is not None:
        if excluded.shape != eye.shape:
            msg = f"excluded must be (B, B) = {tuple(eye.shape)}, got {tuple(excluded.shape)}"
            raise ValueError(msg)
        drop = excluded & ~eye
        if positives is not None:
            drop = drop & ~positives
        parts_e[:2] = [sim.masked_fill(drop, -torch.inf) for sim in (sim_aa, sim_ab)]
        parts_b[:2] = [sim.masked_fill(drop, -torch.inf) for sim in (sim_ab.T, sim_bb)]
    log_den_e = torch.logsumexp(torch.cat(parts_e, dim=1), dim=1)
    log_den_b = torch.logsumexp(torch.cat(parts_b, dim=1), dim=1)
    if positives is None:
        return ((log_den_e - pos) + (log_den_b - pos)).mean()
    extra = others.to(e.dtype)
    n_pos = 1.0 + 2.0 * extra.sum(dim=1)
    # the -inf diagonals of sim_aa / sim_bb meet extra = 0: zero them before multiplying
    cross_e = (extra * (sim_ab + sim_aa.masked_fill(eye, 0.0))).sum(dim=1)
    cross_b = (extra * (sim_ab.T + sim_bb.masked_fill(eye, 0.0))).sum(dim=1)
    mean_e, mean_b = (pos + cross_e) / n_pos, (pos + cross_b) / n_pos
    return ((log_den_e - mean_e) + (log_den_b - mean_b)).mean()


def alignment_loss(
    e: torch.Tensor, e_bar: torch.Tensor, positives: torch.Tensor | None = None
) -> torch.Tensor:
    """Attraction without negatives (``DARLCConfig.clr_form='align'``; not eq. 10).

    Each dimension of ``e`` and of ``e_bar`` is standardised over the batch (so the online
    embeddings cannot all collapse onto one point: their variance is fixed), then each gene's
    ``e_i`` is pulled towards the target embedding of its own view and of every batch gene
    marked in ``positives`` (``(B, B)`` boolean): the loss is the batch mean, over genes, of
    the mean squared distance per dimension to those targets. No gene is pushed away from
    another, unlike eq. 10, whose denominators repel every other gene of the batch.
    """
    if e.shape != e_bar.shape or e.ndim != 2:
        msg = f"e and e_bar must both be (B, d), got {tuple(e.shape)} and {tuple(e_bar.shape)}"
        raise ValueError(msg)

    def standardise(x: torch.Tensor) -> torch.Tensor:
        return (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + 1e-5)

    a, b = standardise(e), standardise(e_bar)
    eye = torch.eye(e.shape[0], dtype=torch.bool, device=e.device)
    pos = eye if positives is None else (positives | eye)
    d2 = torch.cdist(a, b).pow(2) / e.shape[1]  # (B, B) squared distance per dimension
    w = pos.to(e.dtype)
    return ((w * d2).sum(1) / w.sum(1)).mean()


# --------------------------------------------------------------------------------------
# eq. 11
# --------------------------------------------------------------------------------------
class UncertaintyWeighting(nn.Module):
    """Uncertainty weighting (UWL) of eq. 11 with trainable noise parameters.

    ``UWL(L_1, ..., L_n) = sum_i L_i / (2 sigma_i^2) + log(1 + sigma_i^2)``, parametrised by
    ``s_i = log sigma_i^2`` (``log(1 + sigma^2) = softplus(s)``).

    Parameters
    ----------
    n_losses
        Number of losses combined.
    init_log_var
        Initial ``log sigma_i^2`` (0: weights 1/2).
    log_var_bounds
        ``(lo, hi)`` range of ``log sigma^2``, enforced smoothly by
        ``s = lo + (hi - lo) * sigmoid(raw)`` (never stuck at a bound, unlike a clamp).
        ``None`` gives eq. 11 unbounded (``s = raw``).

    Notes
    -----
    Why bounds. For a fixed loss value ``L`` the sigma-part of eq. 11,
    ``L / (2 sigma^2) + log(1 + sigma^2)``, has its minimum at
    ``sigma^2 = (L + sqrt(L^2 + 8 L)) / 4`` (:meth:`optimal_log_var`) only when ``L > 0``:
    the construction (Kendall et al. 2018; the ``log(1 + sigma^2)`` form of Liebel & Koerner
    2018) derives from a likelihood whose loss is a non-negative error. For ``L <= 0`` the
    objective decreases without bound as ``sigma -> 0`` and the weight ``1 / (2 sigma^2)``
    diverges. Eq. 16 feeds exactly such terms: ``-L_size`` (eq. 20) is minus a sum of
    ``-J log J >= 0``, so it is never positive, and ``-L_ll`` (eq. 18) is a negative
    log-likelihood of a continuous density, which is negative whenever the density exceeds
    one (tight clusters in 32-D). We keep eq. 11 exactly but bound ``log sigma^2`` to
    ``log_var_bounds`` (default ``[-4, 4]``: weights between ``0.5 e^-4 ~ 0.009`` and
    ``0.5 e^4 ~ 27``), so a non-positive loss saturates at the largest weight instead of
    blowing up. Callers may additionally shift a loss by a constant (this changes neither its
    gradient nor the model's optimum, only where sigma settles), e.g. ``-L_size + K / e >= 0``
    because each ``-J log J <= 1 / e``.
    """

    def __init__(
        self,
        n_losses: int,
        *,
        init_log_var: float = 0.0,
        log_var_bounds: tuple[float, float] | None = (-4.0, 4.0),
    ) -> None:
        super().__init__()
        if n_losses < 1:
            msg = f"n_losses must be >= 1, got {n_losses}"
            raise ValueError(msg)
        self.n_losses = int(n_losses)
        self.log_var_bounds = None if log_var_bounds is None else tuple(map(float, log_var_bounds))
        if self.log_var_bounds is None:
            raw0 = float(init_log_var)
        else:
            lo, hi = self.log_var_bounds
            if not lo < init_log_var < hi:
                msg = f"init_log_var={init_log_var} must lie strictly inside "
                msg += f"log_var_bounds={log_var_bounds}"
                raise ValueError(msg)
            u = (init_log_var - lo) / (hi - lo)
            raw0 = math.log(u / (1.0 - u))
        self.raw = nn.Parameter(torch.full((self.n_losses,), raw0))

    @property
    def log_var(self) -> torch.Tensor:
        """``log sigma_i^2``, shape ``(n_losses,)``."""
        if self.log_var_bounds is None:
            return self.raw
        lo, hi = self.log_var_bounds
        return lo + (hi - lo) * torch.sigmoid(self.raw)

    @property
    def sigma2(self) -> torch.Tensor:
        """``sigma_i^2``, shape ``(n_losses,)``."""
        return torch.exp(self.log_var)

    @property
    def weights(self) -> torch.Tensor:
        """Loss weights ``1 / (2 sigma_i^2)``, shape ``(n_losses,)``."""
        return 0.5 * torch.exp(-self.log_var)

    @staticmethod
    def optimal_log_var(loss: float) -> float:
        """``log sigma^2`` minimising eq. 11 for a fixed positive loss value ``loss``."""
        if loss <= 0:
            msg = f"eq. 11 has a minimiser in sigma only for a positive loss, got {loss}"
            raise ValueError(msg)
        return math.log((loss + math.sqrt(loss * loss + 8.0 * loss)) / 4.0)

    def forward(self, *losses: torch.Tensor) -> torch.Tensor:
        """Combine scalar losses: ``sum_i L_i / (2 sigma_i^2) + log(1 + sigma_i^2)``.

        Call as ``uwl(l1, l2, ...)`` or ``uwl([l1, l2, ...])``; order fixes which sigma
        belongs to which loss.
        """
        if len(losses) == 1 and isinstance(losses[0], Sequence):
            losses = tuple(losses[0])
        if len(losses) != self.n_losses:
            msg = f"expected {self.n_losses} losses, got {len(losses)}"
            raise ValueError(msg)
        vals = torch.stack([torch.as_tensor(v).reshape(()) for v in losses]).to(self.raw)
        s = self.log_var
        return (0.5 * torch.exp(-s) * vals + F.softplus(s)).sum()

    def term(self, i: int, loss: torch.Tensor) -> torch.Tensor:
        """The ``i``-th summand of :meth:`forward` alone: ``L_i / (2 sigma_i^2) + log(1 + sigma_i^2)``.

        ``forward(l_1, ..., l_n) == sum_i term(i, l_i)``; a caller that needs the terms' gradients
        at different times (see ``train.l1_step``) adds them up itself.
        """
        s = self.log_var[i]
        return 0.5 * torch.exp(-s) * torch.as_tensor(loss).to(self.raw).reshape(()) + F.softplus(s)


# --------------------------------------------------------------------------------------
# eq. 17
# --------------------------------------------------------------------------------------
def normalized_similarity(
    S,
    *,
    dtype: torch.dtype = torch.float32,
    symmetrize: bool = True,
) -> torch.Tensor:
    """``D^-1/2 S D^-1/2`` of eq. 17 over all genes, ready for :func:`laplacian_loss`.

    Parameters
    ----------
    S
        ``(N, N)`` seeding similarity (``adata.varp['seed_similarity']``): a numpy array, a
        dense torch tensor, or a scipy sparse matrix/array (e.g. a kNN graph).
    dtype
        Output dtype.
    symmetrize
        Replace ``S`` by ``(S + S^T) / 2`` first (a kNN graph is generally asymmetric; a
        symmetric ``S`` is unchanged).

    Returns
    -------
    ``(N, N)`` torch tensor on CPU: dense for dense input, sparse COO (coalesced) for sparse
    input. Move it with ``.to(device)``.

    Notes
    -----
    - Negative similarities (Pearson correlations can be negative) are clipped to 0: the
      normalised Laplacian ``I - D^-1/2 S D^-1/2`` of eq. 17 is positive semi-definite, and
      ``Tr(Z^T L Z) = 1/2 sum_ij S_ij ||z_i/sqrt(d_i) - z_j/sqrt(d_j)||^2`` a smoothness
      penalty, only for non-negative weights. With negative weights the "degree" can be
      zero or negative and the trace unbounded below.
    - The diagonal of ``S`` is kept as given (the seeding similarity has zeros there).
    - Zero-degree genes (no positive similarity to any gene) are given a self-loop: their
      row/column of the output is ``e_i`` (a 1 on the diagonal), so ``I - D^-1/2 S D^-1/2``
      has a zero row for them and they contribute nothing to ``L_lap`` (instead of a
      ``||z_i||^2`` pull towards the origin, or a division by zero).
    """
    if sp.issparse(S):
        S = sp.csr_matrix(S, dtype=np.float64)
        _check_square(S.shape)
        if not np.all(np.isfinite(S.data)):
            msg = "S contains NaN or infinite values; fix the similarity matrix first"
            raise ValueError(msg)
        if symmetrize:
            S = ((S + S.T) * 0.5).tocsr()
        S.data = np.clip(S.data, 0.0, None)
        S.eliminate_zeros()
        deg = np.asarray(S.sum(axis=1)).ravel()
        iso = deg <= 0
        d_inv_sqrt = np.where(iso, 0.0, 1.0 / np.sqrt(np.where(iso, 1.0, deg)))
        Dm = sp.diags(d_inv_sqrt)
        A = (Dm @ S @ Dm + sp.diags(iso.astype(np.float64))).tocoo()
        indices = torch.from_numpy(np.vstack([A.row, A.col]).astype(np.int64))
        values = torch.from_numpy(A.data).to(dtype)
        coo = torch.sparse_coo_tensor(indices, values, A.shape, check_invariants=True)
        return coo.coalesce()

    if isinstance(S, torch.Tensor):
        if S.is_sparse or S.layout != torch.strided:
            S = S.to_dense()
        S = S.detach().cpu().numpy()
    S = np.asarray(S, dtype=np.float64)
    _check_square(S.shape)
    if not np.all(np.isfinite(S)):
        msg = "S contains NaN or infinite values; fix the similarity matrix first"
        raise ValueError(msg)
    if symmetrize:
        S = (S + S.T) * 0.5
    S = np.clip(S, 0.0, None)
    deg = S.sum(axis=1)
    iso = deg <= 0
    d_inv_sqrt = np.where(iso, 0.0, 1.0 / np.sqrt(np.where(iso, 1.0, deg)))
    A = d_inv_sqrt[:, None] * S * d_inv_sqrt[None, :]
    A[iso, iso] = 1.0
    return torch.from_numpy(A).to(dtype)


def _check_square(shape: tuple[int, ...]) -> None:
    if len(shape) != 2 or shape[0] != shape[1]:
        msg = f"S must be a square (N, N) similarity matrix, got shape {tuple(shape)}"
        raise ValueError(msg)


def laplacian_loss(
    z: torch.Tensor, s_norm: torch.Tensor, *, reduction: str = "mean"
) -> torch.Tensor:
    """Laplacian regulariser ``L_lap = Tr(Z^T (I - D^-1/2 S D^-1/2) Z)`` of eq. 17.

    Computed as ``||Z||_F^2 - sum(Z * (A Z))`` with ``A = s_norm``, ``O(nnz(A) * D)``.

    Parameters
    ----------
    z
        ``(N, D)`` projected embeddings of ALL genes (eq. 12), carrying gradient.
    s_norm
        ``(N, N)`` output of :func:`normalized_similarity` (dense or sparse), on ``z``'s device.
    reduction
        ``"mean"`` (default) divides the trace by ``N`` (a per-gene value whose scale does not
        grow with the number of genes; use the same convention for the other epoch-level
        terms), ``"sum"`` returns the trace of eq. 17 as written.

    Returns
    -------
    Scalar tensor, >= 0 up to rounding.

    Notes
    -----
    Use it in the epoch-level loss ``L_1`` (eq. 16) on all genes. A mini-batch slice
    ``A[b][:, b]`` of a normalised similarity is not a normalised similarity (its rows no
    longer match the degrees), so ``I - A[b][:, b]`` is not a Laplacian and need not be PSD.
    """
    n = z.shape[0]
    if z.ndim != 2 or tuple(s_norm.shape) != (n, n):
        msg = f"z must be (N, D) and s_norm (N, N); got {tuple(z.shape)} and {tuple(s_norm.shape)}"
        raise ValueError(msg)
    if reduction not in ("mean", "sum"):
        msg = f"reduction must be 'mean' or 'sum', got {reduction!r}"
        raise ValueError(msg)
    a = s_norm.to(dtype=z.dtype, device=z.device)
    az = torch.sparse.mm(a, z) if a.layout == torch.sparse_coo else a @ z
    val = (z * z).sum() - (z * az).sum()
    return val / n if reduction == "mean" else val


def laplacian_prox(
    z: torch.Tensor,
    s_norm: torch.Tensor,
    lam: float,
    *,
    weight: torch.Tensor | None = None,
    tol: float = 1e-6,
    max_iter: int = 1000,
) -> torch.Tensor:
    """Proximal step of eq. 17's ``L_lap`` at ``z``: ``argmin_Y 1/2 sum_i w_i ||y_i - z_i||^2
    + lam/2 Tr(Y^T (I - A) Y)`` with ``A = D^-1/2 S D^-1/2`` (:func:`normalized_similarity`)
    and ``w = 1`` unless ``weight`` (``(N,)``, > 0) is given.

    The minimiser solves ``(W + lam I - lam A) Y = W Z``; ``A``'s eigenvalues lie in
    ``[-1, 1]``, so with ``M = W + lam I`` (diagonal) ``Y = sum_k (lam M^-1 A)^k M^-1 W Z``, a
    Neumann series whose terms shrink at least by ``lam / (min w + lam)`` each (summed until
    a term is below ``tol`` times the first). Each gene's row is pulled towards its
    neighbours in S, the more the larger ``lam`` and the smaller its own ``w`` (an
    empirical-Bayes posterior mean: ``w_i`` the precision of gene i's own z, the graph the
    prior); ``lam = 0`` returns ``z``. Differentiable in ``z`` (``O(nnz(A) D)`` per term,
    dense or sparse ``A``).
    """
    if lam < 0 or not math.isfinite(lam):
        msg = f"lam must be finite and >= 0, got {lam!r}"
        raise ValueError(msg)
    n = z.shape[0]
    if z.ndim != 2 or tuple(s_norm.shape) != (n, n):
        msg = f"z must be (N, D) and s_norm (N, N); got {tuple(z.shape)} and {tuple(s_norm.shape)}"
        raise ValueError(msg)
    if weight is not None and (tuple(weight.shape) != (n,) or not bool((weight > 0).all())):
        msg = f"weight must be (N,) = ({n},) and > 0"
        raise ValueError(msg)
    if lam == 0:
        return z
    a = s_norm.to(dtype=z.dtype, device=z.device)
    if weight is None:
        w = torch.ones(n, 1, dtype=z.dtype, device=z.device)
    else:
        w = weight.to(dtype=z.dtype, device=z.device).reshape(n, 1)
    step = lam / (w + lam)  # lam M^-1, per gene
    term = z * (w / (w + lam))
    out, first = term, float(term.detach().norm()) or 1.0
    for _ in range(max_iter):
        term = step * (torch.sparse.mm(a, term) if a.layout == torch.sparse_coo else a @ term)
        out = out + term
        if float(term.detach().norm()) <= tol * first:
            break
    return out


# --------------------------------------------------------------------------------------
# eta of eq. 16
# --------------------------------------------------------------------------------------
def eta_schedule(
    epoch: int,
    n_epochs: int,
    eta0: float = 0.5,
    *,
    kind: str = "linear",
    rate: float = 5.0,
) -> float:
    """Weight ``eta`` of ``L_lap`` in eq. 16: starts at ``eta0`` (paper: 0.5) and decays.

    Parameters
    ----------
    epoch
        0-based joint-training epoch (``epoch = 0`` gives ``eta0``).
    n_epochs
        Number of joint-training epochs (``E_max``).
    eta0
        Initial weight.
    kind
        ``"linear"``: ``eta0 * (1 - epoch / n_epochs)``, reaching 0 at ``n_epochs`` and
        clipped at 0 beyond; ``"exponential"``: ``eta0 * exp(-rate * epoch / n_epochs)``.
    rate
        Decay rate of the exponential schedule (``exp(-5) ~ 0.7 %`` left at the end).

    Returns
    -------
    ``eta`` as a float.
    """
    if n_epochs < 1 or epoch < 0:
        msg = f"need n_epochs >= 1 and epoch >= 0, got epoch={epoch}, n_epochs={n_epochs}"
        raise ValueError(msg)
    if not 0.0 <= eta0 <= 1.0:
        msg = f"eta0 must lie in [0, 1], got {eta0}"
        raise ValueError(msg)
    frac = epoch / n_epochs
    if kind == "linear":
        return float(eta0 * max(0.0, 1.0 - frac))
    if kind == "exponential":
        return float(eta0 * math.exp(-rate * frac))
    msg = f"kind must be 'linear' or 'exponential', got {kind!r}"
    raise ValueError(msg)
