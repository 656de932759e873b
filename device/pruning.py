"""Retention while the agent runs: finished journal rows pruned in bounded batches,
on an idle agent and on a busy one alike.

The agent asks :meth:`Pruner.step` at the end of each step of its loop -- after the
step's replies went out and their messages were deleted from the modem, so never
between a ``+CMTI`` taken in that step and its ``AT+CMGS`` -- and at its start. A step
prunes only when a batch is due, and then one batch (:data:`BATCH` inbox rows at most,
with their outbox and attempt rows, and as many originated replies: one transaction,
one synced commit): the next ``+CMTI`` waits at most that long. A batch is due every
``sweep_interval`` (the config's; the idle agent wakes for it), and again after
:data:`AGAIN` seconds while the last batch deleted something (a backlog, as after a
long stop, is worked off a batch at a time). Before issue 14 pruning ran only at an
idle agent's sweep, so an agent under continuous traffic never pruned and its
journal file grew without bound.

What a batch may delete is :meth:`~device.journal.Journal.prune`'s rule: finished rows
older than ``retention_days`` beyond the ``keep_last`` newest inbox rows; never a
``received``/``running`` row, one still on the modem, or a ``queued`` reply (one held
in memory because the journal could not record it is still ``queued`` there).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from device.config import Config
from device.journal.worker import AsyncJournal

LOGGER = logging.getLogger(__name__)

#: Inbox rows (and originated replies) one batch deletes at most.
BATCH = 200
#: Seconds until the next batch while the last one deleted something.
AGAIN = 0.5


class Pruner:
    """When the agent's next batch is due, and the batch itself."""

    def __init__(
        self, journal: AsyncJournal, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        """``monotonic`` is the clock of the due times (a test's own)."""
        self.journal = journal
        self._monotonic = monotonic
        self._due = monotonic()  # the first step prunes
        #: Rows deleted in all, and batches that deleted any (for tests and status).
        self.removed = 0
        self.batches = 0

    def due_in(self) -> float:
        """Seconds until the next batch is due (0: due now); the idle agent's wake-up."""
        return max(0.0, self._due - self._monotonic())

    async def step(self, config: Config) -> int:
        """One batch if one is due (else nothing); the rows it deleted.

        JournalCannotRecord (a full disk) propagates as from any journal write, and
        the batch stays due.
        """
        if self._monotonic() < self._due:
            return 0
        cutoff = datetime.now(UTC) - timedelta(days=config.retention_days)
        removed = await self.journal.prune(
            older_than=cutoff, keep_last=config.keep_last, limit=BATCH
        )
        self._due = self._monotonic() + (AGAIN if removed else config.sweep_interval)
        if removed:
            self.removed += removed
            self.batches += 1
            LOGGER.info("journal: pruned %d finished row(s) older than %s", removed, cutoff)
        return removed


__all__ = ["AGAIN", "BATCH", "Pruner"]
