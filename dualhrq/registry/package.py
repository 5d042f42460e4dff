"""Package a training run's fitted pipeline as an MLflow ``python_function`` model.

The model directory holds the pipeline's plain files and ``serving.json``
(:class:`~dualhrq.serving.model.ServedModel`), loaded by the loader module
``dualhrq.serving.pyfunc``: no pickled Python object is stored. It carries a
signature and an input example (the last bars of the run's own data, enough
for one decision per symbol, checked by running it) and the exact versions of
the packages it runs with.
"""

from __future__ import annotations

import importlib.metadata as metadata
import re
from dataclasses import dataclass
from pathlib import Path

import mlflow
import polars as pl
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from dualhrq.config import build, load_recorded, located
from dualhrq.errors import ConfigError, DataError
from dualhrq.pipeline.decision import DecisionPipeline
from dualhrq.serving.model import ServedModel
from dualhrq.serving.request import MARKET, VIX, RequestSpec
from dualhrq.tracking.store import fluent_store
from dualhrq.training.datamodule import MarketDataModule
from dualhrq.training.refit import REFIT_ARTIFACT

LOADER = "dualhrq.serving.pyfunc"
MODEL_NAME = "model"  # the logged model's name under its training run


@dataclass(frozen=True)
class Packaged:
    model_uri: str
    source: str  # the pipeline artifact it was made from
    config: Path  # the run's config.yaml, downloaded


def pipeline_artifact(source: str) -> str:
    """``refit`` -> ``checkpoints/refit``; ``fold<i>`` -> ``checkpoints/fold<i>``."""
    if source == "refit":
        return REFIT_ARTIFACT
    if re.fullmatch(r"fold\d+", source):
        return f"checkpoints/{source}"
    raise ConfigError(f"source must be refit or fold<i> (a CV fold's pipeline), got {source!r}.", field="source")


def package_run(client: MlflowClient, run_id: str, source: str, workdir: Path,
                trusted: tuple[str, ...] = ()) -> Packaged:
    """Log the run's ``source`` pipeline as a pyfunc model of the run; returns its URI."""
    artifact = pipeline_artifact(source)
    try:
        client.get_run(run_id)
    except MlflowException as err:
        raise DataError(f"run_id={run_id}: no such run in {client.tracking_uri} ({str(err).splitlines()[0]}). "
                        "Fix: give a training run's id.") from None
    config = run_artifact(client, run_id, "config.yaml", workdir, "a training run")
    pipe_dir = run_artifact(client, run_id, artifact, workdir,
                         "a run trained with validation.refit=true, or source=fold<i> for one CV fold's model"
                         if source == "refit" else "a fold this run trained")
    cfg = load_recorded(config, trusted)
    pipeline = DecisionPipeline.load(pipe_dir, trusted=trusted)
    served = ServedModel.for_data(pipeline, OmegaConf.to_container(cfg.data, resolve=True), trusted)
    example = input_example(request_frame(cfg, served.request), served.request)
    with fluent_store(client.tracking_uri), mlflow.start_run(run_id=run_id, nested=mlflow.active_run() is not None):
        info = mlflow.pyfunc.log_model(name=MODEL_NAME, **model_files(served, example, workdir))
    return Packaged(model_uri=info.model_uri, source=artifact, config=config)


def model_files(served: ServedModel, example: pl.DataFrame, workdir: Path) -> dict:
    """What ``mlflow.pyfunc.log_model`` / ``save_model`` take for ``served``: the loader module, its data
    directory, the signature and input example (the example run through the model), the pinned requirements."""
    data_dir = served.save(workdir / "served")
    decisions = served.decide(example)
    example_pd = example.with_columns(pl.col("ts").dt.strftime("%Y-%m-%d")).to_pandas()
    output_pd = decisions.with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S")).to_pandas()
    return {"loader_module": LOADER, "data_path": str(data_dir), "signature": infer_signature(example_pd, output_pd),
            "input_example": example_pd, "pip_requirements": requirements()}


def request_frame(cfg: DictConfig, request: RequestSpec) -> pl.DataFrame:
    """Every bar of the run's data as a request carries it: the bar columns and, on each bar's date, the
    auxiliary series' latest value (carried over days it did not print)."""
    dm: MarketDataModule = build(cfg.data)
    with located(cfg.data):
        dm.features()
        aux = {VIX: dm.vix() if VIX in request.auxiliary else None,
               MARKET: dm.market().rename({"close": MARKET}) if MARKET in request.auxiliary else None}
    frame = dm.bars.select(request.bars).sort("ts")
    for name, series in aux.items():
        if series is not None:
            frame = frame.join_asof(series.select("ts", name).sort("ts"), on="ts")
    return frame.sort("symbol", "ts").select(request.columns)


def input_example(frame: pl.DataFrame, request: RequestSpec) -> pl.DataFrame:
    """The last ``request.min_bars`` bars of every symbol of ``frame`` (a :func:`request_frame`)."""
    return frame.group_by("symbol", maintain_order=True).tail(request.min_bars).sort("symbol", "ts")


def requirements() -> list[str]:
    """The installed version of every package the project depends on, pinned."""
    names = [re.split(r"[ ;<>=!~\[]", r, maxsplit=1)[0] for r in metadata.requires("dualhrq") or []
             if "extra ==" not in r]
    return [f"{n}=={metadata.version(n)}" for n in names]


def run_artifact(client: MlflowClient, run_id: str, artifact: str, workdir: Path, fix: str) -> Path:
    """The run's ``artifact``, downloaded under ``workdir``; a ``DataError`` naming the run, the artifact and
    ``fix`` when it is not there."""
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return Path(client.download_artifacts(run_id, artifact, str(workdir)))
    except (MlflowException, OSError) as err:
        raise DataError(f"run_id={run_id}: no artifact {artifact} ({str(err).splitlines()[0][:200]}). "
                        f"Fix: give {fix}.") from None
