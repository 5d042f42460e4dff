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
