"""The SQLite journal: inbox and outbox, each row with an explicit processing state.

The promise is *nothing lost, nothing run twice*. What this module guarantees, exactly:

**What is committed when.** Every method that writes is one ``BEGIN IMMEDIATE``
transaction. When it returns, everything it did is committed and on disk; when it
raises, none of it was written. That needs WAL mode with ``synchronous=FULL``: with
NORMAL, WAL commits are not synced one by one and a power loss may roll back the last
ones -- and a lost commit can be an SMS already deleted from the modem, gone for good
(see :meth:`Journal.open`). Nothing is ever half-done: a finished command and its queued reply, or a
send outcome and its attempt record, are committed together or not at all.

**Inbox.**

* :meth:`Journal.record_incoming` commits a received SMS before anything else happens to
  it. The caller must delete the message from the modem only *after* that call returned
  -- never before, never concurrently -- and then record the deletion with
  :meth:`Journal.mark_deleted`. A crash between the commit and the delete leaves the
  message on the modem *and* in the journal.
* Dedupe rule: a message is the one already journaled when a row with the same
  ``(sender, timestamp, text, concat, storage, index)`` exists (None matches None) and
  that row is still marked ``on_modem``. Then nothing is inserted and the existing row is
  returned, in whatever state it has reached, with ``is_new=False``: a message read again
  after the crash above is never executed a second time. Once the deletion is recorded, an
  identical message is a new one (the modem reuses indexes; a sender may repeat itself).
* States: ``received → running → done | failed``; ``refused``, ``undecodable`` and
  ``incomplete`` (a concatenated message whose parts never all arrived) are given at
  insert and are final. Only ``received`` and ``running`` rows are pending work.
  :meth:`Journal.start` is committed before the handler runs and :meth:`Journal.finish`
  after it; a crash in between leaves the row ``running``, and the agent resolves it by
  the handler's declared idempotency (run again, or fail it with ``error: interrupted``).
  A finished row is never started or finished again.

**Outbox.**

* A reply is queued by :meth:`Journal.finish` in the transaction that finishes its inbox
  row; an originated message by :meth:`Journal.queue_outgoing`. A row stays ``queued``
  until :meth:`Journal.mark_sent` (the modem returned a message reference) or a final
  :meth:`Journal.mark_send_failed`. A crash after the modem accepted a message but before
  ``mark_sent`` committed leaves it queued, so it is sent again: the one unavoidable window
  in which a reply may go out twice.
* Every attempt is recorded in ``outbox_attempt`` (sent, failed or uncertain), in the
  transaction that updates the row. A non-final failure keeps the row queued with a
  ``next_attempt_at`` (the caller's policy, e.g. the capped exponential
  :func:`device.retry.backoff`);
  :meth:`Journal.pending_outbox` returns only rows that are due, and
  :meth:`Journal.next_outbox_due` says when the next one will be.

**Retention.** :meth:`Journal.prune` deletes only finished rows older than a cut-off:
never a ``received``/``running`` row, a row still on the modem (it would defeat the
dedupe rule) or a ``queued`` outbox row.

All SQL of the project lives in this module. The schema version is kept in
``PRAGMA user_version``; :data:`MIGRATIONS` lists forward migrations, applied in order,
one transaction each. A journal written by a newer smscmd is refused, never touched.
The times the journal takes from its clock (``received_at``, ``updated_at``,
``next_attempt_at``, ``attempted_at``) are stored as UTC ISO 8601 text, which sorts in
time order (the optional fraction starts with ``.``, which sorts after the ``+`` of the
offset), so SQL compares them directly. The SMSC time stamp keeps its own offset and is
only ever compared for equality.

Every :class:`sqlite3.Error` is translated into :class:`~device.errors.JournalError`.
Arguments that are programming errors (a naive datetime, a finish state other than
DONE/FAILED, a negative limit or delay) raise :class:`ValueError`.

The API is synchronous: the agent calls it from its event loop, and each call is one short
transaction on a local file. Calls are serialised by a lock, so the object may also be
used from a worker thread.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import math
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from device.errors import JournalError
from device.retry import backoff as backoff  # noqa: PLC0414 (re-export; lives in device.retry)

LOGGER = logging.getLogger(__name__)

#: How long a statement waits for a lock held by another connection (e.g. ``smscmd journal``).
BUSY_TIMEOUT_MS = 5000

#: Mode of the journal file and of the directory created for it.
FILE_MODE = 0o600
DIR_MODE = 0o700

#: After a prune that deleted at least this many rows, the WAL file is truncated.
PRUNE_CHECKPOINT_ROWS = 1000


class InboxState(enum.Enum):
    """Processing state of a received SMS."""

    RECEIVED = "received"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    REFUSED = "refused"
    UNDECODABLE = "undecodable"
    #: A concatenated message whose parts never all arrived.
    INCOMPLETE = "incomplete"


class OutboxState(enum.Enum):
    """Processing state of an SMS to send."""

    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


class AttemptOutcome(enum.Enum):
    """How one send attempt ended; UNCERTAIN: it may have gone out (timeout, lost port)."""

    SENT = "sent"
    FAILED = "failed"
    UNCERTAIN = "uncertain"


#: Inbox states that are final: such a row is never started or finished again.
FINISHED_INBOX_STATES = frozenset(
    {
        InboxState.DONE,
        InboxState.FAILED,
        InboxState.REFUSED,
        InboxState.UNDECODABLE,
        InboxState.INCOMPLETE,
    }
)
#: Outbox states that are final.
FINISHED_OUTBOX_STATES = frozenset({OutboxState.SENT, OutboxState.FAILED})


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _utc_iso(value: datetime, what: str) -> str:
    """``value`` as the UTC ISO 8601 text the journal stores and compares."""
    if value.tzinfo is None:
        raise ValueError(f"{what} must be a tz-aware datetime")
    return value.astimezone(UTC).isoformat()


@dataclass(frozen=True, slots=True)
class InboxRow:
    """One received SMS.

    ``timestamp`` is the SMSC time stamp with its own offset (None when the modem gave
    none); ``received_at`` and ``updated_at`` are UTC. ``storage``/``index`` say where the
    message lay on the modem (None for a directly delivered ``+CMT`` message). ``concat``
    is last and defaulted so that positional construction written before it still works.
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
    #: Concatenation info of a multipart message (e.g. ``"ref/total/seq"``), else None.
    concat: str | None = None

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
            "concat": self.concat,
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
    """One SMS to send; ``inbox_id`` is None for a message the agent originated.

    ``next_attempt_at`` (UTC) is when a QUEUED row is due again after a failed attempt;
    None means due now (never tried, or retried at once) and is the value of finished rows.
    """

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
    next_attempt_at: datetime | None = None

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
            "next_attempt_at": _iso(self.next_attempt_at),
        }


@dataclass(frozen=True, slots=True)
class OutboxAttempt:
    """One try to send an outbox row; ``mr`` is the message reference when SENT."""

    attempted_at: datetime
    outcome: AttemptOutcome
    error: str | None
    mr: int | None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the time as ISO 8601 with offset, the outcome as its value."""
        return {
            "attempted_at": _iso(self.attempted_at),
            "outcome": self.outcome.value,
            "error": self.error,
            "mr": self.mr,
        }


def to_json(row: InboxRow | OutboxRow) -> dict[str, Any]:
    """Same as ``row.as_dict()``."""
    return row.as_dict()


# --------------------------------------------------------------------------- schema


def _sql_list(values: Iterable[str]) -> str:
    """Trusted constants as an SQL list: ``'a', 'b'``."""
    return ", ".join(f"'{v}'" for v in values)


# Each migration spells out the states it allows: a migration derived from the enums would
# change whenever a state is added, and a released migration must never change.
_V1_INBOX_STATES = _sql_list(("received", "running", "done", "failed", "refused", "undecodable"))
_V1_OUTBOX_STATES = _sql_list(("queued", "sent", "failed"))
_V3_INBOX_STATES = _sql_list(
    ("received", "running", "done", "failed", "refused", "undecodable", "incomplete")
)
_V3_ATTEMPT_OUTCOMES = _sql_list(("sent", "failed", "uncertain"))
_V2_INBOX_COLUMNS = (
    "id, received_at, sender, timestamp, text, storage, modem_index, state, on_modem,"
    " command, argument, reply, error, updated_at"
)

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
            state       TEXT    NOT NULL CHECK (state IN ({_V1_INBOX_STATES})),
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
            state       TEXT    NOT NULL CHECK (state IN ({_V1_OUTBOX_STATES})),
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
    # 2 → 3: inbox state 'incomplete' and column concat (SQLite cannot alter a CHECK
    # constraint, so the inbox is rebuilt: ids, and the AUTOINCREMENT sequence with them,
    # are kept); outbox retry schedule and one row per send attempt. Runs with foreign
    # keys off (see _migrate): dropping the old inbox must not touch outbox.inbox_id.
    (
        f"""
        CREATE TABLE inbox_v3 (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            received_at TEXT    NOT NULL,
            sender      TEXT    NOT NULL,
            timestamp   TEXT,
            text        TEXT    NOT NULL,
            concat      TEXT,
            storage     TEXT,
            modem_index INTEGER,
            state       TEXT    NOT NULL CHECK (state IN ({_V3_INBOX_STATES})),
            on_modem    INTEGER NOT NULL CHECK (on_modem IN (0, 1)),
            command     TEXT,
            argument    TEXT,
            reply       TEXT,
            error       TEXT,
            updated_at  TEXT    NOT NULL
        )
        """,
        f"INSERT INTO inbox_v3 ({_V2_INBOX_COLUMNS}) SELECT {_V2_INBOX_COLUMNS} FROM inbox",
        # Hand the old table's sequence to the new one, so that the id of a row deleted
        # before the migration is never given out again.
        "DELETE FROM sqlite_sequence WHERE name = 'inbox_v3'",
        "UPDATE sqlite_sequence SET name = 'inbox_v3' WHERE name = 'inbox'",
        "DROP TABLE inbox",  # drops its indexes too
        "ALTER TABLE inbox_v3 RENAME TO inbox",
        "CREATE INDEX inbox_on_modem ON inbox (sender, timestamp, storage, modem_index)"
        " WHERE on_modem = 1",
        "CREATE INDEX inbox_state ON inbox (state)",
        "ALTER TABLE outbox ADD COLUMN next_attempt_at TEXT",
        "CREATE INDEX outbox_inbox ON outbox (inbox_id)",
        f"""
        CREATE TABLE outbox_attempt (
            id           INTEGER PRIMARY KEY AUTOINCREMENT,
            outbox_id    INTEGER NOT NULL REFERENCES outbox (id),
            attempted_at TEXT    NOT NULL,
            outcome      TEXT    NOT NULL CHECK (outcome IN ({_V3_ATTEMPT_OUTCOMES})),
            error        TEXT,
            mr           INTEGER
        )
        """,
        "CREATE INDEX outbox_attempt_outbox ON outbox_attempt (outbox_id)",
    ),
    # 3 → 4: parts of concatenated messages, kept until the message is whole (or expires).
    (
        """
        CREATE TABLE part (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            received_at TEXT    NOT NULL,
            sender      TEXT    NOT NULL,
            reference   INTEGER NOT NULL,
            total       INTEGER NOT NULL,
            sequence    INTEGER NOT NULL,
            text        TEXT    NOT NULL,
            timestamp   TEXT,
            UNIQUE (sender, reference, total, sequence)
        )
        """,
    ),
)

#: The schema version this code writes.
SCHEMA_VERSION = len(MIGRATIONS)

_INBOX_COLUMNS = (
    "id, received_at, sender, timestamp, text, concat, storage, modem_index, state, on_modem,"
    " command, argument, reply, error, updated_at"
)
_OUTBOX_COLUMNS = (
    "id, inbox_id, destination, text, state, attempts, mr, last_error, created_at, updated_at,"
    " next_attempt_at"
)
_ATTEMPT_COLUMNS = "attempted_at, outcome, error, mr"
_FINISHED_INBOX = _sql_list(sorted(s.value for s in FINISHED_INBOX_STATES))
_FINISHED_OUTBOX = _sql_list(sorted(s.value for s in FINISHED_OUTBOX_STATES))


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
        concat=r["concat"],
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
        next_attempt_at=_parse_dt(r["next_attempt_at"]),
    )


def _attempt_row(r: sqlite3.Row) -> OutboxAttempt:
    attempted_at = _parse_dt(r["attempted_at"])
    if attempted_at is None:
        raise JournalError("outbox attempt has no time stamp")
    return OutboxAttempt(
        attempted_at=attempted_at,
        outcome=AttemptOutcome(r["outcome"]),
        error=r["error"],
        mr=r["mr"],
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
        readonly: bool = False,
    ) -> Journal:
        """Open (or create) the journal at ``path`` and migrate it to :data:`SCHEMA_VERSION`.

        With ``readonly`` (``smscmd journal`` beside a running agent) nothing is created,
        migrated or written: a missing file, or one at another schema version, is a
        JournalError.

        Creates the parent directory (mode 0700) and the file (mode 0600) if missing.
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

    @classmethod
    def _open_readonly(cls, path: Path, clock: Callable[[], datetime] | None) -> Journal:
        if not path.exists():
            raise JournalError(f"{path} does not exist (has the agent run yet?)")
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro",
                uri=True,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.row_factory = sqlite3.Row
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            raise JournalError(f"cannot read journal {path}: {exc}") from exc
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
        concat: str | None = None,
    ) -> tuple[InboxRow, bool]:
        """Commit a received SMS; returns ``(row, is_new)``. Delete it from the modem after.

        If a row with the same dedupe key ``(sender, timestamp, text, concat, storage,
        index)`` is still marked ``on_modem`` (None matches None), nothing is inserted and
        that row is returned with ``False``: the same message read again after a crash
        between this commit and the modem delete. After :meth:`mark_deleted`, an
        identical message is a new one and gets its own row.

        ``concat`` is the concatenation info of one part of a multipart message (e.g.
        ``"ref/total/seq"``), None for a single message. ``state`` may be RECEIVED,
        REFUSED, UNDECODABLE or INCOMPLETE (``error`` says why); a ``timestamp`` must be
        tz-aware.
        """
        if state not in (
            InboxState.RECEIVED,
            InboxState.REFUSED,
            InboxState.UNDECODABLE,
            InboxState.INCOMPLETE,
        ):
            raise ValueError(f"an incoming message cannot start in state {state.value}")
        if timestamp is not None and timestamp.tzinfo is None:
            raise ValueError("the SMSC time stamp must be tz-aware")
        ts = _iso(timestamp)
        now = self._now()
        with self._transaction() as conn:
            existing = conn.execute(
                f"SELECT {_INBOX_COLUMNS} FROM inbox"
                " WHERE on_modem = 1 AND sender = ? AND timestamp IS ? AND text = ?"
                " AND concat IS ? AND storage IS ? AND modem_index IS ? ORDER BY id LIMIT 1",
                (sender, ts, text, concat, storage, index),
            ).fetchone()
            if existing is not None:
                row = _inbox_row(existing)
                LOGGER.info("inbox %d: message read again from the modem, not new", row.id)
                return row, False
            cursor = conn.execute(
                "INSERT INTO inbox (received_at, sender, timestamp, text, concat, storage,"
                " modem_index, state, on_modem, error, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
                (now, sender, ts, text, concat, storage, index, state.value, error, now),
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

    # ------------------------------------------------------------------ multipart

    def add_part(
        self,
        *,
        sender: str,
        reference: int,
        total: int,
        sequence: int,
        text: str,
        timestamp: datetime | None,
    ) -> bool:
        """Commit one part of a concatenated message; False for a part already held.

        Parts are keyed by (sender, reference, total, sequence): interleaved messages
        from one sender stay apart, and a part delivered or read twice counts once.
        """
        if not 1 <= sequence <= total:
            raise ValueError(f"part {sequence} of {total}")
        with self._transaction() as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO part (received_at, sender, reference, total, sequence,"
                " text, timestamp) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (self._now(), sender, reference, total, sequence, text, _iso(timestamp)),
            )
            return cursor.rowcount == 1

    def complete_multipart(
        self,
        *,
        sender: str,
        reference: int,
        total: int,
        state: InboxState = InboxState.RECEIVED,
        error: str | None = None,
    ) -> InboxRow | None:
        """When every part is held: one inbox row with the whole text (the parts are
        deleted in the same transaction); None while parts are missing."""
        with self._transaction() as conn:
            parts = conn.execute(
                "SELECT sequence, text, timestamp FROM part"
                " WHERE sender = ? AND reference = ? AND total = ? ORDER BY sequence",
                (sender, reference, total),
            ).fetchall()
            if len(parts) < total:
                return None
            text = "".join(p["text"] for p in parts)
            return self._insert_multipart(
                conn,
                sender=sender,
                reference=reference,
                total=total,
                timestamp=parts[0]["timestamp"],
                text=text,
                state=state,
                error=error,
            )

    def expire_parts(self, older_than: datetime) -> list[InboxRow]:
        """Messages whose first part arrived before ``older_than`` and are still not
        whole: journaled as INCOMPLETE (the parts held, with a visible marker for each
        missing one), never dropped silently."""
        rows: list[InboxRow] = []
        with self._transaction() as conn:
            groups = conn.execute(
                "SELECT sender, reference, total FROM part GROUP BY sender, reference, total"
                " HAVING MIN(received_at) < ?",
                (_utc_iso(older_than, "older_than"),),
            ).fetchall()
            for g in groups:
                parts = {
                    p["sequence"]: p
                    for p in conn.execute(
                        "SELECT sequence, text, timestamp FROM part"
                        " WHERE sender = ? AND reference = ? AND total = ?",
                        (g["sender"], g["reference"], g["total"]),
                    )
                }
                text = "".join(
                    parts[n]["text"] if n in parts else f"[part {n} missing]"
                    for n in range(1, g["total"] + 1)
                )
                first = min(parts)
                missing = g["total"] - len(parts)
                rows.append(
                    self._insert_multipart(
                        conn,
                        sender=g["sender"],
                        reference=g["reference"],
                        total=g["total"],
                        timestamp=parts[first]["timestamp"],
                        text=text,
                        state=InboxState.INCOMPLETE,
                        error=f"{missing} of {g['total']} parts never arrived",
                    )
                )
        return rows

    def _insert_multipart(
        self,
        conn: sqlite3.Connection,
        *,
        sender: str,
        reference: int,
        total: int,
        timestamp: str | None,
        text: str,
        state: InboxState,
        error: str | None,
    ) -> InboxRow:
        now = self._now()
        cursor = conn.execute(
            "INSERT INTO inbox (received_at, sender, timestamp, text, concat, storage,"
            " modem_index, state, on_modem, error, updated_at)"
            " VALUES (?, ?, ?, ?, ?, NULL, NULL, ?, 0, ?, ?)",
            (now, sender, timestamp, text, f"{reference}/{total}", state.value, error, now),
        )
        conn.execute(
            "DELETE FROM part WHERE sender = ? AND reference = ? AND total = ?",
            (sender, reference, total),
        )
        if cursor.lastrowid is None:
            raise JournalError("insert into inbox returned no row id")
        return self._fetch_inbox(conn, cursor.lastrowid)

    def forget_absent(self, storage: str, present: Iterable[int]) -> int:
        """After a full listing of ``storage``: rows still marked on the modem whose index
        was not listed are not there any more (the agent died between the delete and
        :meth:`mark_deleted`). Clearing them keeps the dedupe rule from taking a later,
        identical message at the same index for a re-read. Returns the rows changed."""
        listed = sorted(set(present))
        marks = ",".join("?" * len(listed))
        where = f" AND modem_index NOT IN ({marks})" if listed else ""
        with self._transaction() as conn:
            cursor = conn.execute(
                "UPDATE inbox SET on_modem = 0, updated_at = ?"
                f" WHERE on_modem = 1 AND storage = ?{where}",
                (self._now(), storage, *listed),
            )
            return cursor.rowcount

    def reschedule_outbox(self, latest: datetime) -> int:
        """Make every queued row due later than ``latest`` due now (after the wall clock
        jumped backwards, a retry must not wait for the clock to catch up)."""
        with self._transaction() as conn:
            cursor = conn.execute(
                "UPDATE outbox SET next_attempt_at = NULL, updated_at = ?"
                " WHERE state = ? AND next_attempt_at > ?",
                (self._now(), OutboxState.QUEUED.value, self._at(latest)),
            )
            return cursor.rowcount

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
        return [_inbox_row(r) for r in self._recent("inbox", _INBOX_COLUMNS, limit)]

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

    @staticmethod
    def _insert_attempt(
        conn: sqlite3.Connection,
        outbox_id: int,
        at: str,
        *,
        outcome: AttemptOutcome,
        error: str | None,
        mr: int | None,
    ) -> None:
        conn.execute(
            "INSERT INTO outbox_attempt (outbox_id, attempted_at, outcome, error, mr)"
            " VALUES (?, ?, ?, ?, ?)",
            (outbox_id, at, outcome.value, error, mr),
        )

    def _fetch_queued(self, conn: sqlite3.Connection, outbox_id: int) -> OutboxRow:
        row = self._fetch_outbox(conn, outbox_id)
        if row.state is not OutboxState.QUEUED:
            raise JournalError(f"outbox row {outbox_id} is {row.state.value}, not queued")
        return row

    def mark_sent(self, outbox_id: int, mr: int) -> OutboxRow:
        """The modem accepted the message with reference ``mr``: SENT, attempts + 1.

        Records a SENT attempt in the same transaction. Only a QUEUED row can be marked
        (JournalError otherwise), so a row is marked sent at most once.
        """
        now = self._now()
        with self._transaction() as conn:
            self._fetch_queued(conn, outbox_id)
            conn.execute(
                "UPDATE outbox SET state = ?, mr = ?, attempts = attempts + 1,"
                " next_attempt_at = NULL, updated_at = ? WHERE id = ?",
                (OutboxState.SENT.value, mr, now, outbox_id),
            )
            self._insert_attempt(
                conn, outbox_id, now, outcome=AttemptOutcome.SENT, error=None, mr=mr
            )
            return self._fetch_outbox(conn, outbox_id)

    def mark_send_failed(
        self,
        outbox_id: int,
        error: str,
        *,
        final: bool,
        retry_in: float | None = None,
        uncertain: bool = False,
    ) -> OutboxRow:
        """A send attempt failed: attempts + 1, ``last_error`` set, the attempt recorded.

        The attempt is recorded UNCERTAIN when ``uncertain`` (the message may have gone
        out), else FAILED. ``final`` → FAILED (no more attempts; ``retry_in`` is ignored).
        Otherwise the row stays QUEUED and is due again ``retry_in`` seconds from now
        (None → due at once). Only a QUEUED row can be marked (JournalError otherwise);
        a negative or non-finite ``retry_in`` is a ValueError.
        """
        if retry_in is not None and not (math.isfinite(retry_in) and retry_in >= 0):
            raise ValueError(f"retry_in must be a finite number >= 0, not {retry_in!r}")
        now = self._clock_now()
        next_attempt_at: str | None = None
        if not final and retry_in is not None:
            try:
                next_attempt_at = (now + timedelta(seconds=retry_in)).isoformat()
            except OverflowError as exc:
                raise ValueError(f"retry_in {retry_in!r} is too far in the future") from exc
        state = OutboxState.FAILED if final else OutboxState.QUEUED
        outcome = AttemptOutcome.UNCERTAIN if uncertain else AttemptOutcome.FAILED
        with self._transaction() as conn:
            self._fetch_queued(conn, outbox_id)
            conn.execute(
                "UPDATE outbox SET state = ?, last_error = ?, attempts = attempts + 1,"
                " next_attempt_at = ?, updated_at = ? WHERE id = ?",
                (state.value, error, next_attempt_at, now.isoformat(), outbox_id),
            )
            self._insert_attempt(
                conn, outbox_id, now.isoformat(), outcome=outcome, error=error, mr=None
            )
            return self._fetch_outbox(conn, outbox_id)

    def pending_outbox(self, now: datetime | None = None) -> list[OutboxRow]:
        """QUEUED rows that are due at ``now`` (default: the journal clock), oldest first.

        Due: never failed, retried at once, or ``next_attempt_at <= now``.
        """
        rows = self._query(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE state = ?"
            " AND (next_attempt_at IS NULL OR next_attempt_at <= ?) ORDER BY id",
            (OutboxState.QUEUED.value, self._at(now)),
        )
        return [_outbox_row(r) for r in rows]

    def next_outbox_due(self, now: datetime | None = None) -> datetime | None:
        """When the earliest QUEUED row that is not yet due at ``now`` becomes due (UTC).

        None when no queued row waits for its retry time (rows already due are what
        :meth:`pending_outbox` returns). Pass the same ``now`` to both so that no row
        falls between them.
        """
        rows = self._query(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE state = ? AND next_attempt_at > ?",
            (OutboxState.QUEUED.value, self._at(now)),
        )
        return _parse_dt(rows[0][0]) if rows else None

    def attempts_of(self, outbox_id: int) -> list[OutboxAttempt]:
        """Every send attempt of outbox row ``outbox_id``, oldest first ([] when none)."""
        rows = self._query(
            f"SELECT {_ATTEMPT_COLUMNS} FROM outbox_attempt WHERE outbox_id = ? ORDER BY id",
            (outbox_id,),
        )
        return [_attempt_row(r) for r in rows]

    def outbox(self, limit: int | None = 100) -> list[OutboxRow]:
        """The most recent ``limit`` outbox rows (all with None), oldest first (0 → empty)."""
        return [_outbox_row(r) for r in self._recent("outbox", _OUTBOX_COLUMNS, limit)]

    def get_outbox(self, outbox_id: int) -> OutboxRow | None:
        """The outbox row ``outbox_id``, or None."""
        rows = self._query(f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE id = ?", (outbox_id,))
        return _outbox_row(rows[0]) if rows else None

    # ------------------------------------------------------------------ retention

    def prune(self, *, older_than: datetime, keep_last: int = 0) -> int:
        """Delete finished rows last changed before ``older_than``; returns rows deleted.

        An inbox row goes when it is finished (done, failed, refused, undecodable,
        incomplete), no longer on the modem, updated before ``older_than``, not among the
        ``keep_last`` most recent inbox rows (whatever their state), and every outbox row
        of it is finished (sent or failed) and updated before ``older_than`` too; its
        outbox rows and their attempts go with it. An originated outbox row (no inbox
        row) goes when finished and updated before ``older_than``, with its attempts.
        Nothing else is touched: no pending or on-modem inbox row, no queued outbox row.

        The count is of all rows deleted (inbox, outbox and attempts), in one
        transaction. ValueError for a naive ``older_than`` or a negative ``keep_last``.
        """
        if keep_last < 0:
            raise ValueError("keep_last must be >= 0")
        cutoff = _utc_iso(older_than, "older_than")
        with self._transaction() as conn:
            inbox_ids = [
                r[0]
                for r in conn.execute(
                    f"SELECT i.id FROM inbox AS i WHERE i.state IN ({_FINISHED_INBOX})"
                    " AND i.on_modem = 0 AND i.updated_at < :cutoff"
                    " AND i.id NOT IN (SELECT id FROM inbox ORDER BY id DESC LIMIT :keep)"
                    " AND NOT EXISTS (SELECT 1 FROM outbox AS o WHERE o.inbox_id = i.id"
                    f" AND (o.state NOT IN ({_FINISHED_OUTBOX}) OR o.updated_at >= :cutoff))"
                    " ORDER BY i.id",
                    {"cutoff": cutoff, "keep": keep_last},
                )
            ]
            outbox_ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM outbox WHERE inbox_id IS NULL"
                    f" AND state IN ({_FINISHED_OUTBOX}) AND updated_at < ?",
                    (cutoff,),
                )
            ]
            for inbox_id in inbox_ids:
                outbox_ids.extend(
                    r[0]
                    for r in conn.execute("SELECT id FROM outbox WHERE inbox_id = ?", (inbox_id,))
                )
            attempts = conn.executemany(
                "DELETE FROM outbox_attempt WHERE outbox_id = ?", [(i,) for i in outbox_ids]
            ).rowcount
            conn.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in outbox_ids])
            conn.executemany("DELETE FROM inbox WHERE id = ?", [(i,) for i in inbox_ids])
        total = len(inbox_ids) + len(outbox_ids) + attempts
        if total:
            LOGGER.info(
                "journal %s: pruned %d inbox, %d outbox and %d attempt rows older than %s",
                self._path,
                len(inbox_ids),
                len(outbox_ids),
                attempts,
                cutoff,
            )
        if total >= PRUNE_CHECKPOINT_ROWS:
            # Give the WAL file back: it grew to hold the whole delete. Waits (up to the
            # busy timeout) for readers; if they stay, the WAL is reused instead.
            busy = self._query("PRAGMA wal_checkpoint(TRUNCATE)")[0][0]
            if busy:
                LOGGER.debug("journal %s: WAL not truncated, a reader is active", self._path)
        return total

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

    Foreign keys are off while migrating (the pragma cannot change inside a transaction):
    a table rebuild drops the old table, which with them on would first delete its rows
    and fail on the rows pointing at them. Instead each migration must pass
    ``PRAGMA foreign_key_check`` before it commits. Another process may migrate at the
    same time: the version is read again under the write lock, and a step already done
    is skipped.

    Raises JournalError for a journal newer than this code; sqlite3 errors propagate
    to :meth:`Journal.open`, which translates them.
    """
    version = _check_version(conn, path)
    if version == SCHEMA_VERSION:
        return
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        for target in range(version + 1, SCHEMA_VERSION + 1):
            conn.execute("BEGIN IMMEDIATE")
            try:
                if _check_version(conn, path) >= target:
                    conn.execute("COMMIT")
                    continue
                for statement in MIGRATIONS[target - 1]:
                    conn.execute(statement)
                broken = conn.execute("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise JournalError(
                        f"journal {path}: migration to version {target} would leave "
                        f"{len(broken)} dangling references (first: {tuple(broken[0])})"
                    )
                conn.execute(f"PRAGMA user_version = {target}")
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
            LOGGER.info("journal %s: migrated schema to version %d", path, target)
    finally:
        conn.execute("PRAGMA foreign_keys = ON")


def _check_version(conn: sqlite3.Connection, path: Path) -> int:
    """The file's schema version; JournalError when this code cannot handle it."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise JournalError(
            f"journal {path} has schema version {version}, but this smscmd understands "
            f"only up to version {SCHEMA_VERSION}; upgrade smscmd (the file was not changed)"
        )
    if version < 0:
        raise JournalError(f"journal {path} has an invalid schema version {version}")
    return version
