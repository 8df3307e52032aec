"""sngep logs through scanpy's logging: sc.settings.verbosity decides what is shown."""

import scanpy as sc

import sngep
from sngep import _logging as logg


def _tiny():
    a = sngep.datasets.synthetic(
        3, patterns=("band", "blob"), n_variants=1, shape=(10, 10), random_state=0
    )
    sc.pp.normalize_total(a)
    sc.pp.log1p(a)
    return a


def test_info_lines_follow_scanpy_verbosity(sc_log):
    a = _tiny()
    sc.settings.verbosity = 2  # 'info'
    sngep.pp.gene_images(a)
    out = sc_log.getvalue()
    assert "computing gene images" in out
    assert "finished" in out
    assert "added" not in out  # the `deep` part needs verbosity 3 ('hint')

    sc_log.seek(0)
    sc_log.truncate()
    sc.settings.verbosity = 3
    sngep.pp.gene_images(a)
    assert "'gene_images', shape and tissue mask (adata.uns)" in sc_log.getvalue()

    sc_log.seek(0)
    sc_log.truncate()
    sc.settings.verbosity = 0
    sngep.pp.gene_images(a)
    logg.warning("careful")
    assert sc_log.getvalue() == ""  # warnings silenced too at verbosity 0

    sc.settings.verbosity = 1  # scanpy's default: warnings only
    sngep.pp.gene_images(a)
    logg.warning("careful")
    assert sc_log.getvalue() == "WARNING: careful\n"


def test_timestamps_chain(sc_log):
    sc.settings.verbosity = "info"
    start = logg.info("step one")
    logg.info("    finished", time=start)
    lines = sc_log.getvalue().splitlines()
    assert lines[0] == "step one"
    assert lines[1].startswith("    finished (0:00:0")
    sc.settings.verbosity = "debug"
    logg.debug("details")
    assert sc_log.getvalue().splitlines()[-1].strip() == "details"
