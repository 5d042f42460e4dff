"""SIGKILL mid-fold, at a fold boundary and in the end stage, with a torn checkpoint left behind: the resumed
job's final metrics equal an uninterrupted run's, and the MLflow run's status says what happened."""

from __future__ import annotations

import pytest

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
