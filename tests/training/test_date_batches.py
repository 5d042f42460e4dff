"""Training batches are all the samples of runs of consecutive dates."""

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from dualhrq.data.dense import bar_in_symbol
from dualhrq.data.samples import build_samples
from dualhrq.errors import ConfigError
from dualhrq.training import date_batches
from dualhrq.training.date_batches import DateBlockSampler, DenseBlockSampler


def dates_of(n_dates: int = 40, symbols: int = 3, seed: int = 0) -> np.ndarray:
    """Time-major sample dates (as the samples are stored), some (date, symbol) pairs missing."""
    rng = np.random.default_rng(seed)
    days = np.datetime64("2020-01-01", "us") + np.arange(n_dates) * np.timedelta64(1, "D")
    dates = np.repeat(days, symbols)
    return dates[rng.uniform(size=len(dates)) > 0.1]


def epoch(sampler: DateBlockSampler, number: int) -> list[list[int]]:
    sampler.set_epoch(number)
    return list(sampler)


def test_each_batch_holds_every_sample_of_a_run_of_consecutive_dates():
    dates = dates_of()
    days = np.unique(dates)
    sampler = DateBlockSampler(dates, batch_size=8)
    assert sampler.dates_per_block == round(8 / (len(dates) / len(days)))
    seen: list[int] = []
    for batch in epoch(sampler, 0):
        covered = np.unique(dates[batch])
        first = int(np.searchsorted(days, covered[0]))
        np.testing.assert_array_equal(covered, days[first:first + sampler.dates_per_block])
        assert sorted(batch) == np.flatnonzero(np.isin(dates, covered)).tolist()  # all of those dates' samples
        seen += batch
    assert len(seen) == len(set(seen))  # no sample twice in an epoch
    assert len(epoch(sampler, 0)) == len(sampler)


def test_batches_are_drawn_from_the_seed_and_the_epoch_alone():
    sampler = DateBlockSampler(dates_of(), batch_size=6, seed=3)
    assert epoch(sampler, 1) == epoch(DateBlockSampler(dates_of(), batch_size=6, seed=3), 1)
    assert epoch(sampler, 1) != epoch(sampler, 2)
    assert epoch(sampler, 1) != epoch(DateBlockSampler(dates_of(), batch_size=6, seed=4), 1)


def test_a_resumed_epoch_starts_at_its_batch_and_the_next_epoch_is_whole():
    whole = epoch(DateBlockSampler(dates_of(), batch_size=6, seed=3), 2)
    resumed = DateBlockSampler(dates_of(), batch_size=6, seed=3)
    resumed.resume_at(2, 4)
    assert list(resumed) == whole[4:]
    assert list(resumed) == whole  # the skip is used once


def test_every_epoch_has_the_same_number_of_batches_whatever_its_offset():
    sampler = DateBlockSampler(dates_of(n_dates=23), batch_size=9)
    assert {len(epoch(sampler, seed)) for seed in range(20)} == {len(sampler)}
    offsets = {int(np.min(np.concatenate(epoch(sampler, seed)))) for seed in range(20)}
    assert len(offsets) > 1  # the block boundaries move between epochs


def test_unsorted_dates_and_a_batch_larger_than_the_data():
    dates = dates_of(n_dates=5)[::-1]
    sampler = DateBlockSampler(dates, batch_size=1000)
    assert sampler.dates_per_block == 5
    assert [sorted(b) for b in epoch(sampler, 0)] == [list(range(len(dates)))]


def test_evaluation_order_is_fixed():
    sampler = DateBlockSampler(dates_of(), batch_size=6, shuffle=False)
    batches = epoch(sampler, 0)
    assert batches == epoch(sampler, 1)
    assert np.all(np.diff([min(b) for b in batches]) > 0)


@pytest.mark.parametrize("size", [0, 2.5])
def test_bad_batch_size_is_refused(size):
    with pytest.raises(ConfigError, match="batch_size"):
        DateBlockSampler(dates_of(), batch_size=size)


def test_distributed_processes_share_the_epochs_blocks_without_overlap(monkeypatch):
    sampler = DateBlockSampler(dates_of(n_dates=41), batch_size=6)
    whole = {tuple(b) for b in epoch(sampler, 3)}
    shares = []
    for rank in (0, 1):
        monkeypatch.setattr(date_batches, "_process", lambda rank=rank: (rank, 2))  # every process: same seed
        shares.append({tuple(b) for b in epoch(sampler, 3)})
        assert len(shares[-1]) == len(sampler) == len(whole) // 2
    assert not shares[0] & shares[1]
    assert shares[0] | shares[1] <= whole


@pytest.mark.parametrize("slots", [2, 3])
def test_a_batch_is_one_block_of_whole_dates_per_slot(slots):
    dates = dates_of(n_dates=60)
    days = np.unique(dates)
    sampler = DateBlockSampler(dates, batch_size=12, seed=1, slots=slots)
    k = sampler.dates_per_block
    assert k == round(12 / slots / (len(dates) / len(days)))
    seen: list[int] = []
    for batch in epoch(sampler, 0):
        runs = [dates[batch][0]]
        for d in dates[batch][1:]:
            if d != runs[-1]:
                runs.append(d)
        assert len(runs) == slots * k  # in order: each block sorted by date, no date in two blocks
        for j in range(slots):
            block = np.asarray(runs[j * k:(j + 1) * k])
            first = int(np.searchsorted(days, block[0]))
            np.testing.assert_array_equal(block, days[first:first + k])
        assert sorted(batch) == np.flatnonzero(np.isin(dates, runs)).tolist()
        seen += batch
    assert len(seen) == len(set(seen))
    assert len(sampler) == sampler.blocks() // slots


def test_few_dates_still_give_every_slot_its_own_block():
    dates = np.datetime64("2020-01-01", "D") + np.arange(5)
    sampler = DateBlockSampler(dates, batch_size=100, slots=2)
    assert sampler.dates_per_block == 2
    for seed in range(5):
        (batch,) = epoch(DateBlockSampler(dates, batch_size=100, slots=2, seed=seed), 0)
        assert len(set(dates[batch].tolist())) == 4
    with pytest.raises(ValueError, match="cannot fill supervision.slots=6"):
        DateBlockSampler(dates, batch_size=100, slots=6)


def test_dense_batches_tile_each_symbols_bars_once_over_consecutive_dates():
    rng = np.random.default_rng(0)
    days = [datetime(2020, 1, 1) + timedelta(days=i) for i in range(120)]
    frame = pl.concat([pl.DataFrame({"ts": days[k:], "symbol": name, "close": np.exp(rng.normal(size=120 - k)),
                                     "f0": rng.normal(size=120 - k)}) for k, name in enumerate(["A", "B", "C"])])
    s = build_samples(frame, ["f0"], ["f0"], seq_len=10, horizon=1)
    train = np.flatnonzero(~np.isin(np.arange(len(s)), np.arange(150, 170)))  # a held-out stretch
    bars = 6
    sampler = DenseBlockSampler(s.t[train], bar_in_symbol(s, train), bars, batch_size=9, seed=1)
    # the symbols start a day apart, so their tiling windows end on different dates: one window per date
    assert sampler.dates_per_block == 9
    covered: list[int] = []
    used: list[int] = []
    for batch in epoch(sampler, 0):
        used += batch
        windows = train[batch]
        rows = (s.end_row[windows, None] - np.arange(bars)[None, :]).ravel()
        assert len(np.unique(rows)) == len(rows)  # no bar twice in a batch
        for sym in np.unique(s.symbol_id[windows]):
            ends = np.sort(s.end_row[windows][s.symbol_id[windows] == sym])
            # adjacent ranges (each symbol's decisions on consecutive bars) but where a window was held out
            assert (np.diff(ends) % bars == 0).all()
        covered += rows.tolist()
    assert len(covered) == len(set(covered))  # every bar at most once an epoch
    first_bar = np.searchsorted(s.row_symbol, s.symbol_id[train])
    tiled = (s.end_row[train] - first_bar) % bars == bars - 1
    assert set(used) <= set(np.flatnonzero(tiled))  # only tiling windows, and all but an epoch's ragged edges
    assert len(used) >= tiled.sum() - 2 * sampler.dates_per_block
    with pytest.raises(ValueError, match="too little training data"):
        DenseBlockSampler(s.t[:2], np.array([0, 1]), bars, batch_size=4)
