"""The inbox part of the journal: recording received SMS, the dedupe rule, start and finish.

State changes follow the table in :mod:`device.journal.transitions`, checked inside the
transaction that makes them; :meth:`InboxJournal.finish` queues the reply in that same
transaction. See the package docstring for the dedupe rule and the crash windows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from device.errors import JournalError
from device.journal.rows import InboxRow, InboxState, OutboxRow, OutboxState, _iso
from device.journal.schema import INBOX_COLUMNS, inbox_row, notes_text
from device.journal.store import JournalStore
from device.journal.transitions import (
    FINISHED_INBOX_STATES,
    check_inbox_transition,
    check_initial_inbox_state,
)

LOGGER = logging.getLogger(__name__)


class InboxJournal(JournalStore):
    """Operations on the ``inbox`` table (a part of :class:`~device.journal.Journal`)."""

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
        notes: Iterable[str] = (),
        sender_type: int | None = None,
        durable: bool = True,
    ) -> tuple[InboxRow, bool]:
        """Commit a received SMS; returns ``(row, is_new)``. Delete it from the modem after.

        If a row with the same dedupe key ``(sender, timestamp, text, concat, storage,
        index)`` is still marked ``on_modem`` (None matches None), nothing is inserted and
        that row is returned with ``False``: the same message read again after a crash
        between this commit and the modem delete. After :meth:`mark_deleted`, an
        identical message is a new one and gets its own row. A new row at a storage
        index clears the mark of any other row at that index (the modem holds one
        message per index: that one was deleted before a crash let it be marked).

        ``concat`` is the concatenation info of one part of a multipart message (e.g.
        ``"ref/total/seq"``), None for a single message. ``state`` may be RECEIVED,
        REFUSED, UNDECODABLE or INCOMPLETE (``error`` says why); a ``timestamp`` must be
        tz-aware. ``notes`` say what the decoder assumed or could not read, and
        ``sender_type`` is the sender's type-of-address octet; neither is part of the
        dedupe key (a re-read decodes the same).

        ``durable=False`` commits without syncing (see ``JournalStore._transaction``):
        only for a message left on the modem until a later durable commit (a power
        loss before that one loses the row, and the message is read again from the
        modem); never for one about to be deleted.
        """
        check_initial_inbox_state(state)
        if timestamp is not None and timestamp.tzinfo is None:
            raise ValueError("the SMSC time stamp must be tz-aware")
        ts = _iso(timestamp)
        now = self._now()
        with self._transaction(durable=durable) as conn:
            existing = conn.execute(
                f"SELECT {INBOX_COLUMNS} FROM inbox"
                " WHERE on_modem = 1 AND sender = ? AND timestamp IS ? AND text = ?"
                " AND concat IS ? AND storage IS ? AND modem_index IS ? ORDER BY id LIMIT 1",
                (sender, ts, text, concat, storage, index),
            ).fetchone()
            if existing is not None:
                row = inbox_row(existing)
                LOGGER.info("inbox %d: message read again from the modem, not new", row.id)
                return row, False
            if storage is not None and index is not None:
                # One message per index: a row still marked at this index is stale (the
                # agent died between its delete and the mark); left marked, it would
                # have this new message deleted in its name once it is settled.
                conn.execute(
                    "UPDATE inbox SET on_modem = 0, updated_at = ?"
                    " WHERE on_modem = 1 AND storage = ? AND modem_index = ?",
                    (now, storage, index),
                )
            cursor = conn.execute(
                "INSERT INTO inbox (received_at, sender, timestamp, text, concat, storage,"
                " modem_index, state, on_modem, error, updated_at, notes, sender_type)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)",
                (
                    now,
                    sender,
                    ts,
                    text,
                    concat,
                    storage,
                    index,
                    state.value,
                    error,
                    now,
                    notes_text(notes),
                    sender_type,
                ),
            )
            inbox_id = cursor.lastrowid
            if inbox_id is None:
                raise JournalError("insert into inbox returned no row id")
            return self._fetch_inbox(conn, inbox_id), True

    def mark_deleted(self, inbox_id: int, *, durable: bool = True) -> None:
        """Record that the message was deleted from the modem (``on_modem`` becomes False).

        Idempotent; JournalError for an unknown id. ``durable=False`` (no sync) is for a
        row with a storage index: lost on power failure, the stale mark is cleared by the
        :meth:`forget_absent` of the next full listing (every start drains the storage).
        """
        with self._transaction(durable=durable) as conn:
            cursor = conn.execute(
                "UPDATE inbox SET on_modem = 0, updated_at = ? WHERE id = ?",
                (self._now(), inbox_id),
            )
            if cursor.rowcount == 0:
                raise JournalError(f"no inbox row {inbox_id}")

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

    def settled_on_modem(self) -> list[InboxRow]:
        """Rows still on the modem (with a storage index) whose message may now be
        deleted from it, oldest first: finished, and no reply of theirs still queued
        (sent, failed for good, or none). Every commit that settles a row (finish,
        :meth:`~device.journal.Journal.mark_sent`, a final send failure, a final state
        given at insert) is durable, so a settled row survives a power loss."""
        finished = sorted(s.value for s in FINISHED_INBOX_STATES)
        marks = ",".join("?" * len(finished))
        rows = self._query(
            f"SELECT {INBOX_COLUMNS} FROM inbox WHERE on_modem = 1"
            " AND storage IS NOT NULL AND modem_index IS NOT NULL"
            f" AND state IN ({marks}) AND NOT EXISTS (SELECT 1 FROM outbox"
            " WHERE outbox.inbox_id = inbox.id AND outbox.state = ?) ORDER BY id",
            (*finished, OutboxState.QUEUED.value),
        )
        return [inbox_row(r) for r in rows]

    def start(self, inbox_id: int, command: str, argument: str | None) -> InboxRow:
        """Mark the row RUNNING with its parsed command.

        Allowed from RECEIVED, or from RUNNING (a re-run after a crash); any other state
        raises :class:`~device.journal.transitions.InboxTransitionError` (a JournalError),
        so a finished command is never started again.
        """
        with self._transaction() as conn:
            row = self._fetch_inbox(conn, inbox_id)
            check_inbox_transition(
                inbox_id,
                row.state,
                InboxState.RUNNING,
                f"inbox row {inbox_id} is {row.state.value}; only a received or "
                "running row can be started",
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
        RUNNING (InboxTransitionError otherwise: a finished row is never answered twice). When
        both ``reply`` and ``reply_to`` are given, an outbox row is queued in the same
        transaction and returned; otherwise returns None.
        """
        if state not in (InboxState.DONE, InboxState.FAILED):
            raise ValueError(f"finish needs state done or failed, not {state.value}")
        now = self._now()
        with self._transaction() as conn:
            row = self._fetch_inbox(conn, inbox_id)
            check_inbox_transition(
                inbox_id, row.state, state, f"inbox row {inbox_id} is already {row.state.value}"
            )
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
            f"SELECT {INBOX_COLUMNS} FROM inbox WHERE state IN (?, ?) ORDER BY id",
            (InboxState.RECEIVED.value, InboxState.RUNNING.value),
        )
        return [inbox_row(r) for r in rows]

    def inbox(self, limit: int | None = 100) -> list[InboxRow]:
        """The most recent ``limit`` inbox rows (all with None), oldest first (0 → empty)."""
        return [inbox_row(r) for r in self._recent("inbox", INBOX_COLUMNS, limit)]

    def get_inbox(self, inbox_id: int) -> InboxRow | None:
        """The inbox row ``inbox_id``, or None."""
        rows = self._query(f"SELECT {INBOX_COLUMNS} FROM inbox WHERE id = ?", (inbox_id,))
        return inbox_row(rows[0]) if rows else None
