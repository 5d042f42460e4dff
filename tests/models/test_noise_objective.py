"""On pure noise the objective alone does not push hrm_tiny to a constant position.

Inputs and returns are independent Gaussian noise, so no position can be expected to earn anything; only the
objective could make a trained model lean one way. Under the mean-variance utility the best constant position
on the training sample is its per-date mean return over ``risk_aversion`` times its variance (both in target
standard deviations), which is zero up to sampling noise: its standard error is
``sqrt(variance / n_dates) / (risk_aversion * variance)``. The trained model's mean (active) position must lie
within three of those of zero: the position the benchmark already holds, or flat without one. A scale-free
objective such as the batch Sharpe ratio fails this: it leaves the size open and settles on a constant
position of either sign.
"""

import numpy as np
import pytest
import torch
from lightning.pytorch import Trainer, seed_everything
from torch.utils.data import DataLoader

from dualhrq.config import build, compose_train
from dualhrq.training.date_batches import DateBlockSampler

N_DATES, N_SYMBOLS, SEQ_LEN, N_FEATURES, N_REGIME = 512, 2, 8, 5, 3
SIGMA = 0.01  # daily return standard deviation, also the target scale
RISK_AVERSION = 1.0  # states the noise band: 3 standard errors = 0.19 on this sample (0.05 would span [-1, 1])


def noise_market(seed: int = 0) -> tuple[list[dict[str, torch.Tensor]], np.ndarray]:
    rng = np.random.default_rng(seed)
    ret = rng.normal(0.0, SIGMA, (N_DATES, N_SYMBOLS))
    x = rng.normal(size=(N_DATES, N_SYMBOLS, SEQ_LEN, N_FEATURES)).astype(np.float32)
    regime = rng.normal(size=(N_DATES, N_SYMBOLS, N_REGIME)).astype(np.float32)
    rows = [{"x": torch.from_numpy(x[d, s]), "regime": torch.from_numpy(regime[d, s]), "symbol": torch.tensor(s),
             "target_z": torch.tensor(ret[d, s] / SIGMA, dtype=torch.float32),
             "next_return": torch.tensor(ret[d, s], dtype=torch.float32), "date": torch.tensor(d)}
            for d in range(N_DATES) for s in range(N_SYMBOLS)]
    return rows, ret


@pytest.mark.slow
@pytest.mark.parametrize("benchmark", ["buy_and_hold", "null"])
def test_mean_active_position_on_noise_stays_within_noise_of_zero(tmp_path, monkeypatch, benchmark):
    monkeypatch.chdir(tmp_path)
    rows, ret = noise_market()
    model_cfg = compose_train(["model=hrm_tiny", f"model.loss.benchmark={benchmark}",
                               f"model.loss.risk_aversion={RISK_AVERSION}", "model.optimizer.lr=3e-3"]).model
    seed_everything(0)
    module = build(model_cfg, n_features=N_FEATURES, n_regime_features=N_REGIME, n_symbols=N_SYMBOLS,
                   target_scale=SIGMA)
    dates = np.repeat(np.arange(N_DATES), N_SYMBOLS)
    trainer = Trainer(max_steps=60, accelerator="cpu", precision="32-true", logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, deterministic=True)
    trainer.fit(module, train_dataloaders=DataLoader(rows, batch_sampler=DateBlockSampler(dates, 64)))
    module.eval()
    with torch.no_grad():
        position = torch.cat([module(b).signal for b in DataLoader(rows, batch_size=256)])
    portfolio = ret.mean(axis=1) / SIGMA
    band = 3 * np.sqrt(portfolio.var() / N_DATES) / (RISK_AVERSION * portfolio.var())
    active = float(position.mean()) - (1.0 if benchmark == "buy_and_hold" else 0.0)
    assert abs(active) < band, f"mean active position {active:.3f} outside the noise band {band:.3f}"
    assert band < 0.2  # the band excludes the constant positions a scale-free objective settles on
