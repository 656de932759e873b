"""Upkeep of the journal file: its identity, a probe write, and checkpoints.

:class:`UpkeepJournal` is a part of :class:`~device.journal.Journal` for what the agent
does at quiet moments and while the journal cannot record: :meth:`~UpkeepJournal.check_identity`
at each health tick (a journal deleted or replaced under an idle agent),
:meth:`~UpkeepJournal.probe` before a send while a write failed
(:attr:`~device.journal.store.JournalStore.health`), and
:meth:`~UpkeepJournal.checkpoint` so that bursts do not leave the WAL full between them.
"""

from __future__ import annotations

import logging

from device.errors import JournalError
from device.journal.store import JournalStore

LOGGER = logging.getLogger(__name__)


class UpkeepJournal(JournalStore):
    """Identity check, probe write and checkpoint (a part of :class:`~device.journal.Journal`)."""

    def check_identity(self) -> None:
        """JournalReplaced when the file at the path is not the one open (a health tick:
        an idle agent learns it without waiting for its next write)."""
        if self._identity is not None:
            self._identity.check(self._path)

    def probe(self) -> None:
        """One write that changes nothing (``user_version`` set to itself, which still
        writes a WAL frame): succeeds, and clears :attr:`health`, once the journal can
        record again; JournalCannotRecord while it cannot."""
        with self._transaction() as conn:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            conn.execute(f"PRAGMA user_version = {version}")
        self.health.recorded()

    def checkpoint(self) -> None:
        """Copy the WAL into the file, at a quiet moment (``wal_checkpoint(PASSIVE)``:
        it waits for no reader). The next write then starts the WAL from its beginning
        and truncates it to WAL_SIZE_LIMIT. A failure is logged (at DEBUG: a full disk
        is reported by the writes) and otherwise ignored: the WAL stays as it was."""
        try:
            self._query("PRAGMA wal_checkpoint(PASSIVE)")
        except JournalError as exc:
            LOGGER.debug("journal %s: checkpoint failed: %s", self._path, exc)
