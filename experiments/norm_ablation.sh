#!/usr/bin/env bash
# Post-norm (the HRM reference) against pre-norm blocks, on the same data, folds and budget.
# One MLflow run per variant in experiment "norm_ablation"; compare oos/nll, oos/loss and
# oos/sharpe in `mlflow ui --backend-store-uri sqlite:///mlruns.db`.
# The default is hrm_tiny for 400 optimiser steps per fold (CPU, about 10 minutes per variant);
# extra arguments are passed on as Hydra overrides (e.g. model=hrm_27m on a GPU).
set -euo pipefail
python -m dualhrq.train -m +experiment=regime_film task_name=norm_ablation model=hrm_tiny \
  trainer.max_steps=400 trainer.val_check_interval=100 model.net.norm=post,pre "$@"
