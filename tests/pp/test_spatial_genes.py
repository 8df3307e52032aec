"""pp.spatial_genes: Moran's I ranking without touching the user's squidpy results."""

import numpy as np
import pandas as pd
import scanpy as sc
import squidpy as sq

import sngep


def _data():
    a = sngep.datasets.synthetic(
        4, patterns=("band", "blob"), n_variants=1, shape=(12, 12), random_state=0
    )
    sc.pp.normalize_total(a)
    sc.pp.log1p(a)
    return a


def test_flags_top_genes_by_squidpys_moran_i():
    a = _data()
    sngep.pp.spatial_genes(a, n_top=3)
    table = sq.gr.spatial_autocorr(a, mode="moran", n_perms=None, copy=True)
    np.testing.assert_allclose(a.var["moran_i"], table["I"].reindex(a.var_names))
    top = a.var["moran_i"].sort_values(ascending=False).index[:3]
    assert set(a.var_names[a.var["spatially_variable"]]) == set(top)
    assert a.uns["spatially_variable"]["params"]["n_top"] == 3
    b = _data()
    sngep.pp.spatial_genes(b, n_top=3, subset=True)
    assert list(b.var_names) == list(a.var_names[a.var["spatially_variable"]])


def test_keeps_the_users_own_moran_table():
    a = _data()
    mine = pd.DataFrame({"I": np.arange(a.n_vars, dtype=float)}, index=a.var_names)
    a.uns["moranI"] = mine.copy()  # e.g. from sq.gr.spatial_autocorr on other genes or a layer
    sngep.pp.spatial_genes(a, n_top=3)
    pd.testing.assert_frame_equal(a.uns["moranI"], mine)
    c = _data()
    sngep.pp.spatial_genes(c, n_top=3)
    assert "moranI" not in c.uns  # and writes none of its own
