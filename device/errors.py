"""The root of every error smscmd raises on purpose.

Each layer has its own subclasses (AT errors in :mod:`device.at.errors`, SMS
format errors here, journal and configuration errors here) so that a caller can
catch ``SmscmdError`` at the top and know that anything else is a bug.
"""

from __future__ import annotations

import grp
import os
import stat


def ownership(path: str | os.PathLike[str]) -> str:
    """`` (group G, mode 0660)`` of ``path``, for a permission error's hint; empty when
    ``path`` cannot be stat'ed (a group without a name is shown by its number)."""
    try:
        st = os.stat(path)
    except OSError:
        return ""
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return f" (group {group}, mode {stat.S_IMODE(st.st_mode):04o})"


class SmscmdError(Exception):
    """Base class of all errors raised deliberately by smscmd."""


class UsageError(SmscmdError):
    """A command-line value that does not parse, such as a ``smscmd journal`` filter
    (exit status 2)."""


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


class JournalCannotRecord(JournalError):
    """A write to the journal failed for want of room or of a working file (disk full,
    I/O error, read-only file system): nothing of that transaction was written, and the
    journal may well record again later (space freed, the device back). ``condition``
    names it in a few words (``"disk full"``), for ``smscmd status`` and STATUS=."""

    def __init__(self, message: str, *, condition: str) -> None:
        super().__init__(message)
        self.condition = condition


class JournalReplaced(JournalError):
    """The journal file at the configured path is no longer the one the agent has open
    (deleted, or replaced by another file): what the agent writes from then on would be
    lost at the next start, so it stops (exit status 1; systemd starts it again, on the
    file now at the path)."""
