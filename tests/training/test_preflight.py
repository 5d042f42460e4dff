"""The preflight's refusal of a conditioning variant set as a value, and Hydra's of an unknown variant."""

import pytest
from hydra.errors import MissingConfigException

from dualhrq.config import compose_train
from dualhrq.errors import ConfigError
from dualhrq.training.preflight import check_training_config


def test_an_unknown_conditioning_variant_is_refused_with_the_valid_ones_listed():
    options = r"Available options in 'model/conditioning':\n\tnone\n\tpuzzle_id\n\tregime\n\tregime_rag\n"
    with pytest.raises(MissingConfigException, match=options):
        compose_train(["model/conditioning=regim"])


@pytest.mark.parametrize("value", ["regime", "bogus"])
def test_the_variant_set_as_a_value_is_refused_with_the_fix(value):
    message = (rf"model\.conditioning is a config group, got the value '{value}'\. "
               r"Fix: select it with model/conditioning=<none\|puzzle_id\|regime\|regime_rag>")
    with pytest.raises(ConfigError, match=message):
        check_training_config(compose_train([f"model.conditioning={value}"]))


@pytest.mark.parametrize("kind", ["none", "puzzle_id", "regime", "regime_rag"])
def test_every_variant_passes_the_preflight(kind):
    check_training_config(compose_train([f"model/conditioning={kind}"]))


# what the former ``model.cond`` parser refused before any data was read
@pytest.mark.parametrize(("overrides", "match"), [
    (["model/conditioning=regime_rag", "model.conditioning.module.pool_queries=0"],
     r"model\.conditioning\.module\.pool_queries"),
    (["model/conditioning=regime", "model.conditioning.regime_loss_weight=-1"], r"regime_(loss_)?weight"),
])
def test_impossible_conditioning_values_are_refused_by_the_preflight(overrides, match):
    with pytest.raises(ConfigError, match=match):
        check_training_config(compose_train(overrides))


def test_a_resume_with_another_config_is_refused_listing_every_differing_key(tmp_path):
    from omegaconf import OmegaConf

    from dualhrq.training.preflight import check_resume

    from ..e2e.conftest import compose_tiny

    cfg = compose_tiny(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    check_resume(cfg, out)  # the same config resumes
    cfg.paths.root_dir = "/elsewhere"  # started from another directory: still the same job
    check_resume(cfg, out)
    changed = compose_tiny(tmp_path, ["trainer.max_steps=4", "+trainer.max_time=00:00:10:00"])
    with pytest.raises(ConfigError) as err:
        check_resume(changed, out)
    assert ("trainer.max_steps: recorded 3, now 4; trainer.max_time: recorded '<unset>', now '00:00:10:00'."
            in str(err.value))
    assert str(err.value).startswith(f"hydra.run.dir (paths.output_dir)={out} holds a run started with another")
    check_resume(changed, tmp_path / "fresh")  # no recorded config: a new job


@pytest.mark.parametrize(("overrides", "field", "phrase"), [
    (["registry.register=true"], "registry.source", "only validation.refit=true fits"),
    (["registry.register=true", "registry.source=best"], "registry.source", "must be refit or fold<i>"),
    (["registry.register=true", "registry.source=fold3", "validation.folds=[0,1]"], "registry.source",
     "names a fold this job does not train"),
    (["registry.register=true", "validation.refit=true", "data=synthetic_intraday"], "registry.register",
     "intraday features"),
    (["validation.refit=yes"], "validation.refit", "must be"),
])
def test_what_the_job_would_register_is_checked_before_it_trains(overrides, field, phrase):
    with pytest.raises(ConfigError, match=phrase) as err:
        check_training_config(compose_train(overrides))
    assert str(err.value).startswith(field)


@pytest.mark.parametrize("overrides", [
    ["registry.register=true", "validation.refit=true"],
    ["registry.register=true", "registry.source=fold1", "validation.folds=[0,1]"],
])
def test_a_registrable_job_passes_the_preflight(overrides):
    check_training_config(compose_train(overrides))
