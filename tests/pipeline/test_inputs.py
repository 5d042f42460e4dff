"""Fitted inputs survive saving as plain arrays, and map symbols by name."""

from __future__ import annotations

import numpy as np
import pytest

from dualhrq.data.samples import SampleSet
from dualhrq.data.scaling import Standardizer
from dualhrq.errors import DataError
from dualhrq.patterns.detection import PatternEncoder
from dualhrq.pipeline.inputs import FittedInputs, PatternQueries, RegimeInputs


def _samples(symbols: list[str], seed: int = 0) -> SampleSet:
    rng = np.random.default_rng(seed)
    per, seq = 60, 16
    n_rows = per * len(symbols)
    row_symbol = np.repeat(np.arange(len(symbols)), per)
    ends = np.concatenate([np.arange(seq - 1, per) + k * per for k in range(len(symbols))])
    ts = np.tile(np.arange(per).astype("datetime64[D]").astype("datetime64[us]"), len(symbols))
    return SampleSet(features=rng.normal(size=(n_rows, 3)).astype(np.float32),
                     regime=rng.normal(size=(n_rows, 2)).astype(np.float32), end_row=ends,
                     symbol_id=row_symbol[ends], t=ts[ends], t1=ts[ends], t0=ts[ends - seq + 1],
                     target=rng.normal(size=len(ends)),
                     next_return=rng.normal(size=len(ends)), symbols=symbols, row_symbol=row_symbol, row_ts=ts,
                     feature_names=["a", "b", "c"], regime_names=["r0", "r1"], seq_len=seq, horizon=1)


def _fitted(s: SampleSet) -> FittedInputs:
    rows = np.arange(len(s.features))
    by_symbol = Standardizer.fit(s.features, rows, s.row_symbol, len(s.symbols), finite_only=True)
    encoder = PatternEncoder((8, 16), 8, 4, seed=3).fit(s.features, s.end_row)
    return FittedInputs(features=Standardizer.fit(s.features, rows), regime=Standardizer.fit(s.regime, rows),
                        target_scale=0.5, symbols=list(s.symbols),
                        regime_inputs=RegimeInputs(Standardizer.fit(s.regime, rows, s.row_symbol, len(s.symbols)),
                                                   np.array([True, False])),
                        queries=PatternQueries(by_symbol, encoder))


def test_saved_inputs_give_the_same_batches():
    s = _samples(["AAA", "BBB"])
    fitted = _fitted(s)
    again = FittedInputs.from_arrays(fitted.save_arrays(), fitted.symbols)
    a, b = fitted.arrays(s), again.arrays(s)
    np.testing.assert_array_equal(a.features, b.features)
    for key in ("regime", "query", "t"):
        np.testing.assert_array_equal(a.extras[key], b.extras[key])
    assert (a.extras["regime"][:, 1] == 0).all()  # the screened-out column
    item_a, item_b = a.dataset(np.arange(5))[4], b.dataset(np.arange(5))[4]
    assert all(np.array_equal(item_a[k], item_b[k]) for k in item_a)


def test_symbols_are_mapped_by_name_and_unknown_ones_refused():
    both = _samples(["AAA", "BBB"])
    fitted = _fitted(both)
    # the same market with only BBB: its rows keep BBB's own statistics and id
    only_b = _samples(["BBB"])
    keep = both.row_symbol == 1
    only_b.features, only_b.regime = both.features[keep], both.regime[keep]
    sub = fitted.arrays(only_b)
    np.testing.assert_array_equal(sub.extras["regime"], fitted.arrays(both).extras["regime"][both.symbol_id == 1])
    assert (sub.symbol_id == 1).all()
    with pytest.raises(DataError, match="CCC"):
        fitted.arrays(_samples(["CCC"]))
