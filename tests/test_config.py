"""The one way settings are checked: field-relative ConfigErrors, and the config path added where it is read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import pytest
from omegaconf import OmegaConf

from dualhrq.config import (
    FINITE,
    NON_NEGATIVE,
    PositiveInt,
    Probability,
    at_least,
    below,
    between,
    build,
    check_fields,
    check_value,
    compose_train,
    config_path,
    located,
    one_of,
    parse,
    positive_int,
)
from dualhrq.errors import ConfigError


@dataclass(frozen=True)
class Index:
    kind: Annotated[str, one_of(("flat", "hnsw"))] = "flat"
    nprobe: PositiveInt = 8
    share: Probability | None = None

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class Library:
    name: str
    k: PositiveInt = 4
    cost: Annotated[float, FINITE, NON_NEGATIVE] = 0.0
    scales: tuple[int, ...] = (8,)
    index: Index = field(default_factory=Index)
    hook: object = None  # not a checked type: left alone

    def __post_init__(self) -> None:
        check_fields(self)
        if self.k > 100:
            raise ConfigError(f"k={self.k} is more than the library can serve; lower it.", field="k")


def _error(make) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        make()
    return err.value


# ---------------------------------------------------------------- ConfigError


def test_a_field_error_gets_the_path_in_front_once_per_level():
    err = ConfigError("n_groups must be an integer >= 2, got 1.", field="n_groups")
    assert err.at("splitter") is err
    err.at("validation")
    assert str(err) == "validation.splitter.n_groups must be an integer >= 2, got 1."
    assert err.field == "validation.splitter.n_groups"


def test_an_object_error_gets_the_path_and_a_colon():
    err = ConfigError("windows must satisfy 2 <= short < medium < long.", field="").at("data.features")
    assert str(err) == "data.features: windows must satisfy 2 <= short < medium < long."
    assert err.at("x").field == "x.data.features"


def test_an_error_without_a_field_is_never_prefixed():
    err = ConfigError("model.cond.regimes must be at least 2, got 1.")
    assert str(err.at("model")) == "model.cond.regimes must be at least 2, got 1."
    assert err.field is None


def test_a_message_that_does_not_start_with_its_field_is_led_by_it():
    assert str(ConfigError("must be positive, got 0.", field="dim")) == "dim: must be positive, got 0."
    assert str(ConfigError("kind must be set.", field="k")) == "k: kind must be set."


# ---------------------------------------------------------------- checking values


def test_check_value_returns_good_values_and_names_the_field_of_bad_ones():
    assert check_value("n", 3, PositiveInt) == 3
    assert positive_int(5, "reps") == 5
    assert str(_error(lambda: positive_int(0, "reps"))) == "reps must be a positive integer, got 0."
    assert str(_error(lambda: positive_int(True, "reps"))) == "reps must be a positive integer, got True."
    err = _error(lambda: check_value("f", 0.5, Annotated[float, between(0, 0.5, hi_open=True)]))
    assert str(err) == "f must be a number in [0, 0.5), got 0.5." and err.field == "f"
    assert check_value("f", None, Annotated[int, at_least(2)] | None) is None
    assert "an integer >= 2 or null, got 1.5" in str(_error(lambda: check_value("f", 1.5, Annotated[int, at_least(2)]
                                                                                   | None)))
    assert "one of ['a', 'b'], got 'c'" in str(_error(lambda: check_value("m", "c", Annotated[str, one_of("ab")])))
    assert "a number < 1, got 'x'" in str(_error(lambda: check_value("m", "x", Annotated[float, below(1)])))


def test_numpy_scalars_are_numbers():
    np = pytest.importorskip("numpy")
    assert check_value("n", np.int64(3), PositiveInt) == 3
    assert check_value("p", np.float32(0.5), Probability) == 0.5


def test_check_fields_checks_annotated_and_plain_scalar_fields():
    assert Library(name="x").index == Index()
    cases = [
        (dict(k=0), "k must be a positive integer, got 0."),
        (dict(k="3"), "k must be a positive integer, got '3'."),
        (dict(cost=float("inf")), "cost must be a finite non-negative number, got inf."),
        (dict(cost=-1), "cost must be a finite non-negative number, got -1."),
        (dict(name=3), "name must be a string, got 3."),
        (dict(k=101), "k=101 is more than the library can serve; lower it."),
    ]
    for kwargs, message in cases:
        err = _error(lambda kwargs=kwargs: Library(**{"name": "x", **kwargs}))
        assert str(err) == message
        assert err.field == next(iter(kwargs))
    assert Library(name="x", hook=lambda: None, scales=[1, 2]).scales == [1, 2]  # unchecked types pass


# ---------------------------------------------------------------- parsing a mapping read at a config path


def test_parse_builds_nested_settings_and_tuples():
    lib = parse(Library, {"name": "a", "scales": [8, 16], "index": {"kind": "hnsw", "share": 0.5}}, "model.lib")
    assert lib == Library(name="a", scales=(8, 16), index=Index(kind="hnsw", share=0.5))
    assert parse(Index, None, "x") == Index()


def test_parse_reads_a_dictconfig_resolved():
    cfg = OmegaConf.create({"n": 3, "model": {"lib": {"name": "a", "k": "${n}"}}})
    assert parse(Library, cfg.model.lib, "model.lib").k == 3


@pytest.mark.parametrize("values,message", [
    ({"name": "a", "kk": 1, "extra": 2},
     "model.lib: unknown keys ['extra', 'kk']; known: ['cost', 'hook', 'index', 'k', 'name', 'scales']."),
    ({"k": 2}, "model.lib.name is not set; required keys missing: ['name']."),
    ({"name": "a", "k": 2.5}, "model.lib.k must be a positive integer, got 2.5."),
    ({"name": "a", "cost": -0.5}, "model.lib.cost must be a finite non-negative number, got -0.5."),
    ({"name": "a", "index": {"nprobe": 0}}, "model.lib.index.nprobe must be a positive integer, got 0."),
    ({"name": "a", "index": {"kind": "ivf"}}, "model.lib.index.kind must be one of ['flat', 'hnsw'], got 'ivf'."),
    ({"name": "a", "index": {"share": 2}}, "model.lib.index.share must be a number in [0, 1] or null, got 2."),
    ({"name": "a", "index": {"probe": 1}}, "model.lib.index: unknown keys ['probe']; known: ['kind', 'nprobe', "
                                           "'share']."),
    ({"name": "a", "index": 5}, "model.lib.index must be a mapping of settings, got 5."),
    ({"name": "a", "k": 200}, "model.lib.k=200 is more than the library can serve; lower it."),
])
def test_parse_reports_one_error_with_the_full_path(values, message):
    err = _error(lambda: parse(Library, values, "model.lib"))
    assert str(err) == message
    assert err.field.startswith("model.lib")


def test_parse_without_a_path_names_the_field_alone_and_given_arguments_are_not_keys():
    assert str(_error(lambda: parse(Index, {"nprobe": -1}))) == "nprobe must be a positive integer, got -1."
    assert parse(Library, {"k": 2}, "lib", name="given").name == "given"
    assert "known: ['cost', 'hook', 'index', 'k', 'scales']" in str(_error(
        lambda: parse(Library, {"name": "a"}, "lib", name="given")))
    assert str(_error(lambda: parse(Index, [1]))) == "settings must be a mapping, got [1]."


def test_located_prefixes_field_errors_only():
    with pytest.raises(ConfigError, match=r"^validation\.splitter\.purge_days must"):
        with located("validation"), located("splitter"):
            raise ConfigError("purge_days must be >= 0.", field="purge_days")
    with pytest.raises(ConfigError, match=r"^model\.x is wrong$"):
        with located("validation"):
            raise ConfigError("model.x is wrong")
    cfg = OmegaConf.create({"data": {"source": {"n_days": 0}}})
    assert config_path(cfg.data.source) == "data.source" and config_path(cfg) == "" and config_path({}) == ""
    with pytest.raises(ConfigError, match=r"^data\.source\.n_days must"):
        with located(cfg.data.source):
            positive_int(cfg.data.source.n_days, "n_days")


# ---------------------------------------------------------------- build: the node's full config path


def test_build_puts_the_node_path_in_front_of_a_constructor_field():
    cfg = compose_train(["validation.splitter.n_groups=1"])
    err = _error(lambda: build(cfg.validation.splitter))
    assert str(err) == "validation.splitter.n_groups must be an integer >= 2, got 1."
    assert err.field == "validation.splitter.n_groups"
    assert type(err) is ConfigError and err.__suppress_context__  # Hydra's wrapper is dropped


def test_build_of_a_plain_mapping_names_the_field_alone_and_kwargs_are_not_prefixed():
    node = {"_target_": "dualhrq.validation.cpcv.CombinatorialPurgedKFold"}
    assert str(_error(lambda: build(node, n_test_groups=0))) == "n_test_groups must be a positive integer, got 0."
    cfg = compose_train([])
    err = _error(lambda: build(cfg.validation.splitter, purge_days=-1))
    assert str(err).startswith("purge_days must be a non-negative integer, got -1.")  # given here, not read there


@pytest.mark.parametrize("override,message", [
    ("backtest.costs.vol_window=1", "backtest.costs.vol_window must be an integer >= 2, got 1."),
    ("backtest.costs.slippage=cubic",
     "backtest.costs.slippage must be one of ['none', 'linear', 'sqrt', 'exp_decay'], got 'cubic'."),
    ("backtest.book.vol_target=0", "backtest.book.vol_target must be a positive number, got 0."),
    ("backtest.book.slices=0", "backtest.book.slices must be a positive integer, got 0."),
    ("backtest.capital=-1", "backtest.capital must be a finite positive number, got -1."),
])
def test_build_names_the_nested_target_node_that_refused_a_value(override, message):
    cfg = compose_train(["backtest=strict_sim", override])
    assert str(_error(lambda: build(cfg.backtest))) == message


def test_the_training_pre_flight_check_gives_full_paths():
    from dualhrq.training.preflight import check_training_config

    for overrides, path in [(["validation.splitter.n_test_groups=5"], "validation.splitter.n_test_groups"),
                            (["backtest=strict_sim", "backtest.book.fast=30", "backtest.book.transform=mean_reversion",
                              "backtest.book.window=1"], "backtest.book.window"),
                            (["model.act.halt_max_steps=0"], "model.act.halt_max_steps"),
                            (["model.net.recursion.gradient=phantom"], "model.net.recursion.gradient"),
                            (["model.net.h.heads=5"], "model.net.h.dim"),
                            (["model/conditioning=regime_rag", "model.conditioning.patterns.library.index.kind=annoy"],
                             "model.conditioning.patterns.library.index.kind"),
                            (["model/conditioning=regime_rag", "model.conditioning.retrieval.timeout_ms=0"],
                             "model.conditioning.retrieval.timeout_ms")]:
        assert _error(lambda overrides=overrides: check_training_config(compose_train(overrides))).field == path


@pytest.mark.parametrize("override,path", [
    ("model.net.l.dim=50", "model.net.l.dim"),
    ("model.supervision.segments=0", "model.supervision.segments"),
    ("model.grad_clip=-1", "model.grad_clip"),
])
def test_building_the_model_names_the_full_path(override, path):
    cfg = compose_train(["model=hrm_tiny", override])
    assert _error(lambda: build(cfg.model, n_features=4, n_regime_features=2, n_symbols=2)).field == path
