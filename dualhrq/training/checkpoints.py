"""Checkpoints and fold results that survive a kill or a full disk.

Every file is written next to its destination under a temporary name, flushed to disk, then renamed over
it, so a reader sees the old file or the new one, never half of one. ``last.ckpt`` keeps its predecessor
as ``last.ckpt.prev``; :func:`usable_checkpoint` verifies both before a fold resumes and falls back to the
older one, or to a fresh start, with a warning.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

log = logging.getLogger("dualhrq.train")
LAST = "last.ckpt"
PREVIOUS_SUFFIX = ".prev"
# what Lightning needs to resume a fit, beyond the weights
_RESUME_KEYS = ("state_dict", "loops", "optimizer_states", "global_step")


def write_atomically(path: Path, write: Callable[[Path], None], keep_previous: bool = False) -> None:
    """``write(tmp)`` a temporary file in ``path``'s directory, fsync it, rename it to ``path``; with
    ``keep_previous`` the file it replaces becomes ``<name>.prev``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        if keep_previous and path.exists():
            os.replace(path, path.with_name(path.name + PREVIOUS_SUFFIX))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, made atomic; the file it replaces is kept as ``<name>.prev``."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        write_atomically(Path(path), lambda tmp: torch.save(checkpoint, tmp), keep_previous=True)


def usable_checkpoint(ckpt_dir: Path) -> Path | None:
    """The newest of ``last.ckpt`` and its predecessor that reads back whole; None (start the fold afresh)
    when neither does. A file that does not read back is deleted with a warning."""
    deleted = False
    for path in (ckpt_dir / LAST, ckpt_dir / (LAST + PREVIOUS_SUFFIX)):
        if not path.exists():
            continue
        problem = _unreadable(path)
        if problem is None:
            return path
        log.warning("%s is unusable (%s); deleted", path, problem)
        path.unlink(missing_ok=True)
        deleted = True
    if deleted:
        log.warning("%s holds no usable checkpoint: the fold starts again from its first step", ckpt_dir)
    return None


def _unreadable(path: Path) -> str | None:
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as err:
        return str(err).splitlines()[0] if str(err) else type(err).__name__
    missing = [key for key in _RESUME_KEYS if key not in checkpoint]
    return f"no {', '.join(missing)}" if missing else None
