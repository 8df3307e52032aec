import math

import numpy as np
import pytest
import torch
from torch import nn

from sngep.models.darlc.vit import (
    MAEDecoder,
    ModuleI,
    ProjectionHead,
    ViTEncoder,
    get_2d_sincos_pos_embed,
    masked_patch_loss,
    random_masking,
)


def _tiny_encoder(shape=(30, 27), **kw):
    kw = {"patch_size": 4, "embed_dim": 16, "depth": 1, "n_heads": 2, **kw}
    return ViTEncoder(shape, **kw)


def _images(b=3, shape=(30, 27), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, *shape, generator=g)


def test_padding_non_multiple_size():
    enc = _tiny_encoder((30, 27))
    assert enc.grid_shape == (8, 7)
    assert enc.n_patches == 56
    assert enc.padded_shape == (32, 28)
    x = _images(2)
    patches = enc.patchify(x)
    assert patches.shape == (2, 56, 16)
    # naive reference: token r * w + c holds the padded image block, row-major pixels
    xp = np.zeros((2, 32, 28), dtype=np.float32)
    xp[:, :30, :27] = x.numpy()
    for r in range(8):
        for c in range(7):
            ref = xp[:, 4 * r : 4 * r + 4, 4 * c : 4 * c + 4].reshape(2, 16)
            np.testing.assert_array_equal(patches[:, r * 7 + c].numpy(), ref)
    # padding is zeros, nothing cropped, and unpatchify inverts patchify
    assert torch.equal(enc.unpatchify(patches, crop=True), x)
    full = enc.unpatchify(patches, crop=False)
    assert full.shape == (2, 32, 28)
    assert torch.count_nonzero(full[:, 30:]) == 0 and torch.count_nonzero(full[:, :, 27:]) == 0
    cls, ids = enc(x)
    assert cls.shape == (2, 16) and ids is None
    # (B, 1, H, W) accepted; a wrong size is refused
    assert torch.allclose(enc(x[:, None])[0], cls)
    with pytest.raises(ValueError, match="image_shape"):
        enc(torch.zeros(2, 28, 28))


def test_sincos_matches_naive_formula():
    d, gh, gw = 16, 3, 5
    pe = get_2d_sincos_pos_embed(d, gh, gw)
    assert pe.shape == (gh * gw, d)
    q = d // 4
    for r in range(gh):
        for c in range(gw):
            row = pe[r * gw + c]
            for j in range(q):
                om = 10000.0 ** (-j / q)
                assert row[j] == pytest.approx(math.sin(c * om))
                assert row[q + j] == pytest.approx(math.cos(c * om))
                assert row[2 * q + j] == pytest.approx(math.sin(r * om))
                assert row[3 * q + j] == pytest.approx(math.cos(r * om))
    enc = _tiny_encoder((9, 17), patch_size=4)  # grid 3 x 5, not square
    np.testing.assert_allclose(enc.pos_embed[0].numpy(), pe, atol=1e-6)
    assert "pos_embed" not in enc.state_dict()  # fixed, not learnt
    assert not any(p is enc.pos_embed for p in enc.parameters())


def test_masking_count_and_reproducible():
    b, n_tokens = 4, 56
    keep, masked = random_masking(b, n_tokens, 0.8, generator=torch.Generator().manual_seed(1))
    assert keep.shape == (b, 11) and masked.shape == (b, 45)  # round(0.2 * 56) = 11
    for i in range(b):
        both = torch.cat([keep[i], masked[i]])
        assert torch.equal(torch.sort(both).values, torch.arange(n_tokens))
    assert not all(torch.equal(masked[0], masked[i]) for i in range(1, b))  # per-sample masks
    keep2, masked2 = random_masking(b, n_tokens, 0.8, generator=torch.Generator().manual_seed(1))
    assert torch.equal(masked, masked2) and torch.equal(keep, keep2)
    _, masked3 = random_masking(b, n_tokens, 0.8, generator=torch.Generator().manual_seed(2))
    assert not torch.equal(masked, masked3)
    # extreme ratios still keep >= 1 and mask >= 1 token
    k, m = random_masking(2, 5, 0.99, generator=torch.Generator().manual_seed(0))
    assert k.shape == (2, 1) and m.shape == (2, 4)
    with pytest.raises(ValueError):
        random_masking(2, 5, 1.0)


def test_masked_tokens_are_dropped_from_encoder():
    torch.manual_seed(0)  # parameter init only
    enc = _tiny_encoder((16, 16)).eval()
    x = _images(1, (16, 16))
    cls, masked = enc(x, mask_ratio=0.75, generator=torch.Generator().manual_seed(3))
    assert masked.shape == (1, 12)
    m = int(masked[0, 0])
    v = next(i for i in range(16) if i not in set(masked[0].tolist()))
    x_m, x_v = x.clone(), x.clone()
    x_m[0, 4 * (m // 4) : 4 * (m // 4) + 4, 4 * (m % 4) : 4 * (m % 4) + 4] += 5.0
    x_v[0, 4 * (v // 4) : 4 * (v // 4) + 4, 4 * (v % 4) : 4 * (v % 4) + 4] += 5.0
    cls_m, _ = enc(x_m, mask_ratio=0.75, generator=torch.Generator().manual_seed(3))
    cls_v, _ = enc(x_v, mask_ratio=0.75, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(cls_m, cls)  # a masked patch is invisible
    assert (cls_v - cls).abs().max() > 1e-3  # a visible one is not


def test_masked_patch_loss_counts_only_masked():
    g = torch.Generator().manual_seed(0)
    pred = torch.zeros(2, 10, 16)
    target = torch.ones(2, 10, 16)
    _, masked = random_masking(2, 10, 0.6, generator=g)
    assert masked.shape == (2, 6)
    assert masked_patch_loss(pred, target, masked).item() == pytest.approx(16.0)
    pred = torch.rand(2, 10, 16, generator=g)
    base = masked_patch_loss(pred, target, masked)
    unmasked = [i for i in range(10) if i not in set(masked[0].tolist())]
    p2 = pred.clone()
    p2[0, unmasked] += 100.0
    assert masked_patch_loss(p2, target, masked).item() == pytest.approx(base.item())
    p3 = pred.clone()
    p3[0, masked[0, 0]] += 1.0
    assert masked_patch_loss(p3, target, masked).item() != pytest.approx(base.item())
    # per-image mean over masked patches, then batch mean (eq. 7), by hand
    err = ((pred - target) ** 2).sum(-1)
    ref = np.mean([err[i, masked[i]].mean().item() for i in range(2)])
    assert base.item() == pytest.approx(ref, rel=1e-6)


def test_module_mae_loss_consistent_and_decreases():
    torch.manual_seed(0)  # parameter init only
    shape = (14, 15)  # padded to 16 x 16
    model = ModuleI(
        shape,
        patch_size=4,
        embed_dim=16,
        depth=1,
        n_heads=2,
        proj_dim=8,
        decoder_hidden_dims=(16, 16, 32, 32),
    )
    x = _images(4, shape, seed=1)
    # same generator seed -> same mask -> equals the manual computation
    loss = model.mae_loss(x, 0.5, generator=torch.Generator().manual_seed(5))
    cls, masked = model.encoder(x, 0.5, generator=torch.Generator().manual_seed(5))
    ref = masked_patch_loss(model.decoder(cls), model.encoder.patchify(x), masked)
    torch.testing.assert_close(loss, ref)
    opt = torch.optim.Adam(model.trainable_parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        start = model.mae_loss(x, 0.5, generator=torch.Generator().manual_seed(9)).item()
    for _ in range(30):
        opt.zero_grad()
        model.mae_loss(x, 0.5, generator=gen).backward()
        opt.step()
    with torch.no_grad():
        end = model.mae_loss(x, 0.5, generator=torch.Generator().manual_seed(9)).item()
    assert end < 0.5 * start, (start, end)
    assert model.reconstruct(x).shape == x.shape


def test_decoder_and_heads_shapes():
    dec = MAEDecoder(16, (32, 28), patch_size=4)
    out = dec(torch.randn(3, 16))
    assert out.shape == (3, 56, 16)
    assert dec.skip.in_features == 16 and dec.skip.out_features == dec.fc3.out_features == 512
    head = ProjectionHead(8, 32)
    z = head(torch.randn(5, 8))
    assert z.shape == (5, 32)
    assert isinstance(head.net[1], torch.nn.BatchNorm1d) and isinstance(head.net[2], torch.nn.SELU)
    assert ProjectionHead(8, 32, hidden_dim=64)(torch.randn(5, 8)).shape == (5, 32)


def test_momentum_update_exact():
    torch.manual_seed(0)
    model = ModuleI((8, 8), patch_size=4, embed_dim=16, depth=1, n_heads=2, proj_dim=8)
    assert all(not p.requires_grad for p in model.target_parameters())
    # initially exact copies
    for p_o, p_t in zip(model.encoder.parameters(), model.target_encoder.parameters(), strict=True):
        assert torch.equal(p_o, p_t) and p_o is not p_t
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(torch.randn_like(p))
        for p in model.head.parameters():
            p.add_(torch.randn_like(p))
    online = [p.detach().clone() for p in [*model.encoder.parameters(), *model.head.parameters()]]
    old = [p.detach().clone() for p in model.target_parameters()]
    model.momentum_update(m=0.9)
    for o, t0, t in zip(online, old, model.target_parameters(), strict=True):
        torch.testing.assert_close(t, 0.9 * t0 + 0.1 * o, rtol=0, atol=1e-6)
    model.momentum_update(m=0.0)  # m = 0 copies the online weights
    for o, t in zip(online, model.target_parameters(), strict=True):
        assert torch.equal(t, o)
    with pytest.raises(ValueError):
        model.momentum_update(m=1.5)


def test_gradients_reach_encoder_from_embed():
    torch.manual_seed(0)
    model = ModuleI((10, 9), patch_size=4, embed_dim=16, depth=2, n_heads=2, proj_dim=8)
    x = _images(3, (10, 9))
    e = model.embed(x)
    assert e.shape == (3, 8)
    e_bar = model.target_embed(x)
    assert e_bar.shape == (3, 8) and not e_bar.requires_grad
    e.pow(2).sum().backward()
    assert model.encoder.patch_embed.weight.grad.abs().sum() > 0
    assert model.encoder.cls_token.grad.abs().sum() > 0
    for block in model.encoder.blocks:
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in block.parameters())
    assert all(p.grad is None for p in model.target_parameters())
    assert all(p.grad is None for p in model.decoder.parameters())


def test_head_regresses_covariates_out_of_its_input_before_standardising():
    """n_covariates: calibrate fits e on [1, covariates] by least squares over all genes;
    z is the residual standardised, so no dimension of z is linear in the covariates."""
    g = torch.Generator().manual_seed(0)
    c = torch.rand(40, 2, generator=g)
    e = 3.0 * c[:, :1] - c[:, 1:] ** 2 + 0.1 * torch.randn(40, 6, generator=g)
    head = ProjectionHead(6, None, n_covariates=2)
    head.calibrate(e, c)
    head.eval()
    z = head(e, c)
    design = torch.cat([torch.ones(40, 1), c], dim=1)
    torch.testing.assert_close(design.T @ z, torch.zeros(3, 6), atol=1e-4, rtol=0)
    torch.testing.assert_close(z.var(0, unbiased=False), torch.ones(6), atol=1e-2, rtol=0)
    # without it the covariate is in every dimension of z
    plain = ProjectionHead(6, None)
    plain.calibrate(e)
    plain.eval()
    assert (design.T @ plain(e)).abs().max() > 1.0
    with pytest.raises(ValueError, match="covariates"):
        head(e)
    # a constant covariate (every gene equally sparse) drops out instead of failing
    flat = ProjectionHead(6, None, n_covariates=2)
    flat.calibrate(e, torch.full((40, 2), 0.5))
    assert torch.isfinite(flat.eval()(e, torch.full((40, 2), 0.5))).all()


def test_transformer_block_equals_torch_encoder_layer():
    """The functional block computes nn.TransformerEncoderLayer (pre-norm, GELU) with the
    same parameter names and the same initialisation from the same seed."""
    from sngep.models.darlc.vit import TransformerBlock

    torch.manual_seed(3)
    ref = nn.TransformerEncoderLayer(
        16, 4, 64, 0.0, activation="gelu", batch_first=True, norm_first=True
    ).double()
    torch.manual_seed(3)
    ours = TransformerBlock(16, 4, 64).double()
    assert set(ref.state_dict()) == set(ours.state_dict())
    for key, val in ours.state_dict().items():
        torch.testing.assert_close(val, ref.state_dict()[key])
    x = torch.randn(3, 7, 16, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(ours(x), ref(x))
    g_ours = torch.autograd.grad(ours(x).square().sum(), [x, *ours.parameters()])
    g_ref = torch.autograd.grad(ref(x).square().sum(), [x, *ref.parameters()])
    for a, b in zip(g_ours, g_ref, strict=True):
        torch.testing.assert_close(a, b)


def test_smoothed_input_channel_is_gaussian_smoothing_in_the_tissue():
    """input_smoothing: the second channel is denoise_gks of the image (normalised
    convolution inside the mask), and the patch embedding reads both channels."""
    from sngep.models.darlc.gat import denoise_gks

    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 20, 17)).astype(np.float32)
    mask = rng.random((20, 17)) > 0.2
    enc = ViTEncoder(
        (20, 17), patch_size=3, embed_dim=16, depth=1, n_heads=2, smooth_sigma=1.5, mask=mask
    )
    np.testing.assert_allclose(
        enc.smooth(torch.as_tensor(x * mask)).numpy(), denoise_gks(x, mask, sigma=1.5), atol=1e-5
    )
    assert enc.patch_embed.in_features == 2 * 9
    tokens = enc.tokens_in(torch.as_tensor(x))
    torch.testing.assert_close(tokens[..., :9], enc.patchify(torch.as_tensor(x)))
    cls, _ = enc(torch.as_tensor(x))
    assert cls.shape == (3, 16) and torch.isfinite(cls).all()
    plain = ViTEncoder((20, 17), patch_size=3, embed_dim=16, depth=1, n_heads=2)
    assert plain.patch_embed.in_features == 9


def test_adaptive_smoothing_follows_each_images_sparsity():
    """input_detections: each image is smoothed at sqrt(n / (4 pi d)) rounded to the grid
    (d its detection rate): a sparse image at a wide Gaussian, a dense one not at all, each
    equal to denoise_gks at its own sd."""
    from sngep.models.darlc.gat import denoise_gks
    from sngep.models.darlc.smoothing import GRID, TissueSmoother, detection_rate

    rng = np.random.default_rng(1)
    mask = np.ones((24, 20), bool)
    mask[:3] = False
    sparse = (rng.random((24, 20)) < 0.08) * rng.random((24, 20))
    dense = rng.random((24, 20)) + 0.1
    x = torch.as_tensor(np.stack([sparse, dense]) * mask, dtype=torch.float32)
    sm = TissueSmoother(mask, detections=1.0)
    d = detection_rate(x, torch.as_tensor(mask)).numpy()
    sd = np.sqrt(1.0 / (4 * np.pi * d))
    which = sm.grid_index(x).numpy()
    assert which[1] == -1 and sd[1] < GRID[0] / np.sqrt(2)  # dense: left as it is
    assert GRID[which[0]] == min(GRID, key=lambda g: abs(np.log(g) - np.log(sd[0])))
    out = sm(x).numpy()
    np.testing.assert_allclose(out[1], x[1].numpy() * mask)
    ref = denoise_gks(x[0].numpy(), mask, sigma=GRID[which[0]])
    np.testing.assert_allclose(out[0], ref, atol=1e-5)
    with pytest.raises(ValueError, match="one of"):
        TissueSmoother(mask, sigma=1.0, detections=2.0)


def test_precomputed_smoothed_channel_gives_the_same_encoding():
    """The trainer smooths every image once (train._set_smoothed) and passes the channel
    back in: the encoder must read exactly what it would compute itself, and an encoder
    without a smoother has no channel to precompute."""
    rng = np.random.default_rng(2)
    mask = rng.random((20, 17)) > 0.2
    x = torch.as_tensor(rng.standard_normal((4, 20, 17)).astype(np.float32) * mask)
    enc = ViTEncoder(
        (20, 17), patch_size=3, embed_dim=16, depth=1, n_heads=2, smooth_detections=4.0, mask=mask
    )
    s = torch.cat([enc.smooth(x[:2]), enc.smooth(x[2:])])  # chunked, as the trainer does
    torch.testing.assert_close(enc.tokens_in(x, s), enc.tokens_in(x), rtol=0, atol=0)
    g = torch.Generator().manual_seed(0)
    cls_given, ids = enc(x, mask_ratio=0.5, generator=g, smoothed=s)
    cls_own, ids_own = enc(x, mask_ratio=0.5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(ids, ids_own)
    torch.testing.assert_close(cls_given, cls_own, rtol=0, atol=0)
    assert _tiny_encoder().smooth(_images()) is None
