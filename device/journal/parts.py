"""The multipart part of the journal: parts of concatenated messages until they are whole.

Parts are held in the ``part`` table, keyed by (sender, reference, total, sequence). A
message becomes one inbox row when its last part arrives (:meth:`PartsJournal.complete_multipart`)
or, still missing parts, when it expires (:meth:`PartsJournal.expire_parts`, state
INCOMPLETE); either way its parts are deleted in the transaction that inserts the row.
The row is not ``on_modem``: each part was deleted from the modem on its own.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import datetime

from device.errors import JournalError
from device.journal.rows import InboxRow, InboxState, _iso, _utc_iso
from device.journal.schema import notes_text, parse_notes
from device.journal.store import JournalStore
from device.journal.transitions import check_initial_inbox_state


class PartsJournal(JournalStore):
    """Operations on the ``part`` table (a part of :class:`~device.journal.Journal`)."""

    def add_part(
        self,
        *,
        sender: str,
        reference: int,
        total: int,
        sequence: int,
        text: str,
        timestamp: datetime | None,
        notes: Iterable[str] = (),
    ) -> bool:
        """Commit one part of a concatenated message; False for a part already held.

        Parts are keyed by (sender, reference, total, sequence): interleaved messages
        from one sender stay apart, and a part delivered or read twice counts once.
        ``notes`` (what the decoder assumed) are gathered into the whole message's row.
        """
        if not 1 <= sequence <= total:
            raise ValueError(f"part {sequence} of {total}")
        with self._transaction() as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO part (received_at, sender, reference, total, sequence,"
                " text, timestamp, notes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    self._now(),
                    sender,
                    reference,
                    total,
                    sequence,
                    text,
                    _iso(timestamp),
                    notes_text(notes),
                ),
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
        sender_type: int | None = None,
    ) -> InboxRow | None:
        """When every part is held: one inbox row with the whole text (the parts are
        deleted in the same transaction); None while parts are missing.

        ``state`` is the row's initial state (RECEIVED, or REFUSED for a sender not
        admitted; ValueError for a state no row may begin in); ``sender_type`` is the
        sender's type-of-address octet as the last part gave it.
        """
        check_initial_inbox_state(state)
        with self._transaction() as conn:
            parts = conn.execute(
                "SELECT sequence, text, timestamp, notes FROM part"
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
                notes=_gathered(parts),
                sender_type=sender_type,
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
                        "SELECT sequence, text, timestamp, notes FROM part"
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
                        notes=_gathered(parts[n] for n in sorted(parts)),
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
        notes: tuple[str, ...],
        sender_type: int | None = None,
    ) -> InboxRow:
        now = self._now()
        cursor = conn.execute(
            "INSERT INTO inbox (received_at, sender, timestamp, text, concat, storage,"
            " modem_index, state, on_modem, error, updated_at, notes, sender_type)"
            " VALUES (?, ?, ?, ?, ?, NULL, NULL, ?, 0, ?, ?, ?, ?)",
            (
                now,
                sender,
                timestamp,
                text,
                f"{reference}/{total}",
                state.value,
                error,
                now,
                notes_text(notes),
                sender_type,
            ),
        )
        conn.execute(
            "DELETE FROM part WHERE sender = ? AND reference = ? AND total = ?",
            (sender, reference, total),
        )
        if cursor.lastrowid is None:
            raise JournalError("insert into inbox returned no row id")
        return self._fetch_inbox(conn, cursor.lastrowid)


def _gathered(parts: Iterable[sqlite3.Row]) -> tuple[str, ...]:
    """The notes of the parts (in the order given), each said once."""
    seen: dict[str, None] = {}
    for part in parts:
        for note in parse_notes(part["notes"]):
            seen.setdefault(note, None)
    return tuple(seen)
