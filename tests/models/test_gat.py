"""Tests for the GAT denoiser (main 3.2.1) and the GKS ablation."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torch_geometric")

from sngep.models.darlc._device import adam, resolve_device  # noqa: E402
from sngep.models.darlc.gat import (  # noqa: E402
    GATAutoencoder,
    GATConvTied,
    denoise_gat,
    denoise_gks,
    spot_graph,
)


def _neighbours(edge_index, n):
    nb = {i: set() for i in range(n)}
    for s, t in edge_index.T.tolist():
        nb[t].add(s)
    return nb


def _grid(side):
    rr, cc = np.mgrid[0:side, 0:side]
    return np.stack([rr.ravel(), cc.ravel()], axis=1)


# --------------------------------------------------------------------------------------
# spot_graph
# --------------------------------------------------------------------------------------
def test_spot_graph_grid_radius():
    coords = _grid(3)  # node id = 3 * row + col
    ei = spot_graph(coords, method="radius", radius=1.0)
    assert ei.dtype == torch.long and ei.shape[0] == 2
    nb = _neighbours(ei, 9)
    four = {0: {0, 1, 3}, 1: {0, 1, 2, 4}, 4: {1, 3, 4, 5, 7}, 8: {5, 7, 8}}
    for node, expect in four.items():
        assert nb[node] == expect
    ei8 = spot_graph(coords, method="radius", radius=math.sqrt(2))
    nb8 = _neighbours(ei8, 9)
    assert nb8[4] == set(range(9))
    assert nb8[0] == {0, 1, 3, 4}
    assert nb8[1] == {0, 1, 2, 3, 4, 5}
    assert ei8.shape[1] == 9 + 2 * 20  # 12 orthogonal + 8 diagonal undirected edges


def test_spot_graph_grid_knn_symmetrised():
    # each node picks its 3 nearest; after symmetrising the graph is tie-independent:
    # corners -> 2 edge-middles + centre, edge-middles -> 2 corners + centre, centre -> all
    ei = spot_graph(_grid(3), method="knn", n_neighbors=3, self_loops=False)
    nb = _neighbours(ei, 9)
    assert nb[0] == {1, 3, 4}
    assert nb[8] == {5, 7, 4}
    assert nb[1] == {0, 2, 4}
    assert nb[3] == {0, 6, 4}
    assert nb[4] == {0, 1, 2, 3, 5, 6, 7, 8}


def test_spot_graph_knn_line_and_invariants():
    coords = np.array([[0.0, 0], [1, 0], [3, 0], [7, 0], [15, 0]])
    ei = spot_graph(coords, n_neighbors=1)
    pairs = {tuple(p) for p in ei.T.tolist()}
    expect = {(0, 1), (1, 3), (3, 7), (7, 15)}
    idx = {0: 0, 1: 1, 3: 2, 7: 3, 15: 4}
    und = {(idx[a], idx[b]) for a, b in expect}
    und |= {(b, a) for a, b in und} | {(i, i) for i in range(5)}
    assert pairs == und
    # symmetric, each self loop exactly once, no duplicates, on random points too
    rng = np.random.default_rng(0)
    pts = rng.random((200, 2))
    for kw in ({"method": "knn", "n_neighbors": 6}, {"method": "radius", "radius": 0.1}):
        e = spot_graph(pts, **kw).numpy()
        keys = e[1] * 200 + e[0]
        assert len(np.unique(keys)) == e.shape[1]
        assert set(map(tuple, e.T)) == set(map(tuple, e[::-1].T))
        assert np.array_equal(np.sort(e[0][e[0] == e[1]]), np.arange(200))
    # kNN degree >= k (plus the self loop); a naive reference for the radius graph
    e = spot_graph(pts, n_neighbors=6).numpy()
    assert np.bincount(e[1], minlength=200).min() >= 7
    d = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
    ref = {tuple(p) for p in np.argwhere(d <= 0.1)}
    got = {tuple(p) for p in spot_graph(pts, method="radius", radius=0.1).numpy().T}
    assert got == ref


def test_spot_graph_duplicates_and_errors():
    coords = np.array([[0.0, 0], [0, 0], [5, 5], [5, 6]])
    e = spot_graph(coords, n_neighbors=1).numpy()
    assert {(0, 1), (1, 0), (2, 3), (3, 2)} <= set(map(tuple, e.T))
    with pytest.raises(ValueError, match="radius"):
        spot_graph(coords, method="radius")
    with pytest.raises(ValueError, match="method"):
        spot_graph(coords, method="delaunay")
    with pytest.raises(ValueError, match="smaller than"):
        spot_graph(coords, n_neighbors=4)
    with pytest.raises(ValueError, match="n_spots"):
        spot_graph(np.zeros(5))


# --------------------------------------------------------------------------------------
# the model: naive dense reference, tying
# --------------------------------------------------------------------------------------
def _reference_forward(x, adj, w1, a_src, a_dst, w2):
    """Dense STAGATE forward: masked row softmax of sigmoid scores, tied decoder."""
    h = x @ w1
    score = torch.sigmoid((h @ a_dst) + (h @ a_src).T)  # [i, j] = a_dst.h_i + a_src.h_j
    score = score.masked_fill(~adj, float("-inf"))
    att = torch.softmax(score, dim=1)
    h1 = torch.nn.functional.elu(att @ h)
    z = h1 @ w2
    h3 = torch.nn.functional.elu(att @ (z @ w2.T))
    return z, h3 @ w1.T


def test_autoencoder_matches_dense_reference_and_is_tied():
    rng = np.random.default_rng(1)
    n, c, hid, lat = 12, 7, 5, 3
    ei = spot_graph(rng.random((n, 2)), n_neighbors=3)
    adj = torch.zeros(n, n, dtype=torch.bool)
    adj[ei[1], ei[0]] = True
    model = GATAutoencoder(c, hid, lat, generator=torch.Generator().manual_seed(0)).double()
    names = {k for k, _ in model.named_parameters()}
    assert names == {"conv1.weight", "conv1.att_src", "conv1.att_dst", "conv2.weight"}
    assert sum(p.numel() for p in model.parameters()) == c * hid + 2 * hid + hid * lat
    assert model.conv3.weight is None and model.conv4.weight is None

    x = torch.from_numpy(rng.random((n, c)))
    z, rec = model(x, ei)
    params = [
        p.detach().clone().requires_grad_(True)
        for p in (model.conv1.weight, model.conv1.att_src, model.conv1.att_dst, model.conv2.weight)
    ]
    z_ref, rec_ref = _reference_forward(x, adj, *params)
    torch.testing.assert_close(z, z_ref)
    torch.testing.assert_close(rec, rec_ref)
    # gradients flow through the tied decoder into the encoder weights (autograd tying,
    # not a copy of .data): they equal the reference's, whose decoder uses w1.T and w2.T
    ((rec - x) ** 2).mean().backward()
    ((rec_ref - x) ** 2).mean().backward()
    for p, q in zip(
        (model.conv1.weight, model.conv1.att_src, model.conv1.att_dst, model.conv2.weight),
        params,
        strict=True,
    ):
        torch.testing.assert_close(p.grad, q.grad)
    # the decoder's last layer is exactly h @ W1.T
    h = torch.from_numpy(rng.random((n, hid)))
    out, alpha = model.conv4(h, ei, weight=model.conv1.weight.t())
    assert alpha is None
    torch.testing.assert_close(out, h @ model.conv1.weight.T)


def test_attention_is_softmax_over_neighbours():
    layer = GATConvTied(4, 3).double()
    layer.reset_parameters(torch.Generator().manual_seed(0))
    ei = spot_graph(_grid(3), method="radius", radius=1.0)
    x = torch.rand(9, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    out, alpha = layer(x, ei)
    sums = torch.zeros(9, dtype=alpha.dtype).index_add_(0, ei[1], alpha)
    torch.testing.assert_close(sums, torch.ones(9, dtype=alpha.dtype))
    # sigmoid logits lie in (0, 1): neighbour weights differ by less than a factor e
    deg = torch.bincount(ei[1])
    assert torch.all(alpha * deg[ei[1]] > math.exp(-1)) and torch.all(alpha * deg[ei[1]] < math.e)
    with pytest.raises(ValueError, match="tied"):
        GATConvTied(3, 4, attention=False, tied=True)(out, ei)


# --------------------------------------------------------------------------------------
# denoise_gat: planted smooth patterns
# --------------------------------------------------------------------------------------
def _planted(seed=0, n_genes=40, side=20):
    rng = np.random.default_rng(seed)
    rr, cc = np.mgrid[0:side, 0:side]
    patterns = []
    for _ in range(3):
        img = np.zeros((side, side))
        for _ in range(2):
            r0, c0 = rng.uniform(2, side - 2, 2)
            s = rng.uniform(2.5, 4.0)
            img += np.exp(-((rr - r0) ** 2 + (cc - c0) ** 2) / (2 * s * s))
        patterns.append(img.ravel() / img.max())
    clean = (
        np.array(patterns)[rng.integers(0, 3, n_genes)] * rng.uniform(1, 3, n_genes)[:, None]
    ).T
    counts = rng.poisson(2.0 * clean) * (rng.random(clean.shape) > 0.5)  # Poisson + 50 % dropout
    return clean, np.log1p(counts).astype(np.float32), _grid(side)


def _mean_pearson(a, b):
    a = a - a.mean(0)
    b = b - b.mean(0)
    return float(np.mean((a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))))


def test_denoise_gat_recovers_planted_patterns():
    clean, noisy, coords = _planted()
    ei = spot_graph(coords, n_neighbors=6)
    rec, hist = denoise_gat(
        noisy, ei, hidden=64, latent=8, epochs=200, device="cpu", show_progress_bar=False
    )
    assert rec.shape == noisy.shape and rec.dtype == np.float32
    assert rec.min() >= 0  # clip_negative
    r_raw, r_gat = _mean_pearson(clean, noisy), _mean_pearson(clean, rec)
    # measured: raw 0.48, GAT 0.90 (GKS sigma 1.5: 0.91)
    assert r_raw < 0.55
    assert r_gat > r_raw + 0.25, (r_raw, r_gat)
    assert len(hist["loss"]) == 200 and hist["loss"][-1] < 0.5 * hist["loss"][0]
    assert hist["n_edges"] == ei.shape[1]


def test_denoise_gat_seeded_and_leaves_global_rng_alone():
    clean, noisy, coords = _planted(n_genes=10, side=8)
    ei = spot_graph(coords, n_neighbors=4, self_loops=False)  # self loops get added inside
    state = torch.get_rng_state()
    kw = {"hidden": 16, "latent": 4, "epochs": 15, "device": "cpu", "show_progress_bar": False}
    a, ha = denoise_gat(noisy, ei, random_state=3, **kw)
    assert torch.equal(torch.get_rng_state(), state)
    b, _ = denoise_gat(noisy, ei, random_state=3, **kw)
    c, _ = denoise_gat(noisy, ei, random_state=4, **kw)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert ha["n_edges"] == ei.shape[1] + noisy.shape[0]
    assert torch.equal(torch.get_rng_state(), state)


def test_denoise_gat_input_checks():
    x = np.ones((4, 3), dtype=np.float32)
    ei = spot_graph(np.arange(8.0).reshape(4, 2), n_neighbors=1)
    with pytest.raises(ValueError, match="outside"):
        denoise_gat(x[:3], ei, epochs=1, show_progress_bar=False)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        denoise_gat(bad, ei, epochs=1, show_progress_bar=False)
    with pytest.raises(ValueError, match=r"\(2, E\)"):
        denoise_gat(x, ei.T, epochs=1, show_progress_bar=False)
    with pytest.raises(ValueError, match="epochs"):
        denoise_gat(x, ei, epochs=0, show_progress_bar=False)


# --------------------------------------------------------------------------------------
# device helper
# --------------------------------------------------------------------------------------
def test_resolve_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="not a torch device"):
        resolve_device("gpu0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")


def _adam_steps(make):
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(50, 20))
    opt = make([w])
    for _ in range(5):
        opt.zero_grad()
        ((w @ w.T).sin().sum() + 0.1 * w.pow(2).sum()).backward()
        opt.step()
    return w.detach(), opt


def test_adam_fused_matches_foreach(monkeypatch):
    w_ref, _ = _adam_steps(lambda p: torch.optim.Adam(p, lr=1e-2, foreach=True))
    w, opt = _adam_steps(lambda p: adam(p, lr=1e-2))
    assert torch.allclose(w, w_ref, atol=1e-5)
    assert opt.defaults["fused"] or opt.defaults["foreach"]

    real = torch.optim.Adam

    def no_fused(params, **kw):  # a torch whose Adam has no fused kernel for this device
        if kw.get("fused"):
            raise RuntimeError("`fused=True` requires all the params to be CUDA tensors")
        return real(params, **kw)

    monkeypatch.setattr(torch.optim, "Adam", no_fused)
    w_old, opt_old = _adam_steps(lambda p: adam(p, lr=1e-2))
    assert opt_old.defaults["foreach"] and not opt_old.defaults["fused"]
    assert torch.allclose(w_old, w_ref, atol=1e-6)


# --------------------------------------------------------------------------------------
# denoise_gks
# --------------------------------------------------------------------------------------
def _gks_reference(img, mask, sigma):
    radius = int(4.0 * sigma + 0.5)  # scipy's truncate=4
    t = np.arange(-radius, radius + 1)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    k /= k.sum()
    h, w = img.shape
    out = np.zeros_like(img, dtype=np.float64)
    for i in range(h):
        for j in range(w):
            if not mask[i, j]:
                continue
            num = den = 0.0
            for di in t:
                for dj in t:
                    u, v = i + di, j + dj
                    if 0 <= u < h and 0 <= v < w and mask[u, v]:
                        wt = k[di + radius] * k[dj + radius]
                        num += wt * img[u, v]
                        den += wt
            out[i, j] = num / den
    return out


def test_denoise_gks():
    rng = np.random.default_rng(0)
    rr, cc = np.mgrid[0:12, 0:10]
    mask = (rr - 5.5) ** 2 + (cc - 4.5) ** 2 < 20
    images = rng.random((3, 12, 10)).astype(np.float32)
    images[:, ~mask] = 7.0  # junk outside the tissue must not leak in
    out = denoise_gks(images, mask, sigma=1.0)
    assert out.shape == images.shape and out.dtype == np.float32
    assert np.all(out[:, ~mask] == 0)
    for g in range(3):
        np.testing.assert_allclose(
            out[g], _gks_reference(images[g], mask, 1.0), rtol=1e-5, atol=1e-6
        )
    const = np.full((2, 12, 10), 3.5, dtype=np.float32)
    np.testing.assert_allclose(denoise_gks(const, mask, sigma=2.0)[:, mask], 3.5, rtol=1e-6)
    # one image in, one image out; sigma 0 is the masked input
    np.testing.assert_array_equal(
        denoise_gks(images[0], mask, sigma=0), np.where(mask, images[0], 0)
    )
    with pytest.raises(ValueError, match="mask shape"):
        denoise_gks(images, mask[:-1])


def test_gks_views_per_image_bandwidth():
    """gks_detections: each view is denoise_gks at the sd its own sparsity gives (a sparse
    image smoothed more than a dense one); gks_detections=0 keeps the fixed gks_sigma."""
    from sngep.models.darlc.config import DARLCConfig
    from sngep.models.darlc.smoothing import GRID, TissueSmoother
    from sngep.models.darlc.train import normalise_images
    from sngep.models.darlc.views import denoise_new

    rng = np.random.default_rng(0)
    mask = np.ones((16, 14), dtype=bool)
    mask[:3, :4] = False
    rate = np.array([0.05, 0.9])[:, None, None]
    x = normalise_images((rng.random((2, 16, 14)) < rate).astype(np.float32), mask)
    views = denoise_new(x, mask, DARLCConfig(augment="gks", gks_detections=4.0), None)
    which = TissueSmoother(mask, detections=4.0).grid_index(torch.from_numpy(x)).numpy()
    assert which[0] > which[1]  # the sparse image gets the wider kernel
    for g in range(2):
        ref = denoise_gks(x[g], mask, sigma=GRID[which[g]]) if which[g] >= 0 else x[g] * mask
        np.testing.assert_allclose(views[g], ref, atol=1e-5)
    fixed = denoise_new(x, mask, DARLCConfig(augment="gks", gks_sigma=2.0), None)
    np.testing.assert_allclose(fixed, denoise_gks(x, mask, sigma=2.0), atol=1e-6)
    with pytest.raises(ValueError, match="gks_detections"):
        DARLCConfig(gks_detections=-1.0).validate()


def test_attention_sum_matches_dense_and_gradcheck():
    """The CSR neighbour sum of an attention layer (forward and both gradients) equals the
    dense ``A @ h`` with ``A[i, j] = alpha_ij``, on an irregular graph in float64."""
    from sngep.models.darlc.gat import _EdgeCSR, _EdgeSum

    rng = np.random.default_rng(0)
    ei = spot_graph(rng.random((12, 2)) * 4, method="knn", n_neighbors=3)
    n, e = 12, ei.shape[1]
    alpha = torch.rand(e, dtype=torch.float64, requires_grad=True)
    h = torch.randn(n, 5, dtype=torch.float64, requires_grad=True)
    csr = _EdgeCSR(ei, n)
    dense = torch.zeros(n, n, dtype=torch.float64).index_put((ei[1], ei[0]), alpha)
    torch.testing.assert_close(_EdgeSum.apply(alpha, h, csr), dense @ h)
    assert torch.autograd.gradcheck(lambda a, x: _EdgeSum.apply(a, x, csr), (alpha, h))
