"""PCA against a small autoencoder as the pattern encoder, on the same training windows.

Windows: the multi-scale block shapes (``model.conditioning.patterns`` of
``model/conditioning=regime_rag``) of the bundled
daily data's decision bars, features standardised per symbol, split in time:
the first 80% of decisions train both encoders, the last 20% evaluate them.
Figures per encoder at the same embedding dimension: held-out reconstruction
R^2 (1 - MSE / variance) and the usefulness of the embedding for retrieval:
the hit rate of the sign of the mean forward return of the 10 nearest
training patterns (exact search) against the held-out decision's own.
The autoencoder: MLP in -> 64 -> dim -> 64 -> in, SiLU, Adam 1e-3, 30 epochs,
batch 256, MSE. Prints one JSON line.

    OMP_NUM_THREADS=1 python benchmarks/pattern_encoder.py
"""

from __future__ import annotations

import json
import time

import faiss
import numpy as np
import torch
from torch import nn

from dualhrq.config import build, compose_train
from dualhrq.data.scaling import Standardizer
from dualhrq.patterns.detection import PatternEncoder, window_shapes
from dualhrq.training.conditioning import ConditioningFit


def knn_hit_rate(train_emb: np.ndarray, train_y: np.ndarray, test_emb: np.ndarray, test_y: np.ndarray) -> float:
    _, idx = faiss.knn(np.ascontiguousarray(test_emb, np.float32), np.ascontiguousarray(train_emb, np.float32), 10)
    vote = np.sign(train_y[idx].mean(axis=1))
    return float(np.mean(vote == np.sign(test_y)))


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    cfg = compose_train(["model=hrm_tiny", "model/conditioning=regime_rag"])
    pc = ConditioningFit.from_config(cfg.model.conditioning).patterns
    dm = build(cfg.data)
    s = dm.prepare()
    n = len(s)
    train, test = np.arange(int(0.8 * n)), np.arange(int(0.8 * n), n)
    train_rows = np.unique((s.end_row[train, None] - np.arange(s.seq_len)[None, :]).ravel())
    # per-symbol standardisation with training rows, as the fold's pattern queries are fitted
    scaler = Standardizer.fit(s.features, train_rows, s.row_symbol, len(s.symbols), finite_only=True)
    features = np.nan_to_num(scaler.transform(s.features, s.row_symbol))

    def shapes(idx: np.ndarray) -> np.ndarray:
        return np.concatenate([window_shapes(features, s.end_row[idx], sc, pc.points) for sc in pc.scales])

    x_train, x_test = shapes(train), shapes(test)
    y_train, y_test = np.tile(s.target[train], len(pc.scales)), np.tile(s.target[test], len(pc.scales))
    variance = float(((x_test - x_train.mean(0)) ** 2).mean())

    start = time.perf_counter()
    pca = PatternEncoder(pc.scales, pc.points, pc.dim).fit(features, s.end_row[train]).pca
    pca_s = time.perf_counter() - start
    pca_rec = pca.inverse_transform(pca.transform(x_test))
    pca_train, pca_test = pca.transform(x_train), pca.transform(x_test)

    d_in = x_train.shape[1]
    encoder = nn.Sequential(nn.Linear(d_in, 64), nn.SiLU(), nn.Linear(64, pc.dim))
    decoder = nn.Sequential(nn.Linear(pc.dim, 64), nn.SiLU(), nn.Linear(64, d_in))
    opt = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=1e-3)
    xt = torch.from_numpy(x_train)
    start = time.perf_counter()
    for _ in range(30):
        for b in torch.randperm(len(xt)).split(256):
            loss = ((decoder(encoder(xt[b])) - xt[b]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    ae_s = time.perf_counter() - start
    with torch.no_grad():
        ae_train = encoder(xt).numpy()
        ae_test_t = encoder(torch.from_numpy(x_test))
        ae_rec = decoder(ae_test_t).numpy()
        ae_test = ae_test_t.numpy()

    def r2(rec: np.ndarray) -> float:
        return round(1 - float(((rec - x_test) ** 2).mean()) / variance, 4)

    print(json.dumps({
        "benchmark": "pattern_encoder", "data": dm.name, "windows_train": len(x_train), "windows_test": len(x_test),
        "input_dim": d_in, "dim": pc.dim, "scales": list(pc.scales),
        "pca": {"heldout_r2": r2(pca_rec), "knn_sign_hit_rate": round(knn_hit_rate(pca_train, y_train, pca_test,
                                                                                   y_test), 4),
                "fit_s": round(pca_s, 2)},
        "autoencoder": {"heldout_r2": r2(ae_rec), "knn_sign_hit_rate": round(knn_hit_rate(ae_train, y_train, ae_test,
                                                                                          y_test), 4),
                        "fit_s": round(ae_s, 2), "params": sum(p.numel() for p in [*encoder.parameters(),
                                                                                   *decoder.parameters()])},
        "base_rate_positive": round(float(np.mean(y_test > 0)), 4),
    }))


if __name__ == "__main__":
    main()
