"""Cross-sectional ranks: where a symbol stands among all symbols at the same timestamp.

A rank per timestamp uses only values of that timestamp, so it is as causal
as the feature it ranks, and it removes the market-wide level (a rank says
"strongest of today", not "strong").
"""

from __future__ import annotations

import polars as pl


def cross_sectional_rank(x: pl.Expr, by: str = "ts") -> pl.Expr:
    """Average rank of ``x`` among the non-null values sharing ``by``, scaled to [0, 1].

    0 is the lowest, 1 the highest; 0.5 when only one symbol has a value;
    null where ``x`` is null.
    """
    count = x.count().over(by)
    rank = x.rank("average").over(by)
    return pl.when(count > 1).then((rank - 1) / (count - 1)).otherwise(pl.when(x.is_not_null()).then(0.5))
