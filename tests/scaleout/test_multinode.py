"""trainer=ddp_multinode builds Lightning's DDP over num_nodes x devices processes, with the ranks taken from the
cluster environment that starts the job: SLURM's srun or torchrun. The environments are those the two set for
the process of one GPU on the second of two 4-GPU nodes; the Trainer runs on CPU here (no GPU), which changes the
accelerator only."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.utilities import rank_zero_only

from dualhrq.config import CONF_DIR, build

SLURM = {"SLURM_NTASKS": "8", "SLURM_NTASKS_PER_NODE": "4", "SLURM_PROCID": "6", "SLURM_LOCALID": "2",
         "SLURM_NODEID": "1", "SLURM_NODELIST": "gpu[07-08]", "SLURM_JOB_NAME": "train", "SLURM_JOB_ID": "4242"}
TORCHRUN = {"TORCHELASTIC_RUN_ID": "sweep", "RANK": "6", "LOCAL_RANK": "2", "GROUP_RANK": "1", "WORLD_SIZE": "8",
            "LOCAL_WORLD_SIZE": "4", "MASTER_ADDR": "gpu07", "MASTER_PORT": "29500"}


def trainer_config(*extra: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=["model=hrm_tiny", "trainer=ddp_multinode", *extra]).trainer


def test_the_config_asks_for_ddp_over_two_four_gpu_nodes():
    cfg = trainer_config()
    assert (cfg.accelerator, cfg.devices, cfg.num_nodes, cfg.strategy) == ("gpu", 4, 2, "ddp")
    assert cfg.use_distributed_sampler is False  # the job's date-block sampler shards per process itself


@pytest.mark.parametrize("env, kind", [(SLURM, SLURMEnvironment), (TORCHRUN, TorchElasticEnvironment)])
def test_the_trainer_takes_its_rank_from_the_cluster(monkeypatch, env, kind):
    # the Trainer sets Lightning's process-wide rank to the one it builds for: put this process's back afterwards
    monkeypatch.setattr(rank_zero_only, "rank", rank_zero_only.rank)
    for key in (*SLURM, *TORCHRUN):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    trainer = build(trainer_config("trainer.accelerator=cpu"), precision="32-true", logger=False)
    assert isinstance(trainer.strategy, DDPStrategy)
    assert isinstance(trainer.strategy.cluster_environment, kind)
    assert trainer.num_nodes == 2 and trainer.num_devices == 4
    # 2 nodes x 4 processes; the process of local rank 2 on node 1 is global rank 1 * 4 + 2
    assert (trainer.world_size, trainer.node_rank, trainer.local_rank, trainer.global_rank) == (8, 1, 2, 6)
    assert trainer.strategy.cluster_environment.main_address == "gpu07"
