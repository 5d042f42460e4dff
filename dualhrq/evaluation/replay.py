"""Replay a finished run's out-of-sample signals (or remake them with its saved pipelines), log the result.

The stage behind ``python -m dualhrq.backtest``; see that module for the sources of signals.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import polars as pl
from hydra.core.hydra_config import HydraConfig
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf, open_dict

from dualhrq.config import build, load_recorded, located
from dualhrq.errors import ConfigError, DataError
from dualhrq.evaluation.books import check_portfolio, market_bars, options_book, replayed_books
from dualhrq.evaluation.portfolio import run_portfolio
from dualhrq.market.audit import summary_line, violations
from dualhrq.market.grid import validate_quotes
from dualhrq.pipeline.decision import DecisionPipeline
from dualhrq.portfolio.metrics import book_metrics
from dualhrq.portfolio.plots import save_plots
from dualhrq.portfolio.strict_sim import StrictSimBacktest, StrictSimResult, adversarial_signals, describe
from dualhrq.primitives.tables import format_table
from dualhrq.tracking.mlflow_run import RunTracker, flatten_config, override_tags
from dualhrq.training.fold import predict_from_pipelines
from dualhrq.validation.baselines import PREDICTIONS_ARTIFACT

log = logging.getLogger("dualhrq.backtest")
SIGNALS = ("predictions", "pipeline")


def load_predictions(cfg: DictConfig, workdir: Path) -> tuple[pl.DataFrame, DictConfig | None]:
    """The predictions named by ``run_id`` or ``predictions`` (exactly one), and the training run's config."""
    if (cfg.run_id is None) == (cfg.predictions is None):
        raise ConfigError("set exactly one of run_id=<training run id> or predictions=<parquet file>.")
    if cfg.signals not in SIGNALS:
        raise ConfigError(f"signals must be one of {list(SIGNALS)}, got {cfg.signals!r}.")
    if cfg.signals == "pipeline":
        if cfg.run_id is None:
            raise ConfigError("signals=pipeline makes the signals with a run's saved pipelines: set run_id=<run>.")
        trained = run_config(cfg, workdir)
        return _one_per_decision(pipeline_predictions(cfg, trained, workdir)), trained
    if cfg.predictions is not None:
        path = Path(cfg.predictions)
        if not path.is_file():
            raise DataError(f"predictions={path} is not a file. Fix: point it at a run's {PREDICTIONS_ARTIFACT}.")
        config = path.parent / "config.yaml"
    else:
        client = MlflowClient(tracking_uri=str(cfg.logger.mlflow.tracking_uri))
        try:
            path = Path(client.download_artifacts(str(cfg.run_id), PREDICTIONS_ARTIFACT, str(workdir)))
        except (MlflowException, OSError) as err:
            raise DataError(f"run_id={cfg.run_id}: no {PREDICTIONS_ARTIFACT} artifact in "
                            f"{cfg.logger.mlflow.tracking_uri} ({str(err).splitlines()[0]}). Fix: give a finished "
                            "training run's id.") from None
        try:
            config = Path(client.download_artifacts(str(cfg.run_id), "config.yaml", str(workdir)))
        except (MlflowException, OSError):
            config = workdir / "none"
    trained = load_recorded(config, cfg.trusted_targets) if config.is_file() else None
    return _one_per_decision(pl.read_parquet(path)), trained


def _one_per_decision(frame: pl.DataFrame) -> pl.DataFrame:
    """Where folds predicted the same (ts, symbol), the lowest fold's signal; sorted by symbol, ts."""
    order = ["fold", "ts"] if "fold" in frame.columns else ["ts"]
    return frame.sort(*order).unique(["ts", "symbol"], keep="first", maintain_order=True).sort("symbol", "ts")


def run_config(cfg: DictConfig, workdir: Path) -> DictConfig:
    """The training run's resolved ``config.yaml`` artifact, read as plain values (``load_recorded``)."""
    client = MlflowClient(tracking_uri=str(cfg.logger.mlflow.tracking_uri))
    try:
        path = client.download_artifacts(str(cfg.run_id), "config.yaml", str(workdir))
    except (MlflowException, OSError) as err:
        raise DataError(f"run_id={cfg.run_id}: no config.yaml artifact in {cfg.logger.mlflow.tracking_uri} "
                        f"({str(err).splitlines()[0]}). Fix: give a finished training run's id.") from None
    return load_recorded(path, cfg.trusted_targets)


def pipeline_predictions(cfg: DictConfig, trained: DictConfig, workdir: Path) -> pl.DataFrame:
    """The run's out-of-sample signals, made again by each fold's saved decision pipeline on the data and
    folds of its config ``trained``."""
    client = MlflowClient(tracking_uri=str(cfg.logger.mlflow.tracking_uri))

    def load(fold: int) -> DecisionPipeline:
        try:
            path = client.download_artifacts(str(cfg.run_id), f"checkpoints/fold{fold}", str(workdir))
        except (MlflowException, OSError) as err:
            raise DataError(f"run_id={cfg.run_id}: no saved pipeline for fold {fold} ({str(err).splitlines()[0]})."
                            " Fix: replay its predictions (signals=predictions).") from None
        return DecisionPipeline.load(path, trusted=cfg.trusted_targets)

    return predict_from_pipelines(trained, load)


def replay(cfg: DictConfig) -> dict[str, float]:
    """Replay, log and print; returns the run's metrics."""
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if cfg.adversarial:
        if cfg.run_id is not None or cfg.predictions is not None:
            raise ConfigError("adversarial=true replays its own signal; drop run_id/predictions.")
        with located(cfg.data.source):
            bars = build(cfg.data.source)()
        predictions, trained = adversarial_signals(validate_quotes(bars)), None
        log.info("adversarial signal on %s: short after every falling bar", cfg.data.get("name"))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            predictions, trained = load_predictions(cfg, Path(tmp))
    if trained is not None and "data" in trained:
        with open_dict(cfg):
            cfg.data = trained.data  # the market the model was trained on
        log.info("replaying on the training run's data: %s", cfg.data.get("name"))
    sim = build(cfg.backtest)
    strict = isinstance(sim, StrictSimBacktest)
    portfolio = cfg.get("portfolio")
    if portfolio is not None:
        if cfg.adversarial:
            raise ConfigError("adversarial=true replays the rule-testing signal, not a strategy: drop portfolio=.")
        check_portfolio(cfg, strict, predictions["ts"].dt.date().n_unique(), predictions["symbol"].unique().to_list())
    result = sim.run(predictions)
    tracker = RunTracker.open(cfg.logger.mlflow, output_dir, run_name=cfg.logger.mlflow.get("run_name"))
    try:
        overrides = HydraConfig.get().overrides.task if HydraConfig.initialized() else []
        tracker.log_params({k: v for k, v in flatten_config(cfg).items() if k.startswith("backtest.")})
        tracker.set_tags({"source.run_id": cfg.run_id or "", "source.predictions": cfg.predictions or "",
                          "source.adversarial": cfg.adversarial, "source.signals": cfg.signals,
                          "backtest": cfg.backtest._target_, **override_tags(overrides)})
        net = result.returns["net"].to_numpy()
        metrics = {f"bt/{k}": v for k, v in book_metrics(net, result.turnover, sim.periods_per_year).items()}
        lines = [f"Replayed {predictions.height} decisions on {predictions['symbol'].n_unique()} symbols, "
                 f"{result.returns.height} days ({cfg.backtest._target_})."]
        if isinstance(result, StrictSimResult):
            metrics.update({f"bt/{k}": float(v) for k, v in describe(result).items()})
            if cfg.data.get("synthetic", False):
                tracker.set_tags({"data.synthetic": True})
                lines.append(f"Market: {cfg.data.name} -- SYNTHETIC (a seeded model market, not real data).")
            lines.append(summary_line(result.report))
            files = {"violation_report.csv": result.report, "violations.csv": violations(result.replay),
                     "orders.parquet": result.replay.events(), "steps.parquet": result.replay.per_step(),
                     "returns.parquet": result.returns, "pretrade_rejections.csv": result.rejections,
                     "killswitch_trips.csv": result.trips, "killswitch_alerts.csv": result.alerts}
            for name, frame in files.items():
                path = output_dir / name
                frame.write_csv(path) if name.endswith(".csv") else frame.write_parquet(path)
                tracker.log_artifact(path, "backtest")
            if cfg.plots:
                for path in save_plots(result.returns, result.replay.per_step(), sim.capital,
                                       output_dir / "plots", "Book B (strict sim)"):
                    tracker.log_artifact(path, "plots")
        wants_a = portfolio is not None and "book_a" in portfolio.books
        options = None
        run_a = cfg.options.enabled and not cfg.adversarial and (strict or wants_a)
        bars = market_bars(cfg, sim, predictions) if run_a or portfolio is not None else None
        if run_a:
            options = options_book(cfg, bars, predictions, sim.periods_per_year)
            metrics.update(options.metrics)
            lines += options.lines
            for name, frame in (("book_a_attribution.parquet", options.attribution),
                                ("book_a_pretrade_rejections.csv", options.rejections)):
                path = output_dir / name
                frame.write_csv(path) if name.endswith(".csv") else frame.write_parquet(path)
                tracker.log_artifact(path, "book_a")
        if portfolio is not None:
            books = replayed_books(cfg, sim, result, predictions, bars, options, metrics)
            out = run_portfolio(portfolio, cfg.risk, books, output_dir / "portfolio")
            metrics.update(out.metrics)
            tracker.set_tags(out.tags)
            lines += ["", *out.lines]
            for name, frame in out.files.items():
                path = output_dir / "portfolio" / name
                frame.write_csv(path) if name.endswith(".csv") else frame.write_parquet(path)
                tracker.log_artifact(path, "portfolio")
            tracker.log_artifact(out.report, "portfolio")
        tracker.log_metrics(metrics)
        counts = {f"bt/{k}" for k in describe(result)} if isinstance(result, StrictSimResult) else set()
        table = format_table([{"metric": k, "value": int(v) if k in counts else v} for k, v in metrics.items()],
                             "Replay")
        report = "\n".join([*lines, "", table, "", f"MLflow run {tracker.run_id} ({tracker.tracking_uri})"])
        (output_dir / "summary.txt").write_text(report + "\n")
        tracker.log_artifact(output_dir / "summary.txt")
        (output_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        tracker.log_artifact(output_dir / "config.yaml")
        print("\n" + report, flush=True)
        tracker.finish()
    except BaseException:
        tracker.finish("FAILED")
        raise
    return metrics
