"""A tiny training run end to end: gates read from MLflow, report logged, strict exit, a run as a baseline,
and the catalogue of run metrics against what the run logged.

The report is also opened in headless Chromium, as a person would look at it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from dualhrq.config import CONF_DIR
from dualhrq.errors import ConfigError
from dualhrq.evaluation.run_end import RunOutcome, fold_means, fold_sums, raise_on_failed_gates
from dualhrq.train import train
from dualhrq.validation.gates import FAIL, LEFT_OUT, NOT_EVALUATED, PASS, Gate, GateResult, GatesFailed

sys.path.insert(0, str(CONF_DIR.parent / "tests" / "e2e"))
from conftest import assert_catalogue_matches, compose_tiny, run_cli, runs_of, tiny_overrides  # noqa: E402

# 4 groups, 2 tested per fold: 6 folds and 3 CPCV paths; one tiny model per fold
SPLIT = ["validation.splitter.n_groups=4", "validation.splitter.n_test_groups=2", "task_name=gates",
         # gates on metrics of the user's own: one logged to the run before the job, one never logged
         "+validation.gates.checked={metric:ext/checked,at_most:0,external:true}",
         "+validation.gates.unlogged={metric:ext/never_logged,below:1.0,external:true,description:nothing logs this}"]
PROBE = """<script>window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.setAttribute('data-images-loaded', ok + '/' + imgs.length);
});</script></body>"""


def _artifacts(client, run_id, path=None):
    for item in client.list_artifacts(run_id, path):
        yield from _artifacts(client, run_id, item.path) if item.is_dir else [item.path]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """A run that a step of the user's own has already given ``ext/checked`` = 0 (via MLFLOW_RUN_ID)."""
    tmp = tmp_path_factory.mktemp("run")
    client = MlflowClient(f"sqlite:///{tmp}/mlruns.db")
    exp = client.create_experiment("gates", artifact_location=str(tmp / "mlartifacts"))
    run_id = client.create_run(exp).info.run_id
    client.log_batch(run_id, metrics=[Metric("ext/checked", 0.0, 0, 0)])
    os.environ["MLFLOW_RUN_ID"] = run_id
    try:
        objective = train(compose_tiny(tmp, SPLIT))
    finally:
        del os.environ["MLFLOW_RUN_ID"]
    return tmp, client, client.get_run(run_id), objective


@pytest.mark.slow
def test_gates_judge_metrics_any_part_logged_and_never_pass_missing_ones(first_run):
    tmp, client, run, objective = first_run
    tags, metrics = run.data.tags, run.data.metrics
    assert objective == pytest.approx(metrics["oos/sharpe"]) and metrics["oos/n_paths"] == 3
    assert tags["gate.checked"] == "PASS" and metrics["gate/checked"] == 1.0
    # the daily replay has no rule engine: its gate is left out, with the reason, not "not evaluated"
    assert tags["gate.sim_violations"] == "left out" and "gate/sim_violations" not in metrics
    # the regime and MI metrics the conditioning logs are judged against their thresholds
    assert tags["gate.regime_switches"] == ("PASS" if metrics["regime/switches_per_day"] < 0.05 else "FAIL")
    assert tags["gate.conditioning_mi"] == ("PASS" if metrics["conditioning/mi_symbol_bits"] < 0.1 else "FAIL")
    assert tags["gate.inputs_mi"] == ("PASS" if metrics["inputs/mi_symbol_bits"] < 0.1 else "FAIL")
    assert tags["gate.unlogged"] == "not evaluated" and "gate/unlogged" not in metrics
    assert tags["gate.param_budget"] == "PASS"  # hrm_tiny's 66,307 parameters are in its budget
    expected = "PASS" if metrics["oos/max_drawdown"] < 0.15 else "FAIL"
    assert tags["gate.max_drawdown"] == expected
    assert metrics["gates/passed"] + metrics["gates/failed"] + metrics["gates/not_evaluated"] == 10
    assert metrics["gates/left_out"] == 1 and metrics["gates/not_evaluated"] == 1
    artifacts = set(_artifacts(client, run.info.run_id))
    assert {"report/report.html", "cpcv_returns.parquet", "summary.txt", "plots/equity.png", "plots/drawdown.png",
            "plots/path_sharpe.png", "plots/regime_timeline.png", "plots/rolling_sharpe.png"} <= artifacts
    summary = (tmp / "out" / "summary.txt").read_text()
    assert "Gates" in summary and "sim/violations <= 0" in summary and "not evaluated" in summary
    assert "sim_violations left out: sim/violations is counted only by the rule-exact simulator" in summary
    assert "sim_violations left out" in (tmp / "out" / "report" / "report.html").read_text()


@pytest.mark.slow
def test_the_catalogue_is_what_the_run_logged(first_run):
    tmp, _, run, _ = first_run
    assert_catalogue_matches(run, compose_tiny(tmp, SPLIT))


@pytest.mark.slow
def test_report_renders_in_chromium_with_every_image_loaded(first_run, tmp_path):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)")
    tmp = first_run[0]
    probe = tmp_path / "probe.html"
    probe.write_text((tmp / "out" / "report" / "report.html").read_text().replace("</body>", PROBE))
    dom = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120, check=True).stdout
    assert 'data-images-loaded="5/5"' in dom
    assert "<table id=\"gates\">" in dom and "sim_violations" in dom


@pytest.mark.slow
def test_another_run_is_a_baseline_on_the_same_paths(first_run):
    tmp, client, run, _ = first_run
    extra = [*SPLIT, f"+validation.baselines.runs.first={run.info.run_id}", "validation.baselines.primary=first",
             "model/conditioning=none"]
    train(compose_tiny(tmp, extra, out="second"))
    second = next(r for r in client.search_runs([run.info.experiment_id]) if r.info.run_id != run.info.run_id)
    m = second.data.metrics
    assert {"vs/first/spa_pvalue", "vs/first/rc_pvalue", "vs/buy_and_hold/spa_pvalue",
            "vs/momentum/rc_pvalue"} <= set(m)
    assert m["baseline/sharpe"] == pytest.approx(run.data.metrics["oos/sharpe"])  # the first run, replayed
    # the trials behind the DSR: this run and the first, which reached evaluation
    assert m["dsr/n_trials"] == 2


@pytest.mark.slow
def test_strict_mode_exits_non_zero_after_logging_the_run(tmp_path):
    res = run_cli(["dualhrq.train", *tiny_overrides(tmp_path), "task_name=strict", "validation.folds=[0]",
                   "validation.strict=true", "validation.gates.max_drawdown.below=0", f"hydra.run.dir={tmp_path}/o",
                   "+validation.gates.unlogged={metric:ext/never_logged,below:1,external:true}"], cwd=tmp_path)
    assert res.returncode == 1, res.stderr[-2000:]
    assert "Gates" in res.stdout and "oos/max_drawdown < 0" in res.stdout
    assert re.search(r"validation.strict=true and \d+ gate\(s\) did not pass: .*max_drawdown \(FAIL\).*"
                     r"unlogged \(not evaluated\)", res.stdout + res.stderr)
    exp = MlflowClient(f"sqlite:///{tmp_path}/mlruns.db").get_experiment_by_name("strict")
    (run,) = MlflowClient(f"sqlite:///{tmp_path}/mlruns.db").search_runs([exp.experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["gate.max_drawdown"] == "FAIL"
    assert Path(tmp_path / "o" / "report" / "report.html").exists()


@pytest.mark.slow
def test_strict_mode_passes_when_every_gate_the_job_can_evaluate_passes(tmp_path):
    # thresholds every run meets: what is left to decide strict mode is whether each gate was evaluated
    easy = ["validation.gates.sharpe_improvement.above=-1e6", "validation.gates.max_drawdown.below=1.01",
            "validation.gates.spa.below=1.01", "validation.gates.reality_check.below=1.01",
            "validation.gates.regime_switches.below=1.01", "validation.gates.conditioning_mi.below=100"]
    cfg = compose_tiny(tmp_path, ["task_name=strict_pass", "validation.folds=[0]", "validation.strict=true", *easy])
    train(cfg)  # no GatesFailed
    (run,) = runs_of(tmp_path, "strict_pass")
    statuses = {k.removeprefix("gate."): v for k, v in run.data.tags.items() if k.startswith("gate.")}
    assert statuses.pop("sim_violations") == "left out" and set(statuses.values()) == {"PASS"}


def _outcome(*statuses):
    gates = [Gate(f"g{i}", "oos/psr", below=1) for i in range(len(statuses))]
    return RunOutcome({}, [GateResult(g, None, s) for g, s in zip(gates, statuses)], "")


def test_strict_refuses_a_gate_not_evaluated_and_accepts_one_left_out():
    cfg = OmegaConf.create({"validation": {"strict": True}})
    raise_on_failed_gates(cfg, _outcome(PASS, LEFT_OUT), "r")
    with pytest.raises(GatesFailed, match=r"1 gate\(s\) did not pass: g1 \(not evaluated\)"):
        raise_on_failed_gates(cfg, _outcome(PASS, NOT_EVALUATED), "r")
    raise_on_failed_gates(OmegaConf.create({"validation": {"strict": False}}), _outcome(FAIL, NOT_EVALUATED), "r")


def test_the_cli_refuses_a_gate_on_an_unknown_metric_before_reading_data(tmp_path):
    # contradictory bounds take the same path: test_bad_evaluation_settings_stop_before_any_data_is_read
    res = run_cli(["dualhrq.train", "model=hrm_tiny", "validation.gates.spa.metric=oos/spa_pvalu",
                   f"hydra.run.dir={tmp_path}/o", f"logger.mlflow.tracking_uri=sqlite:///{tmp_path}/mlruns.db"],
                  cwd=tmp_path, timeout=120)
    message = "validation.gates.spa.metric: no part of this job logs a run metric 'oos/spa_pvalu'"
    assert res.returncode == 2 and message in res.stdout + res.stderr, res.stderr[-2000:]
    assert "Traceback" not in res.stderr and not (tmp_path / "mlruns.db").exists()


def test_per_fold_metrics_are_averaged_or_summed_once_per_fold():
    # fold 0 has 2 predictions, fold 1 has 3: each fold's value counts once, however many rows carry it
    preds = pl.DataFrame({"fold": [0, 0, 1, 1, 1], "signal": [0.1, -0.2, 0.3, 0.0, 0.5],
                          "regime/switches_per_day": [0.02] * 2 + [0.04] * 3, "sim/fills": [7.0] * 2 + [5.0] * 3})
    assert fold_means(preds, ("regime/",)) == {"regime/switches_per_day": pytest.approx(0.03)}
    assert fold_sums(preds, ("sim/",)) == {"sim/fills": 12.0}


def test_strict_failure_is_its_own_exception():
    assert not issubclass(GatesFailed, ValueError)  # not an input error: main maps it to exit status 1


@pytest.mark.parametrize("override,field", [
    ("validation.stats.ci_method=magic", "validation.stats.ci_method"),
    ("validation.stats.bootstrap_reps=0", "validation.stats.bootstrap_reps"),
    ("validation.stats.n_trials=5", "validation.stats.sr_variance"),
    ("validation.gates.spa.below=low", "validation.gates.spa.below"),
    ("validation.gates.spa.metric=oos/spa_pvalu", "validation.gates.spa.metric"),
    ("+validation.gates.spa.above=1", "validation.gates.spa"),
    ("validation.baselines.primary=nope", "validation.baselines.primary"),
    ("validation.baselines.momentum.lookback=0", "validation.baselines.momentum.lookback"),
    ("+validation.baselines.external.idx={_target_:nowhere.load_index,_partial_:true}",
     "validation.baselines.external.idx: cannot build its loader"),
    ("+validation.baselines.external.idx={_target_:dualhrq.data.sources.load_sp500_index}",
     "validation.baselines.external.idx: builds a DataFrame, not a loader"),
    ("validation.report.rolling_window=0", "validation.report.rolling_window"),
    ("validation.strict=maybe", "validation.strict"),
])
def test_bad_evaluation_settings_stop_before_any_data_is_read(tmp_path, monkeypatch, override, field):
    def no_data(*args, **kwargs):
        raise AssertionError("data were loaded before the config was checked")

    monkeypatch.setattr("dualhrq.data.sources.load_bundled", no_data)
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        train(compose_tiny(tmp_path, [override]))
