"""Print a model config's parameters per component against its declared budget.

    python -m dualhrq.tools.param_count model=hrm_27m --strict
    python -m dualhrq.tools.param_count model=hrm_27m model/conditioning=none

Arguments are Hydra overrides of ``conf/train.yaml``; ``--strict`` exits with
status 1 when a component or the total is outside the budget. Input sizes come
from the data config, so no data is read.
"""

from __future__ import annotations

import sys

from dualhrq.config import build, compose_train
from dualhrq.errors import DualHRQError
from dualhrq.features.engine import feature_names
from dualhrq.models.params import check_budget, count_parameters, format_budget_table


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    strict = "--strict" in args
    overrides = [a for a in args if a != "--strict"]
    cfg = compose_train(overrides)
    try:
        inputs, regime = feature_names(build(cfg.data.features))
        symbols = cfg.data.source.get("symbols") or [None]
        model = build(cfg.model, n_features=len(inputs), n_regime_features=len(regime),
                      n_symbols=len(symbols))
    except DualHRQError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    counts = count_parameters(model.net)
    print(format_budget_table(counts, model.budget))
    violations = check_budget(counts, model.budget)
    if violations:
        print("\n".join(["", "out of budget:", *violations]), file=sys.stderr)
    return 1 if strict and violations else 0


if __name__ == "__main__":
    sys.exit(main())
