import numpy as np
import pytest

from dualhrq.config import located
from dualhrq.errors import ConfigError
from dualhrq.validation.cpcv import CombinatorialPurgedKFold
from dualhrq.validation.folds import REFIT, make_folds, refit_fold


def _samples(n_dates=300, n_symbols=2, horizon=3):
    dates = np.arange("2020-01-01", n_dates, dtype="datetime64[D]").astype("datetime64[us]")
    t = np.repeat(dates[: n_dates - horizon], n_symbols)
    t1 = np.repeat(dates[horizon:], n_symbols)
    return t, t1, dates


@pytest.mark.parametrize("n_groups,k", [(5, 1), (6, 2)])
def test_validation_tail_is_purged_and_embargoed_against_training(n_groups, k):
    t, t1, dates = _samples()
    splitter = CombinatorialPurgedKFold(n_groups, k, purge_days=4, embargo_days=2)
    folds = make_folds(splitter, t, t1, val_fraction=0.1)
    assert len(folds) == splitter.get_n_splits()
    pos = {d: i for i, d in enumerate(dates)}
    for fold, (train, _) in zip(folds, splitter.split(t, t1)):
        assert len(np.intersect1d(fold.train, fold.val)) == 0
        assert len(np.intersect1d(fold.train, fold.test)) == 0
        assert len(np.intersect1d(fold.val, fold.test)) == 0
        # validation = every sample on the last tenth of the splitter's training dates
        train_dates = np.unique(t[train])
        cut = train_dates[int(len(train_dates) * 0.9)]
        np.testing.assert_array_equal(fold.val, train[t[train] >= cut])
        a = min(pos[d] for d in t[fold.val])
        b = max(pos[d] for d in t1[fold.val])
        for i in fold.train:  # no training label or decision within the validation span widened by 4 + 2 days
            s, e = pos[t[i]], pos[t1[i]]
            assert not (s <= b + 4 + 2 and e >= a - 4)


def test_val_fraction_out_of_range_is_refused():
    t, t1, _ = _samples()
    with pytest.raises(ConfigError, match=r"^val_fraction must be a number in \[0, 0\.5\), got 0\.7") as err:
        make_folds(CombinatorialPurgedKFold(), t, t1, val_fraction=0.7)
    assert err.value.field == "val_fraction"


def test_zero_val_fraction_keeps_the_splitter_training_set():
    t, t1, _ = _samples()
    splitter = CombinatorialPurgedKFold(5, 1, purge_days=2, embargo_days=1)
    for fold, (train, test) in zip(make_folds(splitter, t, t1, 0.0), splitter.split(t, t1)):
        np.testing.assert_array_equal(fold.train, train)
        np.testing.assert_array_equal(fold.test, test)
        assert len(fold.val) == 0


def test_config_errors_name_the_splitter_field_for_the_reader_to_locate():
    t, t1, _ = _samples()
    with pytest.raises(ConfigError, match=r"^splitter\.purge_days=400 and embargo_days=400 leave CPCV fold 0") as err:
        make_folds(CombinatorialPurgedKFold(purge_days=400, embargo_days=400), t, t1, val_fraction=0.1)
    assert err.value.field == "splitter.purge_days"
    with pytest.raises(ConfigError, match=r"^validation\.splitter\.purge_days=400 "):
        with located("validation"):
            make_folds(CombinatorialPurgedKFold(purge_days=400, embargo_days=400), t, t1, val_fraction=0.1)
    with pytest.raises(ConfigError, match=r"^splitter\.purge_days=100 and splitter\.embargo_days=0 leave fold 0 no "
                       r"training sample once its validation tail \(val_fraction=0\.4\)") as err:
        make_folds(CombinatorialPurgedKFold(n_groups=2, purge_days=100, embargo_days=0), t, t1, val_fraction=0.4)
    assert err.value.field == "splitter.purge_days"


def test_the_refit_trains_on_every_sample_but_its_purged_validation_tail():
    t, t1, dates = _samples()
    splitter = CombinatorialPurgedKFold(5, 1, purge_days=4, embargo_days=2)
    fold = refit_fold(splitter, t, t1, val_fraction=0.1)
    assert fold.fold == REFIT and len(fold.test) == 0
    # validation: every sample of the last tenth of all dates, as a fold's tail of its training dates
    cut = np.unique(t)[int(len(np.unique(t)) * 0.9)]
    np.testing.assert_array_equal(fold.val, np.flatnonzero(t >= cut))
    pos = {d: i for i, d in enumerate(dates)}
    a, b = min(pos[d] for d in t[fold.val]), max(pos[d] for d in t1[fold.val])
    for i in fold.train:  # no training label overlaps the validation span, widened by the purge and embargo
        assert not (pos[t[i]] <= b + 4 + 2 and pos[t1[i]] >= a - 4)
    # everything before the purge is trained on: labels ending 4 days (purge) or more before validation starts
    kept = np.flatnonzero(np.array([pos[d] for d in t1]) < a - 4)
    np.testing.assert_array_equal(fold.train, kept)
    assert len(refit_fold(splitter, t, t1, val_fraction=0.0).train) == len(t)


def test_the_refit_refuses_an_impossible_validation_share():
    t, t1, _ = _samples()
    with pytest.raises(ConfigError, match=r"^val_fraction must be a number in \[0, 0\.5\)"):
        refit_fold(CombinatorialPurgedKFold(), t, t1, val_fraction=0.5)
