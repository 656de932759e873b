"""The SQLite journal: inbox and outbox, each row with an explicit processing state.

The promise is *nothing lost, nothing run twice*:

* A received SMS is committed here (:meth:`Journal.record_incoming`) before the agent
  deletes it from the modem (then :meth:`Journal.mark_deleted`). A crash between the two
  leaves the message on the modem *and* in the journal; when it is read again,
  ``record_incoming`` recognises it by its dedupe key and returns the existing row
  with ``is_new=False``, so it is not executed a second time.
* An inbox row goes ``received → running → done | failed`` (or is ``refused`` /
  ``undecodable`` from the start). A row still ``running`` after a restart is resolved by
  the agent according to the handler's declared idempotency.
* A reply is queued in the outbox in the same transaction that finishes its inbox row
  (:meth:`Journal.finish`) and stays ``queued`` until the modem confirms it with a
  message reference (:meth:`Journal.mark_sent`).

All SQL of the project lives in this module. The schema version is kept in
``PRAGMA user_version``; :data:`MIGRATIONS` lists forward migrations, applied in order,
one transaction each. A journal written by a newer smscmd is refused, never touched.

Every :class:`sqlite3.Error` is translated into :class:`~device.errors.JournalError`.
Arguments that are programming errors (a naive datetime, a finish state other than
DONE/FAILED, a negative limit) raise :class:`ValueError`.

The API is synchronous: the agent calls it from its event loop, and each call is one short
transaction on a local file. Calls are serialised by a lock, so the object may also be
used from a worker thread.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from device.errors import JournalError

LOGGER = logging.getLogger(__name__)

#: How long a statement waits for a lock held by another connection (e.g. ``smscmd journal``).
BUSY_TIMEOUT_MS = 5000

#: Mode of the journal file and of the directory created for it.
FILE_MODE = 0o600
DIR_MODE = 0o700


class InboxState(enum.Enum):
    """Processing state of a received SMS."""

    RECEIVED = "received"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    REFUSED = "refused"
    UNDECODABLE = "undecodable"


class OutboxState(enum.Enum):
    """Processing state of an SMS to send."""

    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True, slots=True)
class InboxRow:
    """One received SMS.

    ``timestamp`` is the SMSC time stamp with its own offset (None when the modem gave
    none); ``received_at`` and ``updated_at`` are UTC. ``storage``/``index`` say where the
    message lay on the modem (None for a directly delivered ``+CMT`` message).
    """

    id: int
    received_at: datetime
    sender: str
    timestamp: datetime | None
    text: str
    storage: str | None
    index: int | None
    state: InboxState
    on_modem: bool
    command: str | None
    argument: str | None
    reply: str | None
    error: str | None
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: datetimes as ISO 8601 with offset, the state as its value."""
        return {
            "id": self.id,
            "received_at": _iso(self.received_at),
            "sender": self.sender,
            "timestamp": _iso(self.timestamp),
            "text": self.text,
            "storage": self.storage,
            "index": self.index,
            "state": self.state.value,
            "on_modem": self.on_modem,
            "command": self.command,
            "argument": self.argument,
            "reply": self.reply,
            "error": self.error,
            "updated_at": _iso(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One SMS to send; ``inbox_id`` is None for a message the agent originated."""

    id: int
    inbox_id: int | None
    destination: str
    text: str
    state: OutboxState
    attempts: int
    mr: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: datetimes as ISO 8601 with offset, the state as its value."""
        return {
            "id": self.id,
            "inbox_id": self.inbox_id,
            "destination": self.destination,
            "text": self.text,
            "state": self.state.value,
            "attempts": self.attempts,
            "mr": self.mr,
            "last_error": self.last_error,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }


def to_json(row: InboxRow | OutboxRow) -> dict[str, Any]:
    """Same as ``row.as_dict()``."""
    return row.as_dict()


# --------------------------------------------------------------------------- schema

_INBOX_STATES = ", ".join(f"'{s.value}'" for s in InboxState)
_OUTBOX_STATES = ", ".join(f"'{s.value}'" for s in OutboxState)

#: Forward migrations: ``MIGRATIONS[n]`` takes the schema from version n to n + 1.
#: Never edit a released entry; append a new one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 0 → 1: the tables.
    (
        f"""
        CREATE TABLE inbox (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            received_at TEXT    NOT NULL,
            sender      TEXT    NOT NULL,
            timestamp   TEXT,
            text        TEXT    NOT NULL,
            storage     TEXT,
            modem_index INTEGER,
            state       TEXT    NOT NULL CHECK (state IN ({_INBOX_STATES})),
            on_modem    INTEGER NOT NULL CHECK (on_modem IN (0, 1)),
            command     TEXT,
            argument    TEXT,
            reply       TEXT,
            error       TEXT,
            updated_at  TEXT    NOT NULL
        )
        """,
        f"""
        CREATE TABLE outbox (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            inbox_id    INTEGER REFERENCES inbox (id),
            destination TEXT    NOT NULL,
            text        TEXT    NOT NULL,
            state       TEXT    NOT NULL CHECK (state IN ({_OUTBOX_STATES})),
            attempts    INTEGER NOT NULL DEFAULT 0,
            mr          INTEGER,
            last_error  TEXT,
            created_at  TEXT    NOT NULL,
            updated_at  TEXT    NOT NULL
        )
        """,
    ),
    # 1 → 2: indexes for the dedupe look-up and the pending queues.
    (
        "CREATE INDEX inbox_on_modem ON inbox (sender, timestamp, storage, modem_index)"
        " WHERE on_modem = 1",
        "CREATE INDEX inbox_state ON inbox (state)",
        "CREATE INDEX outbox_state ON outbox (state)",
    ),
)

#: The schema version this code writes.
SCHEMA_VERSION = len(MIGRATIONS)

_INBOX_COLUMNS = (
    "id, received_at, sender, timestamp, text, storage, modem_index, state, on_modem,"
    " command, argument, reply, error, updated_at"
)
_OUTBOX_COLUMNS = (
    "id, inbox_id, destination, text, state, attempts, mr, last_error, created_at, updated_at"
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _parse_dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _inbox_row(r: sqlite3.Row) -> InboxRow:
    received_at = _parse_dt(r["received_at"])
    updated_at = _parse_dt(r["updated_at"])
    if received_at is None or updated_at is None:  # NOT NULL columns; keeps mypy honest
        raise JournalError(f"inbox row {r['id']} has no time stamps")
    return InboxRow(
        id=r["id"],
        received_at=received_at,
        sender=r["sender"],
        timestamp=_parse_dt(r["timestamp"]),
        text=r["text"],
        storage=r["storage"],
        index=r["modem_index"],
        state=InboxState(r["state"]),
        on_modem=bool(r["on_modem"]),
        command=r["command"],
        argument=r["argument"],
        reply=r["reply"],
        error=r["error"],
        updated_at=updated_at,
    )


def _outbox_row(r: sqlite3.Row) -> OutboxRow:
    created_at = _parse_dt(r["created_at"])
    updated_at = _parse_dt(r["updated_at"])
    if created_at is None or updated_at is None:
        raise JournalError(f"outbox row {r['id']} has no time stamps")
    return OutboxRow(
        id=r["id"],
        inbox_id=r["inbox_id"],
        destination=r["destination"],
        text=r["text"],
        state=OutboxState(r["state"]),
        attempts=r["attempts"],
        mr=r["mr"],
        last_error=r["last_error"],
        created_at=created_at,
        updated_at=updated_at,
    )


def _create_private_file(path: Path) -> None:
    """Create ``path`` with mode 0600 if missing, before sqlite opens it.

    ``O_CREAT`` with mode 0600 means there is no moment where the file is readable by
    others; an existing file keeps its mode. SQLite gives its ``-wal`` and ``-shm`` files
    the mode of the database file.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # a strict umask must not leave it unreadable to us
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- journal


class Journal:
    """The journal on one SQLite file. Create with :meth:`open`; use as a context manager."""

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

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> Journal:
        """Open (or create) the journal at ``path`` and migrate it to :data:`SCHEMA_VERSION`.

        Creates the parent directory (mode 0700) and the file (mode 0600) if missing.
        Raises JournalError when the file cannot be opened, is not an SQLite database,
        or was written by a newer smscmd (schema version above ours). ``clock`` returns
        the current time (tz-aware); tests use it to make time stamps predictable.
        """
        path = Path(path)
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
                check_same_thread=False,  # calls are serialised by Journal._lock
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
            conn.execute("PRAGMA foreign_keys = ON")
            _migrate(conn, path)
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            raise JournalError(f"cannot open journal {path}: {exc}") from exc
        except JournalError:
            if conn is not None:
                conn.close()
            raise
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

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: committed on success, rolled back otherwise.

        IMMEDIATE takes the write lock at once, so a read-then-write (the dedupe check,
        state checks) cannot race another writer.
        """
        with self._lock:
            conn = self._conn
            if conn is None:
                raise JournalError(f"journal {self._path} is closed")
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise JournalError(f"journal {self._path}: {exc}") from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise JournalError(f"journal {self._path}: {exc}") from exc
                raise

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            conn = self._conn
            if conn is None:
                raise JournalError(f"journal {self._path} is closed")
            try:
                return conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise JournalError(f"journal {self._path}: {exc}") from exc

    def _now(self) -> str:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("journal clock returned a naive datetime")
        return now.astimezone(UTC).isoformat()

    @staticmethod
    def _fetch_inbox(conn: sqlite3.Connection, inbox_id: int) -> InboxRow:
        row = conn.execute(
            f"SELECT {_INBOX_COLUMNS} FROM inbox WHERE id = ?", (inbox_id,)
        ).fetchone()
        if row is None:
            raise JournalError(f"no inbox row {inbox_id}")
        return _inbox_row(row)

    @staticmethod
    def _fetch_outbox(conn: sqlite3.Connection, outbox_id: int) -> OutboxRow:
        row = conn.execute(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE id = ?", (outbox_id,)
        ).fetchone()
        if row is None:
            raise JournalError(f"no outbox row {outbox_id}")
        return _outbox_row(row)

    # ------------------------------------------------------------------ inbox

    def record_incoming(
        self,
        *,
        sender: str,
        timestamp: datetime | None,
        text: str,
        storage: str | None,
        index: int | None,
        state: InboxState = InboxState.RECEIVED,
        error: str | None = None,
    ) -> tuple[InboxRow, bool]:
        """Commit a received SMS; returns ``(row, is_new)``.

        If a row with the same dedupe key ``(sender, timestamp, text, storage, index)``
        is still marked ``on_modem`` (None matches None), nothing is inserted and that
        row is returned with ``False``: the same message read again after a crash
        between this commit and the modem delete. After :meth:`mark_deleted`, an
        identical message is a new one and gets its own row.

        ``state`` may be RECEIVED, REFUSED or UNDECODABLE (``error`` says why); a
        ``timestamp`` must be tz-aware.
        """
        if state not in (InboxState.RECEIVED, InboxState.REFUSED, InboxState.UNDECODABLE):
            raise ValueError(f"an incoming message cannot start in state {state.value}")
        if timestamp is not None and timestamp.tzinfo is None:
            raise ValueError("the SMSC time stamp must be tz-aware")
        ts = _iso(timestamp)
        now = self._now()
        with self._transaction() as conn:
            existing = conn.execute(
                f"SELECT {_INBOX_COLUMNS} FROM inbox"
                " WHERE on_modem = 1 AND sender = ? AND timestamp IS ? AND text = ?"
                " AND storage IS ? AND modem_index IS ? ORDER BY id LIMIT 1",
                (sender, ts, text, storage, index),
            ).fetchone()
            if existing is not None:
                row = _inbox_row(existing)
                LOGGER.info("inbox %d: message read again from the modem, not new", row.id)
                return row, False
            cursor = conn.execute(
                "INSERT INTO inbox (received_at, sender, timestamp, text, storage, modem_index,"
                " state, on_modem, error, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
                (now, sender, ts, text, storage, index, state.value, error, now),
            )
            inbox_id = cursor.lastrowid
            if inbox_id is None:
                raise JournalError("insert into inbox returned no row id")
            return self._fetch_inbox(conn, inbox_id), True

    def mark_deleted(self, inbox_id: int) -> None:
        """Record that the message was deleted from the modem (``on_modem`` becomes False).

        Idempotent; JournalError for an unknown id.
        """
        with self._transaction() as conn:
            cursor = conn.execute(
                "UPDATE inbox SET on_modem = 0, updated_at = ? WHERE id = ?",
                (self._now(), inbox_id),
            )
            if cursor.rowcount == 0:
                raise JournalError(f"no inbox row {inbox_id}")

    def start(self, inbox_id: int, command: str, argument: str | None) -> InboxRow:
        """Mark the row RUNNING with its parsed command.

        Allowed from RECEIVED, or from RUNNING (a re-run after a crash); any other state
        raises JournalError, so a finished command is never started again.
        """
        with self._transaction() as conn:
            row = self._fetch_inbox(conn, inbox_id)
            if row.state not in (InboxState.RECEIVED, InboxState.RUNNING):
                raise JournalError(
                    f"inbox row {inbox_id} is {row.state.value}; only a received or "
                    "running row can be started"
                )
            conn.execute(
                "UPDATE inbox SET state = ?, command = ?, argument = ?, updated_at = ?"
                " WHERE id = ?",
                (InboxState.RUNNING.value, command, argument, self._now(), inbox_id),
            )
            return self._fetch_inbox(conn, inbox_id)

    def finish(
        self,
        inbox_id: int,
        *,
        reply: str | None,
        state: InboxState,
        error: str | None = None,
        reply_to: str | None = None,
    ) -> OutboxRow | None:
        """Close a command: set state, reply and error and queue the reply, atomically.

        ``state`` is DONE or FAILED (ValueError otherwise). The row must be RECEIVED or
        RUNNING (JournalError otherwise: a finished row is never answered twice). When
        both ``reply`` and ``reply_to`` are given, an outbox row is queued in the same
        transaction and returned; otherwise returns None.
        """
        if state not in (InboxState.DONE, InboxState.FAILED):
            raise ValueError(f"finish needs state done or failed, not {state.value}")
        now = self._now()
        with self._transaction() as conn:
            row = self._fetch_inbox(conn, inbox_id)
            if row.state not in (InboxState.RECEIVED, InboxState.RUNNING):
                raise JournalError(f"inbox row {inbox_id} is already {row.state.value}")
            conn.execute(
                "UPDATE inbox SET state = ?, reply = ?, error = ?, updated_at = ? WHERE id = ?",
                (state.value, reply, error, now, inbox_id),
            )
            if reply is None or reply_to is None:
                return None
            return self._insert_outbox(conn, inbox_id, reply_to, reply, now)

    def pending_inbox(self) -> list[InboxRow]:
        """Rows RECEIVED or RUNNING, oldest first: the work left after a restart."""
        rows = self._query(
            f"SELECT {_INBOX_COLUMNS} FROM inbox WHERE state IN (?, ?) ORDER BY id",
            (InboxState.RECEIVED.value, InboxState.RUNNING.value),
        )
        return [_inbox_row(r) for r in rows]

    def inbox(self, limit: int | None = 100) -> list[InboxRow]:
        """The most recent ``limit`` inbox rows (all with None), oldest first (0 → empty)."""
        if limit is None:
            return [
                _inbox_row(r)
                for r in self._query(f"SELECT {_INBOX_COLUMNS} FROM inbox ORDER BY id")
            ]
        if limit < 0:
            raise ValueError("limit must be >= 0")
        rows = self._query(
            f"SELECT {_INBOX_COLUMNS} FROM"
            f" (SELECT {_INBOX_COLUMNS} FROM inbox ORDER BY id DESC LIMIT ?) ORDER BY id",
            (limit,),
        )
        return [_inbox_row(r) for r in rows]

    def get_inbox(self, inbox_id: int) -> InboxRow | None:
        """The inbox row ``inbox_id``, or None."""
        rows = self._query(f"SELECT {_INBOX_COLUMNS} FROM inbox WHERE id = ?", (inbox_id,))
        return _inbox_row(rows[0]) if rows else None

    # ------------------------------------------------------------------ outbox

    def _insert_outbox(
        self,
        conn: sqlite3.Connection,
        inbox_id: int | None,
        destination: str,
        text: str,
        now: str,
    ) -> OutboxRow:
        cursor = conn.execute(
            "INSERT INTO outbox (inbox_id, destination, text, state, attempts, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, 0, ?, ?)",
            (inbox_id, destination, text, OutboxState.QUEUED.value, now, now),
        )
        outbox_id = cursor.lastrowid
        if outbox_id is None:
            raise JournalError("insert into outbox returned no row id")
        return self._fetch_outbox(conn, outbox_id)

    def queue_outgoing(self, destination: str, text: str) -> OutboxRow:
        """Queue a message the agent originates (``inbox_id`` None)."""
        now = self._now()
        with self._transaction() as conn:
            return self._insert_outbox(conn, None, destination, text, now)

    def mark_sent(self, outbox_id: int, mr: int) -> OutboxRow:
        """The modem accepted the message with reference ``mr``: SENT, attempts + 1.

        Only a QUEUED row can be marked (JournalError otherwise).
        """
        with self._transaction() as conn:
            row = self._fetch_outbox(conn, outbox_id)
            if row.state is not OutboxState.QUEUED:
                raise JournalError(f"outbox row {outbox_id} is {row.state.value}, not queued")
            conn.execute(
                "UPDATE outbox SET state = ?, mr = ?, attempts = attempts + 1, updated_at = ?"
                " WHERE id = ?",
                (OutboxState.SENT.value, mr, self._now(), outbox_id),
            )
            return self._fetch_outbox(conn, outbox_id)

    def mark_send_failed(self, outbox_id: int, error: str, *, final: bool) -> OutboxRow:
        """A send attempt failed: attempts + 1, ``last_error`` set.

        ``final`` → FAILED (no more attempts); otherwise the row stays QUEUED. Only a
        QUEUED row can be marked (JournalError otherwise).
        """
        state = OutboxState.FAILED if final else OutboxState.QUEUED
        with self._transaction() as conn:
            row = self._fetch_outbox(conn, outbox_id)
            if row.state is not OutboxState.QUEUED:
                raise JournalError(f"outbox row {outbox_id} is {row.state.value}, not queued")
            conn.execute(
                "UPDATE outbox SET state = ?, last_error = ?, attempts = attempts + 1,"
                " updated_at = ? WHERE id = ?",
                (state.value, error, self._now(), outbox_id),
            )
            return self._fetch_outbox(conn, outbox_id)

    def pending_outbox(self) -> list[OutboxRow]:
        """Rows still QUEUED, oldest first."""
        rows = self._query(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE state = ? ORDER BY id",
            (OutboxState.QUEUED.value,),
        )
        return [_outbox_row(r) for r in rows]

    def outbox(self, limit: int = 100) -> list[OutboxRow]:
        """The most recent ``limit`` outbox rows, oldest first (``limit=0`` → empty)."""
        if limit < 0:
            raise ValueError("limit must be >= 0")
        rows = self._query(
            f"SELECT {_OUTBOX_COLUMNS} FROM"
            f" (SELECT {_OUTBOX_COLUMNS} FROM outbox ORDER BY id DESC LIMIT ?) ORDER BY id",
            (limit,),
        )
        return [_outbox_row(r) for r in rows]

    def get_outbox(self, outbox_id: int) -> OutboxRow | None:
        """The outbox row ``outbox_id``, or None."""
        rows = self._query(f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE id = ?", (outbox_id,))
        return _outbox_row(rows[0]) if rows else None

    # ------------------------------------------------------------------ status

    def counts(self) -> dict[str, int]:
        """Rows per state, keyed ``inbox.<state>`` and ``outbox.<state>``; every state present."""
        result = {f"inbox.{s.value}": 0 for s in InboxState}
        result.update({f"outbox.{s.value}": 0 for s in OutboxState})
        for table in ("inbox", "outbox"):
            for r in self._query(f"SELECT state, COUNT(*) FROM {table} GROUP BY state"):
                result[f"{table}.{r[0]}"] = int(r[1])
        return result


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the schema to :data:`SCHEMA_VERSION`, one transaction per migration.

    Raises JournalError for a journal newer than this code; sqlite3 errors propagate
    to :meth:`Journal.open`, which translates them.
    """
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise JournalError(
            f"journal {path} has schema version {version}, but this smscmd understands "
            f"only up to version {SCHEMA_VERSION}; upgrade smscmd (the file was not changed)"
        )
    if version < 0:
        raise JournalError(f"journal {path} has an invalid schema version {version}")
    for target in range(version + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[target - 1]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {target}")
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        LOGGER.info("journal %s: migrated schema to version %d", path, target)
