"""The evaluation stage: CPCV path returns, statistics, gates, report and their logging, after the folds."""
