import numpy as np
import pytest
import scanpy as sc
import torch

import sngep
from sngep.models import DARLC
from sngep.models.darlc.smm import kl_loss, target_distribution
from sngep.models.darlc.train import DARLCNet, normalise_images

FAST = dict(preset="fast", pretrain_epochs=1, epochs=1, gat_epochs=5)


@pytest.fixture(scope="module")
def data():
    a = sngep.datasets.synthetic(
        5, patterns=("band", "ring"), n_variants=2, shape=(14, 14), random_state=2
    )
    sc.pp.normalize_total(a)
    sc.pp.log1p(a)
    sngep.pp.gene_images(a)
    sngep.tl.seed_similarity(a, show_progress_bar=False)
    return (
        a.varm["gene_images"],
        a.uns["gene_images"]["mask"],
        a.varp["seed_similarity"],
        list(a.var_names),
    )


def test_save_load_round_trip_and_new_genes(data, tmp_path):
    images, mask, sim, names = data
    m = DARLC(3, **FAST).fit(
        images, mask=mask, similarity=sim, var_names=names, show_progress_bar=False
    )
    m.save(tmp_path / "m.pt")
    back = DARLC.load(tmp_path / "m.pt", var_names=names)
    np.testing.assert_array_equal(back.embed(images), m.embed(images))
    np.testing.assert_array_equal(m.embed(images), m.embedding_)
    lab, soft = back.predict(images[:4] * 2.0)  # new genes (rescaled copies): no retraining
    assert soft.shape == (4, 3) and lab.shape == (4,)
    np.testing.assert_array_equal(lab, m.labels_[:4])  # scale invariant by construction
    with pytest.raises(ValueError, match="var_names differ"):
        DARLC.load(tmp_path / "m.pt", var_names=names[::-1])
    with pytest.raises(ValueError, match="images must be"):
        back.embed(images[:, :-1])
    torch.save({"something": 1}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not a sngep DARLC checkpoint"):
        DARLC.load(tmp_path / "bad.pt")
    with pytest.raises(RuntimeError, match="not fitted"):
        DARLC(2).embed(images)


def test_global_rng_untouched(data):
    images, mask, sim, _ = data
    state = torch.random.get_rng_state()
    DARLC(2, **FAST).fit(images, mask=mask, similarity=sim, show_progress_bar=False)
    assert torch.equal(state, torch.random.get_rng_state())


def test_normalise_images_standardises_inside_mask():
    x = np.zeros((3, 4, 4), np.float32)
    x[0, :2] = [[1, 2, 3, 4], [5, 6, 7, 8]]
    x[1] = 7.0  # constant -> 0
    mask = np.zeros((4, 4), bool)
    mask[:2] = True
    out = normalise_images(x, mask)
    np.testing.assert_allclose(out[0][mask].mean(), 0, atol=1e-6)
    np.testing.assert_allclose(out[0][mask].std(), 1, atol=1e-5)
    assert np.all(out[:, ~mask] == 0) and np.all(out[1] == 0) and np.all(out[2] == 0)
    np.testing.assert_allclose(normalise_images(3 * x + 1, mask)[0], out[0], atol=1e-5)


def test_kl_alone_moves_the_encoder(data):
    """After one L2 step with only L_kl, encoder parameters change; KL gradient reaches z."""
    images, mask, _, _ = data
    from sngep.models.darlc.config import DARLCConfig

    cfg = DARLCConfig.from_preset("fast")
    torch.manual_seed(0)
    net = DARLCNet(images.shape[1:], cfg, 3)
    x = torch.as_tensor(normalise_images(images, mask))
    with torch.no_grad():
        net.eval()
        z = net.project(x)
        net.train()
    net.smm.fit_em(z, n_iter=20)
    p = target_distribution(net.smm.soft_assign(z).detach())
    before = [q.detach().clone() for q in net.module_i.encoder.parameters()]
    opt = torch.optim.SGD(net.module_i.encoder.parameters(), lr=1.0)
    log_q = torch.log_softmax(net.smm.log_joint(net.project(x)), dim=1)
    loss = kl_loss(p, log_q)
    opt.zero_grad()
    loss.backward()
    grads = [q.grad for q in net.module_i.encoder.parameters() if q.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)
    opt.step()
    changed = [
        not torch.equal(b, a)
        for b, a in zip(before, net.module_i.encoder.parameters(), strict=True)
    ]
    assert any(changed)
    # and a detached z (the trap DESIGN.md names) moves nothing
    net.zero_grad()
    kl_loss(p, torch.log_softmax(net.smm.log_joint(net.project(x).detach()), dim=1)).backward()
    assert all(
        q.grad is None or float(q.grad.abs().sum()) == 0 for q in net.module_i.encoder.parameters()
    )


@pytest.mark.parametrize("augment", ["gat", "gks"])
def test_view_input_embeds_new_images_through_the_denoiser(data, tmp_path, augment):
    """encoder_input='view': Module I reads denoised images, for new images too."""
    images, mask, sim, names = data
    m = DARLC(3, **FAST, augment=augment, encoder_input="view").fit(
        images, mask=mask, similarity=sim, var_names=names, show_progress_bar=False
    )
    assert (m.denoiser_ is not None) == (augment == "gat")
    np.testing.assert_allclose(m.embed(images), m.embedding_, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(m.embed(images, views=m.views_), m.embedding_, rtol=1e-5, atol=1e-5)
    # the views, not the raw images, are what Module I reads
    raw = DARLC(3, **FAST, augment=augment).fit(
        images, mask=mask, similarity=sim, show_progress_bar=False
    )
    assert not np.allclose(raw.embedding_, m.embedding_)
    m.save(tmp_path / "v.pt")
    back = DARLC.load(tmp_path / "v.pt")
    np.testing.assert_allclose(back.embed(images), m.embedding_, rtol=1e-5, atol=1e-5)


def test_view_input_with_spot_gat_needs_views_for_new_images(data):
    images, mask, sim, _ = data
    m = DARLC(3, **FAST, augment="gat_spots", encoder_input="view").fit(
        images, mask=mask, similarity=sim, show_progress_bar=False
    )
    with pytest.raises(ValueError, match="cannot denoise new images"):
        m.embed(images)
    np.testing.assert_allclose(m.embed(images, views=m.views_), m.embedding_, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="views must have"):
        m.embed(images, views=m.views_[:2])


def test_clr_queue_fit_is_deterministic_and_trains(data):
    """A fit with a negatives queue runs end to end, repeats exactly with the same seed and
    differs from the fit without a queue (the queue changes L_clr's gradients)."""
    images, mask, sim, _ = data
    kw = dict(FAST, pretrain_steps=6, batch_size=4)

    def fit(**over):
        m = DARLC(3, random_state=0, **kw, **over)
        return m.fit(images, mask=mask, similarity=sim, show_progress_bar=False).embedding_

    a, b = fit(clr_queue=8), fit(clr_queue=8)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, fit())


def test_clr_neighbours_fit_is_deterministic_and_needs_the_similarity(data):
    """A fit whose L_clr takes positives from the rows of S repeats exactly with the same seed
    and differs from eq. 10's fit; without a similarity it says what is missing."""
    images, mask, sim, _ = data
    kw = dict(FAST, pretrain_steps=6, batch_size=4)

    def fit(similarity=sim, **over):
        m = DARLC(3, random_state=0, **kw, **over)
        return m.fit(images, mask=mask, similarity=similarity, show_progress_bar=False)

    a, b = fit(clr_neighbours=3).embedding_, fit(clr_neighbours=3).embedding_
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, fit(clr_neighbours=0).embedding_)
    with pytest.raises(ValueError, match="clr_neighbours > 0 needs the seeding similarity"):
        fit(similarity=None, clr_neighbours=3, use_lap=False, cluster_init="kmeans")


def test_bandwidth_step_fits_are_deterministic_and_refuse_given_views(data):
    """clr_view_steps / input_steps: a fit repeats exactly with the same seed and differs
    from the default's; given views cannot be shifted in bandwidth, so they are refused."""
    images, mask, sim, _ = data
    kw = dict(FAST, pretrain_steps=6, batch_size=4)

    def fit(views=None, **over):
        m = DARLC(3, random_state=0, **kw, **over)
        return m.fit(images, mask=mask, similarity=sim, views=views, show_progress_bar=False)

    base = fit().embedding_
    for over in ({"clr_view_steps": 1}, {"input_steps": 1}):
        a, b = fit(**over).embedding_, fit(**over).embedding_
        np.testing.assert_array_equal(a, b)
        assert not np.allclose(a, base)
    with pytest.raises(ValueError, match="with views=... pass clr_view_steps=0"):
        fit(views=images, clr_view_steps=1)


@pytest.mark.parametrize(
    "switch",
    [
        {"view_pooling": 3},
        {"clr_image_exclusions": 3},
        {"pretrain_average": 0.5},
        {"cls_rec": 1.0},
    ],
)
def test_switches_change_the_fit_and_repeat_it(data, switch):
    """view_pooling, clr_image_exclusions, pretrain_average and cls_rec each give a fit that
    differs from the default's and repeats exactly with the same seed."""
    images, mask, sim, _ = data
    kw = dict(FAST, pretrain_steps=6, batch_size=4)

    def fit(**over):
        m = DARLC(3, random_state=0, **kw, **over)
        return m.fit(images, mask=mask, similarity=sim, show_progress_bar=False).embedding_

    a, b = fit(**switch), fit(**switch)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, fit())


def test_consensus_start_repeats_and_runs_without_the_similarity(data, monkeypatch):
    """cluster_init='consensus' gives the same labels twice with one seed; without a seeding
    similarity it says so and starts from the graphs of z and the views alone."""
    from sngep.models.darlc import train

    images, mask, sim, _ = data
    kw = dict(FAST, pretrain_steps=6, batch_size=4, cluster_init="consensus")

    def fit(similarity, **over):
        m = DARLC(3, random_state=0, **kw, **over)
        return m.fit(images, mask=mask, similarity=similarity, show_progress_bar=False).labels_

    np.testing.assert_array_equal(fit(sim), fit(sim))
    said = []
    monkeypatch.setattr(train.logg, "warning", lambda msg, **kw: said.append(msg))
    labels = fit(None, clr_neighbours=0, use_lap=False)
    assert any("no seeding similarity" in m for m in said)
    assert len(np.unique(labels)) == 3


def test_view_pooling_needs_the_similarity(data):
    images, mask, _, _ = data
    kw = dict(FAST, view_pooling=3, clr_neighbours=0, use_lap=False, cluster_init="kmeans")
    m = DARLC(3, random_state=0, **kw)
    with pytest.raises(ValueError, match="view_pooling > 0 needs the seeding similarity"):
        m.fit(images, mask=mask, similarity=None, show_progress_bar=False)
    with pytest.raises(ValueError, match="view_pooling"):
        DARLC(3, view_pooling=-1)


def test_lap_prox_clusters_the_proximal_step_of_l_lap(data):
    """lap_prox > 0: X_darlc is the proximal step of L_lap (eq. 17) at the head's z, the
    mixture's labels are those of that embedding, the fit repeats exactly, and the neighbours'
    pull makes genes closer to their neighbours in S; without a similarity it says so."""
    from sngep.models.darlc.losses import laplacian_loss, laplacian_prox, normalized_similarity

    images, mask, sim, _ = data
    kw = dict(FAST, pretrain_steps=6, batch_size=4, epochs=2, tol=0.0)

    def fit(similarity=sim, **over):
        m = DARLC(3, random_state=0, **kw, **over)
        return m.fit(images, mask=mask, similarity=similarity, show_progress_bar=False)

    m, again = fit(lap_prox=1.0), fit(lap_prox=1.0)
    np.testing.assert_array_equal(m.embedding_, again.embedding_)
    np.testing.assert_array_equal(m.labels_, again.labels_)
    assert m.summary_["n_joint_epochs"] == 2  # L1 and L2 ran on the pulled z
    a = normalized_similarity(sim)
    own = torch.as_tensor(m.embed(images))  # new images: the head's z, no neighbours
    np.testing.assert_allclose(m.embedding_, laplacian_prox(own, a, 1.0).numpy(), atol=1e-5)
    assert laplacian_loss(torch.as_tensor(m.embedding_), a) < 0.75 * laplacian_loss(own, a)
    np.testing.assert_array_equal(m.labels_, m._soft(m.embedding_).argmax(axis=1))
    assert not np.allclose(m.embedding_, fit(lap_prox=0.0).embedding_)
    without_s = dict(similarity=None, use_lap=False, clr_neighbours=0, cluster_init="kmeans")
    with pytest.raises(ValueError, match="lap_prox > 0 over lap_graph='similarity' needs"):
        fit(lap_prox=1.0, **without_s)
    # over the graph of z and the views the pull needs no S
    views_only = fit(lap_prox=1.0, lap_graph="views", **without_s)
    assert not np.allclose(views_only.embedding_, views_only.embed(images), atol=1e-3)
    with pytest.raises(ValueError, match="lap_prox"):
        DARLC(3, lap_prox=-1.0)


def test_regress_out_detection_leaves_no_sparsity_in_the_embedding(data, tmp_path):
    """regress_out='detection': every dimension of X_darlc is uncorrelated with the genes'
    detection rate (and its square) over the training genes; saved models embed the same."""
    images, mask, sim, names = data
    m = DARLC(3, regress_out="detection", **FAST).fit(
        images, mask=mask, similarity=sim, show_progress_bar=False
    )
    d = (images[:, mask] > 0).mean(axis=1)
    assert d.std() > 0.05  # the genes differ in sparsity, so the test can fail

    def max_corr(emb):
        return max(abs(np.corrcoef(cov, col)[0, 1]) for cov in (d, d**2) for col in emb.T)

    assert max_corr(m.embedding_) < 1e-3
    plain = DARLC(3, **FAST).fit(images, mask=mask, similarity=sim, show_progress_bar=False)
    assert max_corr(plain.embedding_) > 0.2
    m.save(tmp_path / "m.pt")
    back = DARLC.load(tmp_path / "m.pt")
    np.testing.assert_allclose(back.embed(images), m.embedding_, atol=1e-5)


def test_shrunk_covariance_trains_end_to_end_and_reproduces(data, tmp_path):
    """covariance='shrunk' through the whole fit: full (not diagonal) covariances, the same
    labels from the same seed, and a saved model that assigns the genes as it did."""
    images, mask, sim, _ = data

    def fit():
        m = DARLC(3, covariance="shrunk", random_state=0, **FAST)
        return m.fit(images, mask=mask, similarity=sim, show_progress_bar=False)

    a, b = fit(), fit()
    np.testing.assert_array_equal(a.labels_, b.labels_)
    sigma = a.smm_parameters()["sigma"]
    off = sigma * (1.0 - np.eye(sigma.shape[-1]))
    assert np.abs(off).max() > 1e-4 * np.abs(sigma).max()  # full, not diagonal
    a.save(tmp_path / "m.pt")
    labels, _ = DARLC.load(tmp_path / "m.pt").predict(images)
    np.testing.assert_array_equal(labels, a.labels_)


def test_model_size_fields_shape_the_network_and_survive_save_load(data, tmp_path):
    """max_tokens, mlp_ratio and decoder_hidden reach the network (token grid, block MLP,
    decoder's last layer), and a saved model rebuilds the same network."""
    images, mask, sim, _ = data  # 14 x 14 images
    sizes = dict(max_tokens=16, mlp_ratio=2.0, decoder_hidden=48)
    m = DARLC(3, random_state=0, **sizes, **FAST)
    m.fit(images, mask=mask, similarity=sim, show_progress_bar=False)
    mod = m.net.module_i
    assert mod.encoder.patch_size == 4 and mod.encoder.n_patches == 16  # 4 x 4 tokens
    assert mod.encoder.blocks[0].linear1.out_features == 2 * mod.encoder.embed_dim
    assert mod.decoder.out.in_features == 48
    m.save(tmp_path / "m.pt")
    back = DARLC.load(tmp_path / "m.pt")
    assert back.net.module_i.decoder.out.in_features == 48
    np.testing.assert_array_equal(back.embed(images), m.embed(images))
    for bad, match in (
        (dict(max_tokens=1), "max_tokens"),
        (dict(mlp_ratio=0.0), "mlp_ratio"),
        (dict(decoder_hidden=0), "decoder_hidden"),
    ):
        with pytest.raises(ValueError, match=match):
            DARLC(3, **bad, **FAST)


def test_lap_graph_consensus_pulls_z_over_the_consensus_graph(data):
    """lap_graph='consensus' with lap_prox > 0: X_darlc is the proximal step of eq. 17 over
    the sum of the kNN graphs of the pretrained z, the rows of S and the views, not over S;
    'views' leaves S out (no joint epoch here, so the pretrained z is the model's own z)."""
    from sngep.models.darlc.losses import laplacian_prox, normalized_similarity
    from sngep.models.darlc.train import consensus_graph, similarity_rows

    images, mask, sim, _ = data
    kw = dict(FAST, pretrain_steps=6, batch_size=4, epochs=0, lap_prox=1.0)
    m = DARLC(3, random_state=0, lap_graph="consensus", **kw)
    m.fit(images, mask=mask, similarity=sim, show_progress_bar=False)
    own = m.embed(images)
    graph = consensus_graph([own, similarity_rows(sim), m.views_[:, mask]])
    want = laplacian_prox(torch.as_tensor(own), normalized_similarity(graph), 1.0).numpy()
    np.testing.assert_allclose(m.embedding_, want, atol=1e-4)
    on_s = laplacian_prox(torch.as_tensor(own), normalized_similarity(sim), 1.0).numpy()
    assert not np.allclose(m.embedding_, on_s, atol=1e-3)
    assert "_lap_graph" not in m.summary_
    views = DARLC(3, random_state=0, lap_graph="views", **kw)  # the same without S
    views.fit(images, mask=mask, similarity=sim, show_progress_bar=False)
    graph = consensus_graph([views.embed(images), views.views_[:, mask]])
    own = torch.as_tensor(views.embed(images))
    want = laplacian_prox(own, normalized_similarity(graph), 1.0).numpy()
    np.testing.assert_allclose(views.embedding_, want, atol=1e-4)
    with pytest.raises(ValueError, match="lap_graph"):
        DARLC(3, lap_graph="images")


def test_lap_weight_detection_pulls_sparse_genes_more(data):
    """lap_weight='detection': X_darlc is the weighted proximal step, each gene's weight its
    detection rate over the genes' mean (floored at 0.05), the model's own z as the data."""
    from sngep.models.darlc.losses import laplacian_prox, normalized_similarity
    from sngep.models.darlc.smoothing import detection_rate
    from sngep.models.darlc.train import normalise_images

    images, mask, sim, _ = data
    kw = dict(FAST, pretrain_steps=6, batch_size=4, epochs=0, lap_prox=1.0)
    m = DARLC(3, random_state=0, lap_weight="detection", **kw)
    m.fit(images, mask=mask, similarity=sim, show_progress_bar=False)
    x = torch.as_tensor(normalise_images(images.astype(np.float32), mask))
    d = detection_rate(x, torch.as_tensor(mask))
    w = (d / d.mean()).clamp_min(0.05)
    assert float(w.max() / w.min()) > 1.5  # the test data's genes differ in sparsity
    own = torch.as_tensor(m.embed(images))
    a = normalized_similarity(sim)
    want = laplacian_prox(own, a, 1.0, weight=w).numpy()
    np.testing.assert_allclose(m.embedding_, want, atol=1e-4)
    assert not np.allclose(m.embedding_, laplacian_prox(own, a, 1.0).numpy(), atol=1e-3)
    with pytest.raises(ValueError, match="lap_weight"):
        DARLC(3, lap_weight="counts")


def test_token_dropout_readout_is_the_embedding_the_labels_and_a_reload_give(data, tmp_path):
    """readout_drop > 0: embedding_, embed() of the same images and a reloaded model's
    embed() agree; the mixture was refitted on that embedding, so its labels are the
    mixture's assignment of embedding_; and the embedding is not the whole-image one."""
    images, mask, sim, names = data
    kw = dict(FAST, pretrain_steps=6, batch_size=4, random_state=0)
    m = DARLC(3, readout_drop=0.5, readout_passes=4, **kw).fit(
        images, mask=mask, similarity=sim, show_progress_bar=False
    )
    np.testing.assert_allclose(m.embed(images), m.embedding_, rtol=1e-5, atol=1e-5)
    m.save(tmp_path / "m.pt")
    back = DARLC.load(tmp_path / "m.pt")
    np.testing.assert_allclose(back.embed(images), m.embedding_, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        own = m.net.smm.predict(torch.as_tensor(m.embedding_)).numpy()
    np.testing.assert_array_equal(m.labels_, own)
    whole = DARLC(3, **kw).fit(images, mask=mask, similarity=sim, show_progress_bar=False)
    assert not np.allclose(m.embedding_, whole.embedding_, atol=1e-3)
