"""The docs build with -W: a broken reference or docstring fails the suite."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_docs_build_without_warnings(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_nb")
    work = tmp_path / "docs"
    shutil.copytree(DOCS, work, ignore=shutil.ignore_patterns("_build", "generated"))
    # conf.py and changelog.md point at ../src and ../CHANGELOG.md
    (tmp_path / "CHANGELOG.md").write_text((DOCS.parent / "CHANGELOG.md").read_text())
    (tmp_path / "src").symlink_to(DOCS.parent / "src")
    (tmp_path / "tutorials").symlink_to(DOCS.parent / "tutorials")
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            str(work),
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-3000:]


def test_readme_quick_start_is_laptop_sized_and_current():
    readme = (DOCS.parent / "README.md").read_text()
    use = readme.split("## Use", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    # genes are pre-selected before the O(n_genes^2) similarity
    assert use.index("sngep.pp.spatial_genes(") < use.index("sngep.tl.seed_similarity(")
    assert "sc.read_visium" not in readme  # deprecated in favour of squidpy's reader
    assert "sq.read.visium" in use


def test_readme_quick_start_runs(monkeypatch, tmp_path):
    """The README's first code block, executed as written on a small planted data set.

    Only the data loader (the bundled MOB: 12k genes, minutes of DARLC) and the stage lengths
    of ``tl.darlc`` (a few steps instead of minutes) are swapped; every call and key is the
    README's own.
    """
    import matplotlib

    matplotlib.use("Agg")
    import scanpy as sc

    import sngep

    readme = (DOCS.parent / "README.md").read_text()
    block = readme.split("## Use", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    data = sngep.datasets.synthetic(n_genes_per_pattern=10, random_state=0)
    monkeypatch.setattr(sngep.datasets, "mouse_olfactory_bulb", lambda: data.copy())
    darlc = sngep.tl.darlc

    def short_darlc(adata, **kwargs):
        stages = dict(gat_epochs=3, pretrain_steps=3, epochs=1, show_progress_bar=False)
        return darlc(adata, **{**stages, **kwargs})

    monkeypatch.setattr(sngep.tl, "darlc", short_darlc)
    monkeypatch.chdir(tmp_path)
    verbosity = sc.settings.verbosity
    namespace: dict = {}
    try:
        exec(compile(block, "README.md", "exec"), namespace)
    finally:
        sc.settings.verbosity = verbosity
        matplotlib.pyplot.close("all")
    adata = namespace["adata"]
    assert {"X_darlc", "darlc_soft"} <= set(adata.varm)
    assert "darlc" in adata.var and "darlc_leiden" in adata.var
    assert (tmp_path / "gene_clusters.png").stat().st_size > 0
