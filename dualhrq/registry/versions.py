"""Registered model versions and the ``champion`` / ``challenger`` aliases on MLflow's Model Registry.

The first version of a model becomes its champion; later ones become the challenger. A promotion moves the
``champion`` alias only on the evidence of :func:`~dualhrq.registry.promotion.compare_runs`; the replaced
champions are kept, newest last, in the registered model's tag ``champion.history`` for :func:`rollback`.
Every decision is written onto the versions it concerns: ``promotion.*`` / ``rollback.*`` tags and a line
(with the comparison table) added to the version's description.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from dualhrq.errors import ConfigError, DataError
from dualhrq.registry.lineage import RUN_TAG, lineage_tags
from dualhrq.registry.package import package_run
from dualhrq.registry.promotion import Comparison, compare_runs
from dualhrq.tracking.store import fluent_store

log = logging.getLogger("dualhrq.registry")
CHAMPION, CHALLENGER = "champion", "challenger"
HISTORY = "champion.history"


def register_run(settings: Mapping[str, Any], client: MlflowClient, run_id: str,
                 trusted: tuple[str, ...] = ()) -> ModelVersion:
    """Package ``run_id``'s pipeline (``settings.source``), register it under ``settings.name`` with its
    lineage, and alias it ``champion`` (the model's first version) or ``challenger``."""
    name = _name(settings.get("name"))
    client = registry_client(client.tracking_uri)
    with tempfile.TemporaryDirectory(prefix="dualhrq-register-") as tmp:
        packaged = package_run(client, run_id, str(settings.get("source", "refit")), Path(tmp), tuple(trusted))
        tags = lineage_tags(client.get_run(run_id), packaged.config, packaged.source)
    with fluent_store(client.tracking_uri):
        version = mlflow.register_model(packaged.model_uri, name, tags=tags)
    first = _alias(client, name, CHAMPION) is None
    alias = CHAMPION if first else CHALLENGER
    client.set_registered_model_alias(name, alias, version.version)
    _record(client, name, version.version, {"registered.as": alias},
            f"registered from run {run_id} ({packaged.source}) as {alias}"
            + (" (the model's first version)" if first else ""))
    log.info("registered %s version %s from run %s as %s", name, version.version, run_id, alias)
    return client.get_model_version(name, version.version)


def promote(client: MlflowClient, name: str, challenger: str | int, level: float,
            trusted: tuple[str, ...] = ()) -> Comparison:
    """Compare version ``challenger`` with the champion; move ``champion`` to it only if it wins."""
    name, client = _name(name), registry_client(client.tracking_uri)
    if not 0 < float(level) < 1:
        raise ConfigError(f"level must be in (0, 1), got {level!r}. Fix: e.g. level=0.05.", field="level")
    champion = _alias(client, name, CHAMPION)
    if champion is None:
        raise DataError(f"model {name!r} has no champion. Fix: register a version first (it becomes the champion).")
    version = _version(client, name, challenger)
    if version.version == champion.version:
        raise ConfigError(f"challenger={challenger} is already the champion of {name!r}.", field="challenger")
    with tempfile.TemporaryDirectory(prefix="dualhrq-promote-") as tmp:
        result = compare_runs(client, champion.tags[RUN_TAG], version.tags[RUN_TAG], float(level), Path(tmp),
                              trusted)
    table = result.table(f"v{champion.version}", f"v{version.version}")
    decision = "promoted" if result.promote else "refused"
    _record(client, name, version.version,
            {"promotion.decision": decision, "promotion.against": champion.version,
             "promotion.spa_pvalue": f"{result.spa_pvalue:.6g}", "promotion.level": f"{float(level):g}"},
            f"{decision} against champion v{champion.version}\n{table}")
    if result.promote:
        history = _history(client, name)
        client.set_registered_model_tag(name, HISTORY, ",".join([*history, str(champion.version)]))
        client.set_registered_model_alias(name, CHAMPION, version.version)
        if (current := _alias(client, name, CHALLENGER)) is not None and current.version == version.version:
            client.delete_registered_model_alias(name, CHALLENGER)
        _record(client, name, champion.version, {"replaced_by": version.version},
                f"replaced as champion by v{version.version}")
    log.info("%s\n%s", f"{name}: challenger v{version.version} {decision}", table)
    return result


def rollback(client: MlflowClient, name: str) -> ModelVersion:
    """Give the ``champion`` alias back to the champion it replaced last."""
    name, client = _name(name), registry_client(client.tracking_uri)
    current = _alias(client, name, CHAMPION)
    history = _history(client, name) if current is not None else []
    if not history:
        raise DataError(f"model {name!r} has no earlier champion to roll back to. Fix: nothing to undo.")
    previous = history.pop()
    client.set_registered_model_alias(name, CHAMPION, previous)
    client.set_registered_model_tag(name, HISTORY, ",".join(history))
    _record(client, name, current.version, {"rollback.to": previous}, f"rolled back: champion again v{previous}")
    _record(client, name, previous, {"rollback.from": current.version},
            f"champion again after a rollback from v{current.version}")
    log.info("%s: champion rolled back from v%s to v%s", name, current.version, previous)
    return client.get_model_version(name, previous)


def registry_client(uri: str) -> MlflowClient:
    """A client whose model registry is the tracking store ``uri`` itself, whatever the process's defaults."""
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _record(client: MlflowClient, name: str, version: str | int, tags: Mapping[str, str], line: str) -> None:
    version = str(version)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, str(value))
    old = client.get_model_version(name, version).description or ""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    client.update_model_version(name, version, description=f"{old}\n\n{stamp}: {line}".strip())


def _alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def _version(client: MlflowClient, name: str, version: str | int) -> ModelVersion:
    try:
        return client.get_model_version(name, str(version))
    except MlflowException:
        raise ConfigError(f"challenger={version}: model {name!r} has no such version. Fix: give a registered "
                          "version number.", field="challenger") from None


def _history(client: MlflowClient, name: str) -> list[str]:
    tag = client.get_registered_model(name).tags.get(HISTORY, "")
    return [v for v in tag.split(",") if v]


def _name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"name must name the registered model, got {name!r}. Fix: name=<model name>.",
                          field="name")
    return name
