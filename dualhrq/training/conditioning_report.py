"""Per-fold conditioning report: the context's mutual information with symbol and calendar, regime
stability of the classifier, and the retrieval's fail-open counts and latency."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from dualhrq.training.regime_labels import switches_per_day
from dualhrq.validation.leakage import mutual_information_bits


def collect_context(model: torch.nn.Module, loader: DataLoader) -> tuple[np.ndarray, np.ndarray | None]:
    """The FiLM context [n, C] (retrieval included) and regime logits [n, R] (or None) of every loader item."""
    cond = model.net.conditioning
    contexts, logits = [], []
    model.eval()
    with torch.inference_mode():
        for batch in loader:
            batch = {k: v.to(model.device) for k, v in batch.items()}
            out = cond.encode(batch["regime"], batch["symbol"], model.patterns(batch))
            contexts.append(out.context.float().cpu().numpy())
            if out.regime_logits is not None:
                logits.append(out.regime_logits.float().cpu().numpy())
    return np.concatenate(contexts), (np.concatenate(logits) if logits else None)


def conditioning_report(model: torch.nn.Module, loader: DataLoader, symbol: np.ndarray,
                        ts: np.ndarray) -> dict[str, float]:
    """Metrics over the test samples (``symbol`` ids and decision times ``ts``, in loader order).

    ``conditioning/mi_symbol_bits`` is I(context; symbol), a cross-validated classifier's lower bound over
    blocks of test dates (``validation/leakage.py``); ``mi_weekday_bits`` and ``mi_month_bits`` the same
    against the calendar. No conditioning: no context, all zero.
    """
    metrics: dict[str, float] = {}
    if model.net.conditioning is None:
        metrics.update({"conditioning/mi_symbol_bits": 0.0, "conditioning/mi_weekday_bits": 0.0,
                        "conditioning/mi_month_bits": 0.0})
    else:
        context, logits = collect_context(model, loader)
        days = np.asarray(ts).astype("datetime64[D]")
        weekday = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
        month = days.astype("datetime64[M]").astype(np.int64) % 12
        # blocks of whole bar times: the days of daily bars, minutes of intraday ones (a few sessions are too
        # few days to make the bound's time blocks)
        for name, labels in (("symbol", symbol), ("weekday", weekday), ("month", month)):
            metrics[f"conditioning/mi_{name}_bits"] = mutual_information_bits(context, labels, np.asarray(ts))
        if logits is not None:
            order = np.lexsort((ts, symbol))  # per symbol, in time
            metrics["regime/classifier_switches_per_day"] = switches_per_day(
                logits.argmax(axis=1)[order], symbol[order], np.asarray(ts)[order])
    retriever = getattr(model, "retriever", None)
    if retriever is not None:
        metrics.update({f"retrieval/{k}": v for k, v in retriever.stats().items()})
    return metrics
