"""Pattern pooling head: top-k neighbours -> a context [B, P, D] by attention pooling.

``P`` learned queries attend over the projected neighbour tokens (the
pooling-by-multihead-attention of Lee et al. 2019, "Set Transformer", with
one head), so the context does not depend on the neighbours' order. A
sample with no admissible neighbour gets a zero context.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dualhrq.models.conditioning.base import PatternBatch, check_size
from dualhrq.models.layers import Linear, trunc_normal_

PATTERN_POOLING_MAX = 100_000  # design cap on the pooling head's parameters


class PatternPooling(nn.Module):
    def __init__(self, token_dim: int, dim: int, n_queries: int) -> None:
        super().__init__()
        self.proj = nn.Sequential(Linear(token_dim, dim, bias=True), nn.SiLU())
        self.key = Linear(dim, dim)
        self.value = Linear(dim, dim)
        self.queries = nn.Parameter(torch.empty(n_queries, dim))
        trunc_normal_(self.queries, std=1.0)
        self.scale = 1.0 / math.sqrt(dim)
        check_size(self, PATTERN_POOLING_MAX, "pattern pooling head",
                   "model.net.cond_hidden or model.conditioning.module.pool_queries")

    def forward(self, patterns: PatternBatch) -> Tensor:
        """Context [B, P, D]; zero for samples whose mask is all False."""
        h = self.proj(patterns.tokens)
        scores = torch.einsum("pd,bnd->bpn", self.queries, self.key(h)) * self.scale
        mask = patterns.mask[:, None, :]
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
        weights = torch.where(mask, weights, 0.0)  # rows with no neighbour: NaN -> 0
        return torch.einsum("bpn,bnd->bpd", weights, self.value(h))
