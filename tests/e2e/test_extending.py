"""The README's "Extending" examples, run as written: a model, a feature, a data source and a gate."""

from __future__ import annotations

import re
import shlex

import numpy as np
import polars as pl
import pytest

from dualhrq.config import build
from dualhrq.features.engine import compute_features, feature_names
from dualhrq.train import train

from .conftest import REPO, compose_tiny, runs_of, tiny_overrides

FILE_BLOCK = re.compile(r"```(?:python|yaml)\n# file: (\S+)\n(.*?)```", re.DOTALL)


def _section() -> str:
    text = (REPO / "README.md").read_text()
    return text[text.index("## Extending"):text.index("\n## ", text.index("## Extending") + 1)]


@pytest.fixture
def examples(tmp_path, monkeypatch):
    """The README's example files written under ``tmp_path``, importable, and the command's overrides."""
    section = _section()
    files = FILE_BLOCK.findall(section)
    assert {path for path, _ in files} >= {"mypkg/gru.py", "myconf/model/gru.yaml", "mypkg/features.py",
                                           "mypkg/sources.py", "myconf/data/random_walk.yaml",
                                           "myconf/validation/gates/with_psr.yaml"}
    for path, body in files:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(body)
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    command = re.search(r"python -m dualhrq\.train (.*?)\n```", section, re.DOTALL).group(1)
    overrides = shlex.split(command.replace("\\\n", " "))
    searchpath = f"hydra.searchpath=[file://{tmp_path}/myconf]"
    return [searchpath if o.startswith("hydra.searchpath=") else o for o in overrides]


@pytest.mark.slow
def test_readme_model_feature_source_and_gate_train_end_to_end(tmp_path, examples):
    base = [o for o in tiny_overrides(tmp_path) if not o.startswith("data.")]  # the tiny model's settings
    cfg = compose_tiny(tmp_path, [*examples, "task_name=extending", "validation.folds=[0]"], base=base)
    dm = build(cfg.data)
    frame = compute_features(dm.source(), dm.spec)
    # the feature against its definition worked by hand on one symbol's bars
    bars = dm.source().filter(pl.col("symbol") == "BBB").sort("ts")
    lo = np.array([bars["low"][i - 19: i + 1].min() for i in range(19, bars.height)])
    hi = np.array([bars["high"][i - 19: i + 1].max() for i in range(19, bars.height)])
    expected = (bars["close"].to_numpy()[19:] - lo) / (hi - lo)
    got = frame.filter(pl.col("symbol") == "BBB")["range_position_20"]
    np.testing.assert_allclose(got.to_numpy()[19:], expected, rtol=1e-12)
    assert got[:19].null_count() == 19  # warm-up: an incomplete window says nothing

    objective = train(cfg)
    assert np.isfinite(objective)
    (run,) = runs_of(tmp_path, "extending")
    metrics, tags = run.data.metrics, run.data.tags
    assert tags["data.name"] == "random_walk" and tags["data.synthetic"] == "True"
    assert run.data.params["model.net._target_"] == "mypkg.gru.GRUNet"
    n_inputs = len(feature_names(dm.spec)[0])
    assert "range_position_20" in feature_names(dm.spec)[0]
    # torch.nn.GRU: W_ih [3H, F], W_hh [3H, H] and two biases [3H]
    assert metrics["params/gru"] == 3 * 32 * n_inputs + 3 * 32 * 32 + 2 * 3 * 32
    # the gate judged the metric it names, both ways of the threshold
    assert metrics["gate/psr"] == float(metrics["oos/psr"] >= 0.95)
    assert "psr" in (tmp_path / "out" / "summary.txt").read_text()
