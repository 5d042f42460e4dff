"""The sweep a run belongs to: its sibling runs in MLflow, for the Deflated Sharpe Ratio and comparisons.

A Hydra multirun logs one MLflow run per job into one experiment; ``mlflow
run`` or a parent run may group them instead. The sweep of a run is the
runs under the same parent run (tag ``mlflow.parentRunId``) when it has
one, else the runs of its experiment.

Every trial the researcher launched counts toward the DSR, whether it
finished or not: a run is a trial from the moment its evaluation begins
(tag ``dsr.trial``), and a Hydra multirun's jobs are all counted from the
start, because each job records the number of jobs Hydra planned for its
sweep when its run is opened. So the count does not depend on the order in
which the jobs finish.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.types import RunMode
from mlflow.entities import Run, ViewType
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from dualhrq.validation.evidence import TRIAL_SHARPE

PARENT_TAG = "mlflow.parentRunId"
TRIAL_TAG = "dsr.trial"  # set when the run's evaluation begins
SWEEP_TAG = "sweep.dir"  # a Hydra multirun's directory, shared by its jobs
SWEEP_JOBS_TAG = "sweep.jobs"  # the number of jobs Hydra planned for that multirun
_BASIC_SWEEPER = f"{BasicSweeper.__module__}.{BasicSweeper.__name__}"
# hydra-optuna-sweeper's class, named rather than imported: a job need not have the plugin to be tagged
OPTUNA_SWEEPER = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"


def _search(client: MlflowClient, experiment_id: str, query: str) -> list[Run]:
    runs: list[Run] = []
    token = None
    while True:
        page = client.search_runs([experiment_id], filter_string=query, run_view_type=ViewType.ACTIVE_ONLY,
                                  max_results=1000, page_token=token, order_by=["attributes.start_time ASC"])
        runs += page
        token = page.token
        if not token:
            return runs


def _under(parent_run_id: str | None) -> str:
    return f" and tags.`{PARENT_TAG}` = '{parent_run_id}'" if parent_run_id else ""


def finished_runs(client: MlflowClient, experiment_id: str) -> list[Run]:
    """Finished runs of an experiment that logged their path-average Sharpe ratio."""
    runs = _search(client, experiment_id, "attributes.status = 'FINISHED'")
    return [r for r in runs if TRIAL_SHARPE in r.data.metrics]


def trial_runs(client: MlflowClient, experiment_id: str, parent_run_id: str | None = None) -> list[Run]:
    """Runs of an experiment (under ``parent_run_id`` if given) whose evaluation began: finished, failed,
    killed or still running."""
    return _search(client, experiment_id, f"tags.`{TRIAL_TAG}` = '1'" + _under(parent_run_id))


def count_trials(runs: list[Run]) -> int:
    """Trials launched: each Hydra multirun counts its planned jobs (or the runs seen, if more), every other
    run counts once."""
    sweeps: dict[str, tuple[int, int]] = {}  # sweep dir -> (runs seen, jobs planned)
    loose = 0
    for r in runs:
        sweep = r.data.tags.get(SWEEP_TAG)
        if sweep is None:
            loose += 1
            continue
        seen, planned = sweeps.get(sweep, (0, 0))
        sweeps[sweep] = (seen + 1, max(planned, int(r.data.tags.get(SWEEP_JOBS_TAG, 0))))
    return loose + sum(max(seen, planned) for seen, planned in sweeps.values())


@dataclass(frozen=True)
class SweepTrials:
    """The trials of a run's sweep: how many were launched, the path-average Sharpe ratios known so far."""

    launched: int
    sharpes: list[float]
    where: str


def sweep_trials(client: MlflowClient, run_id: str) -> SweepTrials:
    """The trials of ``run_id``'s sweep (same parent run, else same experiment), itself included."""
    run = client.get_run(run_id)
    parent = run.data.tags.get(PARENT_TAG)
    runs = trial_runs(client, run.info.experiment_id, parent)
    if all(r.info.run_id != run_id for r in runs):
        runs.append(run)
    where = f"parent run {parent}" if parent else f"experiment {run.info.experiment_id}"
    return SweepTrials(count_trials(runs), [r.data.metrics[TRIAL_SHARPE] for r in runs
                                            if TRIAL_SHARPE in r.data.metrics], where)


def planned_sweep(hydra: DictConfig) -> dict[str, str]:
    """Tags naming the Hydra multirun a job belongs to and how many jobs its sweeper planned, whichever
    launcher runs the jobs.

    The basic sweeper saves the multirun's own config as ``multirun.yaml`` in
    the sweep directory before it launches a job; its overrides (and the
    sweeper's ``params``) expand to the jobs as the sweeper expands them. The
    Optuna sweeper runs ``n_trials`` trials (a grid sampler may run fewer: its
    size is left to the runs seen). Another sweeper's size is left to the runs
    seen. Outside a multirun: no tags.
    """
    if hydra.get("mode") != RunMode.MULTIRUN:
        return {}
    sweep_dir = Path(hydra.runtime.cwd) / str(hydra.sweep.dir)
    tags = {SWEEP_TAG: str(sweep_dir.resolve())}
    sweeper = hydra.sweeper.get("_target_")
    if sweeper == OPTUNA_SWEEPER:
        grid = str(OmegaConf.select(hydra.sweeper, "sampler._target_", default="")).endswith("GridSampler")
        return tags if grid else tags | {SWEEP_JOBS_TAG: str(int(hydra.sweeper.n_trials))}
    saved = sweep_dir / "multirun.yaml"
    if sweeper != _BASIC_SWEEPER or not saved.is_file():
        return tags
    multirun = OmegaConf.load(saved).hydra
    params = [f"{k}={v}" for k, v in (multirun.sweeper.get("params") or {}).items()]
    try:
        overrides = OverridesParser.create().parse_overrides([*params, *multirun.overrides.task])
        (jobs,) = BasicSweeper.split_arguments(overrides, None)
    except HydraException:  # a sweep the parser needs the config tree for (glob choices): size unknown
        return tags
    return tags | {SWEEP_JOBS_TAG: str(len(jobs))}
