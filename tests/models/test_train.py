"""Joint-training numerics: the gradient step on Theta (Algorithm 1 line 23) stays finite."""

import torch

from sngep.models.darlc.smm import StudentTMixture, kl_loss, target_distribution
from sngep.models.darlc.train import rescale_theta_lr, theta_param_groups


def _kl_steps_on_theta(scale_aware: bool, scale: float = 1e-3, steps: int = 40):
    """EM-fit an SMM on z of tiny spread, then take L_kl Adam steps on Theta alone.

    Returns (condition number of Sigma before, after, log q finite after).
    """
    g = torch.Generator().manual_seed(0)
    d, k = 16, 3
    centres = 0.7 * torch.randn(k, d, generator=g, dtype=torch.float64)  # overlapping: Q soft
    z = centres.repeat_interleave(50, 0) + torch.randn(150, d, generator=g, dtype=torch.float64)
    z = (scale * z).float()
    smm = StudentTMixture(k, d)
    smm.fit_em(z, n_iter=30, random_state=0)
    p = target_distribution(smm.soft_assign(z))
    if scale_aware:
        opt = torch.optim.Adam(theta_param_groups(smm, 1e-3), lr=1e-3)
        rescale_theta_lr(opt, smm, 1e-3)
    else:  # one learning rate for every Theta coordinate
        opt = torch.optim.Adam(smm.parameters(), lr=1e-3)
    cond = lambda: torch.linalg.cond(smm.sigma.detach().double()).max().item()  # noqa: E731
    before = cond()
    for _ in range(steps):
        zb = z + 0.1 * scale * torch.randn(z.shape, generator=g)  # a batch's jitter
        loss = kl_loss(p, torch.log_softmax(smm.log_joint(zb), dim=1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        smm.project_()
    finite = bool(torch.isfinite(smm.sigma).all() and torch.isfinite(smm.log_joint(z)).all())
    after = cond() if finite else float("inf")
    return before, after, finite


def test_theta_steps_scale_with_the_clusters():
    """Regression: on DLPFC the fast preset turned to NaN within 5 batches of the joint epoch."""
    before, after, finite = _kl_steps_on_theta(scale_aware=True)
    assert finite
    assert after < 2 * before


def test_plain_adam_on_theta_breaks_at_small_scale():
    """The failure the parameter groups prevent (keeps the test above meaningful)."""
    before, after, finite = _kl_steps_on_theta(scale_aware=False)
    assert not finite or after > 100 * before


def test_theta_groups_cover_every_trainable_smm_parameter():
    smm = StudentTMixture(4, 3)
    groups = theta_param_groups(smm, 1e-3)
    ids = {id(p) for g in groups for p in g["params"]}
    assert ids == {id(p) for p in smm.parameters() if p.requires_grad}
    gmm = StudentTMixture(4, 3, mixture="gmm")  # nu is frozen there
    ids = {id(p) for g in theta_param_groups(gmm, 1e-3) for p in g["params"]}
    assert id(gmm.log_nu) not in ids
