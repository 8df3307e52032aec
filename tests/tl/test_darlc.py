import anndata as ad
import numpy as np
import pytest

import sngep


def test_writes_storage_contract(tiny, fast_kwargs, tmp_path):
    sngep.tl.darlc(tiny, n_clusters=4, **fast_kwargs)
    n = tiny.n_vars
    assert tiny.varm["X_darlc"].shape == (n, 32) and tiny.varm["X_darlc"].dtype == np.float32
    soft = tiny.varm["darlc_soft"]
    assert soft.shape == (n, 4)
    np.testing.assert_allclose(soft.sum(1), 1, atol=1e-5)
    assert tiny.var["darlc"].dtype == "category"
    np.testing.assert_array_equal(tiny.var["darlc"].astype(int).to_numpy(), soft.argmax(1))
    assert tiny.varm["gene_images_denoised"].shape == tiny.varm["gene_images"].shape
    u = tiny.uns["darlc"]
    assert u["n_clusters"] == 4
    assert set(u["smm"]) == {"pi", "mu", "sigma", "nu"}
    assert u["smm"]["sigma"].shape == (4, 32, 32)
    assert {"L1", "L2", "L2_kl", "pre_rec", "label_change"} <= set(u["history"])
    tiny.write_h5ad(tmp_path / "d.h5ad")
    back = ad.read_h5ad(tmp_path / "d.h5ad")
    np.testing.assert_array_equal(back.varm["X_darlc"], tiny.varm["X_darlc"])
    np.testing.assert_array_equal(back.uns["darlc"]["smm"]["mu"], u["smm"]["mu"])
    assert back.uns["darlc"]["params"]["augment"] == "gat"


def test_copy_leaves_input_unchanged(tiny, fast_kwargs):
    before = tiny.copy()
    out = sngep.tl.darlc(tiny, n_clusters=3, copy=True, key_added="d2", **fast_kwargs)
    assert "X_d2" in out.varm and "X_d2" not in tiny.varm and "d2" not in tiny.var
    assert "gene_images_denoised" not in tiny.varm
    np.testing.assert_array_equal(tiny.varm["gene_images"], before.varm["gene_images"])


def test_same_seed_same_result_other_seed_differs(tiny, fast_kwargs):
    a = sngep.tl.darlc(tiny, n_clusters=3, copy=True, random_state=3, **fast_kwargs)
    b = sngep.tl.darlc(tiny, n_clusters=3, copy=True, random_state=3, **fast_kwargs)
    c = sngep.tl.darlc(tiny, n_clusters=3, copy=True, random_state=4, **fast_kwargs)
    np.testing.assert_array_equal(a.varm["X_darlc"], b.varm["X_darlc"])
    assert not np.allclose(a.varm["X_darlc"], c.varm["X_darlc"])


def test_n_clusters_defaults(tiny, fast_kwargs):
    tiny.uns["estimate_k"] = {"k": 5}
    sngep.tl.darlc(tiny, **fast_kwargs)
    assert tiny.uns["darlc"]["n_clusters"] == 5
    del tiny.uns["estimate_k"]
    sngep.tl.darlc(tiny, **fast_kwargs)
    assert tiny.uns["darlc"]["n_clusters"] == 2  # max(2, round(24 / 30))


@pytest.mark.parametrize(
    "ablation",
    [
        {"use_clr": False},
        {"augment": "gks"},
        {"augment": None},
        {"mixture": "gmm"},
        {"mixture": None},
        {"use_lap": False},
        {"use_size": False},
        {"pretrain_epochs": 0},
    ],
)
def test_ablations_run(tiny, fast_kwargs, ablation):
    kw = {**fast_kwargs, **ablation}
    sngep.tl.darlc(tiny, n_clusters=4, **kw)
    assert np.isfinite(tiny.varm["X_darlc"]).all()
    assert tiny.var["darlc"].nunique() >= 1
    for key, val in ablation.items():
        if key != "pretrain_epochs":
            assert tiny.uns["darlc"]["params"][key] == ("none" if val is None else val)
    if ablation.get("mixture", "smm") is None:
        assert tiny.uns["darlc"]["smm"] == {}
        np.testing.assert_array_equal(np.unique(tiny.varm["darlc_soft"]), [0, 1])
    if ablation == {"use_clr": False}:
        assert np.all(np.asarray(tiny.uns["darlc"]["history"]["L2_clr"])[-1:] == 0)


def test_errors(tiny, fast_kwargs):
    with pytest.raises(KeyError, match="pp.gene_images"):
        sngep.tl.darlc(tiny, images_key="missing", **fast_kwargs)
    with pytest.raises(ValueError, match="larger than the number of genes"):
        sngep.tl.darlc(tiny, n_clusters=tiny.n_vars + 1, **fast_kwargs)
    with pytest.raises(ValueError, match=">= 2"):
        sngep.tl.darlc(tiny, n_clusters=1, **fast_kwargs)
    nan = tiny.copy()
    nan.varm["gene_images"] = nan.varm["gene_images"].copy()
    nan.varm["gene_images"][0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        sngep.tl.darlc(nan, n_clusters=2, **fast_kwargs)
    nosim = tiny.copy()
    del nosim.varp["seed_similarity"]
    with pytest.raises(KeyError, match="seed_similarity"):
        sngep.tl.darlc(nosim, n_clusters=2, **fast_kwargs)
    sngep.tl.darlc(nosim, n_clusters=2, use_lap=False, **fast_kwargs)  # fine without it
    with pytest.raises(TypeError, match="unknown DARLC option"):
        sngep.tl.darlc(tiny, n_clusters=2, use_claw=False, **fast_kwargs)
    with pytest.raises(ValueError, match="augment"):
        sngep.tl.darlc(tiny, n_clusters=2, augment="blur", **fast_kwargs)
    with pytest.raises(ValueError, match="preset"):
        sngep.tl.darlc(tiny, n_clusters=2, preset="slow", show_progress_bar=False)


def test_msi_stack_goes_through(fast_kwargs):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:12, :10]
    base = [
        np.exp(-((yy - 3) ** 2 + (xx - 3) ** 2) / 8),
        np.exp(-((yy - 9) ** 2 + (xx - 7) ** 2) / 8),
    ]
    stack = np.stack(
        [base[i % 2] * rng.uniform(0.5, 2) + rng.random((12, 10)) * 0.05 for i in range(10)]
    )
    adata = sngep.pp.images_from_array(stack)
    sngep.tl.seed_similarity(adata, show_progress_bar=False)
    sngep.tl.darlc(adata, n_clusters=2, **fast_kwargs)
    assert adata.varm["X_darlc"].shape == (10, 32)
