"""Deep supervision's carry-over batch, as in the HRM reference: a slot that halts takes fresh samples.

Training keeps ``model.supervision.slots`` slots from one optimiser step to the next. A slot holds one
block of samples (all the samples of a run of consecutive dates: ``dualhrq.training.date_batches``), the
recurrent carry of those samples and the segments they have run. Every training step runs one segment over
all the slots and takes one optimiser step. A slot whose block has halted (ACT) or reached the segment cap is
then refilled from the block at the same position of the next batch, and the next batch's other blocks are
skipped, as the reference refills a halted sample from the same row of the next batch. So every optimiser
step sees fresh samples in the slots that halted, and a block still running carries on in the next step
instead of being dropped at the end of its batch.

The block, not the sample, halts and is replaced in training, because the objective replays a block's dates as
the backtest does (per-date portfolio returns, costs on each symbol's position changes) and so needs all of a
date's samples at the same segment. A block halts when its samples' mean margin Q_halt - Q_continue is
positive, with ACT's exploration drawn per block (``act.halt_blocks``). The Q targets stay per sample, so the
Q head still learns each sample's value of halting, which inference applies per sample.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from dualhrq.models.conditioning import PatternBatch
from dualhrq.models.hrm import HRMCarry


@dataclass
class Slot:
    """One block in training: its samples, their carry (None: the initial state) and neighbours, and the
    segments run so far."""

    data: dict[str, Tensor]
    carry: HRMCarry | None = None
    patterns: PatternBatch | None = None
    steps: int = 0
    done: bool = False

    def __len__(self) -> int:
        return len(next(iter(self.data.values())))


def split_blocks(batch: Mapping[str, Tensor], slots: int) -> list[dict[str, Tensor]]:
    """The ``slots`` blocks of a training batch in order.

    A batch is ``slots`` blocks one after the other, each sorted by date and all of the same number of dates,
    with no date in two blocks (``DateBlockSampler``), so block ``j`` is the ``j``-th equal share of the
    batch's runs of equal dates."""
    if slots == 1:
        return [dict(batch)]
    date = batch["date"]
    starts = torch.ones(len(date), dtype=torch.bool, device=date.device)
    starts[1:] = date[1:] != date[:-1]
    run = torch.cumsum(starts.long(), 0) - 1
    runs = int(run[-1]) + 1
    if runs % slots:
        raise ValueError(f"a training batch of {runs} date runs cannot be split into supervision.slots={slots} "
                         "blocks of equal length: its loader must be a DateBlockSampler with the same slots")
    block = torch.div(run, runs // slots, rounding_mode="floor")
    return [{key: value[block == j] for key, value in batch.items()} for j in range(slots)]


class CarryBatch:
    """The training slots of deep supervision (see module): refilled from each batch, advanced by each step."""

    def __init__(self, slots: int) -> None:
        self.slots: list[Slot | None] = [None] * slots
        self.entered = 0  # samples that have entered a slot, for the distinct samples per optimiser step

    def __len__(self) -> int:
        return len(self.slots)

    def refill(self, batch: Mapping[str, Tensor],
               retrieve: Callable[[Mapping[str, Tensor]], PatternBatch | None]) -> int:
        """Put the batch's blocks in the empty and finished slots; the number of samples that entered."""
        entered = 0
        for j, block in enumerate(split_blocks(batch, len(self.slots))):
            slot = self.slots[j]
            if slot is None or slot.done:
                self.slots[j] = Slot(data=block, patterns=retrieve(block))
                entered += len(self.slots[j])
        self.entered += entered
        return entered

    def _filled(self) -> list[Slot]:
        if any(slot is None for slot in self.slots):
            raise RuntimeError("refill() the slots before reading them")
        return self.slots  # type: ignore[return-value]

    def data(self) -> dict[str, Tensor]:
        """The slots' samples, concatenated in slot order."""
        slots = self._filled()
        return {key: torch.cat([slot.data[key] for slot in slots]) for key in slots[0].data}

    def block(self) -> Tensor:
        """The slot of each sample [B]."""
        slots = self._filled()
        return torch.cat([torch.full((len(slot),), j, dtype=torch.long, device=self._device())
                          for j, slot in enumerate(slots)])

    def steps(self) -> Tensor:
        """Segments each slot will have run after this step [slots]."""
        return torch.tensor([slot.steps + 1 for slot in self._filled()], dtype=torch.long, device=self._device())

    def _device(self) -> torch.device:
        return next(iter(self._filled()[0].data.values())).device

    def carry(self, initial: Callable[[int], HRMCarry]) -> HRMCarry:
        """The slots' carries concatenated; ``initial(n)`` gives the starting state of ``n`` fresh samples."""
        carries = [slot.carry if slot.carry is not None else initial(len(slot)) for slot in self._filled()]
        return HRMCarry(z_H=torch.cat([c.z_H for c in carries]), z_L=torch.cat([c.z_L for c in carries]))

    def patterns(self) -> PatternBatch | None:
        """The slots' neighbours, or None (regime only) when any slot's retrieval failed open."""
        found = [slot.patterns for slot in self._filled()]
        if any(p is None for p in found):
            return None
        return PatternBatch(tokens=torch.cat([p.tokens for p in found]), mask=torch.cat([p.mask for p in found]))

    def advance(self, carry: HRMCarry | None, done: Tensor) -> None:
        """After a step: keep each slot's new (detached) carry, count its segment, mark the ``done`` [slots]."""
        slots = self._filled()
        sizes = [len(slot) for slot in slots]
        parts = (zip(carry.z_H.detach().split(sizes), carry.z_L.detach().split(sizes), strict=True)
                 if carry is not None else [(None, None)] * len(slots))
        for slot, (z_H, z_L), finished in zip(slots, parts, done.tolist(), strict=True):
            slot.carry = HRMCarry(z_H=z_H, z_L=z_L) if z_H is not None else None
            slot.steps += 1
            slot.done = bool(finished)

    def state_dict(self) -> dict[str, Any]:
        """Plain tensors and numbers (checkpoints are read back with ``weights_only=True``)."""
        return {"entered": self.entered, "slots": [None if slot is None else {
            "data": slot.data, "steps": slot.steps, "done": slot.done,
            "carry": None if slot.carry is None else {"z_H": slot.carry.z_H, "z_L": slot.carry.z_L},
            "patterns": None if slot.patterns is None else {"tokens": slot.patterns.tokens,
                                                            "mask": slot.patterns.mask},
        } for slot in self.slots]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if len(state["slots"]) != len(self.slots):
            raise ValueError(f"the checkpoint holds {len(state['slots'])} deep-supervision slots, this model has "
                             f"{len(self.slots)} (model.supervision.slots)")
        self.entered = int(state["entered"])
        self.slots = [None if s is None else Slot(
            data=dict(s["data"]), steps=int(s["steps"]), done=bool(s["done"]),
            carry=None if s["carry"] is None else HRMCarry(**s["carry"]),
            patterns=None if s["patterns"] is None else PatternBatch(**s["patterns"]),
        ) for s in state["slots"]]
