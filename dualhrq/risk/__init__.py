"""Risk measurement and limits: VaR/CVaR and their backtests, factor risk, stress tests, pre-trade checks and
the kill switch. Below the portfolio layer, so the books and the integrator can use it; it needs no model."""
