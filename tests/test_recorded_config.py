"""Recorded configs instantiate only trusted targets; every target's arguments are type-checked before it is
built."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from dualhrq.config import check_arguments, check_targets, compose_train, load_recorded
from dualhrq.errors import ConfigError


def test_a_recorded_config_with_an_untrusted_target_is_refused_naming_the_key(tmp_path):
    composed = compose_train(["model=hrm_tiny"])
    cfg = OmegaConf.create({key: OmegaConf.to_container(composed[key], resolve=True) for key in ("model", "data")})
    OmegaConf.save(cfg, tmp_path / "config.yaml")
    assert load_recorded(tmp_path / "config.yaml").model.net._target_ == "dualhrq.models.network.DualHRQNet"
    cfg.data.source = {"_target_": "os.makedirs", "name": str(tmp_path / "x")}
    OmegaConf.save(cfg, tmp_path / "config.yaml")
    with pytest.raises(ConfigError, match=r"^data\.source\._target_='os\.makedirs' in .*config\.yaml is not a "
                                          r"trusted target .*it was not run"):
        load_recorded(tmp_path / "config.yaml")
    assert not (tmp_path / "x").exists()
    assert load_recorded(tmp_path / "config.yaml", trusted=["os"]).data.source._target_ == "os.makedirs"


@pytest.mark.parametrize(("target", "trusted"), [
    ("dualhrqx.evil", ()), ("builtins.exec", ()), ("torch.load", ()), ("mypkg.gru.GRUNet", ("mypkgx",)),
])
def test_only_the_listed_module_prefixes_are_trusted(target, trusted):
    with pytest.raises(ConfigError, match="is not a trusted target"):
        check_targets({"model": {"net": {"_target_": target}}}, trusted)


def test_a_trusted_prefix_covers_its_submodules_and_lists_are_searched():
    check_targets({"cbs": [{"_target_": "mypkg.gru.GRUNet"}]}, ["mypkg"])
    with pytest.raises(ConfigError, match=r"^cbs\[1\]\._target_="):
        check_targets({"cbs": [{"_target_": "lightning.pytorch.Trainer"}, {"_target_": "os.system"}]})


def test_an_interpolation_in_a_recorded_config_is_refused():
    with pytest.raises(ConfigError, match=r"data\.path='\$\{oc\.env:HOME\}' .* is an interpolation"):
        check_targets(OmegaConf.create({"data": {"path": "${oc.env:HOME}"}}))


@pytest.mark.parametrize(("override", "message"), [
    ("trainer.max_steps=abc", "trainer.max_steps must be int, got 'abc'."),
    ("trainer.max_steps=2.5", "trainer.max_steps must be int, got 2.5."),
    ("trainer.deterministic=maybe", "trainer.deterministic must be "),
    ("model.optimizer.lr=fast", "model.optimizer.lr must be float"),
    ("model.net.h_cycles=true", "model.net.h_cycles must be int, got True."),
    ("+trainer.max_stepz=3", "trainer.max_stepz is not an argument of lightning.pytorch.Trainer"),
])
def test_a_wrong_type_or_unknown_argument_is_refused_before_building(override, message):
    cfg = compose_train(["model=hrm_tiny", override])
    with pytest.raises(ConfigError) as err:
        check_arguments(cfg.model)
        check_arguments(cfg.trainer, skip=("precision",))
    assert str(err.value).startswith(message)


def test_the_shipped_configs_pass_the_argument_check():
    for overrides in ([], ["model=transformer_tiny"], ["trainer=ddp_cpu"], ["model/conditioning=regime_rag"]):
        cfg = compose_train(overrides)
        check_arguments(cfg.model)
        check_arguments(cfg.trainer, skip=("precision",))
        check_arguments(cfg.callbacks)


def test_a_saved_pipeline_whose_model_names_an_untrusted_target_is_refused_before_loading(tmp_path):
    import json

    from dualhrq.pipeline.decision import META, DecisionPipeline

    (tmp_path / META).write_text(json.dumps({"model": {"_target_": "os.makedirs", "name": str(tmp_path / "x")},
                                             "sizes": {}}))
    with pytest.raises(ConfigError, match=r"^_target_='os\.makedirs' in .*pipeline\.json is not a trusted target"):
        DecisionPipeline.load(tmp_path)
    assert not (tmp_path / "x").exists()
