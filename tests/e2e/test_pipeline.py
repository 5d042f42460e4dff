"""A fold's saved decision pipeline makes the job's out-of-sample signals again, exactly, and the replay
CLI replays them (``signals=pipeline``) to the same result as the recorded predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf, open_dict

from dualhrq.config import CONF_DIR, build
from dualhrq.errors import ConfigError, DataError
from dualhrq.evaluation.replay import replay
from dualhrq.pipeline.decision import DecisionPipeline
from dualhrq.training.fold import predict_from_pipelines


def _replay_cfg(store, out, overrides):
    """The replay CLI's config logging into the store under ``store``, with outputs in ``out``."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="replay", overrides=[
            f"logger.mlflow.tracking_uri=sqlite:///{store}/mlruns.db",
            f"logger.mlflow.artifact_location={store}/mlartifacts", "backtest=daily", "plots=false",
            "options.enabled=false", *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
        cfg.paths.root_dir = str(out.parent)
    return cfg


@pytest.mark.slow
@pytest.mark.parametrize("conditioning", ["regime_rag", "puzzle_id"])
def test_saved_pipelines_reproduce_the_jobs_out_of_sample_signals(tmp_path, pinned_run, conditioning):
    # the session's two-fold job of this conditioning (retrieval with a time limit it cannot reach: a
    # failed-open step would differ by design); this test adds only its two replays to the job's store
    shared = pinned_run(conditioning)
    store, run = shared.tmp, shared.run
    run_id = run.info.run_id
    client = MlflowClient(f"sqlite:///{store}/mlruns.db")
    job = pl.read_parquet(Path(shared.cfg.paths.output_dir) / "oos_predictions.parquet")
    run_cfg = OmegaConf.load(client.download_artifacts(run_id, "config.yaml", str(tmp_path)))

    def load(fold: int) -> DecisionPipeline:
        return DecisionPipeline.load(client.download_artifacts(run_id, f"checkpoints/fold{fold}", str(tmp_path)))

    again = predict_from_pipelines(run_cfg, load)
    assert again.select("fold", "ts", "symbol").equals(job.select("fold", "ts", "symbol"))
    np.testing.assert_array_equal(again["signal"].to_numpy(), job["signal"].to_numpy())
    np.testing.assert_array_equal(again["forecast"].to_numpy(), job["forecast"].to_numpy())
    assert job["signal"].n_unique() > 10  # a model that says something, not a constant

    # from features: every test decision again, plus the latest bar, which has no label yet
    pipe = load(0)
    features = build(run_cfg.data).features()
    decided = pipe.decide(features)
    fold0 = job.filter(pl.col("fold") == 0).select("ts", "symbol", "signal")
    joined = fold0.join(decided, on=["ts", "symbol"], how="left", suffix="_decided")
    np.testing.assert_allclose(joined["signal_decided"].to_numpy(), joined["signal"].to_numpy(), rtol=0,
                               atol=1e-6)  # other batches, so float sums in another order
    assert decided["ts"].max() == features["ts"].max()
    one = pipe.decide(features.filter(pl.col("symbol") == "NASDAQ"))
    assert one["symbol"].unique().to_list() == ["NASDAQ"]
    with pytest.raises(DataError, match="DOW"):
        pipe.decide(features.filter(pl.col("symbol") == "NASDAQ").with_columns(symbol=pl.lit("DOW")))

    recorded = replay(_replay_cfg(store, tmp_path / "recorded", [f"run_id={run_id}"]))
    remade = replay(_replay_cfg(store, tmp_path / "remade", [f"run_id={run_id}", "signals=pipeline"]))
    assert remade["bt/sharpe"] == recorded["bt/sharpe"]
    assert remade["bt/sharpe"] == pytest.approx(run.data.metrics["oos/sharpe"])
    replays = client.search_runs([client.get_experiment_by_name("backtest").experiment_id])
    assert sorted(r.data.tags["source.signals"] for r in replays) == ["pipeline", "predictions"]


def test_pipeline_signals_need_a_run_and_a_known_source(tmp_path):
    with pytest.raises(ConfigError, match="signals=pipeline"):
        replay(_replay_cfg(tmp_path, tmp_path / "a", [f"predictions={tmp_path / 'p.parquet'}", "signals=pipeline"]))
    with pytest.raises(ConfigError, match="signals must be one of"):
        replay(_replay_cfg(tmp_path, tmp_path / "b", ["run_id=abc", "signals=model"]))
    with pytest.raises(DataError, match="pipeline.json"):
        DecisionPipeline.load(tmp_path)
