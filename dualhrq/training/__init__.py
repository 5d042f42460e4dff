"""The training stage: per-fold fitting of inputs, conditioning and model, and out-of-sample prediction."""
