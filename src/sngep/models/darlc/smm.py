"""Student's t mixture model (SMM) of DARLC Module II (main 3.3.1, supp. 1.1 and 1.3).

:class:`StudentTMixture` holds ``Theta = {pi_k, mu_k, Sigma_k, nu_k}`` as ``nn.Parameter`` s so
that Theta can be fitted by MAP-EM on detached embeddings (:meth:`StudentTMixture.fit_em`,
supp. eq. 1-17) *and* updated by gradient descent in the batch loss L2 (supp. 1.3). Every
density is computed in log space; Mahalanobis distances go through Cholesky triangular
solves, chunked over the points so that memory stays ``O(chunk * K * D)``.

``mixture='gmm'`` gives the Gaussian-mixture ablation: the same code path with
``nu -> infinity`` (Gaussian log density, ``zeta == 1``, no nu update).

Pure functions used by the joint training (main eq. 20-22):

- :func:`target_distribution`: the DEC target ``P`` of eq. 22;
- :func:`kl_loss`: ``L_kl`` of eq. 21, a batch mean over images;
- :func:`size_loss`: ``L_size`` of eq. 20.

Corrections to the paper (each repeated where it is implemented):

- supp. eq. 29 drops the normalising constant (``pi^{-D/2}``); the full multivariate t log
  density is used here (checked against :func:`scipy.stats.multivariate_t`).
- supp. eq. 10 writes ``Gamma(nu/2)`` where the expected complete-data log likelihood has
  ``log Gamma(nu/2)``.
- the nu update after supp. eq. 17 *subtracts* the gradient of an objective that must be
  *maximised*. Here nu_k maximises that objective exactly: the stationarity condition of
  eq. 17 is solved by bisection on ``log nu`` (the ECM update of Liu & Rubin 1995 and
  Peel & McLachlan 2000), clipped to ``nu_bounds`` (the objective is concave in nu).
- supp. eq. 14 leaves ``rho_0_hat`` undefined; the MAP algebra fixes it (see
  :func:`_m_step`).

``covariance='shrunk'`` (not in the paper) replaces eq. 13's ``S_0`` by
``rho_0_hat * Sigma_pool``, the pooled within-cluster covariance at the start of each fit
(:func:`_pooled_prior`): every ``Sigma_k`` is shrunk towards the covariance the clusters share
rather than towards a diagonal, which full covariances with 20-30 genes per component need.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["StudentTMixture", "kl_loss", "size_loss", "target_distribution"]

MIXTURES = ("smm", "gmm")
COVARIANCES = ("full", "diag", "shrunk")
_LOG_PI = math.log(math.pi)
_LOG_2PI = math.log(2.0 * math.pi)
_PI_FLOOR = 1e-10  # smallest mixing weight kept by the M-step (then renormalised)
_TINY_COUNT = 1.0  # a component with sum_i xi_ik < 1 point is "tiny" and may be re-seeded
_CHUNK_ELEMS = 1 << 22  # at most ~4M (point, component, feature) entries at once
_N_BISECT = 64  # bisection steps of the nu update (interval width / 2^64: exact in float64)


# ======================================================================================
# shared numerics (float32 module path and float64 EM path)
# ======================================================================================
def _mahalanobis(
    z: torch.Tensor, mu: torch.Tensor, chol: torch.Tensor, diagonal: bool = False
) -> torch.Tensor:
    """``delta_ik = (z_i - mu_k)^T Sigma_k^{-1} (z_i - mu_k)`` (supp. eq. 4), shape ``(N, K)``.

    ``Sigma_k = L_k L_k^T``; ``delta = ||L_k^{-1} (z_i - mu_k)||^2`` by one batched triangular
    solve per chunk of points. Memory ``O(chunk * K * D)``, never ``N x N``.
    ``diagonal=True`` (every ``L_k`` diagonal, and no gradient wanted for its zero
    off-diagonals): :func:`_mahalanobis_diag`, ``O(N K D)``.
    """
    n = z.shape[0]
    k, d = mu.shape
    if diagonal:
        return _mahalanobis_diag(z, mu, chol.diagonal(dim1=-2, dim2=-1).pow(-2))
    step = max(1, _CHUNK_ELEMS // max(1, k * d))
    out = []
    for s in range(0, n, step):
        diff = (z[s : s + step].unsqueeze(0) - mu.unsqueeze(1)).transpose(1, 2)  # (K, D, n)
        sol = torch.linalg.solve_triangular(chol, diff, upper=False)
        out.append(sol.pow(2).sum(dim=1).T)  # (n, K)
    if not out:
        return z.new_zeros((0, k))
    return torch.cat(out, dim=0)


def _is_diagonal(chol: torch.Tensor) -> bool:
    """``True`` when every factor ``L_k`` of ``(K, D, D)`` is diagonal (``covariance='diag'``)."""
    return not bool(torch.tril(chol.detach(), diagonal=-1).any())


def _mahalanobis_diag(z: torch.Tensor, mu: torch.Tensor, prec: torch.Tensor) -> torch.Tensor:
    """``delta_ik = sum_d (z_id - mu_kd)^2 prec_kd`` for diagonal ``Sigma_k = diag(1 / prec_k)``.

    Expanded into three ``(N, D) x (D, K)`` products, ``O(N K D)`` instead of the triangular
    solve's ``O(N K D^2)``: ``z^2 prec^T - 2 z (mu prec)^T + sum_d mu^2 prec``. The terms are
    summed in float64 whatever the input's dtype (the expansion cancels large terms, and
    float32 would lose digits for tight components), and a true 0 rounded below 0 is clamped.
    """
    z64, mu64, prec64 = z.double(), mu.double(), prec.double()
    quad = (mu64.pow(2) * prec64).sum(dim=1)
    delta = z64.pow(2) @ prec64.T - 2.0 * (z64 @ (mu64 * prec64).T) + quad
    return delta.clamp_min(0.0).to(z.dtype)


def _log_density(
    delta: torch.Tensor, half_logdet: torch.Tensor, nu: torch.Tensor | None, d: int
) -> torch.Tensor:
    """Log density of component k at z_i from ``delta`` (N, K) and ``1/2 log|Sigma_k|`` (K,).

    Student t (supp. eq. 29 with its normalising constant restored)::

        log phi = lgamma((nu+D)/2) - lgamma(nu/2) - D/2 log(nu pi) - 1/2 log|Sigma|
                  - (nu+D)/2 log(1 + delta/nu)

    ``nu=None`` gives the Gaussian (the ``nu -> infinity`` limit):
    ``-D/2 log(2 pi) - 1/2 log|Sigma| - delta/2``.
    """
    if nu is None:
        return -0.5 * d * _LOG_2PI - half_logdet - 0.5 * delta
    log_c = (
        torch.lgamma(0.5 * (nu + d))
        - torch.lgamma(0.5 * nu)
        - 0.5 * d * (torch.log(nu) + _LOG_PI)
        - half_logdet
    )
    return log_c - 0.5 * (nu + d) * torch.log1p(delta / nu)


def _safe_cholesky(sigma: torch.Tensor) -> torch.Tensor:
    """Cholesky factors of a batch of SPD matrices.

    A tiny diagonal jitter (starting at ``1e-12`` times the mean diagonal) is added only to
    the matrices whose factorisation fails, e.g. through round-off; the MAP prior already
    keeps every M-step covariance positive definite.
    """
    chol, info = torch.linalg.cholesky_ex(sigma)
    if not bool((info > 0).any()):
        return chol
    eye = torch.eye(sigma.shape[-1], dtype=sigma.dtype, device=sigma.device)
    scale = sigma.diagonal(dim1=-2, dim2=-1).mean(-1).abs().clamp_min(1e-300)
    jitter = 1e-12
    for _ in range(20):
        bad = info > 0
        fixed = sigma + bad[:, None, None] * (jitter * scale)[:, None, None] * eye
        chol, info = torch.linalg.cholesky_ex(fixed)
        if not bool((info > 0).any()):
            return chol
        jitter *= 10.0
    msg = "covariance matrices are not positive definite even after jitter; check z for NaN/inf"
    raise RuntimeError(msg)


# ======================================================================================
# the module
# ======================================================================================
class StudentTMixture(nn.Module):
    """Student's t (or Gaussian) mixture with MAP-EM fitting and differentiable densities.

    Parameters
    ----------
    n_components
        Number of components ``K``.
    n_features
        Dimension ``D`` of the embeddings.
    mixture
        ``'smm'`` (Student t, the paper) or ``'gmm'`` (Gaussian ablation: ``nu = inf``).
    nu_init
        Initial degrees of freedom (also given to re-seeded components).
    nu_bounds
        ``(min, max)`` of the degrees of freedom. The EM update is the maximiser within these
        bounds; the gradient path sees ``exp(log_nu)`` clamped to them (call
        :meth:`project_` after an optimiser step to pull ``log_nu`` back inside).
    covariance
        ``'full'`` (supp. eq. 14-15), ``'diag'`` (diagonal ``Sigma_k``), or ``'shrunk'``:
        full, with the NIW scale ``S_0`` of eq. 13 replaced by ``rho_0_hat`` times the pooled
        within-cluster covariance at the start of each fit (:func:`_pooled_prior`), so a small
        component borrows the shape the clusters share instead of fitting its own.

    Notes
    -----
    Parameters (all ``nn.Parameter``, trainable by gradient descent):

    - ``mu`` ``(K, D)``: means;
    - ``chol_lower`` ``(K, D, D)`` (only its strictly lower triangle is used) and
      ``chol_log_diag`` ``(K, D)``: ``Sigma_k = L_k L_k^T`` with
      ``L_k = tril(chol_lower_k, -1) + diag(exp(chol_log_diag_k))``, so any gradient step
      keeps ``Sigma_k`` positive definite and ``1/2 log|Sigma_k| = sum(chol_log_diag_k)``;
    - ``log_nu`` ``(K,)``: log degrees of freedom (frozen for ``'gmm'``);
    - ``pi_logits`` ``(K,)``: ``pi = softmax(pi_logits)``.
    """

    def __init__(
        self,
        n_components: int,
        n_features: int,
        *,
        mixture: str = "smm",
        nu_init: float = 5.0,
        nu_bounds: tuple[float, float] = (1.0, 1000.0),
        covariance: str = "full",
    ) -> None:
        super().__init__()
        if int(n_components) < 1 or int(n_features) < 1:
            msg = f"n_components and n_features must be >= 1, got {n_components}, {n_features}"
            raise ValueError(msg)
        if mixture not in MIXTURES:
            msg = f"mixture must be one of {MIXTURES}, got {mixture!r}"
            raise ValueError(msg)
        if covariance not in COVARIANCES:
            msg = f"covariance must be one of {COVARIANCES}, got {covariance!r}"
            raise ValueError(msg)
        lo, hi = (float(b) for b in nu_bounds)
        if not 0.0 < lo < hi < math.inf:
            msg = f"nu_bounds must satisfy 0 < min < max < inf, got {nu_bounds}"
            raise ValueError(msg)
        if not lo <= float(nu_init) <= hi:
            msg = f"nu_init={nu_init} must lie within nu_bounds={nu_bounds}"
            raise ValueError(msg)
        k, d = int(n_components), int(n_features)
        self.n_components = k
        self.n_features = d
        self.mixture = mixture
        self.nu_init = float(nu_init)
        self.nu_bounds = (lo, hi)
        self.mu = nn.Parameter(torch.zeros(k, d))
        self.covariance = covariance
        # diagonal covariances: the strictly lower Cholesky part stays zero (no gradient)
        self.chol_lower = nn.Parameter(torch.zeros(k, d, d), requires_grad=covariance != "diag")
        self.chol_log_diag = nn.Parameter(torch.zeros(k, d))
        self.log_nu = nn.Parameter(
            torch.full((k,), math.log(nu_init)), requires_grad=mixture == "smm"
        )
        self.pi_logits = nn.Parameter(torch.zeros(k))

    def extra_repr(self) -> str:
        """Shown by ``repr``."""
        return (
            f"n_components={self.n_components}, n_features={self.n_features}, "
            f"mixture={self.mixture!r}, covariance={self.covariance!r}, nu_bounds={self.nu_bounds}"
        )

    # ------------------------------------------------------------------ parameters
    @property
    def is_gaussian(self) -> bool:
        """``True`` for the Gaussian ablation (``mixture='gmm'``)."""
        return self.mixture == "gmm"

    @property
    def is_diagonal(self) -> bool:
        """``True`` when the components have diagonal covariances."""
        return self.covariance == "diag"

    @property
    def cholesky(self) -> torch.Tensor:
        """Lower Cholesky factors ``L`` ``(K, D, D)`` with ``Sigma = L L^T``."""
        return torch.tril(self.chol_lower, diagonal=-1) + torch.diag_embed(self.chol_log_diag.exp())

    @property
    def sigma(self) -> torch.Tensor:
        """Covariance (scale) matrices ``Sigma`` ``(K, D, D)``."""
        chol = self.cholesky
        return chol @ chol.transpose(-1, -2)

    @property
    def pi(self) -> torch.Tensor:
        """Mixing weights ``(K,)``."""
        return torch.softmax(self.pi_logits, dim=0)

    @property
    def log_pi(self) -> torch.Tensor:
        """Log mixing weights ``(K,)``."""
        return torch.log_softmax(self.pi_logits, dim=0)

    @property
    def nu(self) -> torch.Tensor:
        """Degrees of freedom ``(K,)`` within ``nu_bounds`` (``inf`` for ``'gmm'``)."""
        if self.is_gaussian:
            return torch.full_like(self.log_nu, math.inf)
        lo, hi = self.nu_bounds
        return self.log_nu.clamp(math.log(lo), math.log(hi)).exp()

    @torch.no_grad()
    def project_(self) -> StudentTMixture:
        """Clamp ``log_nu`` into ``log(nu_bounds)`` in place (call after an optimiser step)."""
        lo, hi = self.nu_bounds
        self.log_nu.clamp_(math.log(lo), math.log(hi))
        return self

    @torch.no_grad()
    def set_parameters(self, pi: Any, mu: Any, sigma: Any, nu: Any = None) -> StudentTMixture:
        """Write ``pi (K,)``, ``mu (K, D)``, ``sigma (K, D, D)``, ``nu (K,)`` into the parameters.

        ``sigma`` is factorised (in float64) into the Cholesky parametrisation; ``nu`` is
        clipped to ``nu_bounds`` and ignored for ``'gmm'`` (it may be ``None`` there).
        Arrays or tensors of any float dtype/device are accepted.
        """
        k, d = self.n_components, self.n_features
        dev, dt = self.mu.device, self.mu.dtype
        as64 = lambda a: torch.as_tensor(a, dtype=torch.float64).to(dev)  # noqa: E731
        pi64, mu64, sig64 = as64(pi), as64(mu), as64(sigma)
        if pi64.shape != (k,) or mu64.shape != (k, d) or sig64.shape != (k, d, d):
            msg = (
                f"expected pi {(k,)}, mu {(k, d)}, sigma {(k, d, d)}; got {tuple(pi64.shape)}, "
                f"{tuple(mu64.shape)}, {tuple(sig64.shape)}"
            )
            raise ValueError(msg)
        if not (torch.isfinite(pi64).all() and torch.isfinite(mu64).all()):
            msg = "pi and mu must be finite"
            raise ValueError(msg)
        if bool((pi64 < 0).any()) or float(pi64.sum()) <= 0:
            msg = "pi must be non-negative with a positive sum"
            raise ValueError(msg)
        sig64 = 0.5 * (sig64 + sig64.transpose(-1, -2))
        chol, info = torch.linalg.cholesky_ex(sig64)
        if bool((info > 0).any()) or not torch.isfinite(sig64).all():
            msg = "sigma must be a batch of finite symmetric positive-definite matrices"
            raise ValueError(msg)
        pi64 = (pi64 / pi64.sum()).clamp_min(_PI_FLOOR)
        self.pi_logits.copy_(torch.log(pi64 / pi64.sum()).to(dt))
        self.mu.copy_(mu64.to(dt))
        self.chol_lower.copy_(torch.tril(chol, diagonal=-1).to(dt))
        self.chol_log_diag.copy_(torch.log(chol.diagonal(dim1=-2, dim2=-1)).to(dt))
        if not self.is_gaussian:
            if nu is None:
                msg = "nu is required for mixture='smm'"
                raise ValueError(msg)
            nu64 = as64(nu).reshape(-1)
            if nu64.shape != (k,) or not bool((nu64 > 0).all()):
                msg = f"nu must be {(k,)} and positive, got {tuple(nu64.shape)}"
                raise ValueError(msg)
            lo, hi = self.nu_bounds
            self.log_nu.copy_(torch.log(nu64.clamp(lo, hi)).to(dt))
        return self

    @torch.no_grad()
    def get_parameters(self) -> dict[str, np.ndarray]:
        """``{'pi', 'mu', 'sigma', 'nu'}`` as numpy arrays (``nu = inf`` for ``'gmm'``)."""
        return {
            "pi": self.pi.cpu().numpy(),
            "mu": self.mu.detach().cpu().numpy(),
            "sigma": self.sigma.cpu().numpy(),
            "nu": self.nu.cpu().numpy(),
        }

    # ------------------------------------------------------------------ densities
    def _check_z(self, z: torch.Tensor) -> torch.Tensor:
        if not isinstance(z, torch.Tensor):
            msg = f"z must be a torch.Tensor of shape (N, {self.n_features}), got {type(z)}"
            raise TypeError(msg)
        if z.ndim != 2 or z.shape[1] != self.n_features:
            msg = f"z must have shape (N, {self.n_features}), got {tuple(z.shape)}"
            raise ValueError(msg)
        if z.device != self.mu.device:
            msg = (
                f"z is on {z.device} but the mixture is on {self.mu.device}; "
                "move one of them (e.g. smm.to(z.device))"
            )
            raise ValueError(msg)
        return z

    def log_component_density(self, z: torch.Tensor) -> torch.Tensor:
        """``log phi(z_i | mu_k, Sigma_k, nu_k)``, shape ``(N, K)``; differentiable.

        Multivariate t with its full normalising constant (supp. eq. 29 omits part of it);
        Gaussian for ``'gmm'``. ``z`` is cast to the parameters' dtype.
        """
        z = self._check_z(z).to(self.mu.dtype)
        delta = _mahalanobis(z, self.mu, self.cholesky, diagonal=self.is_diagonal)
        half_logdet = self.chol_log_diag.sum(dim=-1)
        nu = None if self.is_gaussian else self.nu
        return _log_density(delta, half_logdet, nu, self.n_features)

    def log_joint(self, z: torch.Tensor) -> torch.Tensor:
        """``log q_ik = log pi_k + log phi(z_i | theta_k)`` (main eq. 19), shape ``(N, K)``."""
        return self.log_pi + self.log_component_density(z)

    forward = log_joint

    def log_soft_assign(self, z: torch.Tensor) -> torch.Tensor:
        """Log of the normalised assignments ``Q`` (main eq. 22, supp. eq. 19), ``(N, K)``."""
        return torch.log_softmax(self.log_joint(z), dim=1)

    def soft_assign(self, z: torch.Tensor) -> torch.Tensor:
        """Normalised assignments ``Q_ik = q_ik / sum_c q_ic`` (main eq. 22), ``(N, K)``."""
        return torch.softmax(self.log_joint(z), dim=1)

    def log_likelihood(self, z: torch.Tensor) -> torch.Tensor:
        """``L_ll = sum_i log sum_k q_ik`` (main eq. 18), a scalar (a sum, not a mean)."""
        return torch.logsumexp(self.log_joint(z), dim=1).sum()

    @torch.no_grad()
    def predict(self, z: torch.Tensor) -> torch.Tensor:
        """Hard labels ``argmax_k q_ik`` ``(N,)``."""
        return self.log_joint(z).argmax(dim=1)

    # ------------------------------------------------------------------ MAP-EM
    @torch.no_grad()
    def fit_em(
        self,
        z: torch.Tensor,
        *,
        n_iter: int = 100,
        tol: float = 1e-5,
        init: str = "kmeans++",
        random_state: int | None = 0,
        n_init: int = 3,
        n_lloyd: int = 10,
        labels: Any = None,
    ) -> dict[str, Any]:
        """Fit Theta by MAP-EM (supp. 1.1) on ``z`` (detached), writing the parameters in place.

        EM runs in float64 on ``z``'s device; the result is stored in the module's dtype.

        Parameters
        ----------
        z
            ``(N, D)`` embeddings; gradients are not tracked.
        n_iter
            Maximum number of EM iterations (``0``: initialise only).
        tol
            Stop when the log-posterior changes by less than ``tol`` per point.
        init
            ``'kmeans++'``: greedy k-means++ seeding and ``n_lloyd`` Lloyd iterations,
            covariances from the hard assignment (MAP form, so singletons stay positive
            definite), ``nu = nu_init``. ``'current'``: start from the module's parameters
            (warm start; ``n_init`` is ignored). ``'labels'``: start from the hard partition
            ``labels`` (e.g. a converged k-means with many restarts), same covariances.
        random_state
            Seed of the local :func:`numpy.random.default_rng` used by k-means++.
        n_init
            Number of k-means++ starts; EM runs from each and the run with the highest final
            log-posterior (the MAP objective) is kept. k-means readily spends a centre on the
            heavy tail of a t component or on outliers, a poor EM start; restarts guard
            against it.
        n_lloyd
            Lloyd iterations after k-means++ seeding.
        labels
            ``(N,)`` integer labels in ``[0, K)`` for ``init='labels'``.

        Returns
        -------
        dict with ``'log_posterior'`` and ``'log_likelihood'`` (lists for the kept run;
        entry 0 is the starting point, entry t the value after t EM iterations; the
        log-posterior is the MAP objective up to an additive constant and never decreases),
        ``'n_iter'``, ``'converged'``, ``'n_reseeded'`` and ``'init_log_posteriors'`` (final
        log-posterior of every start).

        Notes
        -----
        Re-seeding: after an M-step, components with ``sum_i xi_ik < 1`` (empty or tiny) are
        moved onto the points with the lowest mixture likelihood (one distinct point each,
        worst first), with ``pi_k = 1/N``, ``nu_k = nu_init`` and their M-step covariance
        (about the prior mode ``S_0 / rho_0_hat`` for an empty component). The move is kept
        only if it increases the log-posterior (so monotonicity is preserved); at most ``K``
        re-seeding attempts per run.
        """
        z = self._check_z(z)
        if init not in ("kmeans++", "current", "labels"):
            msg = f"init must be 'kmeans++', 'current' or 'labels', got {init!r}"
            raise ValueError(msg)
        if int(n_iter) < 0 or int(n_init) < 1:
            msg = f"need n_iter >= 0 and n_init >= 1, got n_iter={n_iter}, n_init={n_init}"
            raise ValueError(msg)
        x = z.detach().to(torch.float64)
        n, k = x.shape[0], self.n_components
        if n < 2:
            msg = f"fit_em needs at least 2 points, got {n}"
            raise ValueError(msg)
        if not bool(torch.isfinite(x).all()):
            msg = "z contains NaN or inf; fix the embedding before fitting the mixture"
            raise ValueError(msg)
        prior = _niw_prior(x, k)
        shrunk = self.covariance == "shrunk"
        if init == "kmeans++":
            if k > n:
                msg = f"n_components ({k}) must be <= the number of points ({n})"
                raise ValueError(msg)
            rng = np.random.default_rng(random_state)
            n_starts = 1 if k == 1 else int(n_init)  # one component: every start is the same
            starts = (
                _init_kmeans(x, k, prior, self.nu_init, rng, int(n_lloyd), self.is_diagonal)
                for _ in range(n_starts)
            )
        elif init == "labels":
            lab = np.asarray(labels if labels is not None else [], dtype=np.int64).reshape(-1)
            if lab.shape != (n,) or lab.min(initial=0) < 0 or lab.max(initial=0) >= k:
                msg = f"init='labels' needs labels of shape ({n},) with values in [0, {k})"
                raise ValueError(msg)
            centers = x.mean(dim=0, keepdim=True).expand(k, -1).cpu().numpy()
            start = _state_from_labels(x, lab, centers, prior, self.nu_init, self.is_diagonal)
            starts = iter([start])
        else:
            chol = self.cholesky.detach().to(torch.float64)
            current = _State(
                pi=self.pi.detach().to(torch.float64),
                mu=self.mu.detach().to(torch.float64),
                sigma=chol @ chol.transpose(-1, -2),
                nu=self.nu.detach().to(torch.float64).clamp(*self.nu_bounds),
            )
            starts = iter([current])
        best: tuple[_State, dict[str, Any]] | None = None
        finals = []
        for start in starts:
            p = _pooled_prior(x, start, prior, self.is_gaussian) if shrunk else prior
            state, history = self._run_em(x, start, p, int(n_iter), float(tol))
            finals.append(history["log_posterior"][-1])
            if best is None or finals[-1] > best[1]["log_posterior"][-1]:
                best = (state, history)
        state, history = best
        history["init_log_posteriors"] = finals
        gaussian = self.is_gaussian
        self.set_parameters(state.pi, state.mu, state.sigma, None if gaussian else state.nu)
        return history

    def _run_em(
        self, x: torch.Tensor, state: _State, prior: _Prior, n_iter: int, tol: float
    ) -> tuple[_State, dict[str, Any]]:
        """EM iterations from ``state`` (see :meth:`fit_em`)."""
        n, k = x.shape[0], self.n_components
        gaussian = self.is_gaussian
        stats = _e_step(x, state, prior, gaussian)
        history: dict[str, Any] = {
            "log_posterior": [stats.log_post],
            "log_likelihood": [stats.log_lik],
            "n_iter": 0,
            "converged": False,
            "n_reseeded": 0,
        }
        budget = k
        for it in range(n_iter):
            new = _m_step(x, stats, state, prior, gaussian, self.nu_bounds, self.is_diagonal)
            new_stats = _e_step(x, new, prior, gaussian)
            tiny = torch.nonzero(new_stats.xi < _TINY_COUNT).flatten()
            if tiny.numel() and budget > 0:
                tiny = tiny[:budget]
                budget -= int(tiny.numel())
                cand = _reseed(x, new, new_stats, tiny, self.nu_init)
                cand_stats = _e_step(x, cand, prior, gaussian)
                if cand_stats.log_post > new_stats.log_post:
                    new, new_stats = cand, cand_stats
                    history["n_reseeded"] += int(tiny.numel())
            change = new_stats.log_post - stats.log_post
            state, stats = new, new_stats
            history["log_posterior"].append(stats.log_post)
            history["log_likelihood"].append(stats.log_lik)
            history["n_iter"] = it + 1
            if abs(change) < tol * n:
                history["converged"] = True
                break
        return state, history


# ======================================================================================
# MAP-EM internals (float64, no autograd)
# ======================================================================================
@dataclass
class _State:
    pi: torch.Tensor  # (K,)
    mu: torch.Tensor  # (K, D)
    sigma: torch.Tensor  # (K, D, D)
    nu: torch.Tensor  # (K,); unused for the Gaussian ablation


@dataclass
class _Prior:
    s0: torch.Tensor  # (D,) diagonal of S_0, or (D, D) for covariance='shrunk'
    rho0_hat: float  # rho_0 + D + 2: the NIW weight in the Sigma MAP (see _m_step)


@dataclass
class _Stats:
    resp: torch.Tensor  # (N, K) xi_ik, supp. eq. 6
    zeta: torch.Tensor | None  # (N, K) E[zeta_ik], supp. eq. 7
    elog_zeta: torch.Tensor | None  # (N, K) E[log zeta_ik], supp. eq. 16
    xi: torch.Tensor  # (K,) sum_i xi_ik
    log_norm: torch.Tensor  # (N,) log p(z_i | Theta)
    log_lik: float
    log_post: float


def _niw_prior(x: torch.Tensor, k: int) -> _Prior:
    """Weak NIW prior of supp. eq. 12-13.

    ``rho_0 = D + 2``, ``kappa_0 = 0``, ``S_0 = K^{-1/D} diag(var(Z))`` (per-dimension
    variance with 1/N, as in Murphy's MAP-EM for mixtures (Machine Learning, 2012, 11.4.2.8),
    from which eq. 11-15 are taken; eq. 13 writes the scatter without the 1/N).

    A dimension with (near) zero variance gets the floor ``1e-6 * mean variance`` (or
    ``1e-10`` when everything is constant) so that every MAP covariance is positive definite.
    """
    d = x.shape[1]
    var = x.var(dim=0, unbiased=False)
    floor = max(1e-6 * float(var.mean()), 1e-10)
    s0 = k ** (-1.0 / d) * var.clamp_min(floor)
    rho0 = d + 2.0
    return _Prior(s0=s0, rho0_hat=rho0 + d + 2.0)


def _pooled_prior(x: torch.Tensor, start: _State, prior: _Prior, gaussian: bool) -> _Prior:
    """The NIW prior of ``covariance='shrunk'``: ``S_0 = rho_0_hat * Sigma_pool``.

    ``Sigma_pool = (K S_0 + sum_k S_k) / (K rho_0_hat + N)`` is the pooled within-cluster
    covariance (with eq. 13's diagonal ``S_0`` as its own prior) of ``start``'s E-step
    weights, so each M-step gives
    ``Sigma_k = (rho_0_hat Sigma_pool + S_k) / (rho_0_hat + xi_k)``: a component of ``xi_k``
    genes borrows ``rho_0_hat = 2D + 4`` pseudo-genes' worth of the shared shape. The target
    is estimated once per fit (empirical Bayes) and then fixed, so within a fit EM is MAP-EM
    for a fixed prior and the log-posterior never decreases; a warm-started fit re-estimates
    it from its start, so its objective is not comparable with the previous fit's.
    """
    stats = _e_step(x, start, prior, gaussian)
    omega = stats.resp if gaussian else stats.resp * stats.zeta
    s_k = _weighted_scatter(x, omega, start.mu)
    k = s_k.shape[0]
    pooled = (k * torch.diag_embed(prior.s0) + s_k.sum(0)) / (k * prior.rho0_hat + stats.xi.sum())
    return _Prior(s0=prior.rho0_hat * pooled, rho0_hat=prior.rho0_hat)


def _e_step(x: torch.Tensor, state: _State, prior: _Prior, gaussian: bool) -> _Stats:
    """Expected sufficient statistics (supp. eq. 6, 7, 16) and the MAP objective at ``state``.

    The log-posterior (up to constants) is
    ``sum_i log sum_k pi_k phi(z_i | theta_k)`` (eq. 18) ``+ log Dir(pi | 1)`` (constant)
    ``+ sum_k log NIW(mu_k, Sigma_k | m_0, 0, S_0, rho_0)`` with eq. 12's log density
    ``-(rho_0 + D + 2)/2 log|Sigma_k| - 1/2 tr(S_0 Sigma_k^{-1})`` (kappa_0 = 0).
    """
    d = x.shape[1]
    chol = _safe_cholesky(state.sigma)
    delta = _mahalanobis(x, state.mu, chol, diagonal=_is_diagonal(chol))  # no autograd here
    half_logdet = torch.log(chol.diagonal(dim1=-2, dim2=-1)).sum(dim=-1)
    nu = None if gaussian else state.nu
    log_joint = torch.log(state.pi) + _log_density(delta, half_logdet, nu, d)
    log_norm = torch.logsumexp(log_joint, dim=1)
    resp = torch.exp(log_joint - log_norm[:, None])  # eq. 6
    eye = torch.eye(d, dtype=x.dtype, device=x.device).expand_as(chol)
    chol_inv = torch.linalg.solve_triangular(chol, eye, upper=False)
    if prior.s0.ndim == 1:
        prec_diag = chol_inv.pow(2).sum(dim=1)  # (Sigma^{-1})_dd = sum_j (L^{-1})_jd^2
        trace = (prior.s0 * prec_diag).sum(-1)  # tr(S_0 Sigma^{-1})
    else:  # tr(S_0 Sigma^{-1}) = tr(L^{-1} S_0 L^{-T}) = sum((L^{-1} S_0) * L^{-1})
        trace = ((chol_inv @ prior.s0) * chol_inv).sum(dim=(-2, -1))
    log_prior = (-prior.rho0_hat * half_logdet - 0.5 * trace).sum()
    log_lik = float(log_norm.sum())
    if gaussian:
        zeta = elog_zeta = None
    else:
        a = 0.5 * (state.nu + d)  # posterior Gamma shape of zeta (eq. 7, 16)
        b = 0.5 * (state.nu + delta)  # posterior Gamma rate
        zeta = a / b  # eq. 7: (nu + D) / (nu + delta)
        elog_zeta = torch.digamma(a) - torch.log(b)  # eq. 16
    return _Stats(
        resp=resp,
        zeta=zeta,
        elog_zeta=elog_zeta,
        xi=resp.sum(dim=0),
        log_norm=log_norm,
        log_lik=log_lik,
        log_post=log_lik + float(log_prior),
    )


def _weighted_scatter(
    x: torch.Tensor, w: torch.Tensor, mu: torch.Tensor, diagonal: bool = False
) -> torch.Tensor:
    """``S_k = sum_i w_ik (z_i - mu_k)(z_i - mu_k)^T`` ``(K, D, D)``, chunked over points.

    ``diagonal=True``: only the diagonal (zeros elsewhere), the only part diagonal
    covariances use.
    """
    n = x.shape[0]
    k, d = mu.shape
    if diagonal:  # sum_i w_ik (x_id - mu_kd)^2 by products, O(N K D)
        wsum = w.sum(dim=0)[:, None]
        var = w.T @ x.pow(2) - 2.0 * mu * (w.T @ x) + mu.pow(2) * wsum
        return torch.diag_embed(var.clamp_min(0.0))
    step = max(1, _CHUNK_ELEMS // max(1, k * d))
    out = x.new_zeros((k, d, d))
    for s in range(0, n, step):
        diff = x[s : s + step].unsqueeze(1) - mu.unsqueeze(0)  # (n, K, D)
        out += torch.einsum("nkd,nke->kde", diff * w[s : s + step, :, None], diff)
    return 0.5 * (out + out.transpose(-1, -2))


def _map_sigma(
    x: torch.Tensor,
    w: torch.Tensor,
    mu: torch.Tensor,
    prior: _Prior,
    counts: torch.Tensor,
    diagonal: bool,
) -> torch.Tensor:
    """MAP covariances ``(S_0 + S_k) / (rho_0_hat + n_k)`` (supp. eq. 14); diagonal if asked."""
    s_k = _weighted_scatter(x, w, mu, diagonal)
    s0 = torch.diag_embed(prior.s0) if prior.s0.ndim == 1 else prior.s0
    sigma = (s0.expand_as(s_k) + s_k) / (prior.rho0_hat + counts)[:, None, None]
    return torch.diag_embed(sigma.diagonal(dim1=-2, dim2=-1)) if diagonal else sigma


def _solve_nu(c: torch.Tensor, bounds: tuple[float, float]) -> torch.Tensor:
    """Maximiser of ``sum_i xi_ik F(zeta_ik, nu)`` over ``nu`` in ``bounds``, per component.

    Setting supp. eq. 17 (with eq. 10's ``Gamma(nu/2)`` read as ``log Gamma(nu/2)``) to zero:

        g(nu) = 1 + log(nu/2) - psi(nu/2) + c_k = 0,
        c_k = sum_i xi_ik (E[log zeta_ik] - E[zeta_ik]) / sum_i xi_ik,

    the ECM update of Liu & Rubin (1995) / Peel & McLachlan (2000). ``log x - psi(x)`` is
    decreasing, so ``g`` is decreasing and the objective concave in nu: the root (found by
    bisection on ``log nu``) is the unique maximiser, clipped to the bounds. This replaces the
    update after eq. 17, which steps *against* the gradient of an objective to be maximised.
    Since ``c_k <= -1`` (Jensen), ``g(inf) = 1 + c_k <= 0`` and the root always exists
    (possibly at infinity, then clipped to ``max``).
    """
    lo = torch.full_like(c, math.log(bounds[0]))
    hi = torch.full_like(c, math.log(bounds[1]))

    def g(log_nu: torch.Tensor) -> torch.Tensor:
        half = 0.5 * log_nu.exp()
        return 1.0 + torch.log(half) - torch.digamma(half) + c

    g_lo, g_hi = g(lo), g(hi)
    a, b = lo.clone(), hi.clone()
    for _ in range(_N_BISECT):
        m = 0.5 * (a + b)
        up = g(m) > 0  # root lies above m
        a = torch.where(up, m, a)
        b = torch.where(up, b, m)
    root = 0.5 * (a + b)
    root = torch.where(g_lo <= 0, lo, root)
    root = torch.where(g_hi >= 0, hi, root)
    return root.exp()


def _m_step(
    x: torch.Tensor,
    stats: _Stats,
    state: _State,
    prior: _Prior,
    gaussian: bool,
    nu_bounds: tuple[float, float],
    diagonal: bool = False,
) -> _State:
    """MAP M-step (supp. eq. 11-15, nu by eq. 17 solved exactly).

    - pi (eq. 14, Dirichlet alpha_0 = 1): ``(alpha_k^N - 1) / (sum alpha^N - K) = xi_k / N``,
      floored at ``1e-10`` and renormalised.
    - mu (eq. 13-14, kappa_0 = 0): ``mu_k = sum_i omega_ik z_i / sum_i omega_ik`` with
      ``omega_ik = xi_ik zeta_ik`` (``zeta = 1`` for the Gaussian ablation). A component with
      no weight at all keeps its mean.
    - Sigma (eq. 14-15). Maximising the expected complete-data log-likelihood
      ``-xi_k/2 log|Sigma| - 1/2 tr(S_mle,k Sigma^{-1})`` plus eq. 12's log prior
      ``-(rho_0 + D + 2)/2 log|Sigma| - 1/2 tr(S_0 Sigma^{-1})`` (the NIW's
      ``|Sigma|^{-1/2}`` from its normal part plus ``|Sigma|^{-(rho_0+D+1)/2}``) gives

          Sigma_k = (S_0 + S_mle,k) / (rho_0_hat + xi_k),   rho_0_hat = rho_0 + D + 2 = 2D + 4,

      i.e. the first equality of eq. 14, ``S_N / (rho_N + D + 2)`` with ``rho_N = rho_0 + xi_k``.
      Eq. 14 then writes ``rho_0_hat`` without defining it; the algebra forces
      ``rho_0_hat = rho_0 + D + 2``, ``beta = rho_0_hat / (rho_0_hat + xi_k)``,
      ``Sigma_0 = S_0 / rho_0_hat``, ``Sigma_mle,k = S_mle,k / xi_k``, so
      ``Sigma_k = beta Sigma_0 + (1 - beta) Sigma_mle,k``. Because ``S_0`` is diagonal this is
      exactly eq. 15 (off-diagonals ``(1 - beta) Sigma_mle``). ``S_mle,k`` is the
      omega-weighted scatter about the new ``mu_k`` (eq. 14).
    - nu (eq. 10, 16, 17): :func:`_solve_nu`, with the E-step's ``E[zeta]``, ``E[log zeta]``.

    ``diagonal=True`` keeps only the diagonal of Sigma: with a diagonal ``S_0`` each variance
    is the same MAP expression per dimension (eq. 15 with the off-diagonals shrunk to 0).
    """
    n = x.shape[0]
    resp, xi = stats.resp, stats.xi
    pi = (xi / n).clamp_min(_PI_FLOOR)
    pi = pi / pi.sum()
    omega = resp if gaussian else resp * stats.zeta
    w = omega.sum(dim=0)
    has_w = w > 1e-300
    mu = (omega.T @ x) / torch.where(has_w, w, torch.ones_like(w))[:, None]
    mu = torch.where(has_w[:, None], mu, state.mu)
    sigma = _map_sigma(x, omega, mu, prior, xi, diagonal)
    if gaussian:
        nu = state.nu
    else:
        has_xi = xi > 1e-12
        c = (resp * (stats.elog_zeta - stats.zeta)).sum(dim=0) / torch.where(
            has_xi, xi, torch.ones_like(xi)
        )
        nu = torch.where(has_xi, _solve_nu(c, nu_bounds), state.nu)
    return _State(pi=pi, mu=mu, sigma=sigma, nu=nu)


def _reseed(
    x: torch.Tensor, state: _State, stats: _Stats, idx: torch.Tensor, nu_init: float
) -> _State:
    """Move components ``idx`` onto the worst-fitting points (lowest ``log p(z_i)``).

    Only ``mu``, ``pi = 1/N`` and ``nu = nu_init`` change. The covariance is kept: for a
    component with (almost) no responsibility the M-step has already set it to (nearly) the
    prior mode ``Sigma_0 = S_0 / rho_0_hat``, which a narrower choice would have to pay for
    in the NIW log prior.
    """
    n = x.shape[0]
    worst = torch.argsort(stats.log_norm)[: idx.numel()]
    mu, nu, pi = state.mu.clone(), state.nu.clone(), state.pi.clone()
    mu[idx] = x[worst]
    nu[idx] = nu_init
    pi[idx] = 1.0 / n
    return _State(pi=pi / pi.sum(), mu=mu, sigma=state.sigma, nu=nu)


def _kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-means++ seeding: indices of ``k`` initial centres.

    Arthur & Vassilvitskii (2007) with ``2 + int(log k)`` local trials per centre, keeping
    the candidate that most reduces the potential (as scikit-learn does). Far outliers are
    likely D^2 candidates but reduce the potential little, so greedy seeding rarely spends a
    centre on them.
    """
    n = x.shape[0]
    n_trials = 2 + int(math.log(k))
    idx = [int(rng.integers(n))]
    d2 = ((x - x[idx[0]]) ** 2).sum(axis=1)
    for _ in range(1, k):
        total = d2.sum()
        if total > 0:
            cand = rng.choice(n, size=n_trials, p=d2 / total)
        else:  # every point coincides with a centre already: pick any unused index
            cand = rng.choice(np.setdiff1d(np.arange(n), idx), size=1)
        cand_d2 = np.minimum(d2[None, :], ((x[None, :, :] - x[cand][:, None, :]) ** 2).sum(-1))
        best = int(np.argmin(cand_d2.sum(axis=1)))
        idx.append(int(cand[best]))
        d2 = cand_d2[best]
    return np.asarray(idx)


def _init_kmeans(
    x: torch.Tensor,
    k: int,
    prior: _Prior,
    nu_init: float,
    rng: np.random.Generator,
    n_lloyd: int,
    diagonal: bool = False,
) -> _State:
    """k-means++ then Lloyd; MAP covariances ``(S_0 + S_k) / (rho_0_hat + n_k)`` per cluster."""
    xn = x.cpu().numpy()
    n, d = xn.shape
    centers = xn[_kmeans_pp(xn, k, rng)].copy()
    sq = (xn**2).sum(axis=1)

    def assign(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dist = sq[:, None] - 2.0 * xn @ c.T + (c**2).sum(axis=1)[None, :]
        lab = dist.argmin(axis=1)
        return lab, np.maximum(dist[np.arange(n), lab], 0.0)

    labels, mind = assign(centers)
    for _ in range(n_lloyd):
        counts = np.bincount(labels, minlength=k)
        sums = np.zeros((k, d))
        np.add.at(sums, labels, xn)
        new = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], centers)
        empty = np.flatnonzero(counts == 0)
        if empty.size:  # empty cluster: move it to the points farthest from their centres
            far = np.argsort(-mind)[: empty.size]
            new[empty] = xn[far]
        if np.array_equal(new, centers):
            break
        centers = new
        labels, mind = assign(centers)
    return _state_from_labels(x, labels, centers, prior, nu_init, diagonal)


def _state_from_labels(
    x: torch.Tensor,
    labels: np.ndarray,
    centers: np.ndarray,
    prior: _Prior,
    nu_init: float,
    diagonal: bool,
) -> _State:
    """Theta of a hard partition: cluster means (``centers`` for empty clusters), MAP
    covariances, proportions, ``nu = nu_init``."""
    n, k = x.shape[0], centers.shape[0]
    onehot = torch.zeros((n, k), dtype=x.dtype, device=x.device)
    onehot[torch.arange(n, device=x.device), torch.as_tensor(labels, device=x.device)] = 1.0
    counts_t = onehot.sum(dim=0)
    mu_t = torch.as_tensor(centers, dtype=x.dtype, device=x.device)
    has = counts_t > 0
    mu_t = torch.where(has[:, None], (onehot.T @ x) / counts_t.clamp_min(1.0)[:, None], mu_t)
    sigma = _map_sigma(x, onehot, mu_t, prior, counts_t, diagonal)
    pi = (counts_t / n).clamp_min(_PI_FLOOR)
    nu = torch.full((k,), float(nu_init), dtype=x.dtype, device=x.device)
    return _State(pi=pi / pi.sum(), mu=mu_t, sigma=sigma, nu=nu)


# ======================================================================================
# losses of the joint training (main eq. 20-22, supp. 1.3)
# ======================================================================================
def target_distribution(q: torch.Tensor) -> torch.Tensor:
    """DEC target ``P`` of main eq. 22 from normalised assignments ``q`` ``(N, K)``.

    ``p_ik = (q_ik^2 / f_k) / sum_c (q_ic^2 / f_c)`` with ``f_k = sum_i q_ik`` (over the rows
    given). ``P`` is a fixed target within an epoch (supp. 1.3), so it is returned detached.
    """
    if q.ndim != 2:
        msg = f"q must be (N, K), got shape {tuple(q.shape)}"
        raise ValueError(msg)
    q = q.detach()
    f = q.sum(dim=0).clamp_min(torch.finfo(q.dtype).tiny)
    w = q.pow(2) / f
    return w / w.sum(dim=1, keepdim=True).clamp_min(torch.finfo(q.dtype).tiny)


def kl_loss(p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """``L_kl = KL(P || Q)`` of main eq. 21 as a batch mean over images.

    ``mean_i sum_k p_ik (log p_ik - log q_ik)``, with ``0 log 0 = 0``. This is
    ``F.kl_div(log_q, p, reduction='batchmean')``, not ``reduction='mean'`` (which divides
    by ``B * K``). Gradient flows into ``log_q`` (use :meth:`StudentTMixture.log_soft_assign`);
    ``p`` is treated as a constant.
    """
    if p.shape != log_q.shape or p.ndim != 2:
        msg = f"p and log_q must both be (B, K), got {tuple(p.shape)} and {tuple(log_q.shape)}"
        raise ValueError(msg)
    p = p.detach().to(log_q.dtype)
    pos = p > 0
    log_p = torch.log(torch.where(pos, p, torch.ones_like(p)))
    terms = torch.where(pos, p * (log_p - log_q), torch.zeros_like(log_q))
    return terms.sum(dim=1).mean()


def size_loss(q: torch.Tensor, threshold: float) -> torch.Tensor:
    """``L_size = sum_k -J_k log J_k`` of main eq. 20 (supp. eq. 28).

    ``J_k = mean_i q_ik`` (``q`` the normalised assignments ``(N, K)``); a component with
    ``J_k > threshold`` is exempt (eq. 20 sets its ``J_k = 1``, contributing ``-1 log 1 = 0``).
    The value is ``>= 0`` and grows as small clusters grow; eq. 16 minimises ``-L_size``.
    Gradient flows into ``q`` through the non-exempt ``J_k``.
    """
    if q.ndim != 2:
        msg = f"q must be (N, K), got shape {tuple(q.shape)}"
        raise ValueError(msg)
    j = q.mean(dim=0)
    included = j <= threshold
    terms = -j * torch.log(j.clamp_min(torch.finfo(q.dtype).tiny))
    return torch.where(included, terms, torch.zeros_like(terms)).sum()
