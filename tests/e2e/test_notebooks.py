"""The notebooks run top to bottom on a store the training job wrote."""

from __future__ import annotations

import nbformat
from nbclient import NotebookClient

from dualhrq.train import train

from .conftest import REPO, compose_tiny


def test_compare_runs_notebook_executes_on_a_two_run_sweep(tmp_path, monkeypatch):
    # one fold each: the notebook reads run-level statistics, gates, the per-fold Sharpe columns and the CPCV
    # path returns, which a one-fold run logs as a whole run does
    for conditioning in ("none", "regime"):
        train(compose_tiny(tmp_path, [f"model/conditioning={conditioning}", "validation.folds=[0]",
                                      "task_name=nb"], out=conditioning))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlruns.db")
    monkeypatch.setenv("DUALHRQ_EXPERIMENT", "nb")
    nb = nbformat.read(REPO / "notebooks" / "compare_runs.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()

    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                     for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs)
    assert "2 finished runs in experiment 'nb'" in text
    assert "model/conditioning=none" in text and "model/conditioning=regime" in text
    images = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs
              if "image/png" in o.get("data", {})]
    assert len(images) == 2
