"""Exact resume on a toy Lightning module: the batches and random draws after a restart from a checkpoint are
those of the uninterrupted fit, mid-epoch and at an epoch's end; DDP refuses a mid-epoch checkpoint."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from dualhrq.errors import ConfigError
from dualhrq.training.checkpoints import AtomicCheckpointIO
from dualhrq.training.date_batches import DateBlockSampler
from dualhrq.training.resume import ExactResume

N, BATCH, SEED = 20, 4, 7  # one sample a date: 4 batches of 4 dates per epoch (block boundaries move)
DATES = np.datetime64("2020-01-01", "D") + np.arange(N)


class Recorder(L.LightningModule):
    """Records each step's sample indices and one draw from each global generator (ACT's exploration and
    dropout draw from torch's)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[tuple[list[int], float, float]] = []

    def training_step(self, batch, batch_idx):
        (idx,) = batch
        self.seen.append((idx.tolist(), float(torch.rand(1)), float(np.random.rand())))
        return (self.w - 1.0).pow(2).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(tmp: Path, max_steps: int, every: int, resume: Path | None = None, exact: bool = True) -> Recorder:
    sampler = DateBlockSampler(DATES, BATCH, seed=SEED)
    loader = DataLoader(TensorDataset(torch.arange(N)),
                        **({"batch_sampler": sampler} if exact else {"batch_size": BATCH, "shuffle": True}))
    ckpt = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp, save_last=True, save_top_k=0,
                                               every_n_train_steps=every)
    callbacks = [ExactResume(sampler, seed=SEED), ckpt] if exact else [ckpt]
    trainer = L.Trainer(max_steps=max_steps, callbacks=callbacks, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu", plugins=[AtomicCheckpointIO()],
                        default_root_dir=tmp)
    model = Recorder()
    L.seed_everything(SEED, verbose=False)
    trainer.fit(model, loader, ckpt_path=str(resume) if resume else None, weights_only=True)
    return model


@pytest.mark.parametrize(("stop", "where"), [(7, "mid-epoch"), (4, "at an epoch's end")])
def test_a_resumed_fit_takes_the_uninterrupted_fits_batches_and_draws(tmp_path, stop, where):
    whole = fit(tmp_path / "whole", max_steps=12, every=stop).seen
    first = fit(tmp_path / "parts", max_steps=stop, every=stop).seen
    rest = fit(tmp_path / "parts", max_steps=12, every=stop, resume=tmp_path / "parts" / "last.ckpt").seen
    assert len(whole) == 12 and len(first) == stop, where
    assert first + rest == whole, where
    # every epoch visits 16 distinct samples
    for epoch in range(3):
        seen = [i for idx, *_ in whole[epoch * 4:(epoch + 1) * 4] for i in idx]
        assert len(seen) == len(set(seen)) == 16
    assert [idx for idx, *_ in whole[:4]] != [idx for idx, *_ in whole[4:8]]  # each epoch draws its own order


def test_without_exact_resume_the_restart_sees_other_batches(tmp_path):
    """The same split fit with a plain shuffled loader: what the test above guards against happens."""
    whole = fit(tmp_path / "whole", max_steps=12, every=7, exact=False).seen
    fit(tmp_path / "parts", max_steps=7, every=7, exact=False)
    rest = fit(tmp_path / "parts", max_steps=12, every=7, resume=tmp_path / "parts" / "last.ckpt", exact=False).seen
    assert rest != whole[7:]


def test_several_processes_refuse_a_checkpoint_written_mid_epoch():
    callback = ExactResume(DateBlockSampler(DATES, BATCH), seed=0)
    callback.world_size = 2
    with pytest.raises(ConfigError, match=r"trainer\.devices: .*part-way through an epoch.*Fix: delete"):
        callback.load_state_dict({"epoch": 0, "batches": 2, "world_size": 2})
    callback.load_state_dict({"epoch": 1, "batches": 0, "world_size": 2})  # an epoch boundary is exact
    assert callback.sampler.epoch == 1
