"""Turn a splitter's (train, test) pairs into the folds a training run uses.

Each fold also needs a validation set for per-epoch monitoring. It is the
last ``val_fraction`` of the fold's training dates, purged and embargoed
against the rest exactly like a test block, so validation scores are as
honest as test scores.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

import numpy as np

from dualhrq.config import between, check_value, located
from dualhrq.errors import ConfigError
from dualhrq.validation.cpcv import CombinatorialPurgedKFold, effective_embargo_days, purge_and_embargo

REFIT = 999_999  # the fold number of the final model fitted on all the data: past any CV fold's, and a valid seed


@dataclass(frozen=True)
class FoldIndex:
    """Sample indices of one fold: train, validation (held out from train) and test, and the embargo
    the purge left in practice (``cpcv.effective_embargo_days``)."""

    fold: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    embargo_days: int = 0


def make_folds(splitter: CombinatorialPurgedKFold, t: np.ndarray, t1: np.ndarray,
               val_fraction: float, t0: np.ndarray | None = None) -> list[FoldIndex]:
    """All folds of ``splitter`` with a purged validation tail cut from each training set.

    ``t0`` (each sample's oldest input bar, ``SampleSet.t0``) keeps training input windows clear of
    test and validation bars; that also keeps clear the label of every bar a densely supervised window trains
    on, which lies between its ``t0`` and ``t1`` (``dualhrq.data.dense``).

    Config errors name ``val_fraction`` and ``splitter.<field>``: the caller
    that read both (``validation`` in the training job) puts its path in front.
    """
    check_value("val_fraction", val_fraction, Annotated[float, between(0, 0.5, hi_open=True)],
                "use 0.1 for a 10% validation tail or 0 for none.")
    folds = []
    for i, (train, test) in enumerate(_splits(splitter, t, t1, t0)):
        train, val = _validation_tail(splitter, t, t1, t0, train, val_fraction, f"fold {i}")
        folds.append(FoldIndex(fold=i, train=train, val=val, test=test,
                               embargo_days=effective_embargo_days(t, train, test)))
    return folds


def refit_fold(splitter: CombinatorialPurgedKFold, t: np.ndarray, t1: np.ndarray, val_fraction: float,
               t0: np.ndarray | None = None) -> FoldIndex:
    """The final model's fold (``validation.refit``): every sample trains, less the validation tail that
    still watches it (purged and embargoed like a fold's); nothing is tested, because the out-of-sample
    evidence is the CV folds'. Numbered ``REFIT``."""
    check_value("val_fraction", val_fraction, Annotated[float, between(0, 0.5, hi_open=True)],
                "use 0.1 for a 10% validation tail or 0 for none.")
    train, val = _validation_tail(splitter, t, t1, t0, np.arange(len(t)), val_fraction, "the refit")
    return FoldIndex(fold=REFIT, train=train, val=val, test=np.empty(0, dtype=np.int64))


def _validation_tail(splitter: CombinatorialPurgedKFold, t: np.ndarray, t1: np.ndarray, t0: np.ndarray | None,
                     train: np.ndarray, val_fraction: float, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``train`` split into its purged head and its last ``val_fraction`` of dates (the validation set)."""
    val = np.empty(0, dtype=np.int64)
    if val_fraction > 0:
        dates = np.unique(t[train])
        cut = dates[int(np.floor(len(dates) * (1.0 - val_fraction)))]
        val = train[t[train] >= cut]
        train = purge_and_embargo(train[t[train] < cut], val, t, t1, t0=t0,
                                  purge_days=splitter.purge_days, embargo_days=splitter.embargo_days)
        if len(train) == 0:
            raise ConfigError(
                f"splitter.purge_days={splitter.purge_days} and splitter.embargo_days={splitter.embargo_days} "
                f"leave {what} no training sample once its validation tail (val_fraction={val_fraction}) "
                "is purged. Fix: lower them or val_fraction, or use more data.", field="splitter.purge_days")
    return train, val


def fold_label(fold: FoldIndex) -> str:
    """``fold<i>``, or ``refit`` for the final model: the name of its metrics, directories and artifacts."""
    return "refit" if fold.fold == REFIT else f"fold{fold.fold}"


def select_folds(folds: list[FoldIndex], selected: list[int] | None) -> list[FoldIndex]:
    """The folds named by ``selected`` (``validation.folds``; all of them for None), in that order."""
    if selected is None:
        return folds
    bad = [i for i in selected if not 0 <= i < len(folds)]
    if bad:
        raise ConfigError(f"folds has {bad}, but the splitter makes folds 0..{len(folds) - 1}", field="folds")
    return [folds[i] for i in selected]


def _splits(splitter: CombinatorialPurgedKFold, t: np.ndarray, t1: np.ndarray, t0: np.ndarray | None
            ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The splitter's (train, test) pairs; its config errors name ``splitter.<field>``."""
    with located("splitter"):
        yield from splitter.split(t, t1, t0)
