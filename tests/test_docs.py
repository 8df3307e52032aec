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
