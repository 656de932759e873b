"""Retention and status: pruning finished rows, and counting rows per state.

:meth:`RetentionJournal.prune` deletes only finished rows older than a cut-off: never a
``received``/``running`` row, a row still on the modem (it would defeat the dedupe rule)
or a ``queued`` outbox row.
"""

from __future__ import annotations

import logging
from datetime import datetime

from device.journal.rows import FINISHED_OUTBOX_STATES, InboxState, OutboxState, _utc_iso
from device.journal.schema import sql_list
from device.journal.store import JournalStore
from device.journal.transitions import FINISHED_INBOX_STATES

LOGGER = logging.getLogger(__name__)

#: After a prune that deleted at least this many rows, the WAL file is truncated.
PRUNE_CHECKPOINT_ROWS = 1000

_FINISHED_INBOX = sql_list(sorted(s.value for s in FINISHED_INBOX_STATES))
_FINISHED_OUTBOX = sql_list(sorted(s.value for s in FINISHED_OUTBOX_STATES))


class RetentionJournal(JournalStore):
    """Pruning and counts over every table (a part of :class:`~device.journal.Journal`)."""

    def prune(self, *, older_than: datetime, keep_last: int = 0, limit: int | None = None) -> int:
        """Delete finished rows last changed before ``older_than``; returns rows deleted.

        An inbox row goes when it is finished (done, failed, refused, undecodable,
        incomplete), no longer on the modem, updated before ``older_than``, not among the
        ``keep_last`` most recent inbox rows (whatever their state), and every outbox row
        of it is finished (sent or failed) and updated before ``older_than`` too; its
        outbox rows and their attempts go with it. An originated outbox row (no inbox
        row) goes when finished and updated before ``older_than``, with its attempts.
        Nothing else is touched: no pending or on-modem inbox row, no queued outbox row.

        ``limit`` bounds the work of one call (a batch, as the running agent prunes:
        :mod:`device.pruning`): at most ``limit`` inbox rows, the oldest first, and at
        most ``limit`` originated outbox rows, each with its own outbox and attempt rows;
        None: every row that may go. A count of 0 means nothing (more) may go now.

        The count is of all rows deleted (inbox, outbox and attempts), in one
        transaction. ValueError for a naive ``older_than``, a negative ``keep_last`` or
        a ``limit`` below 1.
        """
        if keep_last < 0:
            raise ValueError("keep_last must be >= 0")
        if limit is not None and limit < 1:
            raise ValueError("limit must be >= 1")
        cutoff = _utc_iso(older_than, "older_than")
        bound = -1 if limit is None else limit  # SQLite: a negative LIMIT is none
        with self._transaction() as conn:
            inbox_ids = [
                r[0]
                for r in conn.execute(
                    f"SELECT i.id FROM inbox AS i WHERE i.state IN ({_FINISHED_INBOX})"
                    " AND i.on_modem = 0 AND i.updated_at < :cutoff"
                    " AND i.id NOT IN (SELECT id FROM inbox ORDER BY id DESC LIMIT :keep)"
                    " AND NOT EXISTS (SELECT 1 FROM outbox AS o WHERE o.inbox_id = i.id"
                    f" AND (o.state NOT IN ({_FINISHED_OUTBOX}) OR o.updated_at >= :cutoff))"
                    " ORDER BY i.id LIMIT :bound",
                    {"cutoff": cutoff, "keep": keep_last, "bound": bound},
                )
            ]
            outbox_ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM outbox WHERE inbox_id IS NULL"
                    f" AND state IN ({_FINISHED_OUTBOX}) AND updated_at < ? ORDER BY id LIMIT ?",
                    (cutoff, bound),
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
