"""Student's t mixture (models/darlc/smm.py): densities, MAP-EM, and the clustering losses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import special, stats
from scipy.optimize import brentq, linear_sum_assignment
from sklearn.metrics import adjusted_rand_score

from sngep.models.darlc.smm import StudentTMixture, kl_loss, size_loss, target_distribution


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny tensors: intra-op threads only add overhead (and stall on a shared machine).
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _t_mixture(d: int, *, seed: int, n_per: int = 300, nu: float = 3.0, out_frac: float = 0.05):
    """Three t components (nu=3) at distance >= 6 plus uniform outliers over the data range."""
    rng = np.random.default_rng(seed)
    mus = np.zeros((3, d))
    mus[0, 0], mus[1, 0], mus[2, 1] = 6.0, -6.0, 6.0
    xs, ys = [], []
    for j in range(3):
        a = rng.normal(size=(d, d)) * 0.3 + np.eye(d)
        cov = a @ a.T / d + 0.5 * np.eye(d)
        g = rng.multivariate_normal(np.zeros(d), cov, size=n_per)
        u = rng.chisquare(nu, size=n_per) / nu
        xs.append(mus[j] + g / np.sqrt(u)[:, None])
        ys.append(np.full(n_per, j))
    x = np.concatenate(xs)
    n_out = int(round(out_frac * len(x) / (1 - out_frac)))
    out = rng.uniform(x.min(0), x.max(0), size=(n_out, d))
    return np.concatenate([x, out]), np.concatenate([*ys, np.full(n_out, -1)]), mus


def _random_params(k: int, d: int, seed: int):
    rng = np.random.default_rng(seed)
    pi = rng.dirichlet(np.ones(k))
    mu = rng.normal(size=(k, d))
    a = rng.normal(size=(k, d, d))
    sigma = a @ np.swapaxes(a, 1, 2) / d + 0.3 * np.eye(d)
    nu = rng.uniform(1.5, 20.0, size=k)
    return pi, mu, sigma, nu


# ----------------------------------------------------------------------------- densities
def test_log_density_matches_scipy_multivariate_t():
    k, d = 4, 5
    pi, mu, sigma, nu = _random_params(k, d, seed=1)
    m = StudentTMixture(k, d).double().set_parameters(pi, mu, sigma, nu)
    z = np.random.default_rng(2).normal(scale=2.0, size=(50, d))
    got = m.log_component_density(torch.tensor(z)).detach().numpy()
    ref = np.stack(
        [stats.multivariate_t(loc=mu[j], shape=sigma[j], df=nu[j]).logpdf(z) for j in range(k)],
        axis=1,
    )
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)
    # round trip of the Cholesky parametrisation
    np.testing.assert_allclose(m.sigma.detach().numpy(), sigma, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(m.nu.detach().numpy(), nu, rtol=1e-12)
    np.testing.assert_allclose(m.pi.detach().numpy(), pi, rtol=1e-12)
    # eq. 18, 19, 22 from the same densities
    log_joint = np.log(pi) + ref
    np.testing.assert_allclose(m.log_joint(torch.tensor(z)).detach().numpy(), log_joint, rtol=1e-10)
    np.testing.assert_allclose(
        float(m.log_likelihood(torch.tensor(z)).detach()),
        special.logsumexp(log_joint, axis=1).sum(),
    )
    q = np.exp(log_joint - special.logsumexp(log_joint, axis=1, keepdims=True))
    np.testing.assert_allclose(m.soft_assign(torch.tensor(z)).detach().numpy(), q, rtol=1e-10)


def test_gmm_variant_is_gaussian():
    k, d = 3, 4
    pi, mu, sigma, _ = _random_params(k, d, seed=3)
    m = StudentTMixture(k, d, mixture="gmm").double().set_parameters(pi, mu, sigma)
    z = np.random.default_rng(4).normal(size=(30, d))
    ref = np.stack([stats.multivariate_normal(mu[j], sigma[j]).logpdf(z) for j in range(k)], axis=1)
    np.testing.assert_allclose(
        m.log_component_density(torch.tensor(z)).detach().numpy(), ref, rtol=1e-10
    )
    assert torch.isinf(m.nu).all()
    assert not m.log_nu.requires_grad


def test_gradients_flow_into_z_and_parameters():
    k, d = 3, 4
    pi, mu, sigma, nu = _random_params(k, d, seed=5)
    m = StudentTMixture(k, d).set_parameters(pi, mu, sigma, nu)
    z = torch.randn(40, d, generator=torch.Generator().manual_seed(0), requires_grad=True)
    m.log_likelihood(z).backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
    for name in ("mu", "chol_lower", "chol_log_diag", "log_nu", "pi_logits"):
        g = getattr(m, name).grad
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0, name

    z.grad = None
    p = target_distribution(m.soft_assign(z))
    kl_loss(p, m.log_soft_assign(z)).backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0

    # any gradient step keeps Sigma positive definite (L has a positive diagonal)
    opt = torch.optim.SGD(m.parameters(), lr=0.05)
    opt.step()
    chol = m.cholesky.detach().double()
    assert bool((torch.diagonal(chol, dim1=-2, dim2=-1) > 0).all())
    assert bool((torch.linalg.eigvalsh(chol @ chol.mT) > 0).all())
    assert torch.isfinite(m.log_likelihood(z.detach()))


# ----------------------------------------------------------------------------- MAP-EM
def _em_step_reference(x, pi, mu, sigma, nu, k_prior, bounds, shrunk=False):
    """One MAP-EM iteration written from supp. eq. 6, 7, 11-17 in plain numpy/scipy.

    ``shrunk``: S_0 is rho_hat times the pooled within-cluster covariance of the starting
    parameters' weights, (K S_0 + sum_k S_k(mu_k)) / (K rho_hat + N) (covariance='shrunk').
    """
    n, d = x.shape
    k = len(pi)
    logphi = np.stack(
        [stats.multivariate_t(mu[j], sigma[j], df=nu[j]).logpdf(x) for j in range(k)], axis=1
    )
    lj = np.log(pi) + logphi
    resp = np.exp(lj - special.logsumexp(lj, axis=1, keepdims=True))  # eq. 6
    delta = np.stack(
        [np.einsum("nd,de,ne->n", x - mu[j], np.linalg.inv(sigma[j]), x - mu[j]) for j in range(k)],
        axis=1,
    )
    zeta = (nu + d) / (nu + delta)  # eq. 7
    elog = special.digamma((nu + d) / 2) - np.log((nu + delta) / 2)  # eq. 16
    xi = resp.sum(0)
    pi_new = xi / n  # eq. 14 with alpha_0 = 1
    s0 = np.diag(k_prior ** (-1 / d) * x.var(0))
    rho_hat = (d + 2) + d + 2
    if shrunk:
        scatter = sum(
            (
                (resp[:, j] * zeta[:, j])[:, None, None]
                * np.einsum("ni,nj->nij", x - mu[j], x - mu[j])
            ).sum(0)
            for j in range(k)
        )
        s0 = rho_hat * (k * s0 + scatter) / (k * rho_hat + n)
    mu_new, sig_new, nu_new = [], [], []
    for j in range(k):
        w = resp[:, j] * zeta[:, j]
        m_j = (w[:, None] * x).sum(0) / w.sum()
        c = x - m_j
        s_mle = (w[:, None, None] * c[:, :, None] * c[:, None, :]).sum(0)
        beta = rho_hat / (rho_hat + xi[j])
        sig = (1 - beta) * s_mle / xi[j] + beta * s0 / rho_hat  # eq. 14-15
        cj = (resp[:, j] * (elog[:, j] - zeta[:, j])).sum() / xi[j]
        g = lambda v, cj=cj: 1 + np.log(v / 2) - special.digamma(v / 2) + cj  # noqa: E731
        if g(bounds[0]) <= 0:
            v = bounds[0]
        elif g(bounds[1]) >= 0:
            v = bounds[1]
        else:
            v = brentq(g, *bounds, xtol=1e-13, rtol=1e-13)
        mu_new.append(m_j)
        sig_new.append(sig)
        nu_new.append(v)
    return pi_new, np.array(mu_new), np.array(sig_new), np.array(nu_new, dtype=float)


@pytest.mark.parametrize("covariance", ["full", "shrunk"])
def test_one_em_step_matches_numpy_reference(covariance):
    x, _, mus = _t_mixture(3, seed=11, n_per=80)
    pi, mu, sigma, _ = _random_params(3, 3, seed=12)
    mu = mus + mu  # perturbed truth: every component has data, nu stays inside its bounds
    nu = np.array([2.0, 5.0, 9.0])
    m = StudentTMixture(3, 3, nu_bounds=(1.0, 1000.0), covariance=covariance).double()
    m.set_parameters(pi, mu, sigma, nu)
    m.fit_em(torch.tensor(x), n_iter=1, tol=0.0, init="current")
    ref = _em_step_reference(x, pi, mu, sigma, nu, 3, (1.0, 1000.0), covariance == "shrunk")
    np.testing.assert_allclose(m.pi.detach().numpy(), ref[0], rtol=1e-8)
    np.testing.assert_allclose(m.mu.detach().numpy(), ref[1], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(m.sigma.detach().numpy(), ref[2], rtol=1e-8, atol=1e-10)
    assert np.all((ref[3] > 1.0) & (ref[3] < 1000.0))  # interior roots: the solver is tested
    np.testing.assert_allclose(m.nu.detach().numpy(), ref[3], rtol=1e-6)


def test_diagonal_covariances_match_the_general_path():
    """covariance='diag' takes an O(N K D) product path for the distances (and the M-step
    scatter); it must give scipy's densities, the numpy EM reference's diagonal, the same
    gradients as the triangular-solve path, and float32 within float32 precision."""
    k, d = 4, 5
    pi, mu, sigma_full, nu = _random_params(k, d, seed=21)
    sigma = np.stack([np.diag(np.diag(s)) for s in sigma_full])
    m = StudentTMixture(k, d, covariance="diag").double().set_parameters(pi, mu, sigma, nu)
    z = np.random.default_rng(22).normal(scale=2.0, size=(60, d))
    ref = np.stack(
        [stats.multivariate_t(loc=mu[j], shape=sigma[j], df=nu[j]).logpdf(z) for j in range(k)],
        axis=1,
    )
    np.testing.assert_allclose(
        m.log_component_density(torch.tensor(z)).detach().numpy(), ref, rtol=1e-10, atol=1e-10
    )
    # gradients equal those of the general module (triangular solves) on the same parameters;
    # a full-covariance module keeps the general path even where Sigma is diagonal, because
    # its off-diagonal Cholesky entries are trained
    general = StudentTMixture(k, d, covariance="full").double().set_parameters(pi, mu, sigma, nu)
    grads = []
    for mod in (m, general):
        zt = torch.tensor(z, requires_grad=True)
        mod.zero_grad()
        mod.log_likelihood(zt).backward()
        grads.append([zt.grad, mod.mu.grad, mod.chol_log_diag.grad, mod.log_nu.grad])
    for g_diag, g_full in zip(*grads, strict=True):
        np.testing.assert_allclose(g_diag.numpy(), g_full.numpy(), rtol=1e-9, atol=1e-10)
    assert float(general.chol_lower.grad.abs().sum()) > 0  # the general path was taken
    # float32 module: the float64 sums keep it within float32 rounding of the float64 result
    m32 = StudentTMixture(k, d, covariance="diag").set_parameters(pi, mu, sigma, nu)
    got32 = m32.log_component_density(torch.tensor(z, dtype=torch.float32)).detach().numpy()
    np.testing.assert_allclose(got32, ref, rtol=1e-5, atol=1e-4)

    # one EM step: the numpy reference's M-step with its off-diagonals set to 0 (eq. 15)
    x, _, mus = _t_mixture(3, seed=23, n_per=80)
    pi3, mu3, sig3, _ = _random_params(3, 3, seed=24)
    sig3 = np.stack([np.diag(np.diag(s)) for s in sig3])
    nu3 = np.array([2.0, 5.0, 9.0])
    m3 = StudentTMixture(3, 3, covariance="diag").double().set_parameters(pi3, mus + mu3, sig3, nu3)
    m3.fit_em(torch.tensor(x), n_iter=1, tol=0.0, init="current")
    ref3 = _em_step_reference(x, pi3, mus + mu3, sig3, nu3, 3, (1.0, 1000.0))
    np.testing.assert_allclose(m3.mu.detach().numpy(), ref3[1], rtol=1e-8, atol=1e-10)
    want = np.stack([np.diag(np.diag(s)) for s in ref3[2]])
    np.testing.assert_allclose(m3.sigma.detach().numpy(), want, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(m3.nu.detach().numpy(), ref3[3], rtol=1e-6)


def test_nu_update_direction():
    """Heavy-tailed data -> small nu; Gaussian data -> large nu (the sign of eq. 17 matters)."""
    rng = np.random.default_rng(0)
    d, n = 3, 1500
    g = rng.normal(size=(n, d))
    heavy = g / np.sqrt(rng.chisquare(4.0, size=n) / 4.0)[:, None]
    m = StudentTMixture(1, d, nu_init=30.0)
    m.fit_em(torch.tensor(heavy, dtype=torch.float32), n_iter=100, tol=1e-7)
    nu_heavy = float(m.nu[0].detach())
    m.fit_em(torch.tensor(g, dtype=torch.float32), n_iter=100, tol=1e-7)
    nu_gauss = float(m.nu[0].detach())
    assert 3.0 < nu_heavy < 5.5, nu_heavy
    assert nu_gauss > 30.0, nu_gauss


def test_recovers_t_mixture_and_beats_gmm():
    report = []
    ari_smm, ari_gmm = [], []
    for d in (2, 3, 5):
        x, y, mus = _t_mixture(d, seed=d)
        z = torch.tensor(x, dtype=torch.float32)
        inl = y >= 0
        smm = StudentTMixture(3, d)
        hist = smm.fit_em(z, random_state=0)
        gmm = StudentTMixture(3, d, mixture="gmm")
        gmm.fit_em(z, random_state=0)
        est = smm.mu.detach().numpy()
        cost = np.linalg.norm(est[:, None] - mus[None], axis=-1)
        r, c = linear_sum_assignment(cost)
        err = cost[r, c].max()
        nu = smm.nu.detach().numpy()
        a_s = adjusted_rand_score(y[inl], smm.predict(z).numpy()[inl])
        a_g = adjusted_rand_score(y[inl], gmm.predict(z).numpy()[inl])
        report.append((d, round(float(err), 3), np.round(nu, 2), round(a_s, 3), round(a_g, 3)))
        ari_smm.append(a_s)
        ari_gmm.append(a_g)
        assert err < 0.4, report
        assert np.all((nu > 1.2) & (nu < 6.0)), report
        assert a_s > 0.9, report
        assert hist["log_posterior"][-1] == max(hist["init_log_posteriors"])
    print(report)
    assert np.mean(ari_smm) > np.mean(ari_gmm) + 0.05, report


def test_restarts_keep_the_best_start():
    # On this sample the first k-means++ start puts a centre in a heavy tail (EM then merges
    # two clusters); the restarts recover them and the best MAP objective is kept.
    x, y, _ = _t_mixture(3, seed=1)
    z = torch.tensor(x, dtype=torch.float32)
    one = StudentTMixture(3, 3)
    h1 = one.fit_em(z, random_state=0, n_init=1)
    many = StudentTMixture(3, 3)
    h3 = many.fit_em(z, random_state=0, n_init=3)
    assert h3["init_log_posteriors"][0] == pytest.approx(h1["log_posterior"][-1])
    assert h3["log_posterior"][-1] == max(h3["init_log_posteriors"])
    assert h3["log_posterior"][-1] >= h1["log_posterior"][-1]
    inl = y >= 0
    assert adjusted_rand_score(y[inl], many.predict(z).numpy()[inl]) > 0.9


@pytest.mark.parametrize("mixture", ["smm", "gmm"])
def test_log_posterior_never_decreases(mixture):
    # Ill-specified on purpose: more components than clusters, a duplicate block, an outlier.
    rng = np.random.default_rng(7)
    x = np.concatenate(
        [rng.standard_t(2.0, size=(300, 4)), np.repeat(rng.normal(size=(1, 4)), 20, 0)]
    )
    x = np.concatenate([x, np.full((1, 4), 50.0)])
    m = StudentTMixture(8, 4, mixture=mixture)
    hist = m.fit_em(torch.tensor(x, dtype=torch.float32), n_iter=60, tol=0.0, n_init=2)
    lp = np.asarray(hist["log_posterior"])
    assert hist["n_iter"] == 60 and len(lp) == 61
    assert np.all(np.diff(lp) >= -1e-6 * np.abs(lp[1:])), np.diff(lp).min()
    assert lp[-1] > lp[0]


def test_dead_component_is_reseeded_at_worst_point():
    rng = np.random.default_rng(3)
    x = np.concatenate(
        [rng.normal(size=(200, 2)) - 10, rng.normal(size=(200, 2)) + 10, [[0.0, 30.0]]]
    )
    m = StudentTMixture(3, 2)
    m.set_parameters(
        [0.5, 0.5, 1e-12], [[-10, -10], [10, 10], [1e3, 1e3]], np.stack([np.eye(2)] * 3), [5] * 3
    )
    hist = m.fit_em(torch.tensor(x, dtype=torch.float32), init="current", n_iter=20, tol=0.0)
    lp = np.asarray(hist["log_posterior"])
    assert hist["n_reseeded"] == 1
    assert np.all(np.diff(lp) >= -1e-6 * np.abs(lp[1:]))
    np.testing.assert_allclose(m.mu.detach().numpy()[2], [0.0, 30.0], atol=1e-3)
    assert float(m.pi[2].detach()) == pytest.approx(1 / len(x), rel=0.05)


def test_high_dimensional_no_nan():
    rng = np.random.default_rng(0)
    d, k, n = 32, 100, 2000
    x = rng.normal(size=(n, d)).astype(np.float32)
    x[:200] = x[0]  # 200 duplicates of one point
    x[200:260] = x[300:360]  # duplicated pairs
    x[-1] = 1e3  # one isolated far point
    z = torch.tensor(x)
    m = StudentTMixture(k, d)
    hist = m.fit_em(z, n_iter=10, n_init=1)
    for name, p in m.get_parameters().items():
        assert np.isfinite(p).all(), name
    lp = np.asarray(hist["log_posterior"])
    assert np.isfinite(lp).all() and np.all(np.diff(lp) >= -1e-6 * np.abs(lp[1:]))
    q = m.soft_assign(z)
    assert torch.isfinite(q).all()
    torch.testing.assert_close(q.sum(1), torch.ones(n))
    assert torch.isfinite(m.log_likelihood(z))
    assert bool((torch.linalg.eigvalsh(m.sigma.double()) > 0).all())


def test_seed_reproducibility():
    x, _, _ = _t_mixture(3, seed=5, n_per=100)
    z = torch.tensor(x, dtype=torch.float32)
    params = []
    for seed in (0, 0, 1):
        m = StudentTMixture(4, 3)
        m.fit_em(z, n_iter=5, random_state=seed)
        params.append({k: v.detach().clone() for k, v in m.state_dict().items()})
    for key in params[0]:
        assert torch.equal(params[0][key], params[1][key]), key
    inits = []
    for seed in (0, 1):
        m = StudentTMixture(4, 3)
        m.fit_em(z, n_iter=0, n_init=1, random_state=seed)
        inits.append(m.mu.detach().clone())
    assert not torch.allclose(inits[0], inits[1])


def test_input_validation():
    m = StudentTMixture(2, 3)
    with pytest.raises(ValueError, match="shape"):
        m.log_joint(torch.zeros(5, 4))
    with pytest.raises(ValueError, match="NaN"):
        m.fit_em(torch.full((5, 3), float("nan")))
    with pytest.raises(ValueError, match="mixture"):
        StudentTMixture(2, 3, mixture="cauchy")
    with pytest.raises(ValueError, match="positive-definite"):
        m.set_parameters(np.ones(2) / 2, np.zeros((2, 3)), -np.stack([np.eye(3)] * 2), [3, 3])


# ----------------------------------------------------------------------------- losses
def test_kl_loss_hand_computed():
    p = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
    q = torch.tensor([[0.25, 0.75], [0.5, 0.5]])
    expected = (0.5 * math.log(2.0) + 0.5 * math.log(0.5 / 0.75) + math.log(2.0)) / 2
    got = kl_loss(p, q.log())
    assert abs(float(got) - expected) < 1e-6
    assert abs(float(F.kl_div(q.log(), p, reduction="batchmean")) - expected) < 1e-6
    # not the (B*K)-mean
    assert abs(float(got) - 2 * expected / 4) > 0.1  # sum / (B*K), what reduction='mean' gives


def test_size_loss_exemption_and_gradient():
    # J = (0.6, 0.3, 0.1)
    q = torch.tensor([[0.9, 0.1, 0.0], [0.3, 0.5, 0.2]], requires_grad=True)
    loss = size_loss(q, threshold=0.5)
    expected = -(0.3 * math.log(0.3) + 0.1 * math.log(0.1))
    assert abs(float(loss.detach()) - expected) < 1e-6
    loss.backward()
    assert torch.all(q.grad[:, 0] == 0)  # exempt component: no gradient
    # d/dq_ik of -J log J = -(log J + 1) / N
    np.testing.assert_allclose(q.grad[0, 1:].numpy(), -(np.log([0.3, 0.1]) + 1) / 2, rtol=1e-5)
    # threshold above every J: nothing exempt
    expected_all = expected - 0.6 * math.log(0.6)
    assert abs(float(size_loss(q.detach(), threshold=1.0)) - expected_all) < 1e-6
    assert float(size_loss(q.detach(), threshold=0.05)) == 0.0


def test_target_distribution():
    q = torch.softmax(torch.randn(20, 4, generator=torch.Generator().manual_seed(0)), dim=1)
    p = target_distribution(q)
    torch.testing.assert_close(p.sum(1), torch.ones(20))
    qn = q.numpy().astype(np.float64)
    w = qn**2 / qn.sum(0)
    np.testing.assert_allclose(p.numpy(), w / w.sum(1, keepdims=True), rtol=1e-5)
    # sharper than q: the top assignment gains weight where q is confident
    top = q.argmax(1)
    assert (p[torch.arange(20), top] >= q[torch.arange(20), top] - 0.05).float().mean() > 0.9
    assert not p.requires_grad


@pytest.mark.parametrize("covariance", ["full", "diag", "shrunk"])
def test_warm_start_from_labels_never_decreases_the_map_objective(covariance):
    """The joint stage's warm EM (train.refit_mixture: init='labels') only climbs."""
    from sklearn.cluster import KMeans

    x, _, _ = _t_mixture(3, seed=2)
    z = torch.tensor(x, dtype=torch.float32)
    labels = KMeans(3, n_init=10, random_state=0).fit_predict(x)
    m = StudentTMixture(3, x.shape[1], covariance=covariance)
    hist = m.fit_em(z, n_iter=30, tol=0.0, init="labels", labels=labels)
    lp = np.asarray(hist["log_posterior"])
    assert len(lp) == 31  # the labels' own state first, then every iteration
    assert np.all(np.diff(lp) >= -1e-6 * np.abs(lp[1:])), np.diff(lp).min()
    assert lp[-1] > lp[0]
    # each joint epoch then warm-starts from the current Theta (init='current'): on the same z
    # it starts where the last fit ended and only climbs
    h2 = m.fit_em(z, n_iter=10, tol=0.0, init="current")
    lp2 = np.asarray(h2["log_posterior"])
    if covariance != "shrunk":  # 'shrunk' re-estimates its prior from the start: a new objective
        assert lp2[0] == pytest.approx(lp[-1], rel=1e-5)
    assert np.all(np.diff(lp2) >= -1e-6 * np.abs(lp2[1:]))


def test_shrunk_covariances_borrow_the_shared_shape_in_proportion_to_cluster_size():
    """covariance='shrunk': a 6-point cluster takes the shape the clusters share (here a
    strong x-y correlation), a 600-point cluster keeps its own (none)."""
    rng = np.random.default_rng(5)
    shared = np.array([[1.0, 0.9], [0.9, 1.0]])
    big = rng.multivariate_normal([0.0, 0.0], shared, size=600)
    mid = rng.multivariate_normal([0.0, 12.0], shared, size=600)
    own = rng.normal(size=(600, 2))  # uncorrelated
    tiny = rng.normal(size=(6, 2)) * 0.3 + [12.0, 0.0]
    x = np.concatenate([big, mid, own + [-12.0, 0.0], tiny])
    labels = np.repeat([0, 1, 2, 3], [600, 600, 600, 6])
    corr = {}
    for cov in ("full", "shrunk"):
        m = StudentTMixture(4, 2, mixture="gmm", covariance=cov).double()
        m.fit_em(torch.tensor(x), n_iter=1, init="labels", labels=labels)  # one M-step
        s = m.sigma.detach().numpy()
        corr[cov] = s[:, 0, 1] / np.sqrt(s[:, 0, 0] * s[:, 1, 1])
    assert corr["full"][3] == pytest.approx(0.0, abs=0.1)  # the paper's diagonal S_0
    assert corr["shrunk"][3] > 0.4  # the pooled target's: about 2/3 of 0.9
    assert abs(corr["shrunk"][2]) < 0.1  # 600 genes of its own outweigh 2D + 4 = 8 pseudo-genes
    assert corr["shrunk"][0] == pytest.approx(0.9, abs=0.05)


def test_shrunk_log_posterior_never_decreases():
    rng = np.random.default_rng(8)
    x = np.concatenate([rng.standard_t(3.0, size=(200, 5)) + 4 * j for j in range(3)])
    m = StudentTMixture(5, 5, covariance="shrunk")
    hist = m.fit_em(torch.tensor(x, dtype=torch.float32), n_iter=40, tol=0.0, n_init=2)
    lp = np.asarray(hist["log_posterior"])
    assert np.all(np.diff(lp) >= -1e-6 * np.abs(lp[1:])), np.diff(lp).min()
    assert lp[-1] > lp[0]
