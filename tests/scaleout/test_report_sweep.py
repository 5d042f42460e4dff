"""The sweep report picks one multirun's runs out of an experiment by its directory (``sweep=``), while the DSR
still counts every trial the experiment launched."""

from __future__ import annotations

import pytest
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from dualhrq.errors import DataError
from dualhrq.report.__main__ import main
from dualhrq.report.sweep import compare_sweep
from dualhrq.tracking.sweep import SWEEP_JOBS_TAG, SWEEP_TAG, TRIAL_TAG
from dualhrq.validation.evidence import TRIAL_SHARPE


@pytest.fixture
def two_sweeps(tmp_path):
    """Experiment ``e``: a 2-job sweep in ``tmp/a`` and a 3-job sweep in ``tmp/b``, each job a finished run."""
    uri = f"sqlite:///{tmp_path}/mlruns.db"
    client = MlflowClient(uri)
    exp = client.create_experiment("e", artifact_location=str(tmp_path / "art"))
    for sweep, seeds in (("a", (1, 2)), ("b", (1, 2, 3))):
        for seed in seeds:
            tags = {SWEEP_TAG: str((tmp_path / sweep).resolve()), SWEEP_JOBS_TAG: str(len(seeds)), TRIAL_TAG: "1",
                    "override.seed": str(seed), "override.launcher": sweep}
            rid = client.create_run(exp, tags=tags).info.run_id
            client.log_batch(rid, metrics=[Metric(TRIAL_SHARPE, 0.1 * seed, 0, 0), Metric("oos/sharpe", 0.1, 0, 0)])
            client.set_terminated(rid)
    return uri, tmp_path


def test_one_sweep_of_an_experiment_is_compared_against_all_its_trials(two_sweeps):
    uri, tmp = two_sweeps
    whole = compare_sweep(MlflowClient(uri), "e", reps=20)
    one = compare_sweep(MlflowClient(uri), "e", sweep=str(tmp / "b"), reps=20)
    assert len(whole.rows) == 5 and len(one.rows) == 3
    assert sorted(row["run"].split()[0] for row in one.rows) == ["seed=1", "seed=2", "seed=3"]
    assert whole.trials.n == one.trials.n == 5
    with pytest.raises(DataError, match=r"sweep=.*hydra.sweep.dir"):
        compare_sweep(MlflowClient(uri), "e", sweep=str(tmp / "c"))


def test_the_command_takes_the_sweep_directory(two_sweeps, capsys):
    uri, tmp = two_sweeps
    assert main(["experiment=e", f"sweep={tmp / 'a'}", f"tracking_uri={uri}", f"out={tmp / 'r.html'}",
                 "reps=20"]) == 0
    out = capsys.readouterr().out
    assert "2 launched" not in out and "trials: 5 launched" in out and "seed=2" in out and "seed=3" not in out
    assert main(["experiment=e", f"sweep={tmp / 'nowhere'}", f"tracking_uri={uri}"]) == 2
    assert "sweep=" in capsys.readouterr().err
