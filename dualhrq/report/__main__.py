"""``python -m dualhrq.report experiment=NAME``: compare the runs of one MLflow experiment (a sweep).

Arguments are ``key=value``:

- ``experiment`` (required): the MLflow experiment, i.e. the runs' ``task_name``;
- ``sweep``: a multirun directory (``hydra.sweep.dir``): compare only that sweep's runs, whatever launcher ran it;
- ``tracking_uri``: default ``$MLFLOW_TRACKING_URI`` or ``sqlite:///mlruns.db``, as the training job;
- ``out``: the HTML file to write, default ``sweep_<experiment>.html``;
- ``size``: StepM's familywise error rate, default 0.05;
- ``reps``: stationary-bootstrap replications, default 500; ``seed``: default 0.

Prints the runs table and the verdict, writes the HTML report; exit status 2
with one message for a bad argument or an experiment without finished runs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from mlflow.tracking import MlflowClient

from dualhrq.config import positive_int
from dualhrq.errors import ConfigError, DualHRQError
from dualhrq.primitives.tables import format_table
from dualhrq.report.sweep import compare_sweep, summary_lines, write_sweep_report

KEYS = ("experiment", "sweep", "tracking_uri", "out", "size", "reps", "seed")


def parse_args(argv: Sequence[str]) -> dict[str, str]:
    args: dict[str, str] = {}
    for item in argv:
        key, sep, value = item.partition("=")
        if not sep or key not in KEYS:
            raise ConfigError(f"unexpected argument {item!r}; use key=value with keys {', '.join(KEYS)}, "
                              "e.g. python -m dualhrq.report experiment=regime_film")
        args[key] = value
    if not args.get("experiment"):
        raise ConfigError("experiment= is required: the MLflow experiment (task_name) whose runs to compare")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        try:
            size = float(args.get("size", "0.05"))
            reps, seed = int(args.get("reps", "500")), int(args.get("seed", "0"))
        except ValueError as err:
            raise ConfigError(f"size must be a number and reps, seed integers: {err}") from None
        positive_int(reps, "reps")
        uri = args.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlruns.db")
        comparison = compare_sweep(MlflowClient(uri), args["experiment"], sweep=args.get("sweep"), size=size,
                                   reps=reps, seed=seed)
        out = write_sweep_report(comparison, Path(args.get("out") or f"sweep_{args['experiment']}.html"), size)
    except DualHRQError as err:
        print(f"{type(err).__name__}: {err}", file=sys.stderr)
        return 2
    # one status column per gate goes to the HTML only; the console shows the counts
    console = [{k: v for k, v in row.items() if not k.startswith("gate ")} for row in comparison.rows]
    print(format_table(console, f"Runs of experiment '{comparison.experiment}'"))
    print("\n".join(["", *summary_lines(comparison, size), f"report: {out}"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
