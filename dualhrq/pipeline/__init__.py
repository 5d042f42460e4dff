"""The fitted decision path (features -> scaler -> conditioning -> network) and its persistence."""

from dualhrq.pipeline.decision import DecisionPipeline, Decisions
from dualhrq.pipeline.inputs import FittedInputs, PatternQueries, RegimeInputs, TransformedSamples, WindowDataset

__all__ = ["DecisionPipeline", "Decisions", "FittedInputs", "PatternQueries", "RegimeInputs", "TransformedSamples",
           "WindowDataset"]
