"""The tutorials run top to bottom (and are stored with outputs, so the docs can render them)."""

import shutil
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))


def test_both_tutorials_exist():
    assert {p.stem for p in NOTEBOOKS} >= {"dlpfc", "msi"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_tutorial_is_stored_with_its_figures(path):
    """The docs render the stored outputs: every cell that calls a plotting function holds a
    figure (executed with an Agg backend, a notebook keeps none)."""
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(path, as_version=4)
    plotting = [c for c in nb.cells if c.cell_type == "code" and ".pl." in c.source]
    assert plotting
    for cell in plotting:
        kinds = {k for o in cell.outputs for k in o.get("data", {})}
        assert "image/png" in kinds, f"no stored figure for: {cell.source.splitlines()[0]}"


@pytest.mark.integration
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_tutorial_executes(path, tmp_path, monkeypatch, request):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.get("outputs") is not None for c in code)
    assert any(c.outputs for c in code), "stored without outputs: run it and save"
    # a fresh copy, executed in a scratch folder (with the real data folder where it needs it)
    work = tmp_path / path.name
    shutil.copy(path, work)
    if path.stem == "dlpfc":
        monkeypatch.setenv("SNGEP_DATA_DIR", str(request.getfixturevalue("shared_data")))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    client = nbclient.NotebookClient(
        nbformat.read(work, as_version=4),
        timeout=1200,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell
