#!/usr/bin/env bash
# Conditioning study: the same data, folds and trainer budget with no conditioning,
# the per-symbol embedding (puzzle_id) and FiLM from regime features. One MLflow run
# per variant in experiment "regime_film"; compare them with
#   mlflow ui --backend-store-uri sqlite:///mlruns.db
# Extra arguments are passed on as Hydra overrides (e.g. model=hrm_tiny for a quick pass).
set -euo pipefail
python -m dualhrq.train -m +experiment=regime_film model.conditioning=none,puzzle_id,regime "$@"
