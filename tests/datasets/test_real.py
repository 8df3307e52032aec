import time

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from sngep import datasets
from sngep.datasets import _cache, _real

integration = pytest.mark.integration


def _check_common(adata, shape):
    assert adata.shape == shape
    assert sp.issparse(adata.X) and adata.X.format == "csr" and adata.X.dtype == np.float32
    assert np.isfinite(adata.X.data).all() and (adata.X.data >= 0).all()
    xy = adata.obsm["spatial"]
    assert xy.shape == (adata.n_obs, 2) and np.issubdtype(xy.dtype, np.floating)
    assert np.isfinite(xy).all()
    assert adata.obs_names.is_unique and adata.var_names.is_unique
    info = adata.uns["dataset"]
    for key in ("source_repo", "commit", "file", "url", "expression"):
        assert isinstance(info[key], str) and info[key]
    assert len(info["commit"]) == 40


def _is_counts(adata):
    return bool(np.all(adata.X.data == np.round(adata.X.data)))


def _unique_pairs(row, col):
    return len(set(zip(row, col, strict=True))) == len(row)


# -- no shared data needed -------------------------------------------------------------


@pytest.fixture
def no_shared_data(monkeypatch, tmp_path):
    monkeypatch.setattr(_cache, "_shared_data_dirs", lambda: [])
    monkeypatch.setenv("SNGEP_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def test_bundled_mob_loads_without_shared_data(no_shared_data):
    adata = datasets.mouse_olfactory_bulb()
    _check_common(adata, (262, 15928))
    assert _is_counts(adata)
    assert "raw counts" in adata.uns["dataset"]["expression"]
    assert adata.uns["dataset"]["source_repo"] == "JEFworks-Lab/MERINGUE"
    row, col = adata.obs["array_row"].to_numpy(), adata.obs["array_col"].to_numpy()
    assert _unique_pairs(row, col)
    np.testing.assert_array_equal(col, np.round(adata.obsm["spatial"][:, 0]))
    np.testing.assert_array_equal(row, np.round(adata.obsm["spatial"][:, 1]))
    layer = adata.obs["layer"]
    assert layer.cat.categories.size == 5 and layer.notna().sum() == 260
    assert adata.var["meringue_moran_i"].notna().sum() == 7365
    assert adata.var["meringue_pattern"].notna().sum() == 834
    assert not (no_shared_data / "cache").exists()  # nothing converted


def test_missing_data_raises_naming_path(no_shared_data):
    for loader in (datasets.breast_cancer, datasets.slideseq_purkinje, datasets.dlpfc):
        with pytest.raises(FileNotFoundError, match="path="):
            loader()
    with pytest.raises(FileNotFoundError, match="path="):
        datasets.mouse_olfactory_bulb(path=no_shared_data)  # explicit path: no fallback
    with pytest.raises(ValueError, match="sample"):
        datasets.dlpfc("999999")


def test_data_dir_discovery(monkeypatch, tmp_path):
    root = tmp_path / "project" / "shared" / "data"
    (root / "st_mob").mkdir(parents=True)
    (root / "st_mob" / "mOB.rda").write_bytes(b"x")
    other = tmp_path / "elsewhere"
    (other / "st_mob").mkdir(parents=True)
    (other / "st_mob" / "mOB.rda").write_bytes(b"y")
    monkeypatch.chdir(tmp_path / "project")
    monkeypatch.delenv("SNGEP_DATA_DIR", raising=False)
    assert _cache.find_source("mOB.rda", "st_mob", None) == root / "st_mob" / "mOB.rda"
    monkeypatch.setenv("SNGEP_DATA_DIR", str(other))  # the env var comes first
    assert _cache.find_source("mOB.rda", "st_mob", None) == other / "st_mob" / "mOB.rda"
    # path= may name the file's folder or the data root
    assert _cache.find_source("mOB.rda", "st_mob", root / "st_mob") == root / "st_mob" / "mOB.rda"
    assert _cache.find_source("mOB.rda", "st_mob", root) == root / "st_mob" / "mOB.rda"


def test_cache_key_is_name_and_size(monkeypatch, tmp_path):
    monkeypatch.setenv("SNGEP_CACHE_DIR", str(tmp_path))
    src = tmp_path / "thing.rda"
    src.write_bytes(b"12345")
    target = _cache.cache_path(src)
    assert target.parent == tmp_path and target.name.startswith("thing-5-")
    calls = []

    def convert(path):
        calls.append(path)
        return ad.AnnData(np.ones((2, 3), dtype=np.float32))

    first = _cache.load_cached(src, convert)
    second = _cache.load_cached(src, convert)
    assert len(calls) == 1 and target.is_file()
    np.testing.assert_array_equal(first.X, second.X)
    src.write_bytes(b"123456")  # a different size is a different file
    _cache.load_cached(src, convert)
    assert len(calls) == 2


# -- real data (../shared/data) --------------------------------------------------------


@integration
def test_dlpfc_151673(shared_data, data_cache):
    adata = datasets.dlpfc("151673")
    _check_common(adata, (3639, 7319))
    assert not _is_counts(adata)
    assert "count-normalised" in adata.uns["dataset"]["expression"]
    assert adata.var_names[0].startswith("ENSG")
    for col in ("sdimx", "sdimy", "array_row", "array_col"):
        assert col in adata.obs
    np.testing.assert_array_equal(adata.obsm["spatial"][:, 1], -adata.obs["sdimy"].to_numpy())


@integration
def test_dlpfc_hex_lattice_matches_visium_barcodes(shared_data, data_cache):
    adata = datasets.dlpfc("151673")
    row = adata.obs["array_row"].to_numpy()
    col = adata.obs["array_col"].to_numpy()
    assert np.issubdtype(row.dtype, np.integer) and np.issubdtype(col.dtype, np.integer)
    assert _unique_pairs(row, col)
    assert np.all((row + col) % 2 == 0)
    # 10x's barcode -> array position layout is the same on every v1 slide: the Space Ranger
    # output in the shared folder lists all 4,992 barcodes.
    positions = pd.read_csv(
        shared_data / "visium_spaceranger_format" / "spatial" / "tissue_positions_list.csv",
        header=None,
        index_col=0,
    )
    truth = positions.loc[adata.obs_names]
    assert np.unique(truth[2].to_numpy() - row).size == 1  # same rows (up to a shift)
    assert np.unique(truth[3].to_numpy() - col).size == 1  # same columns (up to a shift)
    # and the pixel layout gene_images builds from them is collision-free
    from sngep.pp import gene_images

    small = adata[:, :3].copy()
    gene_images(small)
    assert small.uns["gene_images"]["params"]["grid"] == "visium"
    assert small.uns["gene_images"]["mask"].sum() == adata.n_obs


@integration
def test_dlpfc_151674(shared_data, data_cache):
    adata = datasets.dlpfc("151674")
    _check_common(adata, (3673, 5000))
    assert _is_counts(adata)
    assert "raw counts" in adata.uns["dataset"]["expression"]
    row, col = adata.obs["array_row"].to_numpy(), adata.obs["array_col"].to_numpy()
    assert _unique_pairs(row, col) and np.all((row + col) % 2 == 0)


@integration
def test_second_call_reads_the_cache(shared_data, data_cache, monkeypatch):
    first = datasets.slideseq_purkinje()
    assert any(p.name.startswith("purkinje-") for p in data_cache.iterdir())

    def fail(*args, **kwargs):
        raise AssertionError("the .rda was parsed again instead of reading the cache")

    monkeypatch.setattr(_real, "read_rda", fail)
    start = time.perf_counter()
    second = datasets.slideseq_purkinje()
    assert time.perf_counter() - start < 5
    assert (first.X != second.X).nnz == 0
    np.testing.assert_array_equal(first.obsm["spatial"], second.obsm["spatial"])


@integration
def test_slideseq_purkinje(shared_data, data_cache):
    adata = datasets.slideseq_purkinje()
    _check_common(adata, (883, 191))
    assert _is_counts(adata)
    assert "array_row" not in adata.obs  # beads are not on a grid


@integration
def test_breast_cancer(shared_data, data_cache):
    adata = datasets.breast_cancer()
    _check_common(adata, (1031, 13360))
    assert _is_counts(adata)
    slices = adata.obs["slice"]
    assert isinstance(slices.dtype, pd.CategoricalDtype)
    assert list(slices.cat.categories) == ["1", "2", "3", "4"]
    assert slices.value_counts().sort_index().tolist() == [254, 251, 264, 262]
    for label in slices.cat.categories:
        sub = adata[slices == label]
        row, col = sub.obs["array_row"].to_numpy(), sub.obs["array_col"].to_numpy()
        assert _unique_pairs(row, col)
        # the indices explain the coordinates: a similarity transform fits to < 0.3 spacings
        design = np.column_stack([col, row, np.ones_like(row)]).astype(float)
        coef, *_ = np.linalg.lstsq(design, sub.obsm["spatial"], rcond=None)
        resid = np.linalg.norm(design @ coef - sub.obsm["spatial"], axis=1)
        assert resid.max() < 0.3


@integration
def test_mob_from_source_equals_bundled_copy(shared_data, data_cache, monkeypatch):
    converted = datasets.mouse_olfactory_bulb()
    assert converted.uns["dataset"]["file"] == "data/mOB.rda"
    monkeypatch.setattr(_cache, "_shared_data_dirs", lambda: [])
    bundled = datasets.mouse_olfactory_bulb()
    assert converted.shape == bundled.shape
    assert bundled.X.format == "csr"
    assert (converted.X != bundled.X).nnz == 0
    pd.testing.assert_frame_equal(converted.obs, bundled.obs)
    pd.testing.assert_frame_equal(converted.var, bundled.var)
    np.testing.assert_array_equal(converted.obsm["spatial"], bundled.obsm["spatial"])
    assert dict(converted.uns["dataset"]) == dict(bundled.uns["dataset"])


@integration
def test_explicit_path(shared_data, data_cache):
    adata = datasets.slideseq_purkinje(path=shared_data / "slideseq_purkinje")
    assert adata.shape == (883, 191)
