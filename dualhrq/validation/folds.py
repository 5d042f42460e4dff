"""Turn a splitter's (train, test) pairs into the folds a training run uses.

Each fold also needs a validation set for per-epoch monitoring. It is the
last ``val_fraction`` of the fold's training dates, purged and embargoed
against the rest exactly like a test block, so validation scores are as
honest as test scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dualhrq.errors import ConfigError
from dualhrq.validation.cpcv import CombinatorialPurgedKFold, purge_and_embargo


@dataclass(frozen=True)
class FoldIndex:
    """Sample indices of one fold: train, validation (held out from train) and test."""

    fold: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def make_folds(splitter: CombinatorialPurgedKFold, t: np.ndarray, t1: np.ndarray,
               val_fraction: float) -> list[FoldIndex]:
    """All folds of ``splitter`` with a purged validation tail cut from each training set."""
    if not 0.0 <= val_fraction < 0.5:
        raise ConfigError(f"validation.val_fraction={val_fraction} must be in [0, 0.5); "
                          "use 0.1 for a 10% validation tail or 0 for none")
    folds = []
    for i, (train, test) in enumerate(splitter.split(t, t1)):
        val = np.empty(0, dtype=np.int64)
        if val_fraction > 0:
            dates = np.unique(t[train])
            cut = dates[int(np.floor(len(dates) * (1.0 - val_fraction)))]
            val = train[t[train] >= cut]
            train = purge_and_embargo(train[t[train] < cut], val, t, t1,
                                      purge_days=splitter.purge_days, embargo_days=splitter.embargo_days)
            if len(train) == 0:
                raise ConfigError(
                    f"fold {i}: purging the validation tail (validation.val_fraction={val_fraction}) with "
                    f"validation.purge_days={splitter.purge_days} and validation.embargo_days="
                    f"{splitter.embargo_days} leaves no training sample; lower them or use more data")
        folds.append(FoldIndex(fold=i, train=train, val=val, test=test))
    return folds


def select_folds(folds: list[FoldIndex], selected: list[int] | None) -> list[FoldIndex]:
    """The folds ``validation.folds`` names (all of them for None), in that order."""
    if selected is None:
        return folds
    bad = [i for i in selected if not 0 <= i < len(folds)]
    if bad:
        raise ConfigError(f"validation.folds has {bad}, but the splitter makes folds 0..{len(folds) - 1}")
    return [folds[i] for i in selected]
