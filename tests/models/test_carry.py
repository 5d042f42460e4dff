"""The carry-over batch's pieces: splitting a batch into its blocks, halting whole blocks, saved slots."""

import pytest
import torch

from dualhrq.models.act import ACTConfig, halt_blocks
from dualhrq.models.carry import CarryBatch, split_blocks
from dualhrq.models.hrm import HRMCarry


def test_blocks_are_equal_shares_of_the_date_runs_even_when_adjacent_in_time():
    # three blocks of 2 dates: (5, 6), (7, 8) back to back in time, then (1, 2); two symbols on some dates
    date = torch.tensor([5, 5, 6, 7, 8, 8, 1, 2, 2])
    parts = split_blocks({"date": date, "i": torch.arange(9)}, slots=3)
    assert [p["i"].tolist() for p in parts] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    with pytest.raises(ValueError, match="supervision.slots=4"):
        split_blocks({"date": date}, slots=4)  # 6 date runs make no 4 blocks of equal length


def test_a_block_halts_on_its_samples_mean_margin():
    q = torch.tensor([[1.0, 0.0], [-3.0, 0.0], [2.0, 1.0], [0.5, 0.0], [-0.2, 0.0]])
    block = torch.tensor([0, 0, 1, 1, 2])
    cfg = ACTConfig(halt_max_steps=4, exploration_prob=0.0)
    # margins: block 0 mean (1 - 3) / 2 = -1 (runs on although one sample would halt), block 1 0.75, block 2 -0.2
    assert halt_blocks(q, block, torch.tensor([1, 1, 1]), cfg).tolist() == [False, True, False]
    assert halt_blocks(q, block, torch.tensor([1, 1, 4]), cfg).tolist() == [False, True, True]  # the cap
    held = ACTConfig(halt_max_steps=4, exploration_prob=1.0)  # every block held for 2..4 segments first
    assert not halt_blocks(q, block, torch.tensor([1, 1, 1]), held).any()


def test_saved_slots_come_back_and_a_different_slot_count_is_refused():
    batch = CarryBatch(2)
    entered = batch.refill({"date": torch.tensor([1, 2, 3, 4]), "x": torch.arange(4.0)}, lambda block: None)
    assert entered == 4
    batch.advance(HRMCarry(z_H=torch.ones(4, 3, 2), z_L=torch.zeros(4, 3, 5)), torch.tensor([True, False]))
    again = CarryBatch(2)
    again.load_state_dict(batch.state_dict())
    assert again.entered == 4 and again.steps().tolist() == [2, 2]
    assert [s.done for s in again.slots] == [True, False]
    torch.testing.assert_close(again.carry(lambda n: None).z_H, torch.ones(4, 3, 2))
    # the finished slot takes the next batch's first block; the other keeps its samples
    assert again.refill({"date": torch.tensor([7, 8, 9, 10]), "x": torch.arange(10.0, 14.0)}, lambda b: None) == 2
    assert again.data()["x"].tolist() == [10.0, 11.0, 2.0, 3.0]
    with pytest.raises(ValueError, match=r"2 deep-supervision slots, this model has 3 \(model.supervision.slots\)"):
        CarryBatch(3).load_state_dict(batch.state_dict())
