"""The two errors a user can cause: bad data and a bad configuration.

Both subclass ``ValueError`` and carry one message that names the field and
the fix, so ``train.py`` can print it alone instead of a traceback.
"""

from __future__ import annotations

import re


class DualHRQError(ValueError):
    """Base class for input errors that stop a run before training."""


class DataError(DualHRQError):
    """The input data violate the bar schema or cannot yield samples."""


class ConfigError(DualHRQError):
    """A configuration value is impossible or not supported.

    ``field`` is the path of the bad setting relative to the object being
    configured (``"n_groups"``, ``"momentum.lookback"``), and the message
    starts with it; ``""`` when the message is about that object as a whole.
    Whoever knows where the object's settings were read puts that path in
    front with :meth:`at` (``dualhrq.config.build``, ``parse`` and
    ``located`` do), so ``n_groups must be ...`` reaches the user as
    ``validation.splitter.n_groups must be ...``. ``field=None`` (the default)
    marks a message that already names its full path, or none: it is never
    prefixed.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        if field and not re.match(re.escape(field) + r"(?!\w)", message):
            message = f"{field}: {message}"
        super().__init__(message)
        self.field = field

    def at(self, where: str) -> ConfigError:
        """Put the config path ``where`` in front of the field (in place); returns the error.

        An error without a field, or an empty ``where``, is left as it is.
        """
        if self.field is None or not where:
            return self
        message = str(self)
        if self.field:
            self.args, self.field = (f"{where}.{message}",), f"{where}.{self.field}"
        else:
            self.args, self.field = (f"{where}: {message}",), where
        return self
