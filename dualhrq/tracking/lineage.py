"""What a run was made from: the code's git commit and a hash of its input data."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import polars as pl


def git_commit(repo: str | Path = ".") -> str:
    """HEAD's commit, suffixed ``-dirty`` when tracked files have changed; ``unknown`` outside git."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def frame_sha256(frame: pl.DataFrame) -> str:
    """SHA-256 of a frame's column names, types and values, independent of the polars version.

    Hashes raw column buffers (timestamps as int64, strings as UTF-8) rather than
    polars' own row hash, whose seed and algorithm may change between releases.
    """
    digest = hashlib.sha256()
    for name in frame.columns:
        col = frame[name]
        digest.update(f"{name}:{col.dtype}\n".encode())
        if col.dtype == pl.String:
            digest.update("\x1f".join(col.fill_null("\x00").to_list()).encode())
        else:
            digest.update(col.to_physical().to_numpy().tobytes())
    return digest.hexdigest()
