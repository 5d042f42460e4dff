"""The MLflow ``python_function`` flavour of a served model, as a loader module.

MLflow loads a registered model by importing this module and calling :func:`_load_pyfunc` on the model's data
directory, so nothing is unpickled: the weights load with ``weights_only=True``, the rest is JSON and ``.npz``
arrays. ``mlflow models serve`` answers ``/invocations`` with :meth:`Decisions.predict`; a request the model
refuses raises an ``MlflowException`` with ``INVALID_PARAMETER_VALUE``, which the server returns as HTTP 400
with the message naming the column, and the server stays up.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import polars as pl
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from dualhrq.errors import DualHRQError
from dualhrq.serving.model import ServedModel


class Decisions:
    """``predict(bars)`` -> one decision per symbol, as a pandas frame (what MLflow's server serialises)."""

    def __init__(self, model: ServedModel) -> None:
        self.model = model

    def predict(self, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        try:
            frame = pl.from_pandas(pd.DataFrame(model_input))
        except (TypeError, ValueError, pl.exceptions.PolarsError) as err:
            raise MlflowException(f"the request is not a table of bars ({err}). Fix: send dataframe_split or "
                                  "dataframe_records with one row per bar.", INVALID_PARAMETER_VALUE) from None
        try:
            out = self.model.decide(frame)
        except DualHRQError as err:
            raise MlflowException(str(err), INVALID_PARAMETER_VALUE) from None
        return out.with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S")).to_pandas()


def _load_pyfunc(data_path: str) -> Decisions:
    """MLflow's entry point for a loader-module model: the served model saved under ``data_path``."""
    return Decisions(ServedModel.load(data_path))
