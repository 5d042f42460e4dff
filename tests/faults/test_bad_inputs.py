"""Bad inputs stop the job early with exit status 2, one line naming the setting and the fix, and nothing
opened or run: a tampered config.yaml next to replayed predictions, an output directory that cannot be
written, impossible model and trainer values."""

from __future__ import annotations

import shutil

import pytest
from omegaconf import OmegaConf

from .conftest import job_args, run_job, runs


def one_line_refusal(res, *phrases: str) -> str:
    message = res.stderr + res.stdout
    assert res.returncode == 2, message[-3000:]
    for phrase in phrases:
        assert phrase in message, message[-3000:]
    assert "Traceback" not in message
    return message


@pytest.mark.slow
def test_a_tampered_config_next_to_the_predictions_runs_no_code(tmp_path, reference):
    out, _ = reference
    shutil.copy(out / "oos_predictions.parquet", tmp_path / "oos_predictions.parquet")
    cfg = OmegaConf.load(out / "config.yaml")
    victim = tmp_path / "created_by_the_config"
    cfg.data.source = {"_target_": "os.makedirs", "name": str(victim)}
    OmegaConf.save(cfg, tmp_path / "config.yaml")
    res = run_job([f"predictions={tmp_path}/oos_predictions.parquet", "backtest=daily",
                   f"logger.mlflow.tracking_uri=sqlite:///{tmp_path}/mlruns.db", f"hydra.run.dir={tmp_path}/replay"],
                  tmp_path, module="dualhrq.backtest")
    one_line_refusal(res, "data.source._target_='os.makedirs'", "is not a trusted target", "it was not run",
                     "trusted_targets=[<module>]")
    assert not victim.exists()


def test_an_output_directory_that_cannot_be_written(tmp_path):
    (tmp_path / "a_file").write_text("")
    res = run_job(job_args(tmp_path, run_dir=tmp_path / "a_file" / "out"), tmp_path)
    one_line_refusal(res, "hydra.run.dir=", "the directory cannot be written (Not a directory)",
                     "Fix: point hydra.run.dir at a writable directory")
    assert runs(tmp_path) == []  # no run was opened, so none is left RUNNING


@pytest.mark.parametrize(("override", "phrase"), [
    ("model.net.h_cycles=0", "model.net.h_cycles must be a positive integer, got 0."),
    ("trainer.max_steps=abc", "trainer.max_steps must be int, got 'abc'."),
])
def test_impossible_values_stop_the_job_before_the_data_and_the_run(tmp_path, override, phrase):
    res = run_job(job_args(tmp_path, override, run_dir=tmp_path / "out"), tmp_path)
    message = one_line_refusal(res, phrase)
    assert "samples" not in message and runs(tmp_path) == []
