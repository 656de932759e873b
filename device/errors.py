"""The root of every error smscmd raises on purpose.

Each layer has its own subclasses (AT errors in :mod:`device.at.errors`, SMS
format errors here, journal and configuration errors here) so that a caller can
catch ``SmscmdError`` at the top and know that anything else is a bug.
"""

from __future__ import annotations


class SmscmdError(Exception):
    """Base class of all errors raised deliberately by smscmd."""


class SmsFormatError(SmscmdError, ValueError):
    """Text that cannot be encoded to, or decoded from, an SMS representation."""


class ConfigError(SmscmdError):
    """Invalid configuration: names the file and the key when known."""

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None) -> None:
        self.path = path
        self.key = key
        where = ""
        if path is not None:
            where = f"{path}: "
        if key is not None:
            where += f"{key}: "
        super().__init__(f"{where}{message}")


class JournalError(SmscmdError):
    """The SQLite journal could not be opened, migrated, read or written."""


class JournalInUse(JournalError, ConfigError):
    """Another agent holds the journal's lock: two agents were given one journal (a
    configuration error, exit status 2)."""
