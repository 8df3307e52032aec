"""Bad inputs to ``sngep.metrics`` fail early with a message that names the problem."""

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

from sngep import metrics

IMAGE_METRICS = [metrics.dbi_euclidean, metrics.dbi_pearson, metrics.sam]


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    return rng.random((6, 4, 5)), np.repeat([0, 1], 3)


@pytest.mark.parametrize("metric", IMAGE_METRICS)
def test_sparse_images_give_the_dense_result(images, metric):
    x, labels = images
    flat = x.reshape(6, -1)
    assert metric(sp.csr_matrix(flat), labels) == pytest.approx(metric(flat, labels))


@pytest.mark.parametrize("metric", IMAGE_METRICS)
def test_image_metrics_name_bad_inputs(images, metric):
    x, labels = images
    with pytest.raises(TypeError, match=r"pass adata.varm\['gene_images'\]"):
        metric(ad.AnnData(np.zeros((2, 6), np.float32)), labels)
    with pytest.raises(ValueError, match="images is empty"):
        metric(np.zeros((0, 4, 5)), [])
    with pytest.raises(ValueError, match="mask must be boolean"):
        metric(x, labels, mask=np.full((4, 5), 0.5))
    with pytest.raises(ValueError, match="one-dimensional"):
        metric(x, labels[:, None])


@pytest.mark.parametrize("metric", [metrics.ari, metrics.nmi])
def test_label_metrics_need_one_dimensional_labels(metric):
    with pytest.raises(ValueError, match="labels_true must be one-dimensional"):
        metric("aabb", "aabb")
    with pytest.raises(ValueError, match="labels_true must be one-dimensional"):
        metric(3, 3)
    with pytest.raises(ValueError, match="one-dimensional"):
        metric(np.zeros((4, 2)), np.zeros((4, 2)))


GENES = ["GFAP", "MBP", "PLP1", "SNAP25", "SYT1", "GAD1"]
SETS = {"glia": GENES[:3], "neuron": GENES[3:]}


@pytest.mark.parametrize("metric", [metrics.go_pair_lift, metrics.go_module_scores])
def test_go_metrics_count_labels_against_genes(metric):
    with pytest.raises(ValueError, match="there are 3 genes; pass one label per gene"):
        metric([0, 0, 0, 1, 1, 1], GENES[:3], SETS)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fdr": 0}, "fdr must be in"),
        ({"fdr": 2}, "fdr must be in"),
        ({"min_size": 5, "max_size": 2}, "min_size <= max_size"),
        ({"min_size": 0}, "min_size <= max_size"),
        ({"min_module_size": 0}, "min_module_size must be >= 1"),
    ],
)
def test_go_module_scores_checks_its_thresholds(kwargs, match):
    with pytest.raises(ValueError, match=match):
        metrics.go_module_scores([0, 0, 0, 1, 1, 1], GENES, SETS, **kwargs)
