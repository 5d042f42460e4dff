"""The Hydra config tree: where it lives, composing it, building its nodes, and checking settings.

Tools, tests and benchmarks read model sizes and budgets from ``conf/``
through :func:`compose_train` and :func:`model_sizes`, so the YAML files stay
the one home of those numbers.

Validation has one shape everywhere:

* a class or function names only its own arguments in a ``ConfigError``
  (``field="n_groups"``), never the config path it happens to be read from;
* whoever reads the settings at a config path adds that path:
  :func:`build` for ``_target_`` nodes (the node's full key from the root,
  e.g. ``validation.splitter``), :func:`parse` for a mapping of settings read
  into a dataclass, :func:`located` around any other call;
* value checks are declared on dataclass fields as ``Annotated`` kinds
  (:data:`PositiveInt`, ``Annotated[float, between(0, 1)]``,
  ``Annotated[str, one_of(CHOICES)]``) and run by :func:`check_fields` from
  ``__post_init__``; a single value is checked by :func:`check_value`.

Every such message reads ``<field> must be <what is allowed>, got <value>.``::

    @dataclass(frozen=True)
    class CostModel:
        slippage: Annotated[str, one_of(SLIPPAGE_MODELS)] = "sqrt"
        vol_window: Annotated[int, at_least(2)] = 30

        def __post_init__(self) -> None:
            check_fields(self)

    build(cfg.backtest)  # ConfigError: backtest.costs.vol_window must be an integer >= 2, got 1.
    parse(Settings, cfg.validation.stats, "validation.stats")
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import math
import numbers
import os
import re
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache, lru_cache
from pathlib import Path
from typing import Annotated, Any, TypeVar

from hydra import compose, initialize_config_dir
from hydra.errors import InstantiationException
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf
from pydantic import ConfigDict, TypeAdapter, ValidationError

from dualhrq.errors import ConfigError, DualHRQError

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
T = TypeVar("T")
# ${pid:} in conf/hydra: the job's process id, which keeps the run directories of jobs started together apart
OmegaConf.register_new_resolver("pid", os.getpid, replace=True)


def compose_train(overrides: Sequence[str] = ()) -> DictConfig:
    """``conf/train.yaml`` with ``overrides``, as ``python -m dualhrq.train`` would compose it."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


def model_sizes(name: str) -> dict[str, Any]:
    """``{"net": DualHRQNet kwargs, "budget": ...}`` of ``conf/model/<name>.yaml``."""
    return copy.deepcopy(_model_sizes(name))


@lru_cache
def _model_sizes(name: str) -> dict[str, Any]:
    model = compose_train([f"model={name}"]).model
    net = OmegaConf.to_container(model.net, resolve=True)
    net = {k: v for k, v in net.items() if not k.startswith("_")}
    return {"net": net, "budget": OmegaConf.to_container(model.budget, resolve=True)}


# ---------------------------------------------------------------- where settings were read


def config_path(node: Any) -> str:
    """The full key of a config node from its root (``"validation.splitter"``); ``""`` for a root or a
    plain value."""
    return node._get_full_key(None) if OmegaConf.is_config(node) else ""


@contextmanager
def located(where: str | DictConfig | None) -> Iterator[None]:
    """Put ``where`` (a config path, or the node read there; None adds nothing) in front of the field of a
    ``ConfigError`` raised inside: ``with located("validation"): make_folds(...)``."""
    path = where if isinstance(where, str) else config_path(where)
    try:
        yield
    except ConfigError as err:
        err.at(path)
        raise


_FULL_KEY = re.compile(r"^full_key: (\S+)$", re.MULTILINE)


def build(node: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` that lets the product's own input errors through unwrapped.

    Hydra wraps constructor errors in ``InstantiationException``; a user should
    see the ``ConfigError``/``DataError`` that names the field, not the wrapper.
    The field of a ``ConfigError`` gets the full config path of the node whose
    constructor raised it (a nested ``_target_`` node's own one), unless it
    names one of ``kwargs``, which were not read from the config.
    """
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        wrapper, cause = err, err.__cause__
        while isinstance(cause, InstantiationException):
            wrapper, cause = cause, cause.__cause__
        if isinstance(cause, ConfigError) and cause.field is not None:
            base = config_path(node)
            found = _FULL_KEY.search(str(wrapper))
            where = found.group(1) if found else base
            if base and where != base and not where.startswith(base + "."):
                where = f"{base}.{where}"  # a key relative to the node
            if not (where == base and cause.field.split(".")[0] in kwargs):
                cause.at(where)
        if isinstance(cause, DualHRQError):
            raise cause from None
        raise


def check_arguments(node: DictConfig, skip: Iterable[str] = ()) -> None:
    """Check every ``_target_`` node under ``node`` before it is built: each configured argument is one its
    target takes and has the type the target declares for it (``max_steps=abc`` stops here, not inside the
    trainer after the data are read). Arguments named in ``skip``, nested targets and targets whose
    annotations cannot be read are left to the target itself."""
    def visit(sub: Any) -> None:
        if not OmegaConf.is_dict(sub):
            return
        for value in sub.values():
            visit(value)
        if "_target_" not in sub:
            return
        target = get_object(sub._target_)
        init = target.__init__ if isinstance(target, type) else target
        try:
            hints = typing.get_type_hints(init)
            params = inspect.signature(init).parameters
        except (NameError, TypeError, ValueError):
            return
        open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        where = config_path(sub)
        for key, value in sub.items():
            key = str(key)
            if key.startswith("_") or key in skip or (OmegaConf.is_dict(value) and "_target_" in value):
                continue
            if key not in params:
                if open_ended:
                    continue
                known = sorted(k for k in params if k != "self")
                raise ConfigError(f"{where}.{key} is not an argument of {sub._target_}; it takes {known}. "
                                  f"Fix: remove it or correct its name.")
            if key not in hints:
                continue
            plain = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
            if not _has_type(plain, hints[key]):
                raise ConfigError(f"{where}.{key} must be {_type_name(hints[key])}, got {plain!r}.")

    visit(node)


def _has_type(value: Any, hint: Any) -> bool:
    """Whether ``value`` is of type ``hint``, with no conversion but a YAML list's to a tuple."""
    adapter = TypeAdapter(hint, config=ConfigDict(arbitrary_types_allowed=True))
    for candidate in (value, tuple(value)) if isinstance(value, list) else (value,):
        try:
            adapter.validate_python(candidate, strict=True)
            return True
        except ValidationError:
            pass
    return False


def _type_name(hint: Any) -> str:
    """``Optional[int]`` for ``typing.Optional[int]``: annotations without their module paths."""
    return re.sub(r"\b(?:[A-Za-z_]\w*\.)+(\w+)", r"\1", getattr(hint, "__name__", None) or str(hint))


# ---------------------------------------------------------------- configs read back from a run

# what a recorded config (a run's config.yaml, a saved pipeline) may instantiate; anything else would run
# code named by a file, the same risk as unpickling it
TRUSTED_TARGETS = ("dualhrq.", "lightning.", "torch.optim.")


def check_targets(node: Any, trusted: Sequence[str] = (), where: str = "") -> None:
    """Refuse a recorded config whose ``_target_`` is outside :data:`TRUSTED_TARGETS` and ``trusted`` (module
    prefixes), or that holds an interpolation (a recorded config is resolved, plain values only)."""
    allowed = (*TRUSTED_TARGETS, *(p.rstrip(".") + "." for p in trusted))
    container = OmegaConf.to_container(node, resolve=False) if OmegaConf.is_config(node) else node

    def walk(value: Any, key: str) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(v, f"{key}.{k}" if key else str(k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{key}[{i}]")
        elif key.rsplit(".", 1)[-1] == "_target_" and not str(value).startswith(allowed):
            raise ConfigError(f"{key}={value!r} in {where or 'a recorded config'} is not a trusted target "
                              f"(only {', '.join(p + '*' for p in allowed)}); it was not run. Fix: if you trust "
                              "this file, add its module with trusted_targets=[<module>].")
        elif isinstance(value, str) and "${" in value:
            raise ConfigError(f"{key}={value!r} in {where or 'a recorded config'} is an interpolation; a recorded "
                              "config holds resolved values only. Fix: use the run's own config.yaml.")

    walk(container, "")


def load_recorded(path: str | Path, trusted: Sequence[str] = ()) -> DictConfig:
    """A run's recorded ``config.yaml`` as plain values, its targets checked by :func:`check_targets`."""
    cfg = OmegaConf.load(path)
    check_targets(cfg, trusted, where=str(path))
    return cfg


# ---------------------------------------------------------------- what a setting may be


@dataclasses.dataclass(frozen=True)
class Rule:
    """A constraint on one setting: ``test(value)`` must hold.

    ``text`` says what is allowed (``"> 0"``, ``"in [0, 1]"``); an
    ``adjective`` rule reads before the type (``"a positive integer"``).
    """

    test: Callable[[Any], bool]
    text: str
    adjective: bool = False

    def holds(self, value: Any) -> bool:
        try:
            return bool(self.test(value))
        except (TypeError, ValueError):
            return False


def above(bound: float) -> Rule:
    return Rule(lambda v: v > bound, f"> {bound}")


def at_least(bound: float) -> Rule:
    return Rule(lambda v: v >= bound, f">= {bound}")


def below(bound: float) -> Rule:
    return Rule(lambda v: v < bound, f"< {bound}")


def between(lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False) -> Rule:
    """``lo <= value <= hi``; ``lo_open``/``hi_open`` make that end strict."""
    def test(v: Any) -> bool:
        return (lo < v if lo_open else lo <= v) and (v < hi if hi_open else v <= hi)
    return Rule(test, f"in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}")


def one_of(choices: Iterable[Any]) -> Rule:
    allowed = tuple(choices)
    return Rule(lambda v: v in allowed, f"one of {list(allowed)}")


POSITIVE = Rule(lambda v: v > 0, "positive", adjective=True)
NON_NEGATIVE = Rule(lambda v: v >= 0, "non-negative", adjective=True)
FINITE = Rule(math.isfinite, "finite", adjective=True)
NON_EMPTY = Rule(bool, "non-empty", adjective=True)

PositiveInt = Annotated[int, POSITIVE]
NonNegativeInt = Annotated[int, NON_NEGATIVE]
Positive = Annotated[float, POSITIVE]
NonNegative = Annotated[float, NON_NEGATIVE]
Probability = Annotated[float, between(0, 1)]

_TYPES: dict[type, tuple[str, Callable[[Any], bool]]] = {
    int: ("integer", lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool)),
    float: ("number", lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool)),
    str: ("string", lambda v: isinstance(v, str)),
    bool: ("true or false", lambda v: isinstance(v, bool)),
}


@dataclasses.dataclass(frozen=True)
class _Kind:
    """What an annotation allows: a checked type (or None), null or not, rules; a nested settings class
    or a tuple, for :func:`parse`."""

    base: type | None = None
    optional: bool = False
    rules: tuple[Rule, ...] = ()
    settings: type | None = None
    sequence: bool = False

    @property
    def checked(self) -> bool:
        return self.base is not None or bool(self.rules)

    def allows(self, value: Any) -> bool:
        if value is None:
            return self.optional or not self.checked
        if self.base is not None and not _TYPES[self.base][1](value):
            return False
        return all(rule.holds(value) for rule in self.rules)

    def allowed(self) -> str:
        """``"a positive integer"``, ``"a number in [0, 1] or null"``, ``"one of ['a', 'b']"``."""
        adjectives = [r.text for r in self.rules if r.adjective]
        others = " and ".join(r.text for r in self.rules if not r.adjective)
        if self.base is bool:
            text = "true or false"
        elif self.base is None or (self.base is str and others and not adjectives):
            text = " ".join([*adjectives, others])
        else:
            words = " ".join([*adjectives, _TYPES[self.base][0]])
            text = f"{'an' if words[0] in 'aeiou' else 'a'} {words}" + (f" {others}" if others else "")
        return f"{text} or null" if self.optional else text


def _kind(annotation: Any) -> _Kind:
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        base, *meta = typing.get_args(annotation)
        inner = _kind(base)
        return dataclasses.replace(inner, rules=inner.rules + tuple(m for m in meta if isinstance(m, Rule)))
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1:  # a union of several types: not checked here
            return _Kind(optional=len(rest) < len(args))
        return dataclasses.replace(_kind(rest[0]), optional=len(rest) < len(args))
    if annotation in _TYPES:
        return _Kind(base=annotation)
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return _Kind(settings=annotation)
    return _Kind(sequence=annotation is tuple or origin is tuple)


@cache
def _field_kinds(cls: type) -> dict[str, _Kind]:
    hints = typing.get_type_hints(cls, include_extras=True)
    return {f.name: _kind(hints[f.name]) for f in dataclasses.fields(cls) if f.init}


# ---------------------------------------------------------------- checking


def invalid(field: str, value: Any, allowed: str, fix: str = "") -> ConfigError:
    """The one message of a bad value: ``<field> must be <allowed>, got <value>.`` and the fix, if any."""
    return ConfigError(f"{field} must be {allowed}, got {value!r}." + (f" Fix: {fix}" if fix else ""), field=field)


def check_value(field: str, value: T, kind: Any, fix: str = "") -> T:
    """``value`` if the annotation ``kind`` allows it (``PositiveInt``, ``Annotated[float, below(1)] | None``),
    else a ``ConfigError`` naming ``field`` (and ``fix``, if given)."""
    spec = _kind(kind)
    if not spec.allows(value):
        raise invalid(field, value, spec.allowed(), fix)
    return value


def positive_int(value: Any, field: str) -> int:
    """``value`` if it is an integer >= 1, else a ``ConfigError`` naming ``field``."""
    return check_value(field, value, PositiveInt)


def check_fields(obj: Any) -> None:
    """Check every field of the dataclass instance ``obj`` against its annotation (type, null, rules);
    call it first in ``__post_init__``. Fields of other types (tuples, frames, callables) are left alone."""
    for name, spec in _field_kinds(type(obj)).items():
        value = getattr(obj, name)
        if spec.checked and not spec.allows(value):
            raise invalid(name, value, spec.allowed())


def parse(cls: type[T], values: Mapping[str, Any] | None, where: str = "", **given: Any) -> T:
    """The settings dataclass ``cls`` from the mapping ``values`` read at config path ``where``.

    Refuses keys that are not fields (listing the known ones) and missing
    required ones; a field whose type is itself a dataclass is parsed from its
    mapping the same way (at ``<where>.<field>``), lists become tuples for
    tuple fields. ``given`` are constructor arguments that do not come from
    the mapping. A ``ConfigError`` from the class gets ``where`` in front of
    its field. ``values`` may be a DictConfig (resolved) or None (defaults).
    """
    if isinstance(values, DictConfig):
        values = OmegaConf.to_container(values, resolve=True)
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        if where:
            raise invalid(where, values, "a mapping of settings")
        raise ConfigError(f"settings must be a mapping, got {values!r}.", field="")
    with located(where):
        inits = [f for f in dataclasses.fields(cls) if f.init and f.name not in given]
        known = sorted(f.name for f in inits)
        unknown = sorted(str(k) for k in values if k not in known)
        if unknown:
            raise ConfigError(f"unknown keys {unknown}; known: {known}.", field="")
        missing = [f.name for f in inits if f.name not in values and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING]
        if missing:
            raise ConfigError(f"{missing[0]} is not set; required keys missing: {missing}.", field=missing[0])
        kinds = _field_kinds(cls)
        return cls(**{name: _read(kinds[name], name, value) for name, value in values.items()}, **given)


def _read(spec: _Kind, name: str, value: Any) -> Any:
    if spec.settings is not None and not isinstance(value, spec.settings) and not (value is None and spec.optional):
        return parse(spec.settings, value, name)
    if spec.sequence and isinstance(value, list):
        return tuple(value)
    return value
