"""A plain causal transformer of the HRM's size: the baseline HRM's critics ask for.

Same blocks, conditioning and heads as :class:`DualHRQNet`, but one pass
through ``layers`` distinct blocks instead of a recursion, so any gain of the
HRM over it comes from the recurrent hierarchy, not from size or parts.
FiLM modulates every block, as it modulates every L block in the HRM.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

from dualhrq.errors import DataError, positive_int
from dualhrq.models.conditioning import DEFAULT_SIZES, PatternBatch, build_conditioning
from dualhrq.models.heads import TradingHeads
from dualhrq.models.hrm import LevelSize, ReasoningModule
from dualhrq.models.layers import Linear
from dualhrq.models.network import NetOutput, check_norm


class TransformerNet(nn.Module):
    """Embedding -> ``trunk`` blocks (FiLM-conditioned) -> heads at the decision bar.

    ``trunk`` is a ``{dim, layers, heads, ffn_hidden}`` mapping (``model.net.trunk``).
    """

    recurrent = False  # one pass; no carry, so no deep supervision or ACT

    def __init__(
        self,
        *,
        n_features: int,
        n_regime_features: int,
        n_symbols: int,
        conditioning: str,
        trunk: Mapping[str, int],
        cond_hidden: int = 64,
        head_hidden: int = 128,
        rope_base: float = 10000.0,
        norm: str = "post",
        n_regimes: int = DEFAULT_SIZES["n_regimes"],
        pattern_token_dim: int = DEFAULT_SIZES["pattern_token_dim"],
        pool_queries: int = DEFAULT_SIZES["pool_queries"],
    ) -> None:
        super().__init__()
        size = LevelSize.from_config(trunk, "model.net.trunk")
        for name, value in [("n_features", n_features), ("cond_hidden", cond_hidden), ("head_hidden", head_hidden)]:
            positive_int(value, f"model.net.{name}")
        self.n_features = n_features
        self.embed = Linear(n_features, size.dim)
        self.trunk = ReasoningModule(size, rope_base, check_norm(norm, "model.net.norm"))
        self.conditioning = build_conditioning(conditioning, n_regime_features=n_regime_features,
                                               n_symbols=n_symbols, l_layers=size.layers, l_dim=size.dim,
                                               hidden=cond_hidden, n_regimes=n_regimes,
                                               pattern_token_dim=pattern_token_dim, pool_queries=pool_queries)
        self.heads = TradingHeads(size.dim, head_hidden)

    def forward(self, x: Tensor, regime: Tensor, symbol: Tensor, carry: None = None,
                patterns: PatternBatch | None = None) -> NetOutput:
        """x [B, T, F], regime [B, R], symbol [B], retrieved ``patterns`` or None; ``carry`` is accepted for
        the common interface."""
        if x.ndim != 3 or x.shape[-1] != self.n_features:
            raise DataError(f"model input must be [batch, seq_len, {self.n_features}], got {list(x.shape)}.")
        film, logits = None, None
        if self.conditioning is not None:
            cond = self.conditioning.encode(regime, symbol, patterns)
            film, logits = self.conditioning.film(cond.context), cond.regime_logits
        h = self.trunk(self.embed(x), 0.0, film)
        signal, forecast, _ = self.heads(h[:, -1])
        return NetOutput(signal=signal, forecast=forecast, regime_logits=logits)

    def components(self) -> dict[str, nn.Module]:
        """The budgeted parts; every parameter belongs to exactly one."""
        return {
            "trunk": nn.ModuleList([self.embed, self.trunk]),
            "heads": self.heads,
            "conditioning": self.conditioning if self.conditioning is not None else nn.Module(),
        }
