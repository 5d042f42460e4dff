"""A plain causal transformer of the HRM's size: the baseline HRM's critics ask for.

Same blocks, conditioning and heads as :class:`DualHRQNet`, but one pass
through ``layers`` distinct blocks instead of a recursion, so any gain of the
HRM over it comes from the recurrent hierarchy, not from size or parts.
FiLM modulates every block, as it modulates every L block in the HRM.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

from dualhrq.models.conditioning import ConditionerFactory, PatternBatch
from dualhrq.models.hrm import LevelSize, ReasoningModule
from dualhrq.models.layers import Linear
from dualhrq.models.network import ConditionedNet, NetOutput, check_norm, check_sizes


class TransformerNet(ConditionedNet):
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
        trunk: Mapping[str, int],
        conditioner: ConditionerFactory | None = None,
        cond_hidden: int = 64,
        head_hidden: int = 128,
        rope_base: float = 10000.0,
        norm: str = "post",
    ) -> None:
        super().__init__()
        size = LevelSize.from_config(trunk, "net.trunk")
        check_sizes(rope_base, n_features=n_features, cond_hidden=cond_hidden, head_hidden=head_hidden)
        self.embed = Linear(n_features, size.dim)
        self.trunk = ReasoningModule(size, rope_base, check_norm(norm))
        self._finish(n_features=n_features, n_regime_features=n_regime_features, n_symbols=n_symbols,
                     conditioner=conditioner, cond_hidden=cond_hidden, head_hidden=head_hidden,
                     film_layers=size.layers, film_dim=size.dim, heads_dim=size.dim)

    def forward(self, x: Tensor, regime: Tensor, symbol: Tensor, carry: None = None,
                patterns: PatternBatch | None = None) -> NetOutput:
        """x [B, T, F], regime [B, R], symbol [B], retrieved ``patterns`` or None; ``carry`` is accepted for
        the common interface."""
        self.check_input(x)
        film, logits = self.condition(regime, symbol, patterns)
        h = self.trunk(self.embed(x), 0.0, film)
        signal, forecast, _ = self.heads(h[:, -1])
        return NetOutput(signal=signal, forecast=forecast, regime_logits=logits)

    def backbone(self) -> dict[str, nn.Module]:
        return {"trunk": nn.ModuleList([self.embed, self.trunk])}
