"""A session-scoped cache folder so the real-data tests convert each .rda once per run."""

import os

import pytest


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sngep_cache")
    old = os.environ.get("SNGEP_CACHE_DIR")
    os.environ["SNGEP_CACHE_DIR"] = str(folder)
    yield folder
    if old is None:
        os.environ.pop("SNGEP_CACHE_DIR", None)
    else:
        os.environ["SNGEP_CACHE_DIR"] = old
