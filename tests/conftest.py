"""Shared fixtures: the real-data folder (integration tests skip without it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent


def _find_shared_data() -> Path | None:
    env = os.environ.get("SNGEP_DATA_DIR")
    if env and Path(env).is_dir():
        return Path(env)
    for parent in [_HERE, *_HERE.parents]:
        cand = parent / "shared" / "data"
        if cand.is_dir():
            return cand
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = _find_shared_data()
    if path is None:
        pytest.skip("real data folder ../shared/data not found")
    return path


@pytest.fixture
def sc_log():
    """What sngep logs (through scanpy's logging) in a buffer; scanpy's settings restored after."""
    import io

    import scanpy as sc

    buf = io.StringIO()
    verbosity, logfile = sc.settings.verbosity, sc.settings.logfile
    sc.settings.logfile = buf
    try:
        yield buf
    finally:
        sc.settings.verbosity = verbosity
        sc.settings.logfile = logfile
