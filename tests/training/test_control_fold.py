"""validation.control=shuffle reaches the batches a fold trains on, and nothing the fold is tested on."""

from __future__ import annotations

import numpy as np
import pytest

from dualhrq.config import build
from dualhrq.errors import ConfigError
from dualhrq.training.fold import fit_fold
from dualhrq.training.preflight import check_training_config
from dualhrq.validation.folds import make_folds

from ..e2e.conftest import compose_tiny


def _targets(dataset) -> np.ndarray:
    return np.array([float(dataset[i]["target_z"]) for i in range(len(dataset))])


def test_a_fold_trains_on_block_shuffled_targets_and_is_tested_on_the_real_ones(tmp_path):
    cfg = compose_tiny(tmp_path, ["validation.control=shuffle", "trainer.max_steps=1",
                                  "model/conditioning=regime_rag"])
    dm = build(cfg.data)
    samples = dm.prepare()
    fold = make_folds(build(cfg.validation.splitter), samples.t, samples.t1, cfg.validation.val_fraction,
                       samples.t0)[2]
    fitted = fit_fold(cfg, dm, fold, None, tmp_path / "fold")
    scale = fitted.pipeline.inputs.target_scale
    assert scale == pytest.approx(np.std(samples.target[fold.train]))  # a permutation keeps the scale
    real = {split: samples.target[getattr(fold, split)] / scale for split in ("train", "val", "test")}
    served = {split: _targets(dm._datasets[split]) for split in ("train", "val", "test")}
    np.testing.assert_allclose(served["test"], real["test"], rtol=1e-6)
    for split in ("train", "val"):
        np.testing.assert_allclose(np.sort(served[split]), np.sort(real[split]), rtol=1e-6)
    changed = {split: np.mean(~np.isclose(served[split], real[split], rtol=1e-6)) for split in ("train", "val")}
    assert changed["train"] > 0.8 and changed["val"] > 0  # the validation tail is a few blocks only
    # the pattern library's outcomes are the fold's training targets as served: shuffled with them
    lib = fitted.conditioning.library
    train_t = samples.t[fold.train].astype("datetime64[us]").astype(np.int64)
    found = [np.isclose(served["train"][train_t == when], value, rtol=1e-5).any()
             for when, value in zip(lib.time, lib.outcome, strict=True)]
    assert len(found) > 100 and all(found)

def test_an_unknown_control_is_refused_before_any_data_is_read(tmp_path):
    with pytest.raises(ConfigError, match=r"^validation\.control must be one of \['shuffle'\] or null, got 'canary'"):
        check_training_config(compose_tiny(tmp_path, ["validation.control=canary"]))
    with pytest.raises(ConfigError, match=r"^validation\.shuffle_block_days must be a positive integer, got -1"):
        check_training_config(compose_tiny(tmp_path, ["validation.control=shuffle",
                                                      "validation.shuffle_block_days=-1"]))
