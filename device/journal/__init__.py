"""The SQLite journal: inbox and outbox, each row with an explicit processing state.

The promise is *nothing lost, nothing run twice*. What this module guarantees, exactly:

**What is committed when.** Every method that writes is one ``BEGIN IMMEDIATE``
transaction. When it returns, everything it did is committed and, by default, on disk;
when it raises, none of it was written. That needs WAL mode with ``synchronous=FULL``:
with NORMAL, WAL commits are not synced one by one and a power loss may roll back the
last ones -- and a lost commit can be an SMS already deleted from the modem, gone for
good (see :meth:`Journal.open`). A caller may ask for one transaction not to be synced
(``durable=False`` of :meth:`Journal.record_incoming` and :meth:`Journal.mark_deleted`)
where losing it on power failure is harmless; it survives a crash of the process, and
the next synced commit makes it durable too. :attr:`Journal.commit_counts` counts the
commits and the synced ones. Nothing is ever half-done: a finished command and its
queued reply, or a send outcome and its attempt record, are committed together or not
at all.

**Inbox.**

* :meth:`Journal.record_incoming` commits a received SMS before anything else happens to
  it. The caller must delete the message from the modem only *after* a synced commit of
  its row -- never before, never concurrently -- and then record the deletion with
  :meth:`Journal.mark_deleted`. A crash between the commit and the delete leaves the
  message on the modem *and* in the journal. :meth:`Journal.settled_on_modem` lists the
  rows whose message may now be deleted (finished, no reply of theirs queued): the
  agent deletes a command's message after its reply is sent.
* Dedupe rule: a message is the one already journaled when a row with the same
  ``(sender, timestamp, text, concat, storage, index)`` exists (None matches None) and
  that row is still marked ``on_modem``. Then nothing is inserted and the existing row is
  returned, in whatever state it has reached, with ``is_new=False``: a message read again
  after the crash above is never executed a second time. Once the deletion is recorded, an
  identical message is a new one (the modem reuses indexes; a sender may repeat itself).
* States: ``received → running → done | failed``; ``refused``, ``undecodable`` and
  ``incomplete`` (a concatenated message whose parts never all arrived) are given at
  insert and are final (the table is :data:`INBOX_TRANSITIONS`; a change it does not
  allow is an :class:`InboxTransitionError`). Only ``received`` and ``running`` rows are
  pending work.
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

All SQL of the project lives in this package. The schema version is kept in
``PRAGMA user_version``; :data:`MIGRATIONS` lists forward migrations, applied in order,
one transaction each. A journal written by a newer smscmd is refused, never touched.
The times the journal takes from its clock (``received_at``, ``updated_at``,
``next_attempt_at``, ``attempted_at``) are stored as UTC ISO 8601 text, which sorts in
time order (the optional fraction starts with ``.``, which sorts after the ``+`` of the
offset), so SQL compares them directly. The SMSC time stamp keeps its own offset and is
only ever compared for equality.

Every :class:`sqlite3.Error` is translated into :class:`~device.errors.JournalError`;
one that says the file cannot be written (disk full, I/O error, read-only) into
:class:`~device.errors.JournalCannotRecord`, and a write to a file that is no longer the
one at the path (deleted or replaced under the agent) is refused with
:class:`~device.errors.JournalReplaced`. Arguments that are programming errors (a
naive datetime, a finish state other than DONE/FAILED, a negative limit or delay)
raise :class:`ValueError`.

The API is synchronous, each call one short transaction on a local file. Calls are
serialised by a lock, so the object may be used from any thread: the agent makes every
call through :class:`device.journal.worker.AsyncJournal`, on a thread of its own, so that
an ``fdatasync`` never holds its event loop (and the serial reader on it); ``smscmd
journal``, the tools and the tests call it directly.

**Layout.** :class:`Journal` is one class made of parts over one connection, each a
module of its own: :mod:`~device.journal.store` (the connection, :meth:`Journal.open`,
the transaction), :mod:`~device.journal.inbox`, :mod:`~device.journal.outbox`,
:mod:`~device.journal.parts` (multipart messages), :mod:`~device.journal.publish` (the
MQTT publish queue), :mod:`~device.journal.retention`
(prune, counts) and :mod:`~device.journal.upkeep` (the file's identity, a probe write,
checkpoints); write failures by kind and the file identity are in
:mod:`~device.journal.health`; the row types are in :mod:`~device.journal.rows`, the schema and its
migrations in :mod:`~device.journal.schema`, the inbox state table in
:mod:`~device.journal.transitions`; the agent's journal thread in
:mod:`~device.journal.worker` (imported from there: it wraps :class:`Journal`). Retry
timing is not the journal's: :mod:`device.retry`.
"""

from __future__ import annotations

from device.journal.inbox import InboxJournal
from device.journal.outbox import OutboxJournal
from device.journal.parts import PartsJournal
from device.journal.publish import PublishEvent, PublishJournal, PublishRow, QueueOutcome
from device.journal.retention import PRUNE_CHECKPOINT_ROWS, RetentionJournal
from device.journal.rows import (
    FINISHED_OUTBOX_STATES,
    AttemptOutcome,
    InboxRow,
    InboxState,
    OutboxAttempt,
    OutboxRow,
    OutboxState,
    to_json,
)
from device.journal.schema import MIGRATIONS, SCHEMA_VERSION
from device.journal.store import BUSY_TIMEOUT_MS, DIR_MODE, FILE_MODE, CommitCounts
from device.journal.transitions import (
    FINISHED_INBOX_STATES,
    INBOX_TRANSITIONS,
    INITIAL_INBOX_STATES,
    InboxTransitionError,
)
from device.journal.upkeep import UpkeepJournal

__all__ = [
    "BUSY_TIMEOUT_MS",
    "DIR_MODE",
    "FILE_MODE",
    "FINISHED_INBOX_STATES",
    "FINISHED_OUTBOX_STATES",
    "INBOX_TRANSITIONS",
    "INITIAL_INBOX_STATES",
    "MIGRATIONS",
    "PRUNE_CHECKPOINT_ROWS",
    "SCHEMA_VERSION",
    "AttemptOutcome",
    "CommitCounts",
    "InboxRow",
    "InboxState",
    "InboxTransitionError",
    "Journal",
    "OutboxAttempt",
    "OutboxRow",
    "OutboxState",
    "PublishEvent",
    "PublishRow",
    "QueueOutcome",
    "to_json",
]


class Journal(
    InboxJournal, OutboxJournal, PartsJournal, PublishJournal, RetentionJournal, UpkeepJournal
):
    """The journal on one SQLite file. Create with :meth:`open`; use as a context manager.

    Its operations come from one part per concern, all over the one connection, lock and
    ``_transaction`` of :class:`~device.journal.store.JournalStore`: an operation that
    spans two concerns (:meth:`finish` closes an inbox row and queues its reply) is still
    one transaction.
    """
