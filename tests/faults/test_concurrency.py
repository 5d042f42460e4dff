"""Jobs started together, with Hydra's default run directories, on a fresh tracking store and then on the
same, existing one: every job finishes in a directory and an MLflow run of its own."""

from __future__ import annotations

import pytest

from .conftest import job_args, runs, start_job


@pytest.mark.slow
def test_jobs_started_together_all_finish(tmp_path):
    # whole jobs, as small as they come: one fold of one batch, and no conditioning to fit and measure
    args = job_args(tmp_path, "validation.folds=[0]", "trainer.max_steps=4", "model/conditioning=none")
    for started in (2, 4):  # a fresh store, then the same store again
        procs = [start_job(args, tmp_path, tmp_path / f"job{i}.log") for i in range(started - 2, started)]
        codes = [proc.wait(timeout=900) for proc in procs]
        assert codes == [0, 0], [(tmp_path / f"job{i}.log").read_text()[-2000:] for i in range(started)]
        finished = runs(tmp_path)
        assert len(finished) == started and {r.info.status for r in finished} == {"FINISHED"}
        dirs = {r.data.tags["output_dir"] for r in finished}
        assert len(dirs) == started and all("/outputs/faults/" in d for d in dirs)
