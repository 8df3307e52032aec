"""Joint-training numerics: the gradient step on Theta (Algorithm 1 line 23) stays finite."""

import numpy as np
import pytest
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


def _tiny_setup(n=12, k=3, seed=0, **over):
    import numpy as np

    from sngep.models.darlc.config import DARLCConfig
    from sngep.models.darlc.losses import normalized_similarity
    from sngep.models.darlc.train import DARLCNet, _Data

    cfg = DARLCConfig.from_preset(
        "fast",
        embed_dim=16,
        depth=1,
        n_heads=2,
        contrastive_dim=8,
        head_hidden=8,
        latent_dim=4,
        batch_size=5,
        **over,
    )
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, 8, generator=g)
    s = torch.rand(n, n, generator=g)
    s = (s + s.T) / 2
    s.fill_diagonal_(0)
    torch.manual_seed(seed)
    net = DARLCNet((8, 8), cfg, k)
    data = _Data(
        x=x,
        v=x + 0.1 * torch.randn(n, 8, 8, generator=g),
        s_norm=normalized_similarity(s),
        pixel_weight=None,
        cfg=cfg,
        gen=torch.Generator().manual_seed(seed),
        seed=seed,
    )
    data.cov = net.covariates(x)
    return net, data, np


@pytest.mark.parametrize(
    ("rec_target", "head", "regress_out", "decorrelation"),
    [
        ("raw", "mlp", None, 0.0),
        ("view", "mlp", None, 0.0),
        ("mix", "standardise", None, 0.0),
        ("detection", "standardise", None, 0.0),
        ("view", "standardise", None, 0.0),
        ("view", "standardise", "detection", 0.0),
        ("view", "standardise", None, 2.0),
    ],
)
def test_l1_step_gradient_equals_autograd_on_the_whole_of_eq16(
    rec_target, head, regress_out, decorrelation
):
    """The chunked three-part gradient of L1 (train.l1_step) is the gradient of eq. 16 (plus
    the decorrelation term on all genes' head inputs when that switch is on)."""
    import math

    from sngep.models.darlc.losses import decorrelation_loss, laplacian_loss
    from sngep.models.darlc.smm import size_loss
    from sngep.models.darlc.train import calibrated_z, l1_step

    net, data, _ = _tiny_setup(
        rec_target=rec_target, head=head, regress_out=regress_out, decorrelation=decorrelation
    )
    if regress_out is not None:  # images of unequal sparsity, so the covariates vary
        data.x = torch.relu(data.x - torch.linspace(-1, 1, data.n)[:, None, None])
        data.cov = net.covariates(data.x)
        assert data.cov[:, 0].std() > 0.1
    if rec_target == "detection":  # each gene's own share of the target, 0 to 1
        data.rec_weight = torch.linspace(0, 1, data.n)
    h_all, z_all = calibrated_z(net, data)
    net.smm.fit_em(z_all, n_iter=5, random_state=0)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.0)
    eta, seed = 0.3, 11
    l1_step(net, data, opt, eta, seed, h_all)
    got = {id(p): None if p.grad is None else p.grad.clone() for p in params}

    # the same loss in one graph
    for p in params:
        p.grad = None
    n, bs = data.n, data.bs
    net.head.train()
    h = torch.cat([net.features(data.x[i : i + bs]) for i in range(0, n, bs)])
    z = net.head(h, data.cov)
    net.head.eval()
    d = data.rec_weight[:, None, None] if rec_target == "detection" else None
    target = {
        "view": data.v,
        "raw": data.x,
        "mix": (data.x + data.v) / 2,
        "detection": None if d is None else d * data.x + (1 - d) * data.v,
    }[rec_target]
    rec = sum(
        net.module_i.mae_loss(
            data.x[i : i + bs],
            data.cfg.mask_ratio,
            torch.Generator().manual_seed(seed + j),
            target=target[i : i + bs],
        )
        * (min(bs, n - i) / n)
        for j, i in enumerate(range(0, n, bs))
    )
    ll = torch.logsumexp(net.smm.log_joint(z), dim=1).mean()
    size = size_loss(torch.softmax(net.smm.log_joint(z), dim=1), 1.0 / net.n_clusters)
    cluster = net.uwl_1(-ll, -size + net.n_clusters / math.e, rec)
    loss = eta * laplacian_loss(z, data.s_norm) + (1 - eta) * cluster
    loss = loss + decorrelation * decorrelation_loss(h)
    loss.backward()
    for p in params:
        if id(p) in {id(q) for q in net.smm.parameters()}:
            assert got[id(p)] is None  # Algorithm 1 line 17: Theta is not updated by L1
            continue
        if p.grad is None:
            assert got[id(p)] is None or torch.count_nonzero(got[id(p)]) == 0
            continue
        torch.testing.assert_close(got[id(p)], p.grad, rtol=1e-4, atol=1e-6)


def test_calibrated_head_is_the_train_mode_head_over_all_genes():
    """EM, L1 and the labels read z with one set of BN statistics: those of all N genes."""
    from sngep.models.darlc.train import calibrated_z, encode_all

    net, data, _ = _tiny_setup(n=23)
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in net.head.modules())
    for p in net.head.parameters():  # away from the identity initialisation
        p.data.add_(0.1 * torch.randn_like(p))
    h_all, z = calibrated_z(net, data)
    assert not net.head.training
    torch.testing.assert_close(h_all, encode_all(net, data.x, data.bs))
    net.head.train()
    with torch.no_grad():
        z_batch = net.head(h_all)  # batch statistics of all genes at once
    net.head.eval()
    torch.testing.assert_close(z, z_batch, rtol=1e-4, atol=1e-5)
    # and the calibration does not depend on what batches the head saw before
    net.head.train()
    with torch.no_grad():
        net.head(h_all[:5] * 3.0)
    _, z_again = calibrated_z(net, data)
    torch.testing.assert_close(z_again, z, rtol=1e-4, atol=1e-5)


def test_standardise_head_is_the_head_input_standardised_over_the_genes():
    """head='standardise': z is the [CLS] token with each dimension at mean 0, variance 1
    over the genes, no projection and no parameters (so eq. 18 cannot grow by shrinking z)."""
    from sngep.models.darlc.train import calibrated_z

    net, data, _ = _tiny_setup(n=23, head="standardise", head_input="cls")
    assert not list(net.head.parameters())
    h_all, z = calibrated_z(net, data)
    assert z.shape == h_all.shape == (23, 16)  # embed_dim, not latent_dim
    assert net.smm.mu.shape[-1] == 16
    expect = (h_all - h_all.mean(0)) / torch.sqrt(h_all.var(0, unbiased=False) + 1e-5)
    torch.testing.assert_close(z, expect, rtol=1e-4, atol=1e-5)


def test_cosine_joint_schedule_anneals_every_group_from_its_joint_lr():
    from sngep.models.darlc.config import DARLCConfig
    from sngep.models.darlc.train import joint_lr_factor

    const = DARLCConfig.from_preset("fast", epochs=10, joint_schedule="constant")
    cos = DARLCConfig.from_preset("fast", epochs=10, joint_schedule="cosine")
    assert DARLCConfig.from_preset("default").joint_schedule == "cosine"
    assert DARLCConfig.from_preset("paper").joint_schedule == "constant"
    assert [joint_lr_factor(const, e) for e in range(10)] == [1.0] * 10
    f = [joint_lr_factor(cos, e) for e in range(10)]
    assert f[0] == 1.0
    assert all(a > b for a, b in zip(f, f[1:], strict=False))
    assert 0 < f[-1] < 0.05
    with pytest.raises(ValueError, match="joint_schedule"):
        DARLCConfig.from_preset("fast", joint_schedule="linear")


@pytest.mark.parametrize("view", ["full", "masked"])
def test_ssl_loss_clr_view_sets_what_the_online_encoder_sees(view):
    """clr_view='full' (eq. 9): e encodes the unmasked image in a second online pass;
    'masked': L_clr reuses the masked pass of L_rec, so pretraining runs one online pass."""
    from sngep.models.darlc.losses import contrastive_loss
    from sngep.models.darlc.train import _ssl_loss

    net, data, _ = _tiny_setup(clr_view=view)
    seen = []  # token counts the online encoder is run on (the target encoder is separate)
    net.module_i.encoder.register_forward_hook(lambda m, i, o: seen.append(o[0].shape[0]))
    idx = torch.arange(5)
    gen_state = data.gen.get_state()
    rec, clr, feats = _ssl_loss(net, idx, data, features=False)
    assert feats is None
    assert len(seen) == (1 if view == "masked" else 2)

    # L_clr is eq. 10 between e of the chosen online view and the target's e of the views
    data.gen.set_state(gen_state)
    x = data.x[idx]
    rec_ref, cls_masked = net.module_i.mae_loss(
        x, data.cfg.mask_ratio, data.gen, target=data.v[idx], return_cls=True
    )
    cls_online = cls_masked if view == "masked" else net.module_i.encoder(x)[0]
    clr_ref = contrastive_loss(
        net.module_i.head(cls_online), net.module_i.target_embed(data.v[idx]), tau=data.cfg.tau
    )
    torch.testing.assert_close(rec, rec_ref)
    torch.testing.assert_close(clr, clr_ref)

    # with features the head input is always the unmasked image's
    rec, clr, feats = _ssl_loss(net, idx, data, features=True)
    torch.testing.assert_close(feats, net.features(x))


def test_clr_drop_runs_the_second_online_pass_on_a_random_share_of_the_tokens():
    """clr_drop (FLIP): L_clr's online pass reads round((1 - clr_drop) * L) random tokens,
    drawn from the run's generator; L_clr is eq. 10 on that pass; the head input of
    features=True is still the unmasked image's; values outside [0, 1) are refused."""
    from sngep.models.darlc.config import DARLCConfig
    from sngep.models.darlc.losses import contrastive_loss
    from sngep.models.darlc.train import _ssl_loss

    net, data, _ = _tiny_setup(clr_drop=0.5)
    enc = net.module_i.encoder
    n_tok = []  # tokens (CLS included) entering the online encoder's blocks, per pass
    enc.blocks[0].register_forward_hook(lambda m, i, o: n_tok.append(i[0].shape[1]))
    idx = torch.arange(5)
    state = data.gen.get_state()
    rec, clr, feats = _ssl_loss(net, idx, data, features=False)
    assert feats is None
    visible_rec = 1 + max(1, round((1 - data.cfg.mask_ratio) * enc.n_patches))
    assert n_tok == [visible_rec, 1 + round(0.5 * enc.n_patches)]

    data.gen.set_state(state)
    x = data.x[idx]
    rec_ref = net.module_i.mae_loss(x, data.cfg.mask_ratio, data.gen, target=data.v[idx])
    cls_half = enc(x, 0.5, data.gen)[0]
    clr_ref = contrastive_loss(
        net.module_i.head(cls_half), net.module_i.target_embed(data.v[idx]), tau=data.cfg.tau
    )
    torch.testing.assert_close(rec, rec_ref)
    torch.testing.assert_close(clr, clr_ref)

    n_tok.clear()
    _, _, feats = _ssl_loss(net, idx, data, features=True)
    assert 1 + enc.n_patches in n_tok  # a full pass for the head input besides the dropped one
    torch.testing.assert_close(feats, net.features(x))
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match="clr_drop"):
            DARLCConfig.from_preset("fast", clr_drop=bad)
    with pytest.raises(ValueError, match="clr_view='full'"):  # no second pass to drop from
        DARLCConfig.from_preset("fast", clr_drop=0.5, clr_view="masked")


def test_use_rec_false_runs_no_masked_pass_and_keeps_l_clr():
    """use_rec=False (no masked image modelling): L_rec is 0 and its masked pass is not run,
    L_clr is eq. 10 on the unmasked pass as with L_rec; no L_rec and no L_clr, or L_clr
    reading L_rec's masked pass, are refused."""
    from sngep.models.darlc.config import DARLCConfig
    from sngep.models.darlc.losses import contrastive_loss
    from sngep.models.darlc.train import _ssl_loss

    net, data, _ = _tiny_setup(use_rec=False)
    enc = net.module_i.encoder
    n_tok = []
    enc.blocks[0].register_forward_hook(lambda m, i, o: n_tok.append(i[0].shape[1]))
    idx = torch.arange(5)
    rec, clr, _ = _ssl_loss(net, idx, data, features=False)
    assert float(rec) == 0.0 and not rec.requires_grad
    assert n_tok == [1 + enc.n_patches]  # the unmasked online pass only
    x = data.x[idx]
    clr_ref = contrastive_loss(
        net.module_i.head(enc(x)[0]), net.module_i.target_embed(data.v[idx]), tau=data.cfg.tau
    )
    torch.testing.assert_close(clr, clr_ref)
    with pytest.raises(ValueError, match="no loss"):
        DARLCConfig.from_preset("fast", use_rec=False, use_clr=False)
    with pytest.raises(ValueError, match="masked pass"):
        DARLCConfig.from_preset("fast", use_rec=False, clr_view="masked")


def test_clr_form_align_replaces_eq10_by_the_attraction_term():
    """clr_form='align': L_clr of a batch is losses.alignment_loss between the online e of
    the unmasked images and the target's e of their views; it has no negatives, so a
    negatives queue is refused."""
    from sngep.models.darlc.config import DARLCConfig
    from sngep.models.darlc.losses import alignment_loss
    from sngep.models.darlc.train import _ssl_loss

    net, data, _ = _tiny_setup(clr_form="align")
    idx = torch.arange(5)
    _, clr, _ = _ssl_loss(net, idx, data, features=False)
    x = data.x[idx]
    ref = alignment_loss(
        net.module_i.head(net.module_i.encoder(x)[0]), net.module_i.target_embed(data.v[idx])
    )
    torch.testing.assert_close(clr, ref)
    with pytest.raises(ValueError, match="clr_queue"):
        DARLCConfig.from_preset("fast", clr_form="align", clr_queue=64)
    with pytest.raises(ValueError, match="clr_neighbour_role"):  # 'excluded' acts on negatives
        DARLCConfig.from_preset("fast", clr_form="align", clr_neighbour_role="excluded")


def test_clr_weight_scales_l_clr_only():
    """clr_weight multiplies L_clr where it enters UWL (eq. 11; L2 reads the same
    _ssl_loss); L_rec is unchanged; a negative or NaN weight is refused."""
    from dataclasses import replace

    from sngep.models.darlc.config import DARLCConfig
    from sngep.models.darlc.train import _ssl_loss

    net, data, _ = _tiny_setup()
    idx = torch.arange(5)
    state = data.gen.get_state()
    rec1, clr1, _ = _ssl_loss(net, idx, data, features=False)
    data.cfg = replace(data.cfg, clr_weight=2.5)
    data.gen.set_state(state)
    rec2, clr2, _ = _ssl_loss(net, idx, data, features=False)
    torch.testing.assert_close(rec2, rec1)
    torch.testing.assert_close(clr2, 2.5 * clr1)
    assert float(clr1) > 0
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="clr_weight"):
            DARLCConfig.from_preset("fast", clr_weight=bad)


def test_decorrelation_adds_its_term_to_the_pretraining_loss_only_when_asked():
    """decorrelation = 0 (every preset) gives the same pretraining twice (deterministic); > 0
    changes the losses and lowers the correlation between the head input's dimensions after
    training; a negative or NaN weight is refused."""
    from dataclasses import replace

    from sngep.models.darlc.config import DARLCConfig
    from sngep.models.darlc.losses import decorrelation_loss
    from sngep.models.darlc.train import encode_all, pretrain

    class _Bar:
        def set_postfix(self, **_):
            pass

        def update(self, _):
            pass

    def run(weight: float):
        torch.manual_seed(0)
        net, data, _ = _tiny_setup(n=24, pretrain_steps=30)
        data.cfg = replace(data.cfg, decorrelation=weight)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        return net, data, pretrain(net, data, opt, _Bar())

    net0, data0, rec0 = run(0.0)
    _, _, rec0b = run(0.0)
    assert rec0 == rec0b  # the switch off is the old pretraining, deterministic
    net1, data1, rec1 = run(5.0)
    assert rec1 != rec0
    corr0 = float(decorrelation_loss(encode_all(net0, data0.x, 24)))
    corr1 = float(decorrelation_loss(encode_all(net1, data1.x, 24)))
    assert corr1 < corr0
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="decorrelation"):
            DARLCConfig.from_preset("fast", decorrelation=bad)


def test_clr_queue_keeps_the_latest_targets_and_never_contrasts_a_gene_with_itself():
    """clr_queue: the batch's target embeddings join a FIFO of ``clr_queue`` entries that are
    extra negatives of L_clr for the next batches, except for the genes they embed."""
    from sngep.models.darlc.losses import contrastive_loss

    net, data, _ = _tiny_setup(n=12, clr_queue=6)  # N - batch = 7 >= 6
    g = torch.Generator().manual_seed(0)
    e, eb = torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g)
    first = data.contrast(e, eb, torch.tensor([0, 1, 2, 3]))
    torch.testing.assert_close(first, contrastive_loss(e, eb, tau=data.cfg.tau))  # empty queue
    assert data.queue_genes.tolist() == [0, 1, 2, 3]
    e2, eb2 = torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g)
    idx2 = torch.tensor([3, 4, 5, 6])
    second = data.contrast(e2, eb2, idx2)
    mask = idx2[:, None] == torch.tensor([0, 1, 2, 3])[None, :]
    assert mask.sum() == 1  # gene 3 is in the queue: not its own negative
    ref = contrastive_loss(e2, eb2, tau=data.cfg.tau, queue=eb, queue_mask=mask)
    torch.testing.assert_close(second, ref)
    assert data.queue_genes.tolist() == [2, 3, 3, 4, 5, 6]  # the latest 6
    torch.testing.assert_close(data.queue[-4:], eb2)
    from sngep.models.darlc.config import DARLCConfig

    assert DARLCConfig.from_preset("paper").clr_queue == 0  # eq. 10 as written
    with pytest.raises(ValueError, match="clr_queue"):
        _tiny_setup(clr_queue=-1)


def test_similarity_neighbours_find_the_genes_whose_rows_of_s_agree():
    """Three blocks of genes similar within: each gene's neighbours are its block; a gene
    similar to none has no neighbours (-1), and the graph is symmetric."""
    import numpy as np

    from sngep.models.darlc.train import neighbour_graph, similarity_neighbours, similarity_rows

    rng = np.random.default_rng(0)
    block = np.repeat(np.arange(3), 4)
    s = (block[:, None] == block[None, :]) * 0.8 + rng.uniform(0, 0.05, (12, 12))
    s = np.vstack([np.hstack([(s + s.T) / 2, np.zeros((12, 1))]), np.zeros((1, 13))])
    lists = similarity_neighbours(similarity_rows(s), 3)
    assert lists.shape == (13, 3)
    for i in range(12):
        assert set(block[lists[i]]) == {block[i]} and i not in lists[i]
    assert (lists[12] == -1).all()  # an all-zero row of S: no neighbour
    graph = neighbour_graph(lists)
    assert (graph == graph.T).all() and not graph.diagonal().any() and not graph[12].any()
    assert similarity_neighbours(similarity_rows(s), 50).shape == (13, 12)  # k <= N - 1


def test_cls_rec_is_the_tissue_mse_of_a_linear_map_of_the_cls_token():
    """cls_rec: a linear map of the [CLS] token regenerates the whole view; its loss is the
    mean squared error over the tissue pixels, 0 for a perfect map, and it is trained."""
    from sngep.models.darlc.train import _cls_rec_loss, pretrain_param_groups

    net, data, _ = _tiny_setup(cls_rec=1.0)
    cls = torch.randn(3, net.cls_decoder.in_features)
    with torch.no_grad():
        net.cls_decoder.weight.zero_()
        net.cls_decoder.bias.fill_(0.5)
    views = torch.zeros(3, 8, 8)
    net.tissue[0, :] = False  # one row outside the tissue: not scored
    views[:, 0, :] = 100.0
    assert _cls_rec_loss(net, cls, views).item() == pytest.approx(0.25)
    views[:, 1:, :] = 0.5
    assert _cls_rec_loss(net, cls, views).item() == pytest.approx(0.0)
    trained = {id(p) for g in pretrain_param_groups(net, data.cfg) for p in g["params"]}
    assert {id(net.cls_decoder.weight), id(net.cls_decoder.bias)} <= trained
    assert _tiny_setup()[0].cls_decoder is None


def test_tail_average_is_the_mean_of_the_last_steps_weights():
    """pretrain_average: the weights after the last fraction of the steps are averaged and
    written back; earlier steps do not count; 0 leaves the weights as they are."""
    from sngep.models.darlc.config import DARLCConfig
    from sngep.models.darlc.train import _TailAverage

    net, _, _ = _tiny_setup()
    params = list(net.module_i.trainable_parameters())

    def set_all(value):
        with torch.no_grad():
            for p in params:
                p.fill_(value)

    avg = _TailAverage(net, total=4, fraction=0.5)
    for step, value in enumerate([10.0, 20.0, 1.0, 2.0], start=1):
        set_all(value)
        avg.update(step)
    set_all(-5.0)
    avg.apply()
    assert all(torch.allclose(p, torch.full_like(p, 1.5)) for p in params)
    off = _TailAverage(net, total=4, fraction=0.0)
    for step in range(1, 5):
        off.update(step)
    set_all(7.0)
    off.apply()
    assert all(torch.allclose(p, torch.full_like(p, 7.0)) for p in params)
    with pytest.raises(ValueError, match="pretrain_average"):
        DARLCConfig.from_preset("fast", pretrain_average=1.5)


def test_pool_views_mixes_each_view_with_its_neighbours_mean_and_restandardises():
    """view_pooling: a view becomes half its own, half the mean of its k nearest genes' views
    (rows of S), standardised in the tissue again; a gene without neighbours keeps its view
    and the caller's array is not changed."""
    import numpy as np

    from sngep.models.darlc.train import normalise_images, pool_views, similarity_rows

    rng = np.random.default_rng(0)
    mask = np.ones((4, 5), dtype=bool)
    mask[0, 0] = False
    views = normalise_images(rng.normal(size=(7, 4, 5)).astype(np.float32), mask)
    block = np.array([0, 0, 0, 1, 1, 1, 2])  # gene 6 is similar to no other gene
    s = (block[:, None] == block[None, :]).astype(float)
    s[6] = s[:, 6] = 0.0
    before = views.copy()
    out = pool_views(views, similarity_rows(s), 2, mask)
    np.testing.assert_array_equal(views, before)
    for g in range(6):
        others = [o for o in range(6) if block[o] == block[g] and o != g]
        want = normalise_images((0.5 * views[g] + 0.5 * views[others].mean(0))[None], mask)[0]
        np.testing.assert_allclose(out[g], want, atol=1e-5)
    np.testing.assert_allclose(out[6], views[6], atol=1e-6)
    assert (out[:, ~mask] == 0).all()


def test_clr_neighbours_batches_pair_each_gene_with_a_neighbour_and_mark_positives():
    """clr_neighbours: every epoch holds each gene once as a drawn gene, each joined by one of
    its neighbours, and L_clr receives the batch's block of the neighbour graph."""
    import numpy as np

    from sngep.models.darlc.config import DARLCConfig
    from sngep.models.darlc.losses import contrastive_loss
    from sngep.models.darlc.train import _set_neighbours

    net, data, _ = _tiny_setup(n=12, clr_neighbours=2)
    block = np.repeat(np.arange(4), 3)
    sim = (block[:, None] == block[None, :]).astype(float)
    _set_neighbours(data, sim, torch.device("cpu"))
    batches = data.batches()
    drawn = []
    for b in batches:
        assert len(set(b.tolist())) == b.numel()
        for gene in b.tolist():  # every gene of a batch has a neighbour in it
            assert any(block[o] == block[gene] and o != gene for o in b.tolist())
        drawn += b.tolist()
    assert set(drawn) == set(range(12))
    g = torch.Generator().manual_seed(0)
    e, eb = torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g)
    idx = torch.tensor([0, 1, 5, 9])
    want = torch.zeros(4, 4, dtype=torch.bool)
    want[0, 1] = want[1, 0] = True  # genes 0 and 1 share block 0
    ref = contrastive_loss(e, eb, tau=data.cfg.tau, positives=want)
    torch.testing.assert_close(data.contrast(e, eb, idx), ref)
    assert DARLCConfig.from_preset("paper").clr_neighbours == 0  # eq. 10 as written
    with pytest.raises(ValueError, match="clr_neighbours"):
        DARLCConfig.from_preset("fast", clr_neighbours=-1)
    with pytest.raises(ValueError, match="clr_neighbour_role"):
        DARLCConfig.from_preset("fast", clr_neighbour_role="negative")


def test_consensus_neighbours_keep_the_similarity_neighbours_the_views_agree_on():
    """clr_neighbour_source='consensus': of each gene's 2 k nearest genes in the rows of S,
    those among its 2 k most correlated genes by view, in S's order, at most k."""
    import numpy as np

    from sngep.models.darlc.config import DARLCConfig
    from sngep.models.darlc.train import _set_neighbours, consensus_neighbours, normalise_images

    first = np.array([[1, 2, 3, -1], [0, 3, 2, 1], [3, 0, 1, -1], [2, 1, 0, -1]])
    second = np.array([[3, 1, -1, -1], [2, 3, 0, -1], [-1, -1, -1, -1], [0, 1, 2, -1]])
    got = consensus_neighbours(first, second, 2)
    np.testing.assert_array_equal(got, [[1, 3], [0, 3], [-1, -1], [2, 1]])
    # in a fit: S groups the genes in threes, the views in pairs (disjoint supports, so
    # genes of different pairs are anti-correlated): only the pair partner is kept
    net, data, _ = _tiny_setup(n=12, clr_neighbours=2, clr_neighbour_source="consensus")
    pair = np.repeat(np.arange(6), 2)
    v = torch.zeros(12, 8, 8)
    for gene, p in enumerate(pair):
        v[gene].view(-1)[p * 10 : p * 10 + 10] = 1.0 + 0.01 * gene
    data.v = torch.as_tensor(normalise_images(v.numpy()))
    three = np.repeat(np.arange(4), 3)
    sim = (three[:, None] == three[None, :]).astype(float)
    np.fill_diagonal(sim, 0.0)
    _set_neighbours(data, sim, torch.device("cpu"))
    for i, row in enumerate(data.neighbour_lists.numpy()):
        partner = i + 1 if i % 2 == 0 else i - 1
        want = [partner] if three[partner] == three[i] else []
        assert row[row >= 0].tolist() == want
    with pytest.raises(ValueError, match="clr_neighbour_source"):
        DARLCConfig.from_preset("fast", clr_neighbour_source="views")


def test_clr_image_exclusions_leave_correlated_genes_out_of_the_denominators():
    """clr_image_exclusions: each gene's most correlated genes by standardised image form a
    symmetric graph, and L_clr receives the batch's block of it as excluded genes."""
    import numpy as np

    from sngep.models.darlc.config import DARLCConfig
    from sngep.models.darlc.losses import contrastive_loss
    from sngep.models.darlc.train import _set_exclusions, normalise_images

    net, data, _ = _tiny_setup(n=12, clr_image_exclusions=2, clr_neighbours=0)
    g = torch.Generator().manual_seed(1)
    base = torch.randn(4, 8, 8, generator=g)
    x = base.repeat_interleave(3, dim=0) + 0.1 * torch.randn(12, 8, 8, generator=g)
    data.x = torch.as_tensor(normalise_images(x.numpy()))
    _set_exclusions(data)
    graph = data.exclusion_graph
    block = np.repeat(np.arange(4), 3)
    assert (graph == graph.T).all() and not graph.diagonal().any()
    assert torch.equal(
        graph, torch.as_tensor(block[:, None] == block[None, :]) & ~torch.eye(12, dtype=torch.bool)
    )
    e, eb = torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g)
    idx = torch.tensor([0, 1, 5, 9])
    want = torch.zeros(4, 4, dtype=torch.bool)
    want[0, 1] = want[1, 0] = True
    ref = contrastive_loss(e, eb, tau=data.cfg.tau, excluded=want)
    torch.testing.assert_close(data.contrast(e, eb, idx), ref)
    with pytest.raises(ValueError, match="clr_image_exclusions"):
        DARLCConfig.from_preset("fast", clr_image_exclusions=-1)
    with pytest.raises(ValueError, match="clr_image_exclusions"):
        DARLCConfig.from_preset("fast", clr_form="align", clr_image_exclusions=3)


def test_similarity_rows_are_unit_rows_of_the_clipped_similarity():
    import numpy as np
    import scipy.sparse as sp

    from sngep.models.darlc.train import similarity_rows

    s = np.array([[1.0, 0.6, -0.2], [0.6, 1.0, 0.3], [-0.2, 0.3, 1.0]])
    r = similarity_rows(s)
    want = np.array([[0, 1, 0], [0.6, 0, 0.3], [0, 1, 0]], dtype=float)
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(r, want, rtol=1e-6)
    np.testing.assert_allclose(similarity_rows(sp.csr_matrix(s)), want, rtol=1e-6)
    with pytest.raises(ValueError, match="seeding similarity"):
        similarity_rows(None)


def test_seed_similarity_start_partitions_the_genes_by_their_similarity_rows(monkeypatch):
    """cluster_init='seed_similarity': the mixture starts from Leiden on the rows of S (here
    three blocks of genes similar within), whatever z holds (noise here)."""
    import numpy as np

    from sngep.metrics import ari
    from sngep.models.darlc.config import DARLCConfig
    from sngep.models.darlc.smm import StudentTMixture
    from sngep.models.darlc.train import init_mixture, similarity_rows

    rng = np.random.default_rng(0)
    blocks = np.repeat(np.arange(3), 20)
    s = (blocks[:, None] == blocks[None, :]) * 0.8 + rng.uniform(0, 0.1, (60, 60))
    s = (s + s.T) / 2
    z = torch.randn(60, 4, generator=torch.Generator().manual_seed(0))
    seen = {}
    smm = StudentTMixture(3, 4, covariance="diag")

    def capture(x, n_iter, init, labels=None, **kw):
        seen["init"], seen["labels"] = init, np.asarray(labels)
        return {"log_posterior": [0.0], "n_iter": 0, "converged": True}

    monkeypatch.setattr(smm, "fit_em", capture)
    cfg = DARLCConfig.from_preset("fast", cluster_init="seed_similarity")
    init_mixture(smm, z, cfg, 0, similarity_rows(s))
    assert seen["init"] == "labels"
    assert ari(blocks, seen["labels"]) == pytest.approx(1.0)
    init_mixture(smm, z, DARLCConfig.from_preset("fast"), 0)  # k-means on z: not the blocks
    assert ari(blocks, seen["labels"]) < 0.5


def test_covariates_are_the_detection_rate_inside_the_tissue():
    """regress_out='detection': d = the fraction of tissue pixels above the image's floor
    (where a normalised image puts every zero count); pixels outside the tissue ignored."""
    from sngep.models.darlc.config import DARLCConfig
    from sngep.models.darlc.train import DARLCNet, normalise_images

    mask = np.zeros((6, 6), dtype=bool)
    mask[:, :4] = True  # 24 tissue pixels
    raw = np.zeros((3, 6, 6), dtype=np.float32)
    raw[0, :3, :2] = 2.0  # 6 of 24 detected
    raw[1, :, :4] = 1.0 + np.arange(24).reshape(6, 4)  # all detected
    raw[1, 0, 0] = 0.0  # but one: 23 of 24
    raw[2, :, 4:] = 5.0  # expressed outside the tissue only: 0 of 24
    cfg = DARLCConfig.from_preset("fast", regress_out="detection")
    net = DARLCNet((6, 6), cfg, 2, mask=mask)
    x = torch.as_tensor(normalise_images(raw, mask))
    cov = net.covariates(x)
    d = torch.tensor([6 / 24, 23 / 24, 0.0])
    torch.testing.assert_close(cov, torch.stack([d, d * d], dim=1))
    assert DARLCNet((6, 6), DARLCConfig.from_preset("fast"), 2).covariates(x) is None
    with pytest.raises(ValueError, match="regress_out"):
        DARLCConfig.from_preset("fast", regress_out="sparsity")


def test_exactly_k_completes_a_leiden_partition_that_missed_k():
    """A start whose resolution bisection missed K keeps its partition: the largest cluster
    is split by 2-means, or the smallest merged into the nearest centroid."""
    import numpy as np

    from sngep.metrics import ari
    from sngep.models.darlc.train import exactly_k

    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(4), 15)
    x = np.eye(4)[truth] * 10 + rng.normal(0, 0.1, (60, 4))
    merged = np.where(truth == 3, 2, truth)  # 3 clusters found, 2 and 3 merged
    codes = exactly_k(x, merged.astype(str), 4, 0)
    assert codes.max() + 1 == 4 and ari(truth, codes) == pytest.approx(1.0)
    split = truth.copy()
    split[:2] = 4  # 5 clusters found: two genes of cluster 0 split off
    codes = exactly_k(x, split, 4, 0)
    assert codes.max() + 1 == 4 and ari(truth, codes) == pytest.approx(1.0)
    assert exactly_k(x, truth, 4, 0).tolist() == truth.tolist()  # already K: unchanged
    assert exactly_k(x[:2], [0, 1], 3, 0) is None  # nothing left to split


def test_weight_decay_shrinks_module_i_weight_matrices_only():
    from sngep.models.darlc._device import adam
    from sngep.models.darlc.train import joint_optimizer_groups, pretrain_param_groups

    net, data, _ = _tiny_setup(weight_decay=0.5)
    groups = pretrain_param_groups(net, data.cfg)
    decay, keep = ({id(p) for p in g["params"]} for g in groups)
    trainable = {id(p) for p in net.module_i.trainable_parameters()}
    trainable |= {id(p) for p in net.uwl_ssl.parameters()}
    assert decay | keep == trainable and not decay & keep
    assert id(net.module_i.encoder.cls_token) in keep
    assert all(p.ndim >= 2 for g in groups[:1] for p in g["params"])
    # no gradient: Adam leaves every parameter alone but decay shrinks the matrices by lr * wd
    opt = adam(groups, lr=0.1, decoupled_weight_decay=True)
    for g in joint_optimizer_groups(net, data.cfg):
        opt.add_param_group(g)
    assert [g["weight_decay"] for g in opt.param_groups[2:]] == [0.0] * (len(opt.param_groups) - 2)
    before = [p.detach().clone() for g in opt.param_groups for p in g["params"]]
    for g in opt.param_groups:
        for p in g["params"]:
            p.grad = torch.zeros_like(p)
    opt.step()
    after = [p.detach() for g in opt.param_groups for p in g["params"]]
    ids = [id(p) for g in opt.param_groups for p in g["params"]]
    for i, b, a in zip(ids, before, after, strict=True):
        torch.testing.assert_close(a, b * 0.95 if i in decay else b)
    from sngep.models.darlc.config import DARLCConfig

    for bad in (-0.1, float("nan")):
        with pytest.raises(ValueError, match="weight_decay"):
            DARLCConfig.from_preset("fast", weight_decay=bad)


def test_consensus_start_follows_the_neighbours_two_representations_share(monkeypatch):
    """cluster_init='consensus': Leiden on the sum of the kNN graphs of z, the rows of S and
    the views. Each representation misplaces a different fifth of the genes (their
    coordinates are those of another block), so each alone gets those genes wrong, while
    the summed graph, where two of three representations agree, gets every gene right."""
    import numpy as np

    from sngep.metrics import ari
    from sngep.models.darlc.config import DARLCConfig
    from sngep.models.darlc.smm import StudentTMixture
    from sngep.models.darlc.train import consensus_graph, init_mixture

    rng = np.random.default_rng(0)
    blocks = np.repeat(np.arange(3), 20)
    reps = []
    for part in range(3):  # genes 4 * part .. 4 * part + 3 of every block are misplaced here
        shown = blocks.copy()
        wrong = np.flatnonzero(np.arange(60) % 20 // 4 == part)
        shown[wrong] = (blocks[wrong] + 1) % 3
        reps.append(np.eye(3)[shown] * 5 + rng.normal(0, 0.3, (60, 3)))
    seen = {}
    smm = StudentTMixture(3, 3, covariance="diag")

    def capture(x, n_iter, init, labels=None, **kw):
        seen["labels"] = np.asarray(labels)
        return {"log_posterior": [0.0], "n_iter": 0, "converged": True}

    monkeypatch.setattr(smm, "fit_em", capture)
    z = torch.as_tensor(reps[0])
    cfg = DARLCConfig.from_preset("fast", cluster_init="consensus")
    init_mixture(smm, z, cfg, 0, reps[1], reps[2])
    assert ari(blocks, seen["labels"]) == pytest.approx(1.0)
    init_mixture(smm, z, DARLCConfig.from_preset("fast", cluster_init="leiden"), 0)
    assert ari(blocks, seen["labels"]) < 0.8  # z alone keeps its misplaced genes
    graph = consensus_graph([reps[0], None, reps[2]])  # a missing representation is skipped
    assert graph.shape == (60, 60) and abs(graph - graph.T).max() < 1e-6


def test_rec_target_detection_weighs_image_and_view_by_the_genes_detection_rate():
    """rec_target='detection': L_rec's target is d x + (1 - d) v per gene, d the gene's share
    of tissue pixels above its image's floor (train.tissue_detection)."""
    import numpy as np

    from sngep.models.darlc.train import _rec_loss, tissue_detection

    net, data, _ = _tiny_setup(rec_target="detection")
    x = torch.full((data.n, 8, 8), -1.0)
    for g in range(data.n):  # gene g detected at g of the 40 tissue pixels
        x[g, :5].view(-1)[:g] = 2.0
    mask = np.zeros((8, 8), dtype=bool)
    mask[:5] = True
    x[:, 5:] = 7.0  # outside the tissue: must not count
    d = tissue_detection(x, mask)
    torch.testing.assert_close(d, torch.arange(data.n, dtype=torch.float32) / 40)
    data.x, data.rec_weight = x, d
    seen = {}

    def capture(images, ratio, gen, **kw):
        seen["target"] = kw["target"]
        return images.sum()

    net.module_i.mae_loss = capture
    idx = torch.tensor([0, 3, 7])
    _rec_loss(net, idx, data, data.gen)
    w = d[idx][:, None, None]
    torch.testing.assert_close(seen["target"], w * x[idx] + (1 - w) * data.v[idx])


def test_refit_records_whether_em_met_its_tolerance_within_its_budget():
    """What the summary's ``em_unconverged`` counts: a warm EM fit that stops by its
    tolerance says so; one cut short by ``em_iter`` does not."""
    from sngep.models.darlc.config import DARLCConfig
    from sngep.models.darlc.train import refit_mixture

    rng = np.random.default_rng(0)
    z = torch.tensor(
        np.concatenate([rng.normal(size=(40, 4)) + 6 * i for i in range(3)]), dtype=torch.float32
    )
    labels = torch.repeat_interleave(torch.arange(3), 40)
    smm = StudentTMixture(3, 4, covariance="diag")
    smm.fit_em(z, n_iter=1, init="labels", labels=labels.numpy())
    cut = refit_mixture(smm, z, DARLCConfig(em_iter=1), labels, seed=0)
    assert cut["n_iter"] == 1.0
    assert cut["converged"] == 0.0
    done = refit_mixture(smm, z, DARLCConfig(em_iter=500), labels, seed=0)
    assert 1.0 <= done["n_iter"] < 500.0
    assert done["converged"] == 1.0


def test_readout_averages_the_cls_token_over_fixed_token_subsets():
    """readout_drop > 0: X_darlc's head input is the [CLS] token averaged over
    readout_passes fixed subsets of round((1 - readout_drop) * L) tokens, the same subsets
    for every gene, so an image's readout does not depend on its batch; readout_drop=0 is
    the whole image's [CLS]; bad values are refused."""
    from sngep.models.darlc.config import DARLCConfig
    from sngep.models.darlc.train import encode_all

    net, data, _ = _tiny_setup(readout_drop=0.5, readout_passes=4)
    net.eval()
    enc = net.module_i.encoder
    keep = net.readout_keep
    assert keep.shape == (4, round(0.5 * enc.n_patches))
    assert len({tuple(k.tolist()) for k in keep}) == 4  # four different subsets
    with torch.no_grad():
        ref = torch.stack([enc(data.x, keep=k)[0] for k in keep]).mean(0)
        manual = torch.stack([enc.norm(_blocks(enc, data.x, k))[:, 0] for k in keep]).mean(0)
    torch.testing.assert_close(ref, manual)
    torch.testing.assert_close(encode_all(net, data.x, 12, readout=True), ref)
    torch.testing.assert_close(encode_all(net, data.x, 5, readout=True), ref)  # batch-free
    torch.testing.assert_close(encode_all(net, data.x, 5), net.features(data.x))
    again, _, _ = _tiny_setup(readout_drop=0.5, readout_passes=4, seed=1)
    assert torch.equal(again.readout_keep, keep)  # part of the readout, not of the fit's seed

    plain, pdata, _ = _tiny_setup()
    assert plain.readout_keep.numel() == 0
    torch.testing.assert_close(encode_all(plain, pdata.x, 5, readout=True), plain.features(pdata.x))
    for bad in ({"readout_drop": 1.0}, {"readout_drop": -0.1}, {"readout_passes": 0}):
        with pytest.raises(ValueError, match="readout"):
            DARLCConfig.from_preset("fast", **bad)


def _blocks(enc, x, keep):
    """The encoder's forward pass written out for one kept token subset."""
    tokens = enc.patch_embed(enc.tokens_in(x, enc.smooth(x))) + enc.pos_embed
    h = torch.cat([enc.cls_token.expand(x.shape[0], -1, -1), tokens[:, keep]], dim=1)
    for block in enc.blocks:
        h = block(h)
    return h


def test_clr_view_steps_draws_each_positive_from_views_at_shifted_bandwidths():
    """clr_view_steps=s: L_clr's positive of a gene is one of its 2 s + 1 views smoothed at
    its own sd times sqrt(2)^j (gks_detections times 2^j), j = -s..s, the middle one the
    view training was given, drawn per gene and per step; 0 leaves the one view; the
    switch needs per-image Gaussian-kernel views."""
    from sngep.models.darlc.config import DARLCConfig
    from sngep.models.darlc.smoothing import TissueSmoother, in_chunks
    from sngep.models.darlc.train import _set_smoothed, _set_view_steps, normalise_images

    net, data, np = _tiny_setup(n=40, clr_view_steps=1)
    mask = np.ones((8, 8), dtype=bool)
    _set_smoothed(net, data)  # as fit does first
    _set_view_steps(net, data, mask)
    assert data.v_steps.shape == (3, 40, 8, 8)
    assert torch.equal(data.v_steps[1], data.v)
    assert torch.equal(data.vs_steps[1], data.vs)
    torch.testing.assert_close(data.vs_steps[0], net.module_i.encoder.smooth(data.v_steps[0]))
    for j, det in ((0, 2.0), (2, 8.0)):  # gks_detections = 4 in the preset
        ref = normalise_images(in_chunks(TissueSmoother(mask, detections=det), data.x).numpy())
        torch.testing.assert_close(data.v_steps[j], torch.as_tensor(ref))
    idx = torch.arange(40)
    drawn, _ = data.positives(idx)
    which = [[j for j in range(3) if torch.equal(drawn[i], data.v_steps[j, i])] for i in range(40)]
    assert all(which)  # every positive is one of the gene's own views
    assert {w[-1] for w in which} == {0, 1, 2}  # all steps drawn, not always the middle
    again, _ = data.positives(idx)
    assert not torch.equal(again, drawn)  # drawn afresh

    plain, pdata, _ = _tiny_setup(n=40)
    _set_view_steps(plain, pdata, mask)
    assert pdata.v_steps is None
    v, _ = pdata.positives(idx)
    assert torch.equal(v, pdata.v)
    for bad in ({"augment": "gat"}, {"gks_detections": 0.0}, {"view_pooling": 5}):
        with pytest.raises(ValueError, match="clr_view_steps"):
            DARLCConfig.from_preset("fast", clr_view_steps=1, **bad)
    with pytest.raises(ValueError, match="clr_view_steps"):
        DARLCConfig.from_preset("fast", clr_view_steps=-1)


def test_input_steps_draws_the_online_second_channel_at_shifted_bandwidths():
    """input_steps=s: the online encoder's second channel of a gene is one of its image's
    2 s + 1 smoothings at the per-image sd times sqrt(2)^j (input_detections times 2^j),
    the middle one the channel X_darlc reads, drawn per gene and per step; the image itself
    is unchanged; 0 leaves the one channel; the switch needs input_detections."""
    from sngep.models.darlc.config import DARLCConfig
    from sngep.models.darlc.smoothing import TissueSmoother, in_chunks
    from sngep.models.darlc.train import _set_input_steps, _set_smoothed

    net, data, np = _tiny_setup(n=40, input_steps=1)
    mask = np.ones((8, 8), dtype=bool)
    _set_smoothed(net, data)
    _set_input_steps(data, mask)
    assert data.xs_steps.shape == (3, 40, 8, 8)
    assert torch.equal(data.xs_steps[1], data.xs)
    ref = in_chunks(TissueSmoother(mask, detections=8.0), data.x)  # input_detections = 4
    torch.testing.assert_close(data.xs_steps[2], ref)
    idx = torch.arange(40)
    xb, xs = data.online_input(idx)
    assert torch.equal(xb, data.x)
    which = [[j for j in range(3) if torch.equal(xs[i], data.xs_steps[j, i])] for i in range(40)]
    assert all(which)
    assert any(1 not in w for w in which)  # not always the middle channel
    # dense images: j = -1 and 0 both round to the grid's finest sd, j = 1 is coarser
    assert not torch.equal(data.xs_steps[2], data.xs)

    plain, pdata, _ = _tiny_setup(n=40)
    _set_smoothed(plain, pdata)
    _set_input_steps(pdata, mask)
    assert pdata.xs_steps is None
    assert torch.equal(pdata.online_input(idx)[1], pdata.xs)
    with pytest.raises(ValueError, match="input_steps"):
        DARLCConfig.from_preset("fast", input_steps=1, input_detections=0.0)
