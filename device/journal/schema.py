"""The journal's schema: the append-only migrations, the column lists, and rows read back.

The schema version is kept in ``PRAGMA user_version``; :data:`MIGRATIONS` lists forward
migrations, applied in order by :func:`migrate`, one transaction each. A journal written
by a newer smscmd is refused, never touched. Times are stored as UTC ISO 8601 text (see
the package docstring), parsed back here into tz-aware datetimes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from device.errors import JournalError
from device.journal.rows import (
    AttemptOutcome,
    InboxRow,
    InboxState,
    OutboxAttempt,
    OutboxRow,
    OutboxState,
)

LOGGER = logging.getLogger(__name__)


def sql_list(values: Iterable[str]) -> str:
    """Trusted constants as an SQL list: ``'a', 'b'``."""
    return ", ".join(f"'{v}'" for v in values)


# Each migration spells out the states it allows: a migration derived from the enums would
# change whenever a state is added, and a released migration must never change.
_V1_INBOX_STATES = sql_list(("received", "running", "done", "failed", "refused", "undecodable"))
_V1_OUTBOX_STATES = sql_list(("queued", "sent", "failed"))
_V3_INBOX_STATES = sql_list(
    ("received", "running", "done", "failed", "refused", "undecodable", "incomplete")
)
_V3_ATTEMPT_OUTCOMES = sql_list(("sent", "failed", "uncertain"))
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
    # keys off (see migrate): dropping the old inbox must not touch outbox.inbox_id.
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
    # 4 → 5: what the decoder assumed or could not read (a JSON array of strings, NULL for
    # none) and the sender's type-of-address octet (23.040 §9.1.2.5), on the inbox and on
    # the parts held (whose notes the whole message gathers).
    (
        "ALTER TABLE inbox ADD COLUMN notes TEXT",
        "ALTER TABLE inbox ADD COLUMN sender_type INTEGER",
        "ALTER TABLE part ADD COLUMN notes TEXT",
    ),
    # 5 → 6: the MQTT publish queue (device/journal/publish.py), oldest id first.
    (
        """
        CREATE TABLE publish (
            id      INTEGER PRIMARY KEY AUTOINCREMENT,
            topic   TEXT    NOT NULL,
            payload TEXT    NOT NULL,
            retain  INTEGER NOT NULL CHECK (retain IN (0, 1)),
            qos     INTEGER NOT NULL CHECK (qos IN (0, 1, 2)),
            created TEXT    NOT NULL
        )
        """,
    ),
)

#: The schema version this code writes.
SCHEMA_VERSION = len(MIGRATIONS)

INBOX_COLUMNS = (
    "id, received_at, sender, timestamp, text, concat, storage, modem_index, state, on_modem,"
    " command, argument, reply, error, updated_at, notes, sender_type"
)
OUTBOX_COLUMNS = (
    "id, inbox_id, destination, text, state, attempts, mr, last_error, created_at, updated_at,"
    " next_attempt_at"
)
ATTEMPT_COLUMNS = "attempted_at, outcome, error, mr"


def notes_text(notes: Iterable[str]) -> str | None:
    """Notes as the journal stores them: a JSON array, None (NULL) for none."""
    listed = list(notes)
    return json.dumps(listed, ensure_ascii=False) if listed else None


def parse_notes(value: str | None) -> tuple[str, ...]:
    """Stored notes back as a tuple; NULL (and, defensively, anything not a JSON array
    of strings, which this code never writes) is no notes."""
    if value is None:
        return ()
    try:
        loaded = json.loads(value)
    except ValueError:
        return (value,)
    if not isinstance(loaded, list):
        return (value,)
    return tuple(str(n) for n in loaded)


def parse_dt(value: str | None) -> datetime | None:
    """A stored time (ISO 8601 text) as a datetime; None stays None."""
    return None if value is None else datetime.fromisoformat(value)


def inbox_row(r: sqlite3.Row) -> InboxRow:
    """An ``inbox`` row selected with :data:`INBOX_COLUMNS`."""
    received_at = parse_dt(r["received_at"])
    updated_at = parse_dt(r["updated_at"])
    if received_at is None or updated_at is None:  # NOT NULL columns; keeps mypy honest
        raise JournalError(f"inbox row {r['id']} has no time stamps")
    return InboxRow(
        id=r["id"],
        received_at=received_at,
        sender=r["sender"],
        timestamp=parse_dt(r["timestamp"]),
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
        notes=parse_notes(r["notes"]),
        sender_type=r["sender_type"],
    )


def outbox_row(r: sqlite3.Row) -> OutboxRow:
    """An ``outbox`` row selected with :data:`OUTBOX_COLUMNS`."""
    created_at = parse_dt(r["created_at"])
    updated_at = parse_dt(r["updated_at"])
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
        next_attempt_at=parse_dt(r["next_attempt_at"]),
    )


def attempt_row(r: sqlite3.Row) -> OutboxAttempt:
    """An ``outbox_attempt`` row selected with :data:`ATTEMPT_COLUMNS`."""
    attempted_at = parse_dt(r["attempted_at"])
    if attempted_at is None:
        raise JournalError("outbox attempt has no time stamp")
    return OutboxAttempt(
        attempted_at=attempted_at,
        outcome=AttemptOutcome(r["outcome"]),
        error=r["error"],
        mr=r["mr"],
    )


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the schema to :data:`SCHEMA_VERSION`, one transaction per migration.

    Foreign keys are off while migrating (the pragma cannot change inside a transaction):
    a table rebuild drops the old table, which with them on would first delete its rows
    and fail on the rows pointing at them. Instead each migration must pass
    ``PRAGMA foreign_key_check`` before it commits. Another process may migrate at the
    same time: the version is read again under the write lock, and a step already done
    is skipped.

    Raises JournalError for a journal newer than this code; sqlite3 errors propagate
    to :meth:`device.journal.Journal.open`, which translates them.
    """
    version = check_version(conn, path)
    if version == SCHEMA_VERSION:
        return
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        for target in range(version + 1, SCHEMA_VERSION + 1):
            conn.execute("BEGIN IMMEDIATE")
            try:
                if check_version(conn, path) >= target:
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


def check_version(conn: sqlite3.Connection, path: Path) -> int:
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
