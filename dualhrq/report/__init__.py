"""Run and sweep reports: matplotlib plots and self-contained HTML (``python -m dualhrq.report``)."""
