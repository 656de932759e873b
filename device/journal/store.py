"""The journal's one SQLite connection: opening, closing, and the transaction every write uses.

:class:`JournalStore` is the base that the inbox, outbox, multipart and retention parts
of :class:`~device.journal.Journal` build on. It owns the connection, the lock that
serialises calls (so the object may be used from a worker thread), the clock, and the
few statements more than one part needs (fetching a row, queueing an outbox row).

Opening sets WAL mode with ``synchronous=FULL``: with NORMAL, WAL commits are not synced
one by one and a power loss may roll back the last ones -- and a lost commit can be an SMS
already deleted from the modem, gone for good. The WAL is kept small for a small
partition (:data:`WAL_AUTOCHECKPOINT_PAGES`, :data:`WAL_SIZE_LIMIT`). Every
:class:`sqlite3.Error` is translated into :class:`~device.errors.JournalError`, a
:class:`~device.errors.JournalCannotRecord` when the file cannot be written (disk
full, I/O error: :mod:`device.journal.health`, which also keeps
:attr:`JournalStore.health`); a write transaction first checks that the file at the
path is still the one open (:class:`~device.errors.JournalReplaced` otherwise).
A transaction whose loss on power failure is harmless may be committed with NORMAL
(``_transaction(durable=False)``); the store counts its commits and the synced ones
(:class:`CommitCounts`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from device.errors import JournalCannotRecord, JournalError
from device.journal.health import FileIdentity, JournalHealth, translate
from device.journal.rows import InboxRow, OutboxRow, OutboxState, _utc_iso
from device.journal.schema import (
    INBOX_COLUMNS,
    OUTBOX_COLUMNS,
    SCHEMA_VERSION,
    inbox_row,
    migrate,
    outbox_row,
)

LOGGER = logging.getLogger(__name__)

#: How long a statement waits for a lock held by another connection (e.g. ``smscmd journal``).
BUSY_TIMEOUT_MS = 5000

#: Mode of the journal file (and its ``-wal``/``-shm``) and of the directory created for
#: it: the agent writes, its group (operators: ``smscmd journal``) reads, others nothing.
#: The directory decides who gets in at all (StateDirectoryMode= in the unit).
FILE_MODE = 0o640
DIR_MODE = 0o750

#: WAL pages after which a commit checkpoints them into the file (SQLite's default is
#: 1000, about 4 MiB, which does not fit a small partition beside the journal itself).
WAL_AUTOCHECKPOINT_PAGES = 100
#: Bytes the WAL file is truncated back to when it is reset after a checkpoint
#: (``PRAGMA journal_size_limit``): 100 pages of 4 KiB.
WAL_SIZE_LIMIT = 100 * 4096


@dataclass(frozen=True, slots=True)
class CommitCounts:
    """The write transactions a journal committed since it was opened.

    ``commits`` counts the transactions that changed a row (one that only read, or
    whose statements matched nothing, writes nothing to the WAL and is not counted);
    ``synced`` those of them committed with ``synchronous=FULL`` -- each one
    ``fdatasync`` of the WAL, which also makes every earlier unsynced commit durable.
    A figure that does not depend on the machine (tests and the benchmark read it).
    """

    commits: int = 0
    synced: int = 0

    def __sub__(self, other: CommitCounts) -> CommitCounts:
        return CommitCounts(self.commits - other.commits, self.synced - other.synced)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _create_private_file(path: Path) -> None:
    """Create ``path`` with :data:`FILE_MODE` if missing, before sqlite opens it.

    ``O_CREAT`` with that mode means there is no moment where the file is readable by
    others; an existing one is set to it by :func:`_share_with_group`. SQLite gives its
    ``-wal`` and ``-shm`` files the mode of the database file.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # a strict umask must not leave it unreadable to us
    finally:
        os.close(fd)


def _share_with_group(path: Path) -> None:
    """The journal and its ``-wal``/``-shm`` at :data:`FILE_MODE` (a journal made 0600 by
    an older smscmd becomes readable by the group; a file not ours is left alone)."""
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            if stat.S_IMODE(file.stat().st_mode) != FILE_MODE:
                os.chmod(file, FILE_MODE)
        except FileNotFoundError:
            continue
        except PermissionError as exc:
            LOGGER.warning("journal %s: cannot set mode %04o: %s", file, FILE_MODE, exc)


class JournalStore:
    """The connection to one journal file, and the plumbing every part of the journal shares.

    Not used on its own: :class:`~device.journal.Journal` adds the operations. Create with
    :meth:`open`; use as a context manager.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        """Wrap an already configured connection; prefer :meth:`open`."""
        self._conn: sqlite3.Connection | None = conn
        self._path = path
        self._clock = clock
        self._lock = threading.RLock()
        #: Whether the last write succeeded (see :mod:`device.journal.health`).
        self.health = JournalHealth(path)
        #: The file opened, compared with the path's at each write (None: read-only).
        self._identity: FileIdentity | None = None
        self._commits = CommitCounts()
        #: Opened ``immutable`` (read-only, no agent had it open): it shows the file as it
        #: was, and is to be opened again to see later writes.
        self.immutable = False

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        clock: Callable[[], datetime] | None = None,
        readonly: bool = False,
    ) -> Self:
        """Open (or create) the journal at ``path`` and migrate it to :data:`SCHEMA_VERSION`.

        With ``readonly`` (``smscmd journal`` beside a running agent) nothing is created,
        migrated or written: a missing file, or one at another schema version, is a
        JournalError.

        Creates the parent directory (mode 0750) and the file (mode 0640) if missing, and
        sets an existing file (and its ``-wal``/``-shm``) to 0640.
        Raises JournalError when the file cannot be opened, is not an SQLite database,
        or was written by a newer smscmd (schema version above ours). ``clock`` returns
        the current time (tz-aware); tests use it to make time stamps predictable.
        """
        path = Path(path)
        if readonly:
            return cls._open_readonly(path, clock)
        try:
            path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                _create_private_file(path)
        except OSError as exc:
            raise JournalError(f"cannot create journal {path}: {exc}") from exc
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(
                path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,  # calls are serialised by JournalStore._lock
            )
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                LOGGER.warning("journal %s: WAL mode unavailable, using %s", path, mode)
            # FULL, not NORMAL: in WAL mode NORMAL does not fsync the WAL on each commit,
            # so a power loss may roll back the last commits. Here a lost commit means an
            # SMS that was already deleted from the modem is gone for good.
            conn.execute("PRAGMA synchronous = FULL")
            # A small partition: the WAL is checkpointed every WAL_AUTOCHECKPOINT_PAGES
            # (not SQLite's 1000, ~4 MiB) and truncated back to WAL_SIZE_LIMIT after it.
            conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
            conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
            conn.execute("PRAGMA foreign_keys = ON")
            migrate(conn, path)
            _share_with_group(path)
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            raise JournalError(f"cannot open journal {path}: {exc}") from exc
        except JournalError:
            if conn is not None:
                conn.close()
            raise
        try:
            store = cls(conn, path, clock or _utcnow)
            store._identity = FileIdentity.of(path)
        except OSError as exc:
            conn.close()
            raise JournalError(f"cannot open journal {path}: {exc}") from exc
        return store

    @classmethod
    def _open_readonly(cls, path: Path, clock: Callable[[], datetime] | None) -> Self:
        """Read-only, for a reader who may read the files but not write them.

        ``mode=ro``: beside a running agent SQLite (3.22 and later) reads the WAL through
        the agent's ``-shm`` even when it cannot write it. A stopped agent removed both
        (its last connection checkpointed everything into the file), and a reader who
        cannot create them is refused; then, and only then, the file is read as
        ``immutable`` -- which would be unsafe while an agent writes, hence never while
        a ``-wal`` or ``-shm`` is there.
        """
        if not path.exists():
            raise JournalError(f"{path} does not exist (has the agent run yet?)")
        try:
            return cls._connect_readonly(path, "mode=ro", clock)
        except sqlite3.Error as exc:
            sides = [Path(f"{path}-{s}") for s in ("wal", "shm")]
            if any(side.exists() for side in sides) or os.access(path.parent, os.W_OK):
                raise JournalError(f"cannot read journal {path}: {exc}") from exc
            LOGGER.debug("journal %s: %s; no agent has it open: reading it immutable", path, exc)
        try:
            store = cls._connect_readonly(path, "immutable=1", clock)
        except sqlite3.Error as exc:
            raise JournalError(f"cannot read journal {path}: {exc}") from exc
        store.immutable = True
        return store

    @classmethod
    def _connect_readonly(
        cls, path: Path, query: str, clock: Callable[[], datetime] | None
    ) -> Self:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?{query}",
            uri=True,
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            conn.row_factory = sqlite3.Row
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        except BaseException:
            conn.close()
            raise
        if version != SCHEMA_VERSION:
            conn.close()
            raise JournalError(
                f"{path} has schema version {version}, this smscmd reads {SCHEMA_VERSION}"
                " (the agent migrates it when it starts)"
            )
        return cls(conn, path, clock or _utcnow)

    @property
    def path(self) -> Path:
        """The journal file."""
        return self._path

    def close(self) -> None:
        """Close the connection; closing twice is harmless."""
        with self._lock:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                try:
                    conn.close()
                except sqlite3.Error as exc:
                    raise JournalError(f"cannot close journal {self._path}: {exc}") from exc

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ plumbing

    @property
    def commit_counts(self) -> CommitCounts:
        """The write transactions committed so far, and how many of them were synced."""
        with self._lock:
            return self._commits

    @contextlib.contextmanager
    def _transaction(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: committed on success, rolled back otherwise.

        IMMEDIATE takes the write lock at once, so a read-then-write (the dedupe check,
        state checks) cannot race another writer. First the file at the path must still
        be the one open (JournalReplaced otherwise, nothing written). A write that fails
        for want of room or a working file is a JournalCannotRecord, and sets
        :attr:`health`; the next commit that succeeds and changed a row clears it. After
        SQLITE_FULL SQLite may have rolled back already: the ROLLBACK's own error is
        ignored, and the connection stays usable.
        ``durable=False`` commits it with ``synchronous=NORMAL``: it survives a crash of
        the process (it is in the WAL, in the kernel's cache) but not a power loss, until
        the next durable commit syncs the WAL and with it every commit before. Only for
        a transaction whose loss on power failure is harmless (the caller says why).
        """
        with self._lock:
            conn = self._conn
            if conn is None:
                raise JournalError(f"journal {self._path} is closed")
            if self._identity is not None:
                self._identity.check(self._path)
            changes = conn.total_changes
            try:
                try:
                    if not durable:
                        conn.execute("PRAGMA synchronous = NORMAL")
                    conn.execute("BEGIN IMMEDIATE")
                except sqlite3.Error as exc:
                    if not durable:
                        self._restore_full(conn)
                    raise translate(exc, self._path) from exc
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException as exc:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    if isinstance(exc, sqlite3.Error):
                        raise translate(exc, self._path) from exc
                    raise
                finally:
                    if not durable:
                        self._restore_full(conn)
            except JournalCannotRecord as exc:
                self.health.failed(exc)
                raise
            if conn.total_changes != changes:  # one that wrote nothing proves nothing
                self.health.recorded()
                c = self._commits
                self._commits = CommitCounts(c.commits + 1, c.synced + (1 if durable else 0))

    def _restore_full(self, conn: sqlite3.Connection) -> None:
        """Back to ``synchronous=FULL``, every other transaction's setting (a failure is
        logged: the one that raised is what the caller hears)."""
        try:
            conn.execute("PRAGMA synchronous = FULL")
        except sqlite3.Error as exc:
            LOGGER.error("journal %s: cannot set synchronous=FULL again: %s", self._path, exc)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            conn = self._conn
            if conn is None:
                raise JournalError(f"journal {self._path} is closed")
            try:
                return conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise translate(exc, self._path) from exc

    def _clock_now(self) -> datetime:
        """The journal clock's current time, in UTC."""
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("journal clock returned a naive datetime")
        return now.astimezone(UTC)

    def _now(self) -> str:
        return self._clock_now().isoformat()

    def _at(self, now: datetime | None) -> str:
        """``now`` (default: the journal clock) as stored text."""
        return self._now() if now is None else _utc_iso(now, "now")

    @staticmethod
    def _fetch_inbox(conn: sqlite3.Connection, inbox_id: int) -> InboxRow:
        row = conn.execute(
            f"SELECT {INBOX_COLUMNS} FROM inbox WHERE id = ?", (inbox_id,)
        ).fetchone()
        if row is None:
            raise JournalError(f"no inbox row {inbox_id}")
        return inbox_row(row)

    @staticmethod
    def _fetch_outbox(conn: sqlite3.Connection, outbox_id: int) -> OutboxRow:
        row = conn.execute(
            f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = ?", (outbox_id,)
        ).fetchone()
        if row is None:
            raise JournalError(f"no outbox row {outbox_id}")
        return outbox_row(row)

    def _insert_outbox(
        self,
        conn: sqlite3.Connection,
        inbox_id: int | None,
        destination: str,
        text: str,
        now: str,
    ) -> OutboxRow:
        """Queue ``text`` for ``destination`` in the caller's transaction ``conn``.

        Here, not in the outbox part, because :meth:`~device.journal.Journal.finish` queues
        the reply of an inbox row in the transaction that finishes it.
        """
        cursor = conn.execute(
            "INSERT INTO outbox (inbox_id, destination, text, state, attempts, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, 0, ?, ?)",
            (inbox_id, destination, text, OutboxState.QUEUED.value, now, now),
        )
        outbox_id = cursor.lastrowid
        if outbox_id is None:
            raise JournalError("insert into outbox returned no row id")
        return self._fetch_outbox(conn, outbox_id)

    def _recent(self, table: str, columns: str, limit: int | None) -> list[sqlite3.Row]:
        """The last ``limit`` rows of ``table`` (every row with None), in id order."""
        if limit is None:
            return self._query(f"SELECT {columns} FROM {table} ORDER BY id")
        if limit < 0:
            raise ValueError("limit must be >= 0")
        return self._query(
            f"SELECT {columns} FROM"
            f" (SELECT {columns} FROM {table} ORDER BY id DESC LIMIT ?) ORDER BY id",
            (limit,),
        )
