"""The SQLite journal on real files: durability settings, dedupe, atomic finish, migrations."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from device.errors import JournalError
from device.journal import (
    MIGRATIONS,
    SCHEMA_VERSION,
    InboxRow,
    InboxState,
    Journal,
    OutboxState,
    to_json,
)

SMSC_TS = datetime(2026, 11, 25, 10, 0, 0, tzinfo=timezone(timedelta(hours=1)))


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "journal.sqlite3"


@pytest.fixture
def journal(path: Path) -> Iterator[Journal]:
    with Journal.open(path) as j:
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


def test_creates_parent_dir_and_private_file(path: Path, journal: Journal) -> None:
    assert path.parent.is_dir()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    _incoming(journal)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            assert stat.S_IMODE(side.stat().st_mode) & 0o077 == 0


def test_private_even_with_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        with Journal.open(tmp_path / "j.sqlite3"):
            pass
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "j.sqlite3").stat().st_mode) == 0o600


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
