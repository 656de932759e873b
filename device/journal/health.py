"""Whether the journal can record: write failures by kind, and the file's identity.

A write the journal cannot make is a :class:`~device.errors.JournalCannotRecord`
(``condition`` :data:`DISK_FULL`, :data:`IO_ERROR` or :data:`READ_ONLY`), told
apart from other :class:`sqlite3.Error`\\ s by SQLite's primary result code
(``SQLITE_FULL``, ``SQLITE_IOERR``, ``SQLITE_READONLY``; https://sqlite.org/rescode.html).
SQLite rolls a transaction back by itself after ``SQLITE_FULL`` or ``SQLITE_IOERR``
(or leaves it open: the store's ROLLBACK, which may then fail, covers both); the
connection is fine afterwards, and the next transaction succeeds as soon as there is
room again -- :mod:`tests.test_diskfull` measures it on a full tmpfs.

:class:`JournalHealth` keeps the condition the last write ended in: it is set by a
failed write and cleared by the next one that succeeds, and each change is logged
once (not each retry). The agent reads :attr:`JournalHealth.condition` for
``smscmd status`` and the unit's ``STATUS=``; the outbox sends nothing while it is set.

:class:`FileIdentity` is the device and inode of the file opened: a journal deleted
under the running agent (or replaced by another file, a restored backup say) is still
written to -- the old inode, which is gone at the next start, and with it every reply
queued meanwhile. It is compared with the path's at every write transaction and at
each health tick (one ``stat``); a difference is :class:`~device.errors.JournalReplaced`.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from device.errors import JournalCannotRecord, JournalError, JournalReplaced

LOGGER = logging.getLogger(__name__)

#: The conditions a write can fail in (``JournalCannotRecord.condition``).
DISK_FULL = "disk full"
IO_ERROR = "I/O error"
READ_ONLY = "read-only"

#: SQLite primary result codes (the low byte of an extended code) and their condition.
_CONDITIONS = {13: DISK_FULL, 10: IO_ERROR, 8: READ_ONLY}  # FULL, IOERR, READONLY


def translate(exc: sqlite3.Error, path: Path) -> JournalError:
    """``exc`` as a JournalError; a JournalCannotRecord when it says the file cannot be
    written (disk full, I/O error, read-only)."""
    code = getattr(exc, "sqlite_errorcode", None)
    condition = _CONDITIONS.get(code & 0xFF) if isinstance(code, int) else None
    if condition is None:
        return JournalError(f"journal {path}: {exc}")
    return JournalCannotRecord(f"journal {path} cannot record: {exc}", condition=condition)


class JournalHealth:
    """The condition the journal's last write ended in: None when it succeeded.

    Thread-safe (the journal may be written from a worker thread). A change is logged
    once: the first failure of a kind at ERROR, the recovery at WARNING with how long
    it lasted; failures of the same kind in between only at DEBUG.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._condition: str | None = None
        self._since = 0.0

    @property
    def condition(self) -> str | None:
        """``"disk full"``, ``"I/O error"``, ``"read-only"``, or None (it records)."""
        return self._condition

    def text(self) -> str | None:
        """``journal cannot record: disk full`` while a condition holds, else None."""
        condition = self._condition
        return None if condition is None else f"journal cannot record: {condition}"

    def failed(self, error: JournalCannotRecord) -> None:
        with self._lock:
            if error.condition == self._condition:
                LOGGER.debug("journal %s still cannot record: %s", self._path, error)
                return
            self._condition = error.condition
            self._since = time.monotonic()
        LOGGER.error("%s; sending paused until it can", error)

    def recorded(self) -> None:
        if self._condition is None:  # the common case: no lock, no log
            return
        with self._lock:
            condition, self._condition = self._condition, None
            lasted = time.monotonic() - self._since
        if condition is not None:
            LOGGER.warning(
                "journal %s records again (it could not for %.1f s: %s); sending resumes",
                self._path,
                lasted,
                condition,
            )


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """The device and inode of a journal file."""

    device: int
    inode: int

    @classmethod
    def of(cls, path: Path) -> Self:
        """The identity of the file now at ``path`` (OSError when there is none)."""
        st = os.stat(path)
        return cls(st.st_dev, st.st_ino)

    def check(self, path: Path) -> None:
        """JournalReplaced when ``path`` is gone or is another file than this one."""
        try:
            now = FileIdentity.of(path)
        except FileNotFoundError:
            raise JournalReplaced(f"journal {path} was deleted under the running agent") from None
        except OSError as exc:
            raise JournalReplaced(f"journal {path} cannot be looked at: {exc}") from exc
        if now != self:
            raise JournalReplaced(
                f"journal {path} was replaced under the running agent (inode {self.inode}"
                f" on device {self.device} is now inode {now.inode} on device {now.device})"
            )


__all__ = ["DISK_FULL", "IO_ERROR", "READ_ONLY", "FileIdentity", "JournalHealth", "translate"]
