import numpy as np
import pytest
import scanpy as sc

import sngep


@pytest.fixture(scope="session")
def _tiny_prepared():
    a = sngep.datasets.synthetic(
        6, patterns=("band", "blob"), n_variants=2, shape=(16, 16), random_state=1
    )
    sc.pp.normalize_total(a)
    sc.pp.log1p(a)
    sngep.pp.gene_images(a)
    sngep.tl.seed_similarity(a, show_progress_bar=False)
    return a


@pytest.fixture
def tiny(_tiny_prepared):
    """24 genes in 4 planted clusters with gene images and seeding similarity (a fresh copy)."""
    return _tiny_prepared.copy()


FAST = dict(preset="fast", pretrain_epochs=1, epochs=1, gat_epochs=5, show_progress_bar=False)


@pytest.fixture
def fast_kwargs():
    return dict(FAST)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
