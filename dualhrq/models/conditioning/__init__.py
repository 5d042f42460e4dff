"""Conditioning of the L-module (torch modules only): per-symbol (puzzle_id), market regime, or regime +
retrieved patterns. The variant is the config group ``model/conditioning``; its fitting lives in
``dualhrq.training.conditioning`` and its retrieval runtime in ``dualhrq.patterns.retrieval``."""

from dualhrq.models.conditioning.base import (
    Conditioner,
    ConditionerFactory,
    Conditioning,
    PatternBatch,
    conditioning_group,
)
from dualhrq.models.conditioning.film import FiLMGenerator
from dualhrq.models.conditioning.fusion import RegimeRAGConditioner
from dualhrq.models.conditioning.pooling import PatternPooling
from dualhrq.models.conditioning.puzzle_id import SymbolConditioner
from dualhrq.models.conditioning.regime import RegimeClassifier, RegimeConditioner

__all__ = ["Conditioner", "ConditionerFactory", "Conditioning", "FiLMGenerator", "PatternBatch", "PatternPooling",
           "RegimeClassifier", "RegimeConditioner", "RegimeRAGConditioner", "SymbolConditioner", "conditioning_group"]
