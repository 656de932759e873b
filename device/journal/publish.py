"""The MQTT publish queue: what is to be published, kept until the broker confirmed it.

One table, ``publish`` (schema version 6): ``id`` (the order: events are published
oldest first, so in order per topic), ``topic``, ``payload`` (JSON text), ``retain``,
``qos`` and ``created`` (UTC, when queued). :meth:`PublishJournal.queue_publish` adds
events, :meth:`PublishJournal.pending_publish` reads the oldest,
:meth:`PublishJournal.published` deletes the ones the broker confirmed: a row goes only
after its PUBACK, so an event is published at least once (twice when the agent stops
between the confirmation and the delete).

**Bounded.** ``queue_publish(..., limit=N)`` keeps at most N rows: past it the oldest
are deleted in the same transaction and their number returned, for the caller to count
and log. **Not synced.** These commits use ``durable=False``: a power loss may take the
last events with it, until the agent's next synced commit (every command makes two,
:mod:`device.journal`), which syncs every commit before it; a crash of the process loses
nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from device.journal.schema import parse_dt
from device.journal.store import JournalStore


@dataclass(frozen=True, slots=True)
class PublishEvent:
    """One message to queue: topic, JSON payload text, retain flag, QoS (0..2)."""

    topic: str
    payload: str
    retain: bool = False
    qos: int = 1


@dataclass(frozen=True, slots=True)
class PublishRow:
    """One queued message; ``id`` orders the queue, ``created`` is UTC."""

    id: int
    topic: str
    payload: str
    retain: bool
    qos: int
    created: datetime


@dataclass(frozen=True, slots=True)
class QueueOutcome:
    """What :meth:`PublishJournal.queue_publish` did: the new rows' ids, and how many of
    the oldest rows it dropped to stay within the limit."""

    ids: tuple[int, ...]
    dropped: int


class PublishJournal(JournalStore):
    """The publish queue (a part of :class:`~device.journal.Journal`)."""

    def queue_publish(self, events: Sequence[PublishEvent], *, limit: int) -> QueueOutcome:
        """Append ``events`` (in order) in one transaction, then drop the oldest rows past
        ``limit`` (ValueError below 1; a bad QoS too). Not synced (see the module)."""
        if limit < 1:
            raise ValueError("limit must be >= 1")
        if any(e.qos not in (0, 1, 2) for e in events):
            raise ValueError("qos is 0, 1 or 2")
        now = self._now()
        with self._transaction(durable=False) as conn:
            ids = tuple(
                int(
                    conn.execute(
                        "INSERT INTO publish (topic, payload, retain, qos, created)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (e.topic, e.payload, int(e.retain), e.qos, now),
                    ).lastrowid
                    or 0
                )
                for e in events
            )
            excess = conn.execute("SELECT COUNT(*) FROM publish").fetchone()[0] - limit
            dropped = 0
            if excess > 0:
                dropped = conn.execute(
                    "DELETE FROM publish WHERE id IN (SELECT id FROM publish ORDER BY id LIMIT ?)",
                    (excess,),
                ).rowcount
        return QueueOutcome(ids, dropped)

    def pending_publish(self, limit: int = 100) -> list[PublishRow]:
        """The oldest ``limit`` queued rows, oldest first."""
        if limit < 1:
            raise ValueError("limit must be >= 1")
        rows = self._query(
            "SELECT id, topic, payload, retain, qos, created FROM publish ORDER BY id LIMIT ?",
            (limit,),
        )
        return [
            PublishRow(
                r["id"],
                r["topic"],
                r["payload"],
                bool(r["retain"]),
                r["qos"],
                parse_dt(r["created"]) or datetime.min,
            )
            for r in rows
        ]

    def published(self, ids: Sequence[int]) -> int:
        """Delete the rows ``ids`` (confirmed by the broker); returns how many were there."""
        if not ids:
            return 0
        with self._transaction(durable=False) as conn:
            marks = ", ".join("?" for _ in ids)
            return int(
                conn.execute(f"DELETE FROM publish WHERE id IN ({marks})", tuple(ids)).rowcount
            )

    def publish_queue_size(self) -> int:
        """Rows queued now."""
        return int(self._query("SELECT COUNT(*) AS n FROM publish")[0]["n"])


__all__ = ["PublishEvent", "PublishJournal", "PublishRow", "QueueOutcome"]
