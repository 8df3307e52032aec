import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from sngep.models.darlc.losses import (
    UncertaintyWeighting,
    alignment_loss,
    contrastive_loss,
    decorrelation_loss,
    eta_schedule,
    laplacian_loss,
    laplacian_prox,
    normalized_similarity,
)


def _naive_clr(e, eb, tau):
    """Eq. 10 with explicit loops over python floats."""
    e, eb = e.tolist(), eb.tolist()
    n = len(e)

    def s(a, b):
        cos = sum(x * y for x, y in zip(a, b, strict=True)) / (
            math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
        )
        return math.exp(cos / tau)

    total = 0.0
    for i in range(n):
        den1 = sum(s(e[i], e[k]) for k in range(n) if k != i) + sum(
            s(e[i], eb[k]) for k in range(n)
        )
        den2 = sum(s(eb[i], e[k]) for k in range(n)) + sum(
            s(eb[i], eb[k]) for k in range(n) if k != i
        )
        total += -math.log(s(e[i], eb[i]) / den1) - math.log(s(eb[i], e[i]) / den2)
    return total / n


@pytest.mark.parametrize("tau", [0.5, 0.2])
def test_contrastive_matches_naive_eq10(tau):
    g = torch.Generator().manual_seed(0)
    e = torch.randn(6, 5, generator=g, dtype=torch.float64)
    eb = torch.randn(6, 5, generator=g, dtype=torch.float64)
    got = contrastive_loss(e, eb, tau=tau).item()
    assert got == pytest.approx(_naive_clr(e, eb, tau), rel=1e-10)
    # swapping the two views leaves eq. 10 unchanged (it is symmetric)
    assert contrastive_loss(eb, e, tau=tau).item() == pytest.approx(got, rel=1e-10)
    # scale invariant (cosine)
    assert contrastive_loss(3 * e, 0.5 * eb, tau=tau).item() == pytest.approx(got, rel=1e-10)


def test_contrastive_queue_adds_unmasked_negatives():
    """Queue entries are extra negatives in both denominators; masked ones are left out, and
    an empty or fully masked queue is eq. 10 itself."""
    g = torch.Generator().manual_seed(1)
    e = torch.randn(5, 4, generator=g, dtype=torch.float64)
    eb = torch.randn(5, 4, generator=g, dtype=torch.float64)
    q = torch.randn(3, 4, generator=g, dtype=torch.float64)
    tau = 0.5
    plain = contrastive_loss(e, eb, tau=tau).item()
    assert contrastive_loss(e, eb, tau=tau, queue=q[:0]).item() == pytest.approx(plain)
    all_masked = torch.ones(5, 3, dtype=torch.bool)
    masked = contrastive_loss(e, eb, tau=tau, queue=q, queue_mask=all_masked).item()
    assert masked == pytest.approx(plain, rel=1e-12)

    def s(a, b):
        return math.exp(torch.nn.functional.cosine_similarity(a, b, dim=0).item() / tau)

    mask = torch.zeros(5, 3, dtype=torch.bool)
    mask[0, 1] = True  # gene 0 was queue entry 1: not its own negative
    total = 0.0
    for i in range(5):
        neg_q = [j for j in range(3) if not mask[i, j]]
        den1 = sum(s(e[i], e[k]) for k in range(5) if k != i) + sum(
            s(e[i], eb[k]) for k in range(5)
        )
        den2 = sum(s(eb[i], e[k]) for k in range(5)) + sum(
            s(eb[i], eb[k]) for k in range(5) if k != i
        )
        den1 += sum(s(e[i], q[j]) for j in neg_q)
        den2 += sum(s(eb[i], q[j]) for j in neg_q)
        total += -math.log(s(e[i], eb[i]) / den1) - math.log(s(eb[i], e[i]) / den2)
    got = contrastive_loss(e, eb, tau=tau, queue=q, queue_mask=mask).item()
    assert got == pytest.approx(total / 5, rel=1e-10)
    assert got > plain  # more negatives, a larger loss


def test_contrastive_positives_average_every_positive_over_unchanged_denominators():
    """positives (clr_neighbours): row i's term averages -log s / den over its own view and
    both embeddings of each positive gene (SupCon's "outside" form); no True entry is eq. 10."""
    g = torch.Generator().manual_seed(2)
    e = torch.randn(5, 4, generator=g, dtype=torch.float64)
    eb = torch.randn(5, 4, generator=g, dtype=torch.float64)
    tau = 0.5
    plain = contrastive_loss(e, eb, tau=tau).item()
    none = torch.zeros(5, 5, dtype=torch.bool)
    assert contrastive_loss(e, eb, tau=tau, positives=none).item() == pytest.approx(plain)
    # the diagonal is the own view already: setting it changes nothing
    assert contrastive_loss(
        e, eb, tau=tau, positives=torch.eye(5, dtype=torch.bool)
    ).item() == pytest.approx(plain, rel=1e-12)

    def s(a, b):
        return math.exp(torch.nn.functional.cosine_similarity(a, b, dim=0).item() / tau)

    pos = torch.zeros(5, 5, dtype=torch.bool)
    pos[0, 2] = pos[2, 0] = pos[0, 4] = pos[4, 0] = True
    total = 0.0
    for i in range(5):
        den1 = sum(s(e[i], e[k]) for k in range(5) if k != i) + sum(
            s(e[i], eb[k]) for k in range(5)
        )
        den2 = sum(s(eb[i], e[k]) for k in range(5)) + sum(
            s(eb[i], eb[k]) for k in range(5) if k != i
        )
        others = [k for k in range(5) if pos[i, k]]
        terms1 = (
            [s(e[i], eb[i])] + [s(e[i], eb[k]) for k in others] + [s(e[i], e[k]) for k in others]
        )
        terms2 = (
            [s(eb[i], e[i])] + [s(eb[i], e[k]) for k in others] + [s(eb[i], eb[k]) for k in others]
        )
        total += -sum(math.log(t / den1) for t in terms1) / len(terms1)
        total += -sum(math.log(t / den2) for t in terms2) / len(terms2)
    got = contrastive_loss(e, eb, tau=tau, positives=pos).item()
    assert got == pytest.approx(total / 5, rel=1e-10)
    with pytest.raises(ValueError, match="positives"):
        contrastive_loss(e, eb, tau=tau, positives=pos[:3])


def test_contrastive_excluded_neighbours_leave_the_denominators_only():
    """role='excluded': the marked genes are neither negatives nor positives of each other."""
    g = torch.Generator().manual_seed(4)
    e = torch.randn(5, 4, generator=g, dtype=torch.float64)
    eb = torch.randn(5, 4, generator=g, dtype=torch.float64)
    tau = 0.5

    def s(a, b):
        return math.exp(torch.nn.functional.cosine_similarity(a, b, dim=0).item() / tau)

    out = torch.zeros(5, 5, dtype=torch.bool)
    out[1, 3] = out[3, 1] = True
    total = 0.0
    for i in range(5):
        keep = [k for k in range(5) if not out[i, k]]
        den1 = sum(s(e[i], e[k]) for k in keep if k != i) + sum(s(e[i], eb[k]) for k in keep)
        den2 = sum(s(eb[i], e[k]) for k in keep) + sum(s(eb[i], eb[k]) for k in keep if k != i)
        total += -math.log(s(e[i], eb[i]) / den1) - math.log(s(eb[i], e[i]) / den2)
    got = contrastive_loss(e, eb, tau=tau, positives=out, role="excluded").item()
    assert got == pytest.approx(total / 5, rel=1e-10)
    assert got < contrastive_loss(e, eb, tau=tau).item()  # fewer negatives
    with pytest.raises(ValueError, match="role"):
        contrastive_loss(e, eb, positives=out, role="negative")


def test_contrastive_excluded_genes_leave_the_denominators_and_positives_stay():
    """excluded: the marked genes leave each other's denominators; with positives as well, a
    gene marked both stays a positive; role='excluded' is the same as passing excluded."""
    g = torch.Generator().manual_seed(5)
    e = torch.randn(5, 4, generator=g, dtype=torch.float64)
    eb = torch.randn(5, 4, generator=g, dtype=torch.float64)
    tau = 0.5
    out = torch.zeros(5, 5, dtype=torch.bool)
    out[1, 3] = out[3, 1] = True
    ref = contrastive_loss(e, eb, tau=tau, positives=out, role="excluded")
    torch.testing.assert_close(contrastive_loss(e, eb, tau=tau, excluded=out), ref)
    pos = torch.zeros(5, 5, dtype=torch.bool)
    pos[0, 2] = pos[2, 0] = True
    both = contrastive_loss(e, eb, tau=tau, positives=pos, excluded=out | pos)
    torch.testing.assert_close(both, contrastive_loss(e, eb, tau=tau, positives=pos, excluded=out))
    assert both.item() != pytest.approx(contrastive_loss(e, eb, tau=tau, positives=pos).item())
    with pytest.raises(ValueError, match="excluded must be"):
        contrastive_loss(e, eb, excluded=out[:4, :4])


def test_contrastive_positives_pull_neighbours_together():
    """With gene 1 a positive of gene 0, moving e_0 towards gene 1 lowers the loss."""
    g = torch.Generator().manual_seed(3)
    e = torch.randn(6, 4, generator=g, dtype=torch.float64, requires_grad=True)
    eb = e.detach().clone()
    pos = torch.zeros(6, 6, dtype=torch.bool)
    pos[0, 1] = pos[1, 0] = True
    contrastive_loss(e, eb, positives=pos).backward()
    plain_grad = torch.autograd.grad(contrastive_loss(e, eb), e)[0]
    # the extra positive's pull on e_0 points towards gene 1 more than eq. 10's gradient does
    towards = torch.nn.functional.normalize(eb[1] - eb[0], dim=0)
    assert (-e.grad[0] @ towards) > (-plain_grad[0] @ towards)


def test_alignment_loss_pulls_to_positives_only_and_cannot_collapse():
    """clr_form='align': the batch-standardised e_i's mean squared distance per dimension
    to the standardised targets of its view and its marked positives, averaged over genes
    (no other gene enters a row's term: nothing is repelled); a collapsed (constant) e is
    not a minimiser."""
    g = torch.Generator().manual_seed(4)
    e = torch.randn(6, 3, generator=g, dtype=torch.float64)
    eb = torch.randn(6, 3, generator=g, dtype=torch.float64)
    pos = torch.zeros(6, 6, dtype=torch.bool)
    pos[0, 2] = pos[2, 0] = True

    def std(x):
        return (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + 1e-5)

    a, b = std(e), std(eb)
    rows = []
    for i in range(6):
        targets = [i] + [k for k in range(6) if pos[i, k] and k != i]
        rows.append(np.mean([float(((a[i] - b[k]) ** 2).mean()) for k in targets]))
    assert float(alignment_loss(e, eb, pos)) == pytest.approx(np.mean(rows), rel=1e-9)
    # its own view only without positives; zero when e and e_bar agree up to scale and shift
    own = np.mean([float(((a[i] - b[i]) ** 2).mean()) for i in range(6)])
    assert float(alignment_loss(e, eb)) == pytest.approx(own, rel=1e-9)
    assert float(alignment_loss(e, 3 * e + 1)) == pytest.approx(0.0, abs=1e-6)
    # a constant e standardises to 0: loss = mean squared norm of the standardised targets
    flat = torch.ones(6, 3, dtype=torch.float64)
    assert float(alignment_loss(flat, eb)) == pytest.approx(float((b**2).mean()), rel=1e-6)
    assert float(alignment_loss(flat, eb)) > float(alignment_loss(eb, eb)) + 0.5
    with pytest.raises(ValueError, match="e and e_bar"):
        alignment_loss(e, eb[:, :2])


def test_contrastive_prefers_matched_pairs_and_grad_through_e():
    g = torch.Generator().manual_seed(1)
    e = torch.randn(16, 8, generator=g)
    matched = contrastive_loss(e, e.clone())
    shuffled = contrastive_loss(e, e[torch.randperm(16, generator=g)])
    assert matched < shuffled - 0.1
    e = e.requires_grad_()
    eb = torch.randn(16, 8, generator=g)  # target view: no gradient
    contrastive_loss(e, eb).backward()
    assert e.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        contrastive_loss(e, eb[:3])


def test_uwl_value_by_hand():
    uwl = UncertaintyWeighting(2, log_var_bounds=None)
    with torch.no_grad():
        uwl.raw.copy_(torch.tensor([math.log(2.0), math.log(0.5)]))
    val = uwl(torch.tensor(3.0), torch.tensor(1.0))
    ref = 3.0 / (2 * 2.0) + math.log(1 + 2.0) + 1.0 / (2 * 0.5) + math.log(1 + 0.5)
    assert val.item() == pytest.approx(ref, rel=1e-6)
    torch.testing.assert_close(uwl.weights, torch.tensor([0.25, 1.0]))
    # bounded parametrisation: init_log_var maps exactly, list input accepted
    ub = UncertaintyWeighting(3, init_log_var=1.0, log_var_bounds=(-4.0, 4.0))
    torch.testing.assert_close(ub.log_var, torch.full((3,), 1.0))
    losses = [torch.tensor(0.3), torch.tensor(-2.0), torch.tensor(5.0)]
    ref = sum(v / (2 * math.e) + math.log(1 + math.e) for v in (0.3, -2.0, 5.0))
    assert ub(losses).item() == pytest.approx(ref, rel=1e-6)
    with pytest.raises(ValueError, match="expected 3"):
        ub(torch.tensor(1.0))


def _fit_sigma(uwl, loss_value, steps=1500):
    opt = torch.optim.Adam(uwl.parameters(), lr=0.05)
    for _ in range(steps):
        opt.zero_grad()
        uwl(torch.tensor(loss_value)).backward()
        opt.step()


def test_uwl_sigma_optimum_and_negative_loss_is_safe():
    # positive loss: sigma^2 converges to the analytic minimiser of eq. 11
    uwl = UncertaintyWeighting(1)
    _fit_sigma(uwl, 0.7)
    assert uwl.log_var.item() == pytest.approx(UncertaintyWeighting.optimal_log_var(0.7), abs=1e-2)
    # negative loss: unbounded eq. 11 runs away, the bounded one saturates at the bound
    free = UncertaintyWeighting(1, log_var_bounds=None)
    _fit_sigma(free, -1.0, steps=300)
    assert free.log_var.item() < -10
    safe = UncertaintyWeighting(1)
    _fit_sigma(safe, -1.0, steps=300)
    assert -4.0 <= safe.log_var.item() < -3.5
    assert safe.weights.item() <= 0.5 * math.exp(4.0) + 1e-4
    assert torch.isfinite(safe(torch.tensor(-1.0)))


def _naive_lap(z, S):
    S = np.clip(S, 0, None)
    d = S.sum(1)
    Dn = np.diag(1 / np.sqrt(d))
    return np.trace(z.T @ (np.eye(len(S)) - Dn @ S @ Dn) @ z)


def _sym(n, seed, density=None):
    rng = np.random.default_rng(seed)
    S = rng.uniform(-0.3, 1.0, (n, n))
    S = (S + S.T) / 2
    np.fill_diagonal(S, 0)
    if density is not None:
        S[rng.random((n, n)) > density] = 0
        S = np.triu(S, 1)
        S = S + S.T
    return S


def test_laplacian_matches_naive_dense_and_sparse():
    n, d = 12, 4
    S = _sym(n, 0, density=0.6)
    z = np.random.default_rng(1).normal(size=(n, d))
    ref = _naive_lap(z, S)
    assert np.clip(S, 0, None).sum(1).min() > 0  # no isolated node in this case
    zt = torch.tensor(z, requires_grad=True)
    a_dense = normalized_similarity(S, dtype=torch.float64)
    a_sparse = normalized_similarity(sp.csr_matrix(S), dtype=torch.float64)
    assert a_sparse.is_sparse
    torch.testing.assert_close(a_sparse.to_dense(), a_dense)
    got_sum = laplacian_loss(zt, a_dense, reduction="sum")
    assert got_sum.item() == pytest.approx(ref, rel=1e-10)
    assert laplacian_loss(zt, a_dense).item() == pytest.approx(ref / n, rel=1e-10)
    got_sp = laplacian_loss(zt, a_sparse, reduction="sum")
    assert got_sp.item() == pytest.approx(ref, rel=1e-10)
    # gradients agree: d/dZ Tr(Z^T L Z) = 2 L Z
    (g_dense,) = torch.autograd.grad(got_sum, zt)
    (g_sparse,) = torch.autograd.grad(got_sp, zt)
    Sc = np.clip(S, 0, None)
    dn = 1 / np.sqrt(Sc.sum(1))
    lap = np.eye(n) - dn[:, None] * Sc * dn[None, :]
    np.testing.assert_allclose(g_dense.numpy(), 2 * lap @ z, rtol=1e-10)
    np.testing.assert_allclose(g_sparse.numpy(), 2 * lap @ z, rtol=1e-10)


def test_laplacian_isolated_gene_and_psd():
    n = 8
    S = np.abs(_sym(n, 2))
    S[3, :] = S[:, 3] = -0.5  # only negative similarity: isolated after clipping
    S[3, 3] = 0
    a = normalized_similarity(S, dtype=torch.float64)
    assert a[3, 3].item() == 1.0 and torch.count_nonzero(a[3]).item() == 1
    z = torch.randn(n, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    base = laplacian_loss(z, a, reduction="sum")
    z2 = z.clone()
    z2[3] += 10.0
    assert laplacian_loss(z2, a, reduction="sum").item() == pytest.approx(base.item(), rel=1e-10)
    # I - A is positive semi-definite, also for a kNN-like asymmetric sparse S
    lap = torch.eye(n, dtype=torch.float64) - a
    assert torch.linalg.eigvalsh(lap).min() > -1e-10
    rng = np.random.default_rng(3)
    knn = sp.random(30, 30, density=0.1, random_state=rng, format="csr")
    a_knn = normalized_similarity(knn, dtype=torch.float64).to_dense()
    torch.testing.assert_close(a_knn, a_knn.T)
    assert torch.linalg.eigvalsh(torch.eye(30, dtype=torch.float64) - a_knn).min() > -1e-10
    with pytest.raises(ValueError):
        normalized_similarity(np.zeros((3, 4)))
    with pytest.raises(ValueError):
        laplacian_loss(z, a[:4, :4])


def test_laplacian_prox_solves_the_proximal_problem():
    """Y = ((1 + lam) I - lam A)^-1 Z: the minimiser of 1/2 ||Y - Z||^2 + lam/2 Tr(Y^T L Y)."""
    n, d = 15, 3
    S = np.abs(_sym(n, 4, density=0.5))
    z = torch.tensor(np.random.default_rng(5).normal(size=(n, d)), requires_grad=True)
    a = normalized_similarity(S, dtype=torch.float64)
    assert laplacian_prox(z, a, 0.0) is z
    for lam in (0.5, 1.0, 3.0):
        want = np.linalg.solve((1 + lam) * np.eye(n) - lam * a.numpy(), z.detach().numpy())
        got = laplacian_prox(z, a, lam, tol=1e-12)
        np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-8, atol=1e-10)
        a_sp = normalized_similarity(sp.csr_matrix(S), dtype=torch.float64)
        sparse = laplacian_prox(z, a_sp, lam, tol=1e-12)
        np.testing.assert_allclose(sparse.detach().numpy(), want, rtol=1e-8, atol=1e-10)
        # it is the minimiser of that convex objective: its gradient vanishes there
        y = got.detach().clone().requires_grad_(True)
        energy = laplacian_loss(y, a, reduction="sum")
        obj = 0.5 * ((y - z.detach()) ** 2).sum() + 0.5 * lam * energy
        (g,) = torch.autograd.grad(obj, y)
        assert g.abs().max().item() < 1e-8
        # smoother than z: the Laplacian energy drops
        assert laplacian_loss(got, a).item() < laplacian_loss(z, a).item()
    # differentiable: d sum(Y) / dZ = 1^T M^-1, M symmetric
    laplacian_prox(z, a, 1.0, tol=1e-12).sum().backward()
    m_inv = np.linalg.inv(2 * np.eye(n) - a.numpy())
    np.testing.assert_allclose(z.grad.numpy(), np.repeat(m_inv.sum(0)[:, None], d, 1), rtol=1e-8)
    with pytest.raises(ValueError, match="lam"):
        laplacian_prox(z, a, -1.0)
    with pytest.raises(ValueError, match="s_norm"):
        laplacian_prox(z, a[:4, :4], 1.0)


def test_weighted_laplacian_prox_is_the_empirical_bayes_posterior_mean():
    """With weights w: Y = (W + lam (I - A))^-1 W Z, the minimiser of
    1/2 sum_i w_i ||y_i - z_i||^2 + lam/2 Tr(Y^T L Y); a gene with a smaller w keeps less
    of its own z; w = 1 is the unweighted step."""
    n, d, lam = 15, 3, 1.0
    S = np.abs(_sym(n, 6, density=0.5))
    z = torch.tensor(np.random.default_rng(7).normal(size=(n, d)))
    a = normalized_similarity(S, dtype=torch.float64)
    w = torch.tensor(np.random.default_rng(8).uniform(0.05, 3.0, size=n))
    want = np.linalg.solve(
        np.diag(w.numpy()) + lam * (np.eye(n) - a.numpy()), w.numpy()[:, None] * z.numpy()
    )
    got = laplacian_prox(z, a, lam, weight=w, tol=1e-12)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-7, atol=1e-9)
    ones = laplacian_prox(z, a, lam, weight=torch.ones(n, dtype=torch.float64), tol=1e-12)
    np.testing.assert_allclose(ones.numpy(), laplacian_prox(z, a, lam, tol=1e-12).numpy())
    # the gene with the smallest weight moves furthest from its own z, relative to the move
    # it would make with weight 1
    low = int(w.argmin())
    moved_w = (got - z).norm(dim=1) / (ones - z).norm(dim=1)
    assert moved_w[low] == moved_w.max() and moved_w[low] > 1.0
    with pytest.raises(ValueError, match="weight"):
        laplacian_prox(z, a, lam, weight=torch.zeros(n, dtype=torch.float64))
    with pytest.raises(ValueError, match="weight"):
        laplacian_prox(z, a, lam, weight=w[:4])


def test_eta_schedule():
    assert eta_schedule(0, 50) == 0.5
    assert eta_schedule(25, 50) == pytest.approx(0.25)
    assert eta_schedule(50, 50) == 0.0
    assert eta_schedule(60, 50) == 0.0
    vals = [eta_schedule(k, 10, kind="exponential") for k in range(11)]
    assert vals[0] == 0.5 and all(a > b for a, b in zip(vals, vals[1:], strict=False))
    assert vals[-1] == pytest.approx(0.5 * math.exp(-5))
    with pytest.raises(ValueError):
        eta_schedule(0, 10, kind="cosine")


def test_decorrelation_loss_by_hand_and_its_range():
    """Mean squared off-diagonal correlation over the batch: by hand on a small batch, near 0
    for independent dimensions, near 1 when every dimension is one direction, scale-free,
    and refused on a batch of one or a single dimension."""
    g = torch.Generator().manual_seed(0)
    h = torch.randn(7, 4, generator=g, dtype=torch.float64)
    r = np.corrcoef(h.numpy(), rowvar=False)
    by_hand = (np.sum(r**2) - np.sum(np.diag(r) ** 2)) / (4 * 3)
    assert float(decorrelation_loss(h, eps=0.0)) == pytest.approx(by_hand, rel=1e-10)
    assert float(decorrelation_loss(torch.randn(2000, 16, generator=g))) < 0.01
    one = torch.randn(200, 1, generator=g) @ torch.ones(1, 16)
    assert float(decorrelation_loss(one + 1e-3 * torch.randn(200, 16, generator=g))) > 0.99
    torch.testing.assert_close(decorrelation_loss(5.0 * h, eps=0.0), decorrelation_loss(h, eps=0.0))
    for bad in (torch.zeros(1, 4), torch.zeros(5, 1), torch.zeros(5)):
        with pytest.raises(ValueError, match="decorrelation_loss"):
            decorrelation_loss(bad)
