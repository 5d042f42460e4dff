"""Exact resume: a resumed fold trains on the same batches with the same random draws as an uninterrupted one.

Two things decide what the next training step does besides the weights and optimiser (which Lightning
checkpoints): the order of the training samples and the random draws inside the step (ACT's exploration,
dropout). The training batches (:class:`~dualhrq.training.date_batches.DateBlockSampler`) are a function
of (seed, epoch) alone and can start an epoch at any batch. :class:`ExactResume` tells the sampler each
epoch's number, records the position of the last finished batch in each checkpoint, hands it back to the
sampler on restore, and seeds the torch, numpy and Python generators from (seed, optimiser
step) before every batch, so the draws of step ``k`` never depend on what ran before it (validation, a
dataloader's own seed draw, a restart). Checkpoints are written only between batches, and the model saves
its deep-supervision slots with them (``dualhrq.models.carry``), so nothing else carries over from one step
to the next.

Under DDP Lightning shards the order itself; a checkpoint written mid-epoch there is refused rather than
resumed inexactly.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from dualhrq.errors import ConfigError
from dualhrq.training.date_batches import DateBlockSampler


def seed_step(seed: int, step: int) -> None:
    """Seed torch, numpy and Python's generators from (seed, step)."""
    state = np.random.SeedSequence([seed, step]).generate_state(2)
    torch.manual_seed(int(state[0]))
    np.random.seed(int(state[1]))
    random.seed(int(state[1]))


class ExactResume(Callback):
    """Saves the training position with each checkpoint and restores it, and seeds every step (see module)."""

    def __init__(self, sampler: DateBlockSampler, seed: int) -> None:
        self.sampler = sampler
        self.seed = seed
        self.position = {"epoch": 0, "batches": 0}
        self.world_size = 1

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.world_size = trainer.world_size

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning sets the epoch of a loader's sampler, not of a batch sampler; the epoch's batches are
        # drawn after this hook
        self.sampler.set_epoch(trainer.current_epoch)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        seed_step(self.seed, trainer.global_step)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        # checkpoint callbacks run after this one, so a checkpoint written now records this position
        if batch_idx + 1 >= trainer.num_training_batches:
            self.position = {"epoch": trainer.current_epoch + 1, "batches": 0}
        else:
            self.position = {"epoch": trainer.current_epoch, "batches": batch_idx + 1}

    def state_dict(self) -> dict[str, int]:
        return {**self.position, "world_size": self.world_size}

    def load_state_dict(self, state_dict: Mapping[str, int]) -> None:
        if state_dict["batches"] and (self.world_size > 1 or state_dict["world_size"] > 1):
            raise ConfigError("trainer.devices: a checkpoint written part-way through an epoch cannot be resumed "
                              "exactly with several processes (the distributed sampler shards the order). Fix: "
                              "delete the fold's checkpoints/last.ckpt to restart the fold, or run on one device.")
        self.position = {"epoch": state_dict["epoch"], "batches": state_dict["batches"]}
        self.sampler.resume_at(state_dict["epoch"], state_dict["batches"])
