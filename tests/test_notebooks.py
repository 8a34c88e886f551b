"""Every notebook in notebooks/ runs top to bottom (non-interactive backend), and is stored
without outputs.

Each notebook runs in a fresh kernel with ``MPLBACKEND=Agg`` and the notebooks folder as its
working directory (as Jupyter would start it); nbclient raises ``CellExecutionError`` on the
first failing cell, so an error anywhere fails the test with that cell's traceback.
``04_real_vendor_file.ipynb`` runs twice: on the real file when ``../shared/realdata`` exists
next to the repository, and with ``STEMNMF_REALDATA`` pointing nowhere to exercise its
simulated fallback.
"""

import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
REAL_FILE_NOTEBOOK = "04_real_vendor_file.ipynb"
#: Per-cell limit, seconds; the notebooks are sized to run in well under a minute each.
CELL_TIMEOUT = 300


def _run(path, monkeypatch, env=None):
    """Execute a notebook in place (in memory) and return it with its outputs."""
    monkeypatch.setenv("MPLBACKEND", "Agg")
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT, kernel_name="python3", allow_errors=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError on the first failing cell
    print(f"{path.name}: {time.perf_counter() - start:.1f} s")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, errors
    return nb


def _text(nb):
    """All stream and plain-text outputs of a notebook, joined."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.append(out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_notebooks_exist():
    names = {p.name for p in NOTEBOOKS}
    assert {"01_quickstart_simulation.ipynb", "03_clustering_and_maps.ipynb",
            REAL_FILE_NOTEBOOK} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_stored_without_outputs(path):
    """Notebooks are committed cleared: they only ever show outputs of a fresh run."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.get("outputs"), f"{path.name}: clear the outputs before committing"
            assert cell.get("execution_count") is None, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, monkeypatch):
    nb = _run(path, monkeypatch)
    if path.name == REAL_FILE_NOTEBOOK:
        realdata = Path(__file__).resolve().parents[2] / "shared" / "realdata"
        expected = "real data" if (realdata / "astar_sped_test1.blo").is_file() else "FALLBACK"
        assert expected in _text(nb)


def test_real_file_notebook_falls_back_to_simulation(tmp_path, monkeypatch):
    """Without the real data folder the notebook still runs, on a labelled simulation."""
    path = NOTEBOOK_DIR / REAL_FILE_NOTEBOOK
    nb = _run(path, monkeypatch, env={"STEMNMF_REALDATA": str(tmp_path / "absent")})
    assert "SIMULATED FALLBACK" in _text(nb)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_names_its_extra_and_checks_it_first(path):
    """The title names the extra; the first code cell checks it before anything else runs."""
    nb = nbformat.read(path, as_version=4)
    extras = ["notebooks", "distributed"] if "distributed" in "".join(
        c.source for c in nb.cells if c.cell_type == "code"
        and "require_extra" not in c.source) else ["notebooks"]
    label = ",".join(extras)
    assert f'pip install "stemnmf-hs[{label}]"' in nb.cells[0].source, path.name
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert "stemnmf_hs.require_extra(" + ", ".join(f'"{e}"' for e in extras) + ")" in \
        first_code.source, path.name


def test_missing_extra_stops_with_the_install_command(monkeypatch):
    import sys

    import stemnmf_hs

    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    with pytest.raises(ImportError, match=r'pip install "stemnmf-hs\[distributed\]"'):
        stemnmf_hs.require_extra("notebooks", "distributed")
    stemnmf_hs.require_extra("notebooks")
