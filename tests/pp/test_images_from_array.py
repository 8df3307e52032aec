import numpy as np
import pytest

import sngep


def test_msi_stack_enters_layout():
    rng = np.random.default_rng(0)
    stack = rng.random((5, 6, 7)).astype(np.float32)
    stack[:, 0, :] = 0  # background row
    stack[:, :, 0] = np.nan  # NaN background column
    a = sngep.pp.images_from_array(stack, var_names=[f"mz_{i}" for i in range(5)])
    mask = a.uns["gene_images"]["mask"]
    assert mask.sum() == 5 * 6 and not mask[0].any() and not mask[:, 0].any()
    assert a.shape == (30, 5)
    assert list(a.var_names) == [f"mz_{i}" for i in range(5)]
    np.testing.assert_array_equal(a.varm["gene_images"][:, mask], np.nan_to_num(stack)[:, mask])
    assert np.all(a.varm["gene_images"][:, ~mask] == 0)
    pix = a.obsm["gene_image_pixel"]
    np.testing.assert_array_equal(a.X, np.nan_to_num(stack)[:, pix[:, 0], pix[:, 1]].T)
    # re-imaging the AnnData with pp.gene_images reproduces the stack (empty margin row/col dropped)
    again = sngep.pp.gene_images(a, copy=True, grid="array")
    np.testing.assert_allclose(again.varm["gene_images"], a.varm["gene_images"][:, 1:, 1:])


def test_errors():
    with pytest.raises(ValueError, match="n_images, H, W"):
        sngep.pp.images_from_array(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="empty"):
        sngep.pp.images_from_array(np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="var_names"):
        sngep.pp.images_from_array(np.ones((2, 4, 4)), var_names=["a"])
    with pytest.raises(TypeError, match="sequence of names"):
        sngep.pp.images_from_array(np.ones((2, 4, 4)), var_names="ab")  # not 'a', 'b'
    m = np.ones((4, 4), bool)
    s = np.ones((2, 4, 4))
    s[0, 1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        sngep.pp.images_from_array(s, mask=m)


def test_pixels_subset_afterwards_are_caught():
    rng = np.random.default_rng(0)
    adata = sngep.pp.images_from_array(rng.random((3, 6, 5)).astype(np.float32))
    assert adata.uns["gene_images"]["n_obs"] == adata.n_obs == 30
    with pytest.raises(ValueError, match="re-run sngep.pp.gene_images"):
        sngep.tl.seed_similarity(adata[:20].copy(), show_progress_bar=False)
