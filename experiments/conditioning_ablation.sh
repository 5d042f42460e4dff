#!/usr/bin/env bash
# Conditioning ablation: the four model/conditioning groups (none, the per-symbol puzzle_id
# embedding, regime, regime + retrieved patterns) as ONE Hydra multirun on the same data, seed and CPCV
# folds, one MLflow run each in experiment "conditioning_ablation"; then experiments/ablation_table.py
# writes the comparison table (out-of-sample Sharpe per CPCV path, MI with the symbol, fail-open rate)
# into a summary run of the same experiment.
#
# Default: hrm_tiny on the bundled daily data with 2 test groups per fold (10 folds, 4 CPCV paths),
# 200 optimiser steps per fold: CPU minutes. Extra arguments are Hydra overrides, e.g. on a GPU:
#   experiments/conditioning_ablation.sh model=hrm_27m trainer.max_steps=-1 trainer.max_epochs=20
# or on the SYNTHETIC intraday market (many symbols; day-scale regime smoothing for minute bars):
#   experiments/conditioning_ablation.sh data=synthetic_intraday data.source.n_symbols=12 \
#     model.conditioning.labels.halflife=60 model.conditioning.labels.min_dwell=390
set -euo pipefail
EXPERIMENT="${ABLATION_EXPERIMENT:-conditioning_ablation}"
python -m dualhrq.train -m +experiment=regime_film task_name="$EXPERIMENT" model=hrm_tiny \
  validation.splitter.n_test_groups=2 trainer.max_steps=200 trainer.val_check_interval=50 \
  model/conditioning=none,puzzle_id,regime,regime_rag "$@"
python "$(dirname "$0")/ablation_table.py" --experiment "$EXPERIMENT"
