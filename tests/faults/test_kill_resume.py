"""SIGKILL mid-fold, at a fold boundary and in the end stage, with a torn checkpoint left behind: the resumed
job's final metrics equal an uninterrupted run's, and the MLflow run's status says what happened."""

from __future__ import annotations

import pytest
import torch
from mlflow.tracking import MlflowClient

from .conftest import job_args, kill_when, results, run_job, runs, start_job


@pytest.mark.slow
def test_a_job_killed_three_times_ends_with_the_uninterrupted_metrics(tmp_path, reference):
    _, expected = reference
    out = tmp_path / "out"
    args = job_args(tmp_path, run_dir=out)
    log = tmp_path / "job.log"
    ckpts = out / "folds" / "fold0" / "checkpoints"

    # 1. mid-fold, once two checkpoints exist (step 8 inside the first epoch, step 16 at its end)
    kill_when(start_job(args, tmp_path, log), ckpts / "last.ckpt.prev")
    (run,) = runs(tmp_path)
    assert run.info.status == "RUNNING"  # a SIGKILLed job cannot close its run ...
    # ... and a full disk tears the newest checkpoint: the job resumes inside the epoch
    (ckpts / "last.ckpt").write_bytes((ckpts / "last.ckpt.prev").read_bytes()[:100_000])

    # 2. at the fold boundary: fold 0 resumed from the older checkpoint and finished
    proc = start_job(args, tmp_path, log)
    kill_when(proc, out / "folds" / "fold0" / "predictions.parquet")
    # 3. in the end stage, after fold 1
    kill_when(start_job(args, tmp_path, log), out / "folds" / "fold1" / "predictions.parquet")
    assert not (out / "summary.txt").exists()

    res = run_job(args, tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    text = log.read_text()
    assert "last.ckpt is unusable" in text and "fold 0: resuming from" in text and "last.ckpt.prev" in text
    assert "was left RUNNING by a job that was killed; marked KILLED" in text
    assert "fold 0 (1/2): already complete" in (out / "train.log").read_text()
    (run,) = runs(tmp_path)  # one run for the job, all four starts
    assert run.info.status == "FINISHED" and run.data.tags["resumed_after"] == "KILLED"
    assert results(run) == expected


@pytest.mark.slow
def test_a_changed_override_on_resume_is_refused_with_the_differing_keys(tmp_path, reference):
    out, _ = reference
    before = job_files(out)
    res = run_job(job_args(tmp_path, "trainer.max_steps=40", "seed=3", run_dir=out), tmp_path)
    assert res.returncode == 2
    message = res.stderr + res.stdout
    assert "holds a run started with another config" in message
    assert "seed: recorded 42, now 3" in message and "trainer.max_steps: recorded 32, now 40" in message
    assert "Fix: rerun with the recorded values to resume it, or start a new run in a new directory" in message
    assert "Traceback" not in message
    assert job_files(out) == before


def job_files(out):
    """The job's own files and their modification times (Hydra rewrites its .hydra record and log each start)."""
    return {p: p.stat().st_mtime_ns for p in out.rglob("*")
            if p.is_file() and ".hydra" not in p.parts and p.name != "train.log"}


@pytest.mark.slow
def test_a_refit_killed_mid_fit_resumes_to_the_uninterrupted_weights(tmp_path):
    def refit_weights(store, run_id):
        path = MlflowClient(f"sqlite:///{store}/mlruns.db").download_artifacts(run_id, "checkpoints/refit",
                                                                              str(store / "dl"))
        return torch.load(f"{path}/final.ckpt", weights_only=True)["state_dict"]

    extra = ("validation.folds=[0]", "validation.refit=true")
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    for store in (whole, killed):
        store.mkdir()
    assert run_job(job_args(whole, *extra, run_dir=whole / "out"), whole).returncode == 0
    args, log = job_args(killed, *extra, run_dir=killed / "out"), killed / "job.log"
    kill_when(start_job(args, killed, log), killed / "out" / "refit" / "checkpoints" / "last.ckpt.prev")
    assert run_job(args, killed).returncode == 0
    assert "refit: resuming from" in log.read_text() + (killed / "out" / "train.log").read_text()
    (a,), (b,) = runs(whole), runs(killed)
    assert a.data.metrics["refit/steps"] == b.data.metrics["refit/steps"] == 32
    expected, got = refit_weights(whole, a.info.run_id), refit_weights(killed, b.info.run_id)
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[k], got[k]) for k in expected)
