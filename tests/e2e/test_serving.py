"""The served decision path on a trained fold pipeline (the pinned regime_rag run): the same decision as the
pipeline's own at the request's last bar, a slow or missing pattern index failing open to regime-only
conditioning (and saying so), and refusals that MLflow's server turns into HTTP 400."""

from __future__ import annotations

import time

import numpy as np
import polars as pl
import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, ErrorCode
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from dualhrq.config import build
from dualhrq.patterns.breaker import BreakerConfig
from dualhrq.pipeline.decision import DecisionPipeline
from dualhrq.registry.package import input_example, request_frame
from dualhrq.serving.model import ServedModel
from dualhrq.serving.pyfunc import Decisions


def _served(pipeline: DecisionPipeline, cfg, retrieval_expected: bool = False) -> ServedModel:
    return ServedModel.for_data(pipeline, OmegaConf.to_container(cfg.data, resolve=True),
                                retrieval_expected=retrieval_expected)


def _fold0(tmp_path, pinned_run):
    """The pinned regime_rag run's config and fold 0's saved pipeline directory."""
    shared = pinned_run("regime_rag")
    client = MlflowClient(f"sqlite:///{shared.tmp}/mlruns.db")
    run_id = shared.run.info.run_id
    cfg = OmegaConf.load(client.download_artifacts(run_id, "config.yaml", str(tmp_path)))
    return cfg, client.download_artifacts(run_id, "checkpoints/fold0", str(tmp_path))


@pytest.mark.slow
def test_a_served_decision_is_the_pipelines_and_fails_open_without_its_index(tmp_path, pinned_run):
    cfg, path = _fold0(tmp_path, pinned_run)
    served = _served(DecisionPipeline.load(path), cfg)
    bars = input_example(request_frame(cfg, served.request), served.request)
    assert bars.group_by("symbol").len()["len"].to_list() == [served.request.min_bars] * 2

    answer = served.decide(bars)
    assert answer["symbol"].to_list() == ["NASDAQ", "SP500"] and not answer["failed_open"].any()
    # the pipeline's own decisions from the whole data's features, read at the request's last bar
    reference = DecisionPipeline.load(path).decide(build(cfg.data).features())
    expected = answer.select("ts", "symbol").join(reference, on=["ts", "symbol"], how="left")
    np.testing.assert_allclose(answer["signal"].to_numpy(), expected["signal"].to_numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(answer["forecast"].to_numpy(), expected["forecast"].to_numpy(), rtol=1e-5, atol=1e-9)

    # an index slower than the time limit: the decision still comes, on the regime alone, and says so
    retriever = served.pipeline.module.retriever
    fast = retriever.library.search
    retriever.library.search = lambda q, t, k=None: (time.sleep(0.3), fast(q, t, k))[1]
    retriever.fail_open.cfg = BreakerConfig(timeout_ms=20.0, failure_threshold=100)
    slow = served.decide(bars)
    assert slow["failed_open"].all()
    # ...the same decision as the model whose library is missing altogether
    blind = _served(DecisionPipeline.load(path, patterns=False), cfg, retrieval_expected=True)
    missing = blind.decide(bars)
    assert missing["failed_open"].all()
    np.testing.assert_array_equal(slow["signal"].to_numpy(), missing["signal"].to_numpy())


@pytest.mark.slow
def test_a_refused_request_is_an_invalid_parameter_for_mlflows_server(tmp_path, pinned_run):
    cfg, path = _fold0(tmp_path, pinned_run)
    served = _served(DecisionPipeline.load(path), cfg)
    model = Decisions(served)
    bars = input_example(request_frame(cfg, served.request), served.request)
    ok = model.predict(bars.with_columns(pl.col("ts").dt.strftime("%Y-%m-%d")).to_pandas())
    assert list(ok.columns) == ["ts", "symbol", "signal", "forecast", "segments", "failed_open"]
    with pytest.raises(MlflowException, match="^vix: ") as err:
        model.predict(bars.drop("vix").to_pandas())
    assert err.value.error_code == ErrorCode.Name(INVALID_PARAMETER_VALUE)
    assert err.value.get_http_status_code() == 400
