"""The SQLite journal on real files: durability settings, dedupe, atomic finish, migrations,
outbox retry schedule and attempts, retention."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import device.journal.retention
from device.errors import JournalError
from device.journal import (
    MIGRATIONS,
    SCHEMA_VERSION,
    AttemptOutcome,
    InboxRow,
    InboxState,
    Journal,
    OutboxAttempt,
    OutboxState,
    to_json,
)
from device.journal.rows import _utc_iso
from device.retry import backoff

SMSC_TS = datetime(2026, 11, 25, 10, 0, 0, tzinfo=timezone(timedelta(hours=1)))
T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


class FakeClock:
    """The journal clock in tests: stands still until advanced."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "journal.sqlite3"


@pytest.fixture
def journal(path: Path) -> Iterator[Journal]:
    with Journal.open(path) as j:
        yield j


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def clocked(path: Path, clock: FakeClock) -> Iterator[Journal]:
    """A journal whose time only moves when the test advances ``clock``."""
    with Journal.open(path, clock=clock) as j:
        yield j


def _incoming(j: Journal, text: str = "ping", **kw: object) -> tuple[InboxRow, bool]:
    args: dict[str, object] = {
        "sender": "000",
        "timestamp": SMSC_TS,
        "text": text,
        "storage": "SM",
        "index": 3,
    }
    args.update(kw)
    return j.record_incoming(**args)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- opening


def test_creates_parent_dir_and_group_readable_file(path: Path, journal: Journal) -> None:
    """0640, and the -wal/-shm too: the agent writes, its group (operators) reads (issue 13)."""
    assert path.parent.is_dir()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    _incoming(journal)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        assert side.exists() and stat.S_IMODE(side.stat().st_mode) == 0o640


def test_group_readable_whatever_the_umask(tmp_path: Path) -> None:
    """A permissive umask gives others nothing; a strict one (0077) does not keep the
    group out; a journal left 0600 by an older smscmd is opened up to 0640."""
    for umask in (0, 0o077):
        old = os.umask(umask)
        try:
            with Journal.open(tmp_path / f"j{umask}.sqlite3") as journal:
                _incoming(journal)
                for suffix in ("", "-wal", "-shm"):
                    mode = (tmp_path / f"j{umask}.sqlite3{suffix}").stat().st_mode
                    assert stat.S_IMODE(mode) == 0o640, (umask, suffix)
        finally:
            os.umask(old)
    older = tmp_path / "j0.sqlite3"
    older.chmod(0o600)
    with Journal.open(older):
        pass
    assert stat.S_IMODE(older.stat().st_mode) == 0o640


def test_wal_mode_and_schema_version(path: Path, journal: Journal) -> None:
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        raw.close()


def test_synchronous_full(journal: Journal) -> None:
    conn = journal._conn
    assert conn is not None
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_reopen_persists(path: Path) -> None:
    with Journal.open(path) as j:
        _incoming(j)
        j.queue_outgoing("000", "hello")
    with Journal.open(path) as j:
        assert [r.text for r in j.inbox()] == ["ping"]
        assert [r.text for r in j.pending_outbox()] == ["hello"]
        again = j.get_inbox(1)
        assert again is not None and again.timestamp == SMSC_TS


def test_corrupt_file_is_journal_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(bytes(range(256)) * 4 + b"this is not a database" * 200)
    with pytest.raises(JournalError, match=r"bad\.sqlite3") as info:
        Journal.open(bad)
    assert isinstance(info.value.__cause__, sqlite3.Error)


def test_directory_in_place_of_file(tmp_path: Path) -> None:
    (tmp_path / "dir.sqlite3").mkdir()
    with pytest.raises(JournalError):
        Journal.open(tmp_path / "dir.sqlite3")


def test_parent_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(JournalError):
        Journal.open(tmp_path / "file" / "j.sqlite3")


def test_closed_journal_raises(path: Path) -> None:
    j = Journal.open(path)
    j.close()
    j.close()  # twice is fine
    with pytest.raises(JournalError, match="closed"):
        j.pending_inbox()
    with pytest.raises(JournalError, match="closed"):
        j.queue_outgoing("000", "x")


# --------------------------------------------------------------------------- migrations


def _build_version_1(path: Path) -> None:
    """A journal as the first release wrote it: tables, no indexes, user_version 1."""
    raw = sqlite3.connect(path)
    try:
        raw.execute(
            "CREATE TABLE inbox (id INTEGER PRIMARY KEY AUTOINCREMENT, received_at TEXT NOT NULL,"
            " sender TEXT NOT NULL, timestamp TEXT, text TEXT NOT NULL, storage TEXT,"
            " modem_index INTEGER, state TEXT NOT NULL, on_modem INTEGER NOT NULL,"
            " command TEXT, argument TEXT, reply TEXT, error TEXT, updated_at TEXT NOT NULL)"
        )
        raw.execute(
            "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, inbox_id INTEGER,"
            " destination TEXT NOT NULL, text TEXT NOT NULL, state TEXT NOT NULL,"
            " attempts INTEGER NOT NULL DEFAULT 0, mr INTEGER, last_error TEXT,"
            " created_at TEXT NOT NULL, updated_at TEXT NOT NULL)"
        )
        raw.execute(
            "INSERT INTO inbox (received_at, sender, timestamp, text, storage, modem_index,"
            " state, on_modem, updated_at) VALUES ('2026-01-01T00:00:00+00:00', '000',"
            " '2026-01-01T01:00:00+01:00', 'old ping', 'SM', 1, 'received', 1,"
            " '2026-01-01T00:00:00+00:00')"
        )
        raw.execute("PRAGMA user_version = 1")
        raw.commit()
    finally:
        raw.close()


def test_migrates_old_version(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    _build_version_1(path)
    with Journal.open(path) as j:
        [row] = j.pending_inbox()
        assert row.text == "old ping"
        assert row.timestamp == datetime(2026, 1, 1, tzinfo=UTC)
        # dedupe works against the migrated row
        _, new = j.record_incoming(
            sender="000",
            timestamp=row.timestamp,
            text="old ping",
            storage="SM",
            index=1,
        )
        assert not new
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        indexes = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert {"inbox_on_modem", "inbox_state", "outbox_state"} <= indexes
    finally:
        raw.close()


def test_fresh_file_goes_through_every_migration(path: Path, journal: Journal) -> None:
    assert SCHEMA_VERSION == len(MIGRATIONS) >= 2


def test_newer_journal_refused_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE future (x)")
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.commit()
    raw.close()
    with pytest.raises(JournalError, match=r"understands only up to"):
        Journal.open(path)
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    finally:
        raw.close()


def test_failed_migration_rolls_back(tmp_path: Path) -> None:
    """A version-1 file whose inbox already has the index name: migration 2 fails whole."""
    path = tmp_path / "clash.sqlite3"
    _build_version_1(path)
    raw = sqlite3.connect(path)
    raw.execute("CREATE INDEX inbox_state ON inbox (sender)")
    raw.commit()
    raw.close()
    with pytest.raises(JournalError):
        Journal.open(path)
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 1
        names = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert "inbox_on_modem" not in names
    finally:
        raw.close()


_V2_INBOX = (
    "id, received_at, sender, timestamp, text, storage, modem_index, state, on_modem,"
    " command, argument, reply, error, updated_at"
)
_V2_OUTBOX = (
    "id, inbox_id, destination, text, state, attempts, mr, last_error, created_at, updated_at"
)


def _build_version_2(path: Path) -> None:
    """A journal as the second release wrote it, with rows in every kind of state.

    Built with the module's own first two migrations, which must never change. Inbox row
    5 was deleted, so the AUTOINCREMENT sequence (5) is ahead of the highest id (4).
    """
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        raw.execute("PRAGMA foreign_keys = ON")
        for statement in MIGRATIONS[0] + MIGRATIONS[1]:
            raw.execute(statement)
        raw.execute("PRAGMA user_version = 2")
        at = "2026-01-01T00:00:00+00:00"
        inbox = [
            # sender, timestamp, text, storage, index, state, on_modem, command, reply, error
            ("000", "2026-01-01T01:00:00+01:00", "ping", "SM", 1, "received", 1, None, None, None),
            ("000", None, "reboot", "SM", 2, "running", 0, "reboot", None, None),
            ("000", None, "ping: 3", None, None, "done", 0, "ping", "pong: 3", None),
            ("+4915", None, "hi", "ME", 4, "refused", 0, None, None, "sender"),
            ("000", None, "gone", "SM", 5, "done", 0, None, None, None),
        ]
        for sender, ts, text, storage, index, state, on_modem, command, reply, error in inbox:
            raw.execute(
                "INSERT INTO inbox (received_at, sender, timestamp, text, storage, modem_index,"
                " state, on_modem, command, reply, error, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (at, sender, ts, text, storage, index, state, on_modem, command, reply, error, at),
            )
        raw.execute("DELETE FROM inbox WHERE id = 5")
        raw.execute(
            "INSERT INTO outbox (inbox_id, destination, text, state, attempts, mr, created_at,"
            " updated_at) VALUES (3, '000', 'pong: 3', 'sent', 1, 7, ?, ?)",
            (at, at),
        )
        raw.execute(
            "INSERT INTO outbox (inbox_id, destination, text, state, attempts, last_error,"
            " created_at, updated_at) VALUES (NULL, '000', 'booted', 'queued', 2, 'busy', ?, ?)",
            (at, at),
        )
        # Migration 1 is frozen: a version-2 file does not know the new state.
        with pytest.raises(sqlite3.IntegrityError):
            raw.execute("UPDATE inbox SET state = 'incomplete' WHERE id = 4")
    finally:
        raw.close()


def _dump(path: Path, sql: str) -> list[tuple[object, ...]]:
    raw = sqlite3.connect(path)
    try:
        return [tuple(r) for r in raw.execute(sql)]
    finally:
        raw.close()


def test_migrates_real_version_2_file(tmp_path: Path) -> None:
    path = tmp_path / "v2.sqlite3"
    _build_version_2(path)
    inbox_before = _dump(path, f"SELECT {_V2_INBOX} FROM inbox ORDER BY id")
    outbox_before = _dump(path, f"SELECT {_V2_OUTBOX} FROM outbox ORDER BY id")
    with Journal.open(path) as j:
        rows = j.inbox(limit=None)
        assert [r.id for r in rows] == [1, 2, 3, 4]
        assert [r.state for r in rows] == [
            InboxState.RECEIVED,
            InboxState.RUNNING,
            InboxState.DONE,
            InboxState.REFUSED,
        ]
        assert all(r.concat is None for r in rows)
        assert [r.id for r in j.pending_inbox()] == [1, 2]
        sent, queued = j.outbox()
        assert (sent.inbox_id, sent.state, sent.mr) == (3, OutboxState.SENT, 7)
        assert (queued.state, queued.attempts, queued.last_error) == (
            OutboxState.QUEUED,
            2,
            "busy",
        )
        assert sent.next_attempt_at is None and queued.next_attempt_at is None
        assert j.pending_outbox() == [queued]  # NULL next_attempt_at: due now
        assert j.attempts_of(sent.id) == [] and j.attempts_of(queued.id) == []  # not invented
        # dedupe works against the migrated on-modem row (no concat matches concat None)
        again, new = j.record_incoming(
            sender="000", timestamp=rows[0].timestamp, text="ping", storage="SM", index=1
        )
        assert not new and again.id == 1
        # the new state is accepted now; the id of the deleted row 5 is not given out again
        incomplete, _ = _incoming(j, text="part", state=InboxState.INCOMPLETE)
        assert incomplete.id == 6
        conn = j._conn
        assert conn is not None
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        with pytest.raises(sqlite3.IntegrityError):  # outbox.inbox_id still references inbox
            conn.execute(
                "INSERT INTO outbox (inbox_id, destination, text, state, created_at, updated_at)"
                " VALUES (99, '000', 'x', 'queued', 't', 't')"
            )
    # Every old column of every old row is exactly as before.
    assert _dump(path, f"SELECT {_V2_INBOX} FROM inbox WHERE id <= 4 ORDER BY id") == inbox_before
    assert _dump(path, f"SELECT {_V2_OUTBOX} FROM outbox ORDER BY id") == outbox_before
    assert _dump(path, "SELECT DISTINCT concat FROM inbox") == [(None,)]
    assert _dump(path, "SELECT DISTINCT next_attempt_at FROM outbox") == [(None,)]
    assert _dump(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    names = {r[0] for r in _dump(path, "SELECT name FROM sqlite_master")}
    assert "inbox_v3" not in names
    assert {
        "inbox",
        "outbox",
        "outbox_attempt",
        "inbox_on_modem",
        "inbox_state",
        "outbox_state",
        "outbox_inbox",
        "outbox_attempt_outbox",
    } <= names
    with Journal.open(path) as j:  # opening a migrated file again changes nothing
        assert len(j.inbox(limit=None)) == 5


def test_failed_migration_3_rolls_back_whole(tmp_path: Path) -> None:
    """A version-2 file that already has a table named inbox_v3: nothing of 2 → 3 stays."""
    path = tmp_path / "clash3.sqlite3"
    _build_version_2(path)
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE inbox_v3 (x)")
    raw.commit()
    raw.close()
    before = _dump(path, "SELECT sql FROM sqlite_master ORDER BY name")
    rows_before = _dump(path, "SELECT * FROM inbox ORDER BY id")
    with pytest.raises(JournalError, match="inbox_v3"):
        Journal.open(path)
    assert _dump(path, "PRAGMA user_version") == [(2,)]
    assert _dump(path, "SELECT sql FROM sqlite_master ORDER BY name") == before
    assert _dump(path, "SELECT * FROM inbox ORDER BY id") == rows_before


def test_schema_accepts_every_state(journal: Journal) -> None:
    """Adding an enum member without a migration that allows it fails here."""
    conn = journal._conn
    assert conn is not None
    for state in InboxState:
        conn.execute(
            "INSERT INTO inbox (received_at, sender, text, state, on_modem, updated_at)"
            " VALUES ('t', '000', 'x', ?, 0, 't')",
            (state.value,),
        )
    for outbox_state in OutboxState:
        conn.execute(
            "INSERT INTO outbox (destination, text, state, created_at, updated_at)"
            " VALUES ('000', 'x', ?, 't', 't')",
            (outbox_state.value,),
        )
    for outcome in AttemptOutcome:
        conn.execute(
            "INSERT INTO outbox_attempt (outbox_id, attempted_at, outcome) VALUES (1, 't', ?)",
            (outcome.value,),
        )
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO outbox_attempt (outbox_id, attempted_at, outcome) VALUES (1, 't', 'x')"
        )


# --------------------------------------------------------------------------- inbox


def test_record_incoming_new_row(journal: Journal) -> None:
    row, new = journal.record_incoming(
        sender="000", timestamp=SMSC_TS, text="ping: 1", storage="SM", index=3
    )
    assert new
    assert row.state is InboxState.RECEIVED
    assert row.on_modem
    assert (row.sender, row.text, row.storage, row.index) == ("000", "ping: 1", "SM", 3)
    assert row.timestamp == SMSC_TS and row.timestamp.utcoffset() == timedelta(hours=1)
    assert row.received_at.utcoffset() == timedelta(0)
    assert row.command is None and row.reply is None


def test_reread_while_on_modem_is_not_new(journal: Journal) -> None:
    first, new1 = journal.record_incoming(
        sender="000", timestamp=SMSC_TS, text="ping", storage="SM", index=3
    )
    again, new2 = journal.record_incoming(
        sender="000", timestamp=SMSC_TS, text="ping", storage="SM", index=3
    )
    assert new1 and not new2
    assert again.id == first.id
    assert len(journal.inbox()) == 1


def test_reread_returns_row_in_its_current_state(journal: Journal) -> None:
    row, _ = journal.record_incoming(
        sender="000", timestamp=SMSC_TS, text="ping", storage="SM", index=3
    )
    journal.start(row.id, "ping", None)
    journal.finish(row.id, reply="pong", state=InboxState.DONE, reply_to="000")
    again, new = journal.record_incoming(
        sender="000", timestamp=SMSC_TS, text="ping", storage="SM", index=3
    )
    assert not new and again.state is InboxState.DONE and again.reply == "pong"


def test_identical_message_after_delete_is_new(journal: Journal) -> None:
    first, _ = journal.record_incoming(
        sender="000", timestamp=SMSC_TS, text="ping", storage="SM", index=3
    )
    journal.mark_deleted(first.id)
    assert journal.get_inbox(first.id).on_modem is False  # type: ignore[union-attr]
    second, new = journal.record_incoming(
        sender="000", timestamp=SMSC_TS, text="ping", storage="SM", index=3
    )
    assert new and second.id != first.id


@pytest.mark.parametrize(
    "change",
    [
        {"sender": "+4915"},
        {"timestamp": SMSC_TS + timedelta(seconds=1)},
        {"timestamp": None},
        {"text": "pong"},
        {"storage": "ME"},
        {"storage": None},
        {"index": 4},
        {"index": None},
        {"concat": "7/2/1"},
    ],
)
def test_dedupe_key_is_every_field(journal: Journal, change: dict[str, object]) -> None:
    _incoming(journal)
    _, new = _incoming(journal, **change)  # type: ignore[arg-type]
    assert new


def test_dedupe_with_null_fields(journal: Journal) -> None:
    a, _ = journal.record_incoming(sender="000", timestamp=None, text="x", storage=None, index=None)
    b, new = journal.record_incoming(
        sender="000", timestamp=None, text="x", storage=None, index=None
    )
    assert not new and a.id == b.id


def test_refused_and_undecodable_at_insert(journal: Journal) -> None:
    refused, _ = _incoming(journal, sender="+49111", state=InboxState.REFUSED, error="sender")
    bad, _ = _incoming(journal, text="", state=InboxState.UNDECODABLE, error="bad PDU")
    assert refused.state is InboxState.REFUSED and refused.error == "sender"
    assert bad.state is InboxState.UNDECODABLE
    assert journal.pending_inbox() == []


def test_record_incoming_rejects_bad_arguments(journal: Journal) -> None:
    with pytest.raises(ValueError):
        _incoming(journal, state=InboxState.DONE)
    with pytest.raises(ValueError):
        _incoming(journal, timestamp=datetime(2026, 1, 1))  # naive


def test_mark_deleted_unknown(journal: Journal) -> None:
    with pytest.raises(JournalError):
        journal.mark_deleted(99)


def test_start_and_rerun(journal: Journal) -> None:
    row, _ = journal.record_incoming(
        sender="000", timestamp=SMSC_TS, text="ping: 1", storage="SM", index=1
    )
    running = journal.start(row.id, "ping", "1")
    assert running.state is InboxState.RUNNING
    assert (running.command, running.argument) == ("ping", "1")
    assert journal.start(row.id, "ping", "1").state is InboxState.RUNNING  # re-run
    journal.finish(row.id, reply="pong: 1", state=InboxState.DONE)
    with pytest.raises(JournalError, match="done"):
        journal.start(row.id, "ping", "1")


def test_start_refused_row(journal: Journal) -> None:
    row, _ = _incoming(journal, state=InboxState.REFUSED)
    with pytest.raises(JournalError):
        journal.start(row.id, "ping", None)
    with pytest.raises(JournalError):
        journal.start(12345, "ping", None)


def test_finish_queues_reply_atomically(path: Path, journal: Journal) -> None:
    row, _ = _incoming(journal)
    journal.start(row.id, "ping", None)
    out = journal.finish(row.id, reply="pong", state=InboxState.DONE, reply_to="000")
    assert out is not None
    assert (out.inbox_id, out.destination, out.text) == (row.id, "000", "pong")
    assert out.state is OutboxState.QUEUED and out.attempts == 0 and out.mr is None
    done = journal.get_inbox(row.id)
    assert done is not None and done.state is InboxState.DONE and done.reply == "pong"
    assert journal.pending_outbox() == [out]
    # both visible to another connection: committed together
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("SELECT state FROM inbox").fetchall() == [("done",)]
        assert raw.execute("SELECT text, state FROM outbox").fetchall() == [("pong", "queued")]
    finally:
        raw.close()


def test_finish_rolls_back_when_outbox_insert_fails(path: Path, journal: Journal) -> None:
    row, _ = _incoming(journal)
    journal.start(row.id, "ping", None)
    conn = journal._conn
    assert conn is not None
    # Sabotage the outbox so the second statement of the transaction fails.
    conn.execute(
        "CREATE TRIGGER no_outbox BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'x'); END"
    )
    with pytest.raises(JournalError):
        journal.finish(row.id, reply="pong", state=InboxState.DONE, reply_to="000")
    still = journal.get_inbox(row.id)
    assert still is not None and still.state is InboxState.RUNNING and still.reply is None
    assert journal.outbox() == []


def test_finish_without_reply_or_destination(journal: Journal) -> None:
    a, _ = _incoming(journal, index=1)
    b, _ = _incoming(journal, index=2)
    assert journal.finish(a.id, reply=None, state=InboxState.DONE, reply_to="000") is None
    assert journal.finish(b.id, reply="x", state=InboxState.FAILED, error="boom") is None
    failed = journal.get_inbox(b.id)
    assert failed is not None and failed.state is InboxState.FAILED and failed.error == "boom"
    assert journal.outbox() == []


def test_finish_twice_and_bad_state(journal: Journal) -> None:
    row, _ = _incoming(journal)
    with pytest.raises(ValueError):
        journal.finish(row.id, reply=None, state=InboxState.RUNNING)
    journal.finish(row.id, reply="pong", state=InboxState.DONE, reply_to="000")
    with pytest.raises(JournalError):
        journal.finish(row.id, reply="pong", state=InboxState.DONE, reply_to="000")
    assert len(journal.outbox()) == 1


def test_pending_inbox_oldest_first(journal: Journal) -> None:
    ids = [_incoming(journal, index=i)[0].id for i in range(4)]
    journal.start(ids[1], "ping", None)
    journal.finish(ids[2], reply=None, state=InboxState.DONE)
    assert [r.id for r in journal.pending_inbox()] == [ids[0], ids[1], ids[3]]


def test_inbox_limit_most_recent_oldest_first(journal: Journal) -> None:
    for i in range(5):
        _incoming(journal, text=f"m{i}", index=i)
    assert [r.text for r in journal.inbox(limit=3)] == ["m2", "m3", "m4"]
    assert [r.text for r in journal.inbox()] == [f"m{i}" for i in range(5)]
    assert journal.inbox(limit=0) == []
    with pytest.raises(ValueError):
        journal.inbox(limit=-1)


def test_get_unknown_rows(journal: Journal) -> None:
    assert journal.get_inbox(7) is None
    assert journal.get_outbox(7) is None


def test_concat_is_part_of_the_dedupe_key(journal: Journal) -> None:
    first, new1 = _incoming(journal, text="part one", concat="7/2/1")
    again, new2 = _incoming(journal, text="part one", concat="7/2/1")
    assert new1 and not new2 and again.id == first.id and again.concat == "7/2/1"
    # another part, another reference, or no concatenation at all: a different message
    for concat in ("7/2/2", "8/2/1", None):
        _, new = _incoming(journal, text="part one", concat=concat)
        assert new, concat
    assert [r.concat for r in journal.inbox()] == ["7/2/1", "7/2/2", "8/2/1", None]
    assert json.loads(json.dumps(first.as_dict()))["concat"] == "7/2/1"


def test_incomplete_state(journal: Journal) -> None:
    row, new = _incoming(
        journal, concat="9/3/1", state=InboxState.INCOMPLETE, error="2 of 3 parts missing"
    )
    assert new and row.state is InboxState.INCOMPLETE and row.error == "2 of 3 parts missing"
    assert journal.pending_inbox() == []  # final: never executed
    with pytest.raises(JournalError, match="incomplete"):
        journal.start(row.id, "ping", None)
    with pytest.raises(JournalError, match="incomplete"):
        journal.finish(row.id, reply="x", state=InboxState.DONE, reply_to="000")
    assert journal.counts()["inbox.incomplete"] == 1
    assert row.as_dict()["state"] == "incomplete"


# --------------------------------------------------------------------------- outbox


def test_queue_outgoing_and_mark_sent(journal: Journal) -> None:
    out = journal.queue_outgoing("000", "booted")
    assert out.inbox_id is None and out.state is OutboxState.QUEUED
    sent = journal.mark_sent(out.id, 42)
    assert sent.state is OutboxState.SENT and sent.mr == 42 and sent.attempts == 1
    assert journal.pending_outbox() == []
    with pytest.raises(JournalError):
        journal.mark_sent(out.id, 43)


def test_mark_send_failed_retry_then_final(journal: Journal) -> None:
    out = journal.queue_outgoing("000", "x")
    r1 = journal.mark_send_failed(out.id, "+CMS ERROR: 500", final=False)
    assert (
        r1.state is OutboxState.QUEUED and r1.attempts == 1 and r1.last_error == "+CMS ERROR: 500"
    )
    r2 = journal.mark_send_failed(out.id, "timeout", final=True)
    assert r2.state is OutboxState.FAILED and r2.attempts == 2 and r2.last_error == "timeout"
    assert journal.pending_outbox() == []
    with pytest.raises(JournalError):
        journal.mark_send_failed(out.id, "again", final=True)
    with pytest.raises(JournalError):
        journal.mark_sent(999, 1)


def test_outbox_limit_and_order(journal: Journal) -> None:
    for i in range(4):
        journal.queue_outgoing("000", f"o{i}")
    assert [r.text for r in journal.outbox(limit=2)] == ["o2", "o3"]
    assert [r.text for r in journal.pending_outbox()] == ["o0", "o1", "o2", "o3"]


def test_retry_schedule_follows_backoff(clocked: Journal, clock: FakeClock) -> None:
    out = clocked.queue_outgoing("000", "x")
    assert out.next_attempt_at is None and clocked.pending_outbox() == [out]
    for attempt, delay in enumerate([10.0, 20.0, 40.0, 60.0, 60.0], start=1):
        assert backoff(attempt, 10.0, 60.0) == delay
        failed = clocked.mark_send_failed(
            out.id, "+CMS ERROR: 500", final=False, retry_in=backoff(attempt, 10.0, 60.0)
        )
        due = clock.now + timedelta(seconds=delay)
        assert failed.state is OutboxState.QUEUED and failed.attempts == attempt
        assert failed.next_attempt_at == due
        assert clocked.pending_outbox() == []
        assert clocked.next_outbox_due() == due
        clock.advance(delay - 0.5)
        assert clocked.pending_outbox() == []  # not yet
        clock.advance(0.5)
        assert [r.id for r in clocked.pending_outbox()] == [out.id]  # due exactly on time
        assert clocked.next_outbox_due() is None  # nothing is waiting any more
    sent = clocked.mark_sent(out.id, 9)
    assert sent.next_attempt_at is None and sent.attempts == 6


def test_pending_outbox_with_explicit_now(clocked: Journal, clock: FakeClock) -> None:
    a = clocked.queue_outgoing("000", "a")
    b = clocked.queue_outgoing("000", "b")
    c = clocked.queue_outgoing("000", "c")
    clocked.mark_send_failed(a.id, "busy", final=False, retry_in=60)
    clocked.mark_send_failed(b.id, "busy", final=False, retry_in=30)
    clocked.mark_send_failed(c.id, "busy", final=False)  # retry_in None: due at once
    assert [r.id for r in clocked.pending_outbox()] == [c.id]
    assert clocked.next_outbox_due() == T0 + timedelta(seconds=30)
    later = T0 + timedelta(seconds=45)
    assert [r.id for r in clocked.pending_outbox(later)] == [b.id, c.id]
    assert clocked.next_outbox_due(later) == T0 + timedelta(seconds=60)
    # any offset: compared in UTC
    far = (T0 + timedelta(hours=1)).astimezone(timezone(timedelta(hours=-5)))
    assert [r.id for r in clocked.pending_outbox(far)] == [a.id, b.id, c.id]  # oldest first
    assert clocked.next_outbox_due(far) is None
    with pytest.raises(ValueError):
        clocked.pending_outbox(datetime(2026, 1, 1))  # naive
    with pytest.raises(ValueError):
        clocked.next_outbox_due(datetime(2026, 1, 1))


def test_next_attempt_at_is_utc(tmp_path: Path) -> None:
    local = datetime(2030, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=2)))
    with Journal.open(tmp_path / "j.sqlite3", clock=lambda: local) as j:
        out = j.queue_outgoing("000", "x")
        failed = j.mark_send_failed(out.id, "busy", final=False, retry_in=1.5)
        assert failed.next_attempt_at == local + timedelta(seconds=1.5)
        assert failed.next_attempt_at is not None
        assert failed.next_attempt_at.utcoffset() == timedelta(0)
        d = json.loads(json.dumps(failed.as_dict()))
        assert d["next_attempt_at"] == "2030-05-06T05:08:10.500000+00:00"


def test_next_outbox_due_ignores_finished_rows(clocked: Journal) -> None:
    assert clocked.next_outbox_due() is None  # empty outbox
    a = clocked.queue_outgoing("000", "a")
    clocked.mark_send_failed(a.id, "busy", final=False, retry_in=10)
    assert clocked.next_outbox_due() == T0 + timedelta(seconds=10)
    clocked.mark_send_failed(a.id, "busy", final=True, retry_in=10)
    assert clocked.next_outbox_due() is None


def test_attempts_recorded(clocked: Journal, clock: FakeClock) -> None:
    out = clocked.queue_outgoing("000", "x")
    assert clocked.attempts_of(out.id) == []
    clocked.mark_send_failed(
        out.id, "outcome unknown: timeout", final=False, retry_in=5, uncertain=True
    )
    clock.advance(5)
    clocked.mark_send_failed(out.id, "+CMS ERROR: 500", final=False, retry_in=10)
    clock.advance(10)
    sent = clocked.mark_sent(out.id, 42)
    assert sent.attempts == 3
    assert clocked.attempts_of(out.id) == [
        OutboxAttempt(T0, AttemptOutcome.UNCERTAIN, "outcome unknown: timeout", None),
        OutboxAttempt(T0 + timedelta(seconds=5), AttemptOutcome.FAILED, "+CMS ERROR: 500", None),
        OutboxAttempt(T0 + timedelta(seconds=15), AttemptOutcome.SENT, None, 42),
    ]
    d = json.loads(json.dumps(clocked.attempts_of(out.id)[2].as_dict()))
    assert d == {
        "attempted_at": "2026-03-01T12:00:15+00:00",
        "outcome": "sent",
        "error": None,
        "mr": 42,
    }
    assert clocked.attempts_of(999) == []


def test_final_failure(clocked: Journal) -> None:
    out = clocked.queue_outgoing("000", "x")
    clocked.mark_send_failed(out.id, "busy", final=False, retry_in=1)
    failed = clocked.mark_send_failed(out.id, "gave up", final=True, retry_in=30, uncertain=True)
    assert failed.state is OutboxState.FAILED and failed.attempts == 2
    assert failed.last_error == "gave up" and failed.next_attempt_at is None
    assert clocked.pending_outbox(T0 + timedelta(days=1)) == []
    assert [a.outcome for a in clocked.attempts_of(out.id)] == [
        AttemptOutcome.FAILED,
        AttemptOutcome.UNCERTAIN,
    ]
    with pytest.raises(JournalError, match="failed, not queued"):
        clocked.mark_send_failed(out.id, "again", final=False)
    with pytest.raises(JournalError):
        clocked.mark_sent(out.id, 1)
    assert len(clocked.attempts_of(out.id)) == 2  # refused calls record nothing


@pytest.mark.parametrize("retry_in", [-1.0, math.nan, math.inf, 1e300])
def test_mark_send_failed_bad_retry_in(journal: Journal, retry_in: float) -> None:
    out = journal.queue_outgoing("000", "x")
    with pytest.raises(ValueError):
        journal.mark_send_failed(out.id, "busy", final=False, retry_in=retry_in)
    assert journal.get_outbox(out.id) == out
    assert journal.attempts_of(out.id) == []


def test_attempt_and_state_are_committed_together(journal: Journal) -> None:
    out = journal.queue_outgoing("000", "x")
    conn = journal._conn
    assert conn is not None
    conn.execute(
        "CREATE TRIGGER no_attempt BEFORE INSERT ON outbox_attempt"
        " BEGIN SELECT RAISE(ABORT, 'x'); END"
    )
    with pytest.raises(JournalError):
        journal.mark_sent(out.id, 5)
    with pytest.raises(JournalError):
        journal.mark_send_failed(out.id, "busy", final=True)
    assert journal.get_outbox(out.id) == out  # still queued, attempts 0


# --------------------------------------------------------------------------- status, json


def test_counts(journal: Journal) -> None:
    row, _ = _incoming(journal, index=1)
    _incoming(journal, index=2, state=InboxState.REFUSED)
    journal.finish(row.id, reply="pong", state=InboxState.DONE, reply_to="000")
    journal.queue_outgoing("000", "x")
    counts = journal.counts()
    assert counts["inbox.done"] == 1
    assert counts["inbox.refused"] == 1
    assert counts["inbox.received"] == 0
    assert counts["outbox.queued"] == 2
    assert set(counts) == {f"inbox.{s.value}" for s in InboxState} | {
        f"outbox.{s.value}" for s in OutboxState
    }


def test_as_dict_is_json_ready(journal: Journal) -> None:
    row, _ = _incoming(journal, text="ping: 1")
    journal.start(row.id, "ping", "1")
    out = journal.finish(row.id, reply="pong: 1", state=InboxState.DONE, reply_to="000")
    done = journal.get_inbox(row.id)
    assert done is not None and out is not None
    d = json.loads(json.dumps(done.as_dict()))
    assert d["sender"] == "000"
    assert d["timestamp"] == "2026-11-25T10:00:00+01:00"
    assert d["text"] == "ping: 1"
    assert d["state"] == "done"
    assert d["reply"] == "pong: 1"
    assert (d["command"], d["argument"], d["storage"], d["index"]) == ("ping", "1", "SM", 3)
    assert d["received_at"].endswith("+00:00")
    o = json.loads(json.dumps(to_json(out)))
    assert o["state"] == "queued" and o["inbox_id"] == row.id


def test_clock_is_used(tmp_path: Path) -> None:
    fixed = datetime(2030, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=2)))
    with Journal.open(tmp_path / "j.sqlite3", clock=lambda: fixed) as j:
        row, _ = _incoming(j)
        assert row.received_at == fixed
        assert row.received_at.utcoffset() == timedelta(0)


def test_second_connection_sees_commits(path: Path, journal: Journal) -> None:
    _incoming(journal)
    with Journal.open(path) as other:
        assert [r.text for r in other.inbox()] == ["ping"]
        _, new = _incoming(other)
        assert not new


# --------------------------------------------------------------------------- retention


def _finished(
    j: Journal, text: str, state: InboxState, *, deleted: bool = True, **kw: object
) -> InboxRow:
    """An inbox row that reached ``state`` (and left the modem, unless ``deleted=False``)."""
    if state in (InboxState.DONE, InboxState.FAILED):
        row, _ = _incoming(j, text=text, **kw)
        j.start(row.id, "ping", None)
        j.finish(row.id, reply=None, state=state)
    else:
        row, _ = _incoming(j, text=text, state=state, **kw)
    if deleted:
        j.mark_deleted(row.id)
    done = j.get_inbox(row.id)
    assert done is not None
    return done


def _replied(j: Journal, text: str) -> tuple[InboxRow, int]:
    """A done inbox row, deleted from the modem, with its reply queued."""
    row, _ = _incoming(j, text=text)
    j.mark_deleted(row.id)
    out = j.finish(row.id, reply=f"re: {text}", state=InboxState.DONE, reply_to="000")
    assert out is not None
    return row, out.id


def test_prune_deletes_only_old_finished_rows(
    path: Path, clocked: Journal, clock: FakeClock
) -> None:
    j = clocked
    received, _ = _incoming(j, text="received")
    j.mark_deleted(received.id)
    running, _ = _incoming(j, text="running")
    j.mark_deleted(running.id)
    j.start(running.id, "ping", None)
    # Its own index: a later row at the same index would clear its mark (one message
    # per index: issue 14).
    on_modem = _finished(j, "done, still on the modem", InboxState.DONE, deleted=False, index=4)
    refused = _finished(j, "refused", InboxState.REFUSED)
    undecodable = _finished(j, "undecodable", InboxState.UNDECODABLE)
    incomplete = _finished(j, "incomplete", InboxState.INCOMPLETE)
    failed = _finished(j, "failed", InboxState.FAILED)
    replied, reply_sent = _replied(j, "reply sent")
    j.mark_send_failed(reply_sent, "busy", final=False)
    j.mark_sent(reply_sent, 1)
    gave_up, reply_failed = _replied(j, "reply failed")
    j.mark_send_failed(reply_failed, "busy", final=True)
    waiting, reply_queued = _replied(j, "reply still queued")
    j.mark_send_failed(reply_queued, "busy", final=False, retry_in=3600)
    orig_sent = j.queue_outgoing("000", "originated, sent").id
    j.mark_sent(orig_sent, 2)
    orig_failed = j.queue_outgoing("000", "originated, failed").id
    j.mark_send_failed(orig_failed, "busy", final=True)
    orig_queued = j.queue_outgoing("000", "originated, queued").id
    clock.advance(3600)
    recent = _finished(j, "finished after the cut-off", InboxState.DONE)
    recent_out = j.queue_outgoing("000", "sent after the cut-off").id
    j.mark_sent(recent_out, 3)
    clock.advance(86400)

    deleted = j.prune(older_than=T0 + timedelta(seconds=60))

    # 6 inbox rows, 4 outbox rows (2 replies, 2 originated), 5 attempts (2 + 1 + 1 + 1)
    assert deleted == 6 + 4 + 5
    assert [r.id for r in j.inbox(limit=None)] == [
        received.id,
        running.id,
        on_modem.id,
        waiting.id,
        recent.id,
    ]
    assert [r.id for r in j.outbox()] == [reply_queued, orig_queued, recent_out]
    for gone in (refused, undecodable, incomplete, failed, replied, gave_up):
        assert j.get_inbox(gone.id) is None
    for gone_out in (reply_sent, reply_failed, orig_sent, orig_failed):
        assert j.attempts_of(gone_out) == []
    assert len(j.attempts_of(reply_queued)) == 1
    assert len(j.attempts_of(recent_out)) == 1
    assert j.prune(older_than=T0 + timedelta(seconds=60)) == 0  # nothing more to do
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA foreign_key_check").fetchall() == []
        assert raw.execute(
            "SELECT COUNT(*) FROM outbox_attempt WHERE outbox_id NOT IN (SELECT id FROM outbox)"
        ).fetchone() == (0,)
    finally:
        raw.close()


def test_prune_never_deletes_pending_or_on_modem_rows(clocked: Journal, clock: FakeClock) -> None:
    received, _ = _incoming(clocked, index=1)
    running, _ = _incoming(clocked, index=2)
    clocked.start(running.id, "ping", None)
    on_modem = _finished(clocked, "x", InboxState.REFUSED, deleted=False, index=3)
    queued = clocked.queue_outgoing("000", "x")
    clock.advance(10 * 365 * 86400)
    assert clocked.prune(older_than=clock.now) == 0
    assert len(clocked.inbox()) == 3 and clocked.outbox() == [queued]
    # the row still on the modem keeps its dedupe protection
    _, new = _incoming(clocked, text="x", index=3, state=InboxState.REFUSED)
    assert not new and on_modem.on_modem and received.on_modem


def test_prune_keep_last(clocked: Journal, clock: FakeClock) -> None:
    ids = [_finished(clocked, f"m{i}", InboxState.DONE, index=i).id for i in range(4)]
    pending, _ = _incoming(clocked, text="pending", index=9)
    clock.advance(3600)
    cutoff = clock.now
    assert clocked.prune(older_than=cutoff, keep_last=10) == 0
    # the 2 most recent inbox rows are kept, whatever their state
    assert clocked.prune(older_than=cutoff, keep_last=2) == 3
    assert [r.id for r in clocked.inbox()] == [ids[3], pending.id]
    assert clocked.prune(older_than=cutoff) == 1
    assert [r.id for r in clocked.inbox()] == [pending.id]


def test_prune_keeps_a_conversation_with_a_recent_reply(clocked: Journal, clock: FakeClock) -> None:
    row, reply = _replied(clocked, "old question")
    clock.advance(3600)
    clocked.mark_sent(reply, 4)  # the answer went out only later
    cutoff = T0 + timedelta(seconds=60)
    assert clocked.prune(older_than=cutoff) == 0
    assert clocked.get_inbox(row.id) is not None
    assert clocked.prune(older_than=clock.now + timedelta(seconds=1)) == 3  # inbox, outbox, 1


def test_prune_is_strictly_older_than(clocked: Journal) -> None:
    _finished(clocked, "x", InboxState.DONE)
    assert clocked.prune(older_than=T0) == 0
    assert clocked.prune(older_than=T0 + timedelta(microseconds=1)) == 1


def test_prune_rejects_bad_arguments(journal: Journal) -> None:
    with pytest.raises(ValueError):
        journal.prune(older_than=datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        journal.prune(older_than=T0, keep_last=-1)


def test_large_prune_truncates_the_wal(
    path: Path, clocked: Journal, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(device.journal.retention, "PRUNE_CHECKPOINT_ROWS", 3)
    for i in range(3):
        _finished(clocked, f"m{i}", InboxState.REFUSED, index=i)
    clock.advance(60)
    wal = path.with_name(path.name + "-wal")
    assert wal.stat().st_size > 0
    assert clocked.prune(older_than=clock.now) == 3
    assert wal.stat().st_size == 0
    assert clocked.inbox() == []


_OFFSETS = st.builds(
    timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))
)
_TIMES = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=_OFFSETS
)


@given(a=_TIMES, b=_TIMES)
def test_stored_times_sort_as_text_in_time_order(a: datetime, b: datetime) -> None:
    """The journal compares stored times in SQL as text: that must be time order."""
    assert (_utc_iso(a, "a") < _utc_iso(b, "b")) == (a < b)
    assert (_utc_iso(a, "a") == _utc_iso(b, "b")) == (a == b)


def test_multipart_parts_in_any_order_with_duplicates(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.sqlite3") as journal:
        stamp = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
        for seq, text in ((3, "C"), (1, "A"), (1, "A")):
            journal.add_part(sender="000", reference=7, total=3, sequence=seq, text=text,
                             timestamp=stamp)  # fmt: skip
        assert journal.complete_multipart(sender="000", reference=7, total=3) is None
        # Another message from the same sender, same reference but another total, stays apart.
        journal.add_part(sender="000", reference=7, total=2, sequence=1, text="x", timestamp=None)
        assert not journal.add_part(sender="000", reference=7, total=3, sequence=3, text="C",
                                    timestamp=stamp)  # fmt: skip
        journal.add_part(sender="000", reference=7, total=3, sequence=2, text="B", timestamp=stamp)
        row = journal.complete_multipart(sender="000", reference=7, total=3)
        assert row is not None
        assert (row.text, row.concat, row.on_modem) == ("ABC", "7/3", False)
        assert row.state is InboxState.RECEIVED
        assert row.timestamp == stamp
        assert journal.complete_multipart(sender="000", reference=7, total=3) is None


def test_multipart_expiry_is_journaled_incomplete(tmp_path: Path) -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    with Journal.open(tmp_path / "j.sqlite3", clock=lambda: now[0]) as journal:
        journal.add_part(sender="000", reference=1, total=3, sequence=2, text="B", timestamp=None)
        assert journal.expire_parts(datetime(2025, 12, 31, tzinfo=UTC)) == []
        (row,) = journal.expire_parts(datetime(2026, 1, 2, tzinfo=UTC))
        assert row.state is InboxState.INCOMPLETE
        assert row.text == "[part 1 missing]B[part 3 missing]"
        assert row.error == "2 of 3 parts never arrived"
        assert journal.expire_parts(datetime(2026, 1, 2, tzinfo=UTC)) == []


# --------------------------------------------------------------------------- notes, sender type


def test_notes_and_sender_type_are_kept_and_shown(journal: Journal) -> None:
    """What the decoder assumed (notes) and the type-of-address octet (23.040 §9.1.2.5)
    are stored with the row, read back, and in the JSON form; a re-read is still the
    same row (neither is part of the dedupe key)."""
    row, new = journal.record_incoming(
        sender="000", timestamp=SMSC_TS, text="ping", storage="SM", index=1,
        notes=("reserved DCS 0x84 read as GSM 7-bit", "1 trailing octet ignored"),
        sender_type=129,
    )  # fmt: skip
    assert new
    assert row.notes == ("reserved DCS 0x84 read as GSM 7-bit", "1 trailing octet ignored")
    assert row.sender_type == 129
    again, new = journal.record_incoming(
        sender="000", timestamp=SMSC_TS, text="ping", storage="SM", index=1
    )
    assert not new and again.id == row.id
    data = row.as_dict()
    assert data["notes"] == list(row.notes) and data["sender_type"] == 129
    plain, _ = journal.record_incoming(
        sender="000", timestamp=None, text="x", storage=None, index=None
    )
    assert plain.notes == () and plain.sender_type is None
    assert journal.get_inbox(row.id) == row


def test_parts_gather_their_notes(journal: Journal) -> None:
    """A multipart message's row has the notes of all its parts, each once, and the
    sender type the last part gave."""
    journal.add_part(sender="000", reference=7, total=2, sequence=2, text="b",
                     timestamp=None, notes=("n2", "same"))  # fmt: skip
    journal.add_part(sender="000", reference=7, total=2, sequence=1, text="a",
                     timestamp=None, notes=("same",))  # fmt: skip
    row = journal.complete_multipart(sender="000", reference=7, total=2, sender_type=145)
    assert row is not None
    assert row.text == "ab" and row.notes == ("same", "n2") and row.sender_type == 145


def test_migration_to_5_keeps_rows(path: Path) -> None:
    """A version-4 journal gains the notes and sender_type columns; its rows read back
    with no notes and no type."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        for migration in MIGRATIONS[:4]:
            for statement in migration:
                raw.execute(statement)
        raw.execute("PRAGMA user_version = 4")
        at = "2026-01-01T00:00:00+00:00"
        raw.execute(
            "INSERT INTO inbox (received_at, sender, text, state, on_modem, updated_at)"
            " VALUES (?, '000', 'ping', 'received', 1, ?)",
            (at, at),
        )
    finally:
        raw.close()
    with Journal.open(path) as j:
        (row,) = j.inbox()
        assert (row.text, row.notes, row.sender_type) == ("ping", (), None)


def test_a_new_row_at_an_index_clears_a_stale_mark_there(journal: Journal) -> None:
    """The modem holds one message per index (27.005 §3.5.3 ``AT+CMGD=<index>``: an index
    names one stored message): a row still marked at the index a new message was read
    from is stale (deleted before a crash let it be marked), and left marked it would
    have the new message deleted in its name once settled (reply before delete)."""
    old, _ = _incoming(journal, text="old")
    journal.start(old.id, "ping", None)
    journal.finish(old.id, reply=None, state=InboxState.DONE)
    assert [r.id for r in journal.settled_on_modem()] == [old.id]
    new, is_new = _incoming(journal, text="new")
    assert is_new
    assert journal.get_inbox(old.id).on_modem is False  # type: ignore[union-attr]
    assert journal.settled_on_modem() == []
    other, _ = _incoming(journal, text="elsewhere", index=5)
    assert journal.get_inbox(new.id).on_modem is True  # type: ignore[union-attr]
    assert other.on_modem


def test_settled_on_modem_waits_for_the_reply(journal: Journal) -> None:
    """A finished row is settled once its reply is sent (or failed for good), not while
    it is queued: reply before delete."""
    row, _ = _incoming(journal)
    journal.start(row.id, "ping", None)
    assert journal.settled_on_modem() == []
    out = journal.finish(row.id, reply="pong", state=InboxState.DONE, reply_to="000")
    assert out is not None
    assert journal.settled_on_modem() == []
    journal.mark_sent(out.id, 7)
    assert [r.id for r in journal.settled_on_modem()] == [row.id]
    journal.mark_deleted(row.id, durable=False)
    assert journal.settled_on_modem() == []
