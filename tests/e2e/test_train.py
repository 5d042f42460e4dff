"""The training job end to end on a tiny model: MLflow logging, determinism, config and data errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from dualhrq.errors import ConfigError, DataError
from dualhrq.train import train

from .conftest import compose_tiny, run_pinned, runs_of, tiny_overrides


def test_job_logs_one_complete_mlflow_run(tmp_path, client_for):
    cfg = compose_tiny(tmp_path, ["task_name=e2e"])
    objective = train(cfg)

    (run,) = runs_of(tmp_path, "e2e")
    assert run.info.status == "FINISHED"
    assert run.info.artifact_uri.startswith(f"file://{tmp_path}/mlartifacts")
    assert run.data.params["model.net.h.dim"] == "32"
    assert run.data.params["validation.splitter.purge_days"] == "14"
    tags = run.data.tags
    assert len(tags["data.sha256"]) == 64 and tags["git.commit"]
    assert tags["override.model"] == "hrm_tiny"
    metrics = run.data.metrics
    assert objective == pytest.approx(metrics["oos/sharpe"])
    for fold in range(5):
        assert {f"fold{fold}-oos/loss", f"fold{fold}-oos/sharpe", f"fold{fold}-train/loss",
                f"fold{fold}-params/total"} <= set(metrics)
    assert metrics["params/total"] == metrics["fold0-params/total"]

    artifacts = set(_walk(client_for(tmp_path), run.info.run_id))
    assert {"config.yaml", "oos_predictions.parquet", "summary.txt", "checkpoints/fold4/final.ckpt"} <= artifacts

    preds = pl.read_parquet(tmp_path / "out" / "oos_predictions.parquet")
    # each bundled sample is predicted exactly once out of sample (one test group per fold)
    assert preds.select("ts", "symbol").is_unique().all()
    assert preds["signal"].abs().max() <= 1.0
    # the summary the console shows ends with the run id and the command to look at it
    summary = (tmp_path / "out" / "summary.txt").read_text()
    assert run.info.run_id in summary and "mlflow ui --backend-store-uri" in summary


def _walk(client, run_id: str, path: str | None = None):
    for item in client.list_artifacts(run_id, path):
        if item.is_dir:
            yield from _walk(client, run_id, item.path)
        else:
            yield item.path


def test_same_config_and_seed_give_identical_metrics(pinned_run):
    # the session's pinned regime job against the same job run again into its store: two folds, and the
    # trials behind the DSR fixed (n_trials=1), as run b would otherwise count run a as part of its sweep
    a = pinned_run("regime")
    b = run_pinned(a.tmp, "regime", out="again")
    assert a.objective == b.objective
    first, second = (pl.read_parquet(Path(r.cfg.paths.output_dir) / "oos_predictions.parquet") for r in (a, b))
    np.testing.assert_array_equal(first["signal"].to_numpy(), second["signal"].to_numpy())
    assert {r.info.run_id for r in runs_of(a.tmp, "pin")} == {a.run.info.run_id, b.run.info.run_id}
    assert a.run.data.metrics == b.run.data.metrics | {
        k: v for k, v in a.run.data.metrics.items() if k.endswith("seconds")}


@pytest.mark.parametrize("extra", [
    ["model=transformer_tiny"],
    ["model.act.enabled=false", "model.supervision.segments=1"],
    ["model.act.eval_mode=max_steps", "model.act.correct=abs_error"],
    ["model.net.norm=pre", "model.net.recursion.solver=anderson", "model.net.recursion.gradient=phantom",
     "model.net.recursion.max_iter=6"],
], ids=["transformer", "no-act", "act-max-steps", "deq-anderson-phantom"])
def test_model_ablation_variants_train_end_to_end(tmp_path, extra):
    value = train(compose_tiny(tmp_path, ["validation.folds=[0]", "task_name=ablation", *extra]))
    assert np.isfinite(value)
    (run,) = runs_of(tmp_path, "ablation")
    metrics = run.data.metrics
    one_segment = "model=transformer_tiny" in extra or "model.supervision.segments=1" in extra
    assert metrics["fold0-steps"] == 3.0  # max_steps=3 optimiser steps: one per batch, whatever the segments
    decision_segments = metrics["fold0-oos/act_steps"]
    if one_segment:
        assert decision_segments == 1.0
    elif "model.act.eval_mode=max_steps" in extra:
        assert decision_segments == 4.0
    else:
        assert 1.0 <= decision_segments <= 4.0


def test_mlflow_run_id_from_the_environment_is_reused(tmp_path, monkeypatch, client_for):
    client = client_for(tmp_path)
    exp = client.create_experiment("outer", artifact_location=str(tmp_path / "outer"))
    outer = client.create_run(exp).info.run_id
    monkeypatch.setenv("MLFLOW_RUN_ID", outer)
    train(compose_tiny(tmp_path, ["validation.folds=[0]", "task_name=outer"]))
    (run,) = runs_of(tmp_path, "outer")
    assert run.info.run_id == outer
    assert "fold0-oos/sharpe" in run.data.metrics


@pytest.mark.parametrize("override,field", [
    ("model.conditioning=bogus", "model.conditioning is a config group, got the value 'bogus'"),
    (["model/conditioning=regime_rag", "model.conditioning.patterns.library.index.kind=annoy"],
     "model.conditioning.patterns.library.index.kind"),
    ("model.conditioning.regimes=1", "model.conditioning.regimes"),
    ("validation.splitter.n_test_groups=5", "validation.splitter.n_test_groups"),
    ("validation.splitter.purge_days=-1", "validation.splitter.purge_days"),
    ("data.seq_len=0", "data.seq_len"),
    ("data.horizon=abc", "data.horizon"),
    ("objective=oos/nothing", "objective"),
    ("model.act.halt_max_steps=0", "model.act.halt_max_steps"),
    ("model.supervision.segments=0", "model.supervision.segments"),
    ("model.net.recursion.solver=newton", "model.net.recursion.solver"),
    ("model.net.norm=middle", "model.net.norm"),
    ("model.grad_clip=-1", "model.grad_clip"),
    ("model.supervision.segments=2", "model.supervision.segments"),
    ("model.loss.benchmark=momentum", "model.loss.benchmark"),
    ("model.loss.risk_aversion=0", "model.loss.risk_aversion"),
    ("model.scheduler.warmup_fraction=2", "model.scheduler.warmup_fraction"),
])
def test_bad_config_values_stop_before_any_data_is_read(tmp_path, monkeypatch, override, field):
    def no_data(*args, **kwargs):
        raise AssertionError("data were loaded before the config was checked")

    monkeypatch.setattr("dualhrq.data.sources.load_bundled", no_data)
    overrides = [override] if isinstance(override, str) else override
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        train(compose_tiny(tmp_path, overrides))
    assert not (tmp_path / "mlruns.db").exists()


@pytest.mark.parametrize("extra,error,message", [
    (["data.seq_len=5000"], DataError, "data.seq_len"),
    (["data.source.symbols=[SP500,DOW]"], DataError, "data.source.symbols"),
    (["validation.splitter.purge_days=400"], ConfigError, "validation.splitter.purge_days"),
    (["validation.folds=[0,7]"], ConfigError, "validation.folds"),
])
def test_data_that_cannot_give_training_samples_stops_before_training(tmp_path, extra, error, message):
    with pytest.raises(error, match=message.replace(".", r"\.")):
        train(compose_tiny(tmp_path, extra))
    assert not (tmp_path / "out" / "folds").exists()


def test_a_bad_source_setting_found_when_loading_names_its_full_path(tmp_path):
    base = [o for o in tiny_overrides(tmp_path) if not o.startswith("data.source.start")]
    with pytest.raises(ConfigError, match=r"^data\.source\.n_days must be a positive integer, got 0\."):
        train(compose_tiny(tmp_path, ["data=synthetic_intraday", "data.source.n_days=0"], base=base))
    assert not (tmp_path / "out" / "folds").exists()


@pytest.mark.parametrize("mutate,message", [
    (lambda f: f.drop("volume"), "volume"),
    (lambda f: f.with_columns(extra=pl.lit(1.0)), "extra"),
    (lambda f: f.with_columns(close=pl.when(pl.int_range(pl.len()) == 10).then(float("nan"))
                              .otherwise(pl.col("close"))), "close"),
    (lambda f: f.with_columns(low=pl.when(pl.int_range(pl.len()) == 10).then(-1.0).otherwise(pl.col("low"))),
     "low"),
    (lambda f: f.reverse(), "sort"),
    (lambda f: pl.concat([f.head(11), f.slice(10, 1), f.slice(11)]), "duplicate"),
])
def test_bad_user_parquet_is_refused_with_the_problem_named(tmp_path, mutate, message):
    from dualhrq.data.sources import load_bundled

    bars = load_bundled(["SP500"], start="2016-01-01")
    path = tmp_path / "bars.parquet"
    mutate(bars).write_parquet(path)
    with pytest.raises(DataError, match=message):
        train(compose_tiny(tmp_path, ["data=parquet", f"data.path={path}"]))
    assert not (tmp_path / "out" / "folds").exists()


def test_user_parquet_trains(tmp_path):
    from dualhrq.data.sources import load_bundled

    path = tmp_path / "bars.parquet"
    load_bundled(["SP500", "NASDAQ"], start="2016-01-01").write_parquet(path)
    value = train(compose_tiny(tmp_path, ["data=parquet", f"data.path={path}", "validation.folds=[0]",
                                          "task_name=parquet"]))
    assert np.isfinite(value)
    (run,) = runs_of(tmp_path, "parquet")
    assert run.data.tags["data.name"] == "parquet"
