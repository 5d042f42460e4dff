"""A tiny training run end to end: gates read from MLflow, report logged, strict exit, a run as a baseline.

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

from dualhrq.config import CONF_DIR
from dualhrq.errors import ConfigError
from dualhrq.evaluation.run_end import fold_means, fold_sums
from dualhrq.train import train
from dualhrq.validation.gates import GatesFailed

sys.path.insert(0, str(CONF_DIR.parent / "tests" / "e2e"))
from conftest import compose_tiny, run_cli, tiny_overrides  # noqa: E402

# 4 groups, 2 tested per fold: 6 folds and 3 CPCV paths; one tiny model per fold
SPLIT = ["validation.splitter.n_groups=4", "validation.splitter.n_test_groups=2", "task_name=gates",
         # a gate on a metric no part of the job logs
         "+validation.gates.unlogged={metric:ext/never_logged,below:1.0,description:nothing logs this}"]
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
    """A run that another part of the job has already given ``sim/violations`` = 0 (via MLFLOW_RUN_ID)."""
    tmp = tmp_path_factory.mktemp("run")
    client = MlflowClient(f"sqlite:///{tmp}/mlruns.db")
    exp = client.create_experiment("gates", artifact_location=str(tmp / "mlartifacts"))
    run_id = client.create_run(exp).info.run_id
    client.log_batch(run_id, metrics=[Metric("sim/violations", 0.0, 0, 0)])
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
    assert tags["gate.sim_violations"] == "PASS" and metrics["gate/sim_violations"] == 1.0
    # the regime and MI metrics the conditioning logs are judged against their thresholds
    assert tags["gate.regime_switches"] == ("PASS" if metrics["regime/switches_per_day"] < 0.05 else "FAIL")
    assert tags["gate.conditioning_mi"] == ("PASS" if metrics["conditioning/mi_symbol_bits"] < 0.1 else "FAIL")
    assert tags["gate.unlogged"] == "not evaluated" and "gate/unlogged" not in metrics
    assert tags["gate.param_budget"] == "PASS"  # hrm_tiny's 66,307 parameters are in its budget
    expected = "PASS" if metrics["oos/max_drawdown"] < 0.15 else "FAIL"
    assert tags["gate.max_drawdown"] == expected
    assert metrics["gates/passed"] + metrics["gates/failed"] + metrics["gates/not_evaluated"] == 9
    artifacts = set(_artifacts(client, run.info.run_id))
    assert {"report/report.html", "cpcv_returns.parquet", "summary.txt", "plots/equity.png", "plots/drawdown.png",
            "plots/path_sharpe.png", "plots/regime_timeline.png", "plots/rolling_sharpe.png"} <= artifacts
    summary = (tmp / "out" / "summary.txt").read_text()
    assert "Gates" in summary and "sim/violations <= 0" in summary and "not evaluated" in summary


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
    # the sweep behind the DSR: this run plus the first when it is finished
    assert m["dsr/n_trials"] == 1 + (client.get_run(run.info.run_id).info.status == "FINISHED")


@pytest.mark.slow
def test_strict_mode_exits_non_zero_after_logging_the_run(tmp_path):
    res = run_cli(["dualhrq.train", *tiny_overrides(tmp_path), "task_name=strict", "validation.folds=[0]",
                   "validation.strict=true", "validation.gates.max_drawdown.below=0", f"hydra.run.dir={tmp_path}/o"],
                  cwd=tmp_path)
    assert res.returncode == 1, res.stderr[-2000:]
    assert "Gates" in res.stdout and "oos/max_drawdown < 0" in res.stdout
    assert re.search(r"validation.strict=true and \d+ gate\(s\) failed: .*max_drawdown", res.stdout + res.stderr)
    exp = MlflowClient(f"sqlite:///{tmp_path}/mlruns.db").get_experiment_by_name("strict")
    (run,) = MlflowClient(f"sqlite:///{tmp_path}/mlruns.db").search_runs([exp.experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["gate.max_drawdown"] == "FAIL"
    assert Path(tmp_path / "o" / "report" / "report.html").exists()


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
    ("validation.baselines.primary=nope", "validation.baselines.primary"),
    ("validation.baselines.momentum.lookback=0", "validation.baselines.momentum.lookback"),
    ("validation.report.rolling_window=0", "validation.report.rolling_window"),
    ("validation.strict=maybe", "validation.strict"),
])
def test_bad_evaluation_settings_stop_before_any_data_is_read(tmp_path, monkeypatch, override, field):
    def no_data(*args, **kwargs):
        raise AssertionError("data were loaded before the config was checked")

    monkeypatch.setattr("dualhrq.data.sources.load_bundled", no_data)
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        train(compose_tiny(tmp_path, [override]))
