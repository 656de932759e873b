"""The journal's row types: the processing states and the frozen rows its queries return.

Every time here is tz-aware. ``as_dict`` gives the JSON form ``smscmd journal --json``
prints: datetimes as ISO 8601 with their offset, enums as their value. Which inbox state
may follow which is declared in :mod:`device.journal.transitions`, not here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


class InboxState(enum.Enum):
    """Processing state of a received SMS."""

    RECEIVED = "received"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    REFUSED = "refused"
    UNDECODABLE = "undecodable"
    #: A concatenated message whose parts never all arrived.
    INCOMPLETE = "incomplete"


class OutboxState(enum.Enum):
    """Processing state of an SMS to send."""

    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


class AttemptOutcome(enum.Enum):
    """How one send attempt ended; UNCERTAIN: it may have gone out (timeout, lost port)."""

    SENT = "sent"
    FAILED = "failed"
    UNCERTAIN = "uncertain"


#: Outbox states that are final.
FINISHED_OUTBOX_STATES = frozenset({OutboxState.SENT, OutboxState.FAILED})


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _utc_iso(value: datetime, what: str) -> str:
    """``value`` as the UTC ISO 8601 text the journal stores and compares."""
    if value.tzinfo is None:
        raise ValueError(f"{what} must be a tz-aware datetime")
    return value.astimezone(UTC).isoformat()


@dataclass(frozen=True, slots=True)
class InboxRow:
    """One received SMS.

    ``timestamp`` is the SMSC time stamp with its own offset (None when the modem gave
    none); ``received_at`` and ``updated_at`` are UTC. ``storage``/``index`` say where the
    message lay on the modem (None for a directly delivered ``+CMT`` message). ``concat``,
    ``notes`` and ``sender_type`` are last and defaulted so that positional construction
    written before them still works.
    """

    id: int
    received_at: datetime
    sender: str
    timestamp: datetime | None
    text: str
    storage: str | None
    index: int | None
    state: InboxState
    on_modem: bool
    command: str | None
    argument: str | None
    reply: str | None
    error: str | None
    updated_at: datetime
    #: Concatenation info of a multipart message (e.g. ``"ref/total/seq"``), else None.
    concat: str | None = None
    #: What the decoder assumed or could not read (see :class:`device.modem.StoredSms`).
    notes: tuple[str, ...] = ()
    #: The sender's type-of-address octet (23.040 §9.1.2.5), None when not known.
    sender_type: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: datetimes as ISO 8601 with offset, the state as its value."""
        return {
            "id": self.id,
            "received_at": _iso(self.received_at),
            "sender": self.sender,
            "timestamp": _iso(self.timestamp),
            "text": self.text,
            "storage": self.storage,
            "index": self.index,
            "concat": self.concat,
            "sender_type": self.sender_type,
            "notes": list(self.notes),
            "state": self.state.value,
            "on_modem": self.on_modem,
            "command": self.command,
            "argument": self.argument,
            "reply": self.reply,
            "error": self.error,
            "updated_at": _iso(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One SMS to send; ``inbox_id`` is None for a message the agent originated.

    ``next_attempt_at`` (UTC) is when a QUEUED row is due again after a failed attempt;
    None means due now (never tried, or retried at once) and is the value of finished rows.
    """

    id: int
    inbox_id: int | None
    destination: str
    text: str
    state: OutboxState
    attempts: int
    mr: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    next_attempt_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: datetimes as ISO 8601 with offset, the state as its value."""
        return {
            "id": self.id,
            "inbox_id": self.inbox_id,
            "destination": self.destination,
            "text": self.text,
            "state": self.state.value,
            "attempts": self.attempts,
            "mr": self.mr,
            "last_error": self.last_error,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "next_attempt_at": _iso(self.next_attempt_at),
        }


@dataclass(frozen=True, slots=True)
class OutboxAttempt:
    """One try to send an outbox row; ``mr`` is the message reference when SENT."""

    attempted_at: datetime
    outcome: AttemptOutcome
    error: str | None
    mr: int | None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the time as ISO 8601 with offset, the outcome as its value."""
        return {
            "attempted_at": _iso(self.attempted_at),
            "outcome": self.outcome.value,
            "error": self.error,
            "mr": self.mr,
        }


def to_json(row: InboxRow | OutboxRow) -> dict[str, Any]:
    """Same as ``row.as_dict()``."""
    return row.as_dict()
