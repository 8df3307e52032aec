"""Bad inputs to ``sngep.pp`` fail early with a message that names the problem."""

import numpy as np
import pytest
import scanpy as sc

import sngep


@pytest.fixture
def spots():
    a = sngep.datasets.synthetic(
        3, patterns=("band", "blob"), n_variants=1, shape=(10, 10), random_state=0
    )
    sc.pp.normalize_total(a)
    sc.pp.log1p(a)
    return a


@pytest.mark.parametrize("shape", [(30,), 30, (30.5, 30.5), (30, 0), "30x30"])
def test_gene_images_rejects_a_bad_shape(spots, shape):
    with pytest.raises(ValueError, match="shape must be None or two positive integers"):
        sngep.pp.gene_images(spots, shape=shape)


@pytest.mark.parametrize("pad_to", [0, 2.5, "4", True])
def test_gene_images_rejects_a_bad_pad_to(spots, pad_to):
    with pytest.raises(ValueError, match="pad_to must be None or a positive integer"):
        sngep.pp.gene_images(spots, pad_to=pad_to)


def test_gene_images_accepts_numpy_integers(spots):
    sngep.pp.gene_images(spots, shape=np.array([12, 12]), pad_to=np.int64(4))
    assert spots.varm["gene_images"].shape[1:] == (12, 12)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_top": 2.5}, ValueError, "n_top must be a positive integer"),
        ({"n_top": "3"}, ValueError, "n_top must be a positive integer"),
        ({"layer": "counts"}, KeyError, "layer 'counts' not in adata.layers"),
        ({"key_added": "moran_i"}, ValueError, "overwrite the Moran's I column"),
    ],
)
def test_spatial_genes_checks_arguments_before_building_the_graph(spots, kwargs, error, match):
    with pytest.raises(error, match=match):
        sngep.pp.spatial_genes(spots, **kwargs)
    assert "spatial_connectivities" not in spots.obsp  # nothing written


def test_spatial_genes_rejects_nan_and_duplicated_names(spots):
    b = spots.copy()
    b.X = b.X.toarray()
    b.X[0, 0] = np.nan
    with pytest.raises(ValueError, match="adata.X contains 1 NaN"):
        sngep.pp.spatial_genes(b)
    b = spots.copy()
    b.var_names = ["g"] * b.n_vars
    with pytest.raises(ValueError, match="var_names_make_unique"):
        sngep.pp.spatial_genes(b)
    assert "spatial_connectivities" not in b.obsp


def test_gene_images_refuses_a_resolution_that_would_not_fit_in_memory(spots):
    b = spots.copy()
    del b.obs["array_row"], b.obs["array_col"]
    spacing = np.ptp(b.obsm["spatial"][:, 0]) / 9
    with pytest.raises(ValueError, match=r"GiB \(pass a larger resolution=\)"):
        sngep.pp.gene_images(b, grid="bin", resolution=spacing / 5000)
    assert "gene_images" not in b.varm  # nothing allocated or written
    sngep.pp.gene_images(b, grid="bin", resolution=spacing)  # the spot spacing: ~100 pixels
    assert np.prod(b.varm["gene_images"].shape[1:]) <= 200


def test_standardize_refuses_an_empty_tissue_mask():
    from sngep.pp._standardize import standardize

    images = np.random.default_rng(0).random((2, 4, 4))
    with pytest.raises(ValueError, match="tissue mask holds no pixel"):
        standardize(images, np.zeros((4, 4), dtype=bool))
