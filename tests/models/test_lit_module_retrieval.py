"""The LitModule with ``model/conditioning=regime_rag``: training and inference carry on through a slow or failing
pattern index (fail-open retrieval), and retrieved patterns reach the FiLM context."""

from functools import partial

import lightning.pytorch as pl
import pytest
import torch
from hydra.utils import instantiate
from torch.utils.data import DataLoader

from dualhrq.config import compose_train, model_sizes
from dualhrq.models.lit_module import HRMLitModule
from dualhrq.models.network import DualHRQNet
from dualhrq.patterns.retrieval import PatternRetriever
from dualhrq.training.conditioning import ConditioningFit
from tests.patterns.fakes import DAY, DIM, SCALES, BrokenIndex, SlowIndex, library

GROUP = compose_train([
    "model=hrm_tiny", "model/conditioning=regime_rag", "model.conditioning.patterns.scales=[8,16]",
    f"model.conditioning.patterns.dim={DIM}", "model.conditioning.patterns.library.k=3",
    "model.conditioning.patterns.library.codebook=4", "model.conditioning.retrieval.timeout_ms=50",
    "model.conditioning.retrieval.failure_threshold=2", "model.conditioning.retrieval.cooldown_s=10",
]).model.conditioning


def retriever(lib):
    return PatternRetriever(lib, ConditioningFit.from_config(GROUP).retrieval)


def module(seed=0):
    torch.manual_seed(seed)
    sizes = model_sizes("hrm_tiny")
    return HRMLitModule(net=partial(DualHRQNet, **sizes["net"]), conditioning={"module": instantiate(GROUP.module)},
                        optimizer=partial(torch.optim.AdamW, lr=1e-2),
                        loss={"forecast_weight": 1.0, "utility_weight": 0.5, "cost_bps": 1.0,
                              "regime_weight": GROUP.regime_loss_weight},
                        budget=sizes["budget"], n_features=5, n_regime_features=3, n_symbols=2,
                        supervision={"segments": 2})


def loader(n=8, b=4):
    g = torch.Generator().manual_seed(5)
    rows = [{"x": torch.randn(12, 5, generator=g), "regime": torch.randn(3, generator=g),
             "symbol": torch.tensor(i % 2), "target_z": torch.randn((), generator=g),
             "next_return": 0.01 * torch.randn((), generator=g), "date": torch.tensor(i // 2),
             "regime_label": torch.tensor(i % 4), "query": torch.randn(SCALES, DIM, generator=g),
             "t": torch.tensor((100 + i) * DAY)} for i in range(n)]
    return DataLoader(rows, batch_size=b)


@pytest.mark.parametrize("index", ["slow", "broken"])
def test_training_and_inference_carry_on_through_failed_retrieval(tmp_path, monkeypatch, index):
    monkeypatch.chdir(tmp_path)
    lib = library()
    lib.index = SlowIndex(lib.index, delay=0.3) if index == "slow" else BrokenIndex()
    mod = module()
    mod.attach_retriever(retriever(lib))
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, deterministic=True)
    trainer.fit(mod, train_dataloaders=loader(n=16))
    assert trainer.global_step == 4  # one step a batch, every step ran; a block enters every 2nd (2 segments)
    batch = next(iter(loader()))
    out = mod(batch)
    assert torch.isfinite(out.signal).all()
    stats = mod.retriever.stats()
    assert stats["ok"] == 0 and stats["calls"] == 3
    assert stats["skipped"] == 1  # threshold 2: the third call found the breaker open
    # failed open means exactly regime-only conditioning
    mod.attach_retriever(None)
    torch.testing.assert_close(mod(batch).signal, out.signal)


def test_retrieved_patterns_reach_the_film_context():
    mod = module()
    mod.attach_retriever(retriever(library()))
    batch = next(iter(loader()))
    patterns = mod.patterns(batch)
    assert patterns is not None and patterns.mask.any()
    assert patterns.tokens.shape == (4, SCALES * 3, DIM + SCALES + 3) and patterns.tokens.dtype == torch.float32
    cond = mod.net.conditioning.encode(batch["regime"], batch["symbol"], patterns)
    assert (cond.context[:, -1] == 1).all()  # the retrieval-available flag
    assert cond.context[:, 4:-1].abs().sum() > 0  # a non-zero pooled pattern context
