"""Checkpoints are replaced whole or not at all, keep their predecessor, and are verified before a resume."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from dualhrq.training.checkpoints import AtomicCheckpointIO, usable_checkpoint, write_atomically


def checkpoint(step: int) -> dict:
    return {"state_dict": {"w": torch.full((64,), float(step))}, "loops": {}, "optimizer_states": [],
            "global_step": step}


def test_a_write_that_fails_midway_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "result.parquet"
    path.write_text("old")

    def fail(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_atomically(path, fail)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["result.parquet"]


def test_each_save_keeps_the_previous_checkpoint(tmp_path):
    io = AtomicCheckpointIO()
    for step in (8, 16, 24):
        io.save_checkpoint(checkpoint(step), tmp_path / "last.ckpt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt", "last.ckpt.prev"]
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["global_step"] == 24
    assert torch.load(tmp_path / "last.ckpt.prev", weights_only=True)["global_step"] == 16
    assert usable_checkpoint(tmp_path) == tmp_path / "last.ckpt"


def test_a_torn_checkpoint_falls_back_to_the_previous_one_then_to_a_fresh_start(tmp_path, caplog):
    io = AtomicCheckpointIO()
    io.save_checkpoint(checkpoint(8), tmp_path / "last.ckpt")
    io.save_checkpoint(checkpoint(16), tmp_path / "last.ckpt")
    whole = (tmp_path / "last.ckpt").read_bytes()
    (tmp_path / "last.ckpt").write_bytes(whole[: len(whole) // 2])  # a full disk cut the file short
    with caplog.at_level(logging.WARNING, logger="dualhrq.train"):
        assert usable_checkpoint(tmp_path) == tmp_path / "last.ckpt.prev"
    assert "last.ckpt is unusable" in caplog.text and not (tmp_path / "last.ckpt").exists()
    (tmp_path / "last.ckpt.prev").write_bytes(b"")
    assert usable_checkpoint(tmp_path) is None and list(tmp_path.iterdir()) == []


def test_a_checkpoint_without_the_training_state_is_not_resumed(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "last.ckpt")  # weights only: no loops, no optimiser
    assert usable_checkpoint(tmp_path) is None
