"""The ParameterBudget callback on a tiny LightningModule."""

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import Logger
from torch.utils.data import DataLoader, TensorDataset

from dualhrq.callbacks.param_budget import ParameterBudget
from dualhrq.config import model_sizes
from dualhrq.models.params import BudgetError


class RecordingLogger(Logger):
    name = "recording"
    version = 0

    def __init__(self) -> None:
        super().__init__()
        self.metrics: list[tuple[int | None, dict[str, float]]] = []

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass

    def log_metrics(self, metrics, step=None) -> None:
        self.metrics.append((step, dict(metrics)))


class Stub(pl.LightningModule):
    """Exposes ``net`` and ``budget`` as the real LightningModule does."""

    def __init__(self, net, budget) -> None:
        super().__init__()
        self.net, self.budget = net, budget
        self.steps = 0

    def training_step(self, batch, batch_idx):
        self.steps += 1
        return self.net(*batch).signal.square().mean()

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=1e-3)

    def train_dataloader(self):
        x, regime, symbol = self.data
        return DataLoader(TensorDataset(x, regime, symbol), batch_size=4)


def _fit(module, make_batch, strict=True):
    module.data = make_batch(b=4)
    logger = RecordingLogger()
    trainer = pl.Trainer(max_steps=1, accelerator="cpu", logger=logger, callbacks=[ParameterBudget(strict=strict)],
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         log_every_n_steps=1)
    trainer.fit(module)
    return logger


def test_within_budget_logs_counts_and_trains(make_net, make_batch, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = Stub(make_net("regime"), model_sizes("hrm_tiny")["budget"])
    logger = _fit(module, make_batch)
    step, metrics = logger.metrics[0]
    assert step == 0
    assert set(metrics) == {f"params/{k}" for k in ("h_module", "l_module", "heads", "conditioning", "total")}
    assert metrics["params/total"] == sum(p.numel() for p in module.parameters())
    assert module.steps == 1


def test_over_budget_stops_before_training(make_net, make_batch, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = Stub(make_net("regime"), {**model_sizes("hrm_tiny")["budget"], "l_module": {"max": 1000}})
    with pytest.raises(BudgetError, match=r"l_module: [\d,]+ parameters > max 1,000") as err:
        _fit(module, make_batch)
    assert "OVER" in str(err.value) and "component" in str(err.value)
    assert module.steps == 0


def test_not_strict_only_warns(make_net, make_batch, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = Stub(make_net("none"), {"total": {"min": 1e9}})
    with pytest.warns(UserWarning, match="total: .* < min"):
        _fit(module, make_batch, strict=False)
    assert module.steps == 1
