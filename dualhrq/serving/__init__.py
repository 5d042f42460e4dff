"""The served decision path: a request of bars to one decision per symbol, and its MLflow pyfunc flavour."""
