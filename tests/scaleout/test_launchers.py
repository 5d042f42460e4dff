"""A 4-job sweep through each launcher (joblib processes, submitit's local executor, a local Ray instance) is 4
MLflow runs of one experiment and one multirun, each tagged with its overrides, run at the same time; the sweep
report and the comparison notebook find them by the sweep's directory."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from mlflow.tracking import MlflowClient
from nbclient import NotebookClient

from dualhrq.config import CONF_DIR
from dualhrq.report.sweep import compare_sweep
from dualhrq.tracking.sweep import SWEEP_JOBS_TAG, SWEEP_TAG

from .conftest import LAUNCHERS, SEEDS, Sweep

NOTEBOOK = CONF_DIR.parent / "notebooks" / "compare_runs.ipynb"


def notebook_text(sweep: Sweep, monkeypatch, cwd: Path) -> str:
    """The printed output of the comparison notebook run on ``sweep``'s store and directory."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sweep.uri)
    monkeypatch.setenv("DUALHRQ_EXPERIMENT", sweep.experiment)
    monkeypatch.setenv("DUALHRQ_SWEEP", str(sweep.sweep_dir))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                     for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs)


@pytest.mark.slow
@pytest.mark.parametrize("launcher", list(LAUNCHERS))
def test_a_sweep_through_the_launcher_is_one_run_per_job(sweep_through, launcher, monkeypatch, tmp_path):
    sweep = sweep_through(launcher)
    runs = sweep.runs
    assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}
    assert sorted(r.data.tags["override.seed"] for r in runs) == list(SEEDS)
    assert sorted(r.data.params["seed"] for r in runs) == list(SEEDS)
    assert all(r.data.tags["override.model/conditioning"] == "none" for r in runs)
    # one multirun of 4 planned jobs, each job counting all 4 for its DSR, each in its own directory
    assert {r.data.tags[SWEEP_TAG] for r in runs} == {str(sweep.sweep_dir.resolve())}
    assert {r.data.tags[SWEEP_JOBS_TAG] for r in runs} == {"4"}
    assert {r.data.metrics["dsr/n_trials"] for r in runs} == {4.0}
    assert sorted(r.data.tags["output_dir"] for r in runs) == [str(sweep.sweep_dir.resolve() / str(i))
                                                               for i in range(4)]
    # the launcher ran them together: every run had started before the first one ended
    assert max(r.info.start_time for r in runs) < min(r.info.end_time for r in runs)

    comparison = compare_sweep(MlflowClient(sweep.uri), sweep.experiment, sweep=str(sweep.sweep_dir), reps=50)
    assert sorted(row["run"].split()[0] for row in comparison.rows) == [f"seed={s}" for s in SEEDS]
    assert comparison.trials.n == 4 and comparison.stepm_runs == 4
    text = notebook_text(sweep, monkeypatch, tmp_path)
    assert f"4 finished runs in experiment '{sweep.experiment}', sweep {sweep.sweep_dir}" in text
    assert all(f"seed={s}" in text for s in SEEDS)
