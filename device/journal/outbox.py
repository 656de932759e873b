"""The outbox part of the journal: queued messages, send outcomes, attempts, the retry schedule.

The store does not decide retries: :meth:`OutboxJournal.mark_send_failed` takes whether the
failure is final and how long to wait (``retry_in``, e.g. from
:class:`device.retry.Backoff`), and records the attempt in the transaction that updates
the row. Only a QUEUED row changes state.
"""

from __future__ import annotations

import math
import sqlite3
from datetime import datetime, timedelta

from device.errors import JournalError
from device.journal.rows import AttemptOutcome, OutboxAttempt, OutboxRow, OutboxState
from device.journal.schema import ATTEMPT_COLUMNS, OUTBOX_COLUMNS, attempt_row, outbox_row, parse_dt
from device.journal.store import JournalStore


class OutboxJournal(JournalStore):
    """Operations on the ``outbox`` and ``outbox_attempt`` tables (see ``Journal``)."""

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
            f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE state = ?"
            " AND (next_attempt_at IS NULL OR next_attempt_at <= ?) ORDER BY id",
            (OutboxState.QUEUED.value, self._at(now)),
        )
        return [outbox_row(r) for r in rows]

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
        return parse_dt(rows[0][0]) if rows else None

    def attempts_of(self, outbox_id: int) -> list[OutboxAttempt]:
        """Every send attempt of outbox row ``outbox_id``, oldest first ([] when none)."""
        rows = self._query(
            f"SELECT {ATTEMPT_COLUMNS} FROM outbox_attempt WHERE outbox_id = ? ORDER BY id",
            (outbox_id,),
        )
        return [attempt_row(r) for r in rows]

    def outbox(self, limit: int | None = 100) -> list[OutboxRow]:
        """The most recent ``limit`` outbox rows (all with None), oldest first (0 → empty)."""
        return [outbox_row(r) for r in self._recent("outbox", OUTBOX_COLUMNS, limit)]

    def get_outbox(self, outbox_id: int) -> OutboxRow | None:
        """The outbox row ``outbox_id``, or None."""
        rows = self._query(f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = ?", (outbox_id,))
        return outbox_row(rows[0]) if rows else None

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
