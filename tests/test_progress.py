"""The one progress bar helper (sngep._progress.progress)."""

import io
import re
import sys
import warnings

import numpy as np
from tqdm.std import tqdm as std_tqdm

import sngep
from sngep import _progress
from sngep._progress import NON_TTY_MININTERVAL, progress


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_leaves_a_one_line_summary():
    buf = io.StringIO()
    with progress(total=3, desc="stage", unit="block", file=buf) as bar:
        bar.update(3)
    last = buf.getvalue().split("\r")[-1]
    assert last.endswith("\n")
    assert "stage: 100%" in last and "3/3" in last and "block" in last


def test_throttled_without_terminal_and_not_in_one():
    buf = io.StringIO()
    with progress(total=5000, file=buf) as bar:
        assert bar.mininterval == NON_TTY_MININTERVAL
        for _ in range(5000):
            bar.update(1)
    # the first draw and the final line, nothing in between
    assert buf.getvalue().count("\r") <= 3
    with progress(total=2, file=_Terminal()) as bar:
        assert bar.mininterval < 1  # tqdm's default in a terminal
    with progress(total=2, file=buf, mininterval=5) as bar:
        assert bar.mininterval == 5  # the caller can override


def test_disable_writes_nothing_and_iterable():
    buf = io.StringIO()
    assert list(progress(range(4), disable=True, file=buf)) == [0, 1, 2, 3]
    assert buf.getvalue() == ""
    assert list(progress(range(4), file=buf)) == [0, 1, 2, 3]
    assert "4/4" in buf.getvalue()


def test_jupyter_without_ipywidgets_falls_back_quietly(monkeypatch):
    monkeypatch.setattr(_progress, "_in_notebook", lambda: True)
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import ipywidgets fails
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # tqdm's "IProgress not found" would raise here
        bar = progress(total=2, file=io.StringIO())
    assert type(bar) is std_tqdm
    bar.close()


def test_seed_similarity_leaves_its_bar(capsys):
    a = sngep.datasets.synthetic(
        3, patterns=("band", "blob"), n_variants=1, shape=(10, 10), random_state=0
    )
    a.X = np.log1p(a.X)
    sngep.pp.gene_images(a)
    sngep.tl.seed_similarity(a, chunk_size=2)
    err = capsys.readouterr().err
    segments = [s for s in re.split(r"[\r\n]", err) if s.strip()]
    assert "similarity: 100%" in segments[-1]
    assert f"{2 * 3}/{2 * 3}" in segments[-1]  # 6 genes, 3 blocks per stage
