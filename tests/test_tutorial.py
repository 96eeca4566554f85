"""examples/tutorial.ipynb executes top to bottom (nbclient, a fresh kernel) in a scratch
folder; its outputs are never committed."""

import os

import nbformat
from nbclient import NotebookClient

from conftest import REPO

NOTEBOOK = os.path.join(REPO, "examples", "tutorial.ipynb")


def test_committed_notebook_has_no_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


def test_tutorial_notebook_executes(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend draws the plots
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
                   ).execute()
    text = "\n".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                     for output in cell.outputs)
    assert "latent R^2" in text and "sv.load posterior mean" in text and "Keras inverse" in text
    plots = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
             if "image/png" in output.get("data", {})]
    assert len(plots) == 2  # the simulator's draws; the posterior samples and the re-rendering
    assert os.path.exists(tmp_path / "runs" / "tutorial" / "export" / "metadata.json")
