"""``python -m dualhrq.registry <action> key=value ...``: the model registry from the command line.

    python -m dualhrq.registry register run_id=<training run> [name=<model>] [registry.source=refit|fold<i>]
    python -m dualhrq.registry promote name=<model> challenger=<version> [level=0.05]
    python -m dualhrq.registry rollback name=<model>
    python -m dualhrq.registry show name=<model>

Settings compose from ``conf/registry_cli.yaml`` (Hydra overrides); the store is
``logger.mlflow.tracking_uri``, as for training. ``promote`` exits 1 when the
challenger is refused, after printing the table it was refused on.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from dualhrq.config import CONF_DIR
from dualhrq.errors import ConfigError, DataError, DualHRQError
from dualhrq.primitives.tables import format_table
from dualhrq.registry.versions import promote, register_run, registry_client, rollback

log = logging.getLogger("dualhrq.registry")
ACTIONS = ("register", "promote", "rollback", "show")


def run(action: str, cfg: DictConfig) -> int:
    """Do ``action``; the exit status (1: a refused promotion)."""
    if action == "register" and cfg.run_id is None:
        raise ConfigError("register needs run_id=<training run id>.", field="run_id")
    if action == "promote" and cfg.challenger is None:
        raise ConfigError("promote needs challenger=<version>.", field="challenger")
    client = registry_client(str(cfg.logger.mlflow.tracking_uri))
    trusted = tuple(cfg.registry.trusted_targets)
    if action == "register":
        settings = {**OmegaConf.to_container(cfg.registry, resolve=True), "name": cfg.name}
        version = register_run(settings, client, str(cfg.run_id), trusted)
        print(f"{cfg.name} version {version.version}: {version.tags.get('registered.as')}")
        return 0
    if action == "promote":
        result = promote(client, cfg.name, cfg.challenger, cfg.level, trusted)
        print(result.table("champion", f"v{cfg.challenger}"))
        return 0 if result.promote else 1
    if action == "rollback":
        version = rollback(client, cfg.name)
        print(f"{cfg.name}: champion is version {version.version} again")
        return 0
    print(format_table(versions_table(client, cfg.name), f"Registered model {cfg.name}"))
    return 0


def versions_table(client: MlflowClient, name: str) -> list[dict[str, str]]:
    """One row per version: its aliases, training run, source and the last decision recorded on it."""
    try:
        model = client.get_registered_model(name)
    except MlflowException:
        raise DataError(f"name={name}: no registered model of that name in {client.tracking_uri}. Fix: register "
                        "a run first, or check the name.") from None
    aliases: dict[str, list[str]] = {}
    for alias, version in (model.aliases or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    rows = []
    for v in sorted(client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version)):
        rows.append({"version": str(v.version), "aliases": ",".join(sorted(aliases.get(str(v.version), []))) or "-",
                     "run": v.tags.get("lineage.run_id", "?")[:12], "source": v.tags.get("lineage.model_source", "?"),
                     "cv sharpe": v.tags.get("cv.sharpe", "?"),
                     "last decision": v.tags.get("promotion.decision", v.tags.get("registered.as", "-"))})
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[%(name)s] %(message)s")
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in ACTIONS:
        print(f"usage: python -m dualhrq.registry {{{'|'.join(ACTIONS)}}} key=value ...", file=sys.stderr)
        return 2
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name="registry_cli", overrides=args[1:])
        return run(args[0], cfg)
    except (HydraException, OmegaConfBaseException) as err:
        print(f"ConfigError: {' '.join(str(err).split())[:400]}", file=sys.stderr)
        return 2
    except DualHRQError as err:
        print(f"{type(err).__name__}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
