"""The two errors a user can cause: bad data and a bad configuration.

Both subclass ``ValueError`` and carry one message that names the field and
the fix, so ``train.py`` can print it alone instead of a traceback.
"""


class DualHRQError(ValueError):
    """Base class for input errors that stop a run before training."""


class DataError(DualHRQError):
    """The input data violate the bar schema or cannot yield samples."""


class ConfigError(DualHRQError):
    """A configuration value is impossible or not supported."""


def positive_int(value: object, field: str) -> int:
    """Return ``value`` if it is an int >= 1, else raise ConfigError naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{field} must be a positive integer, got {value!r}.")
    return value
