"""The inbox state rule, declared as data: where a row may begin and what may follow what.

::

    received ──start──▶ running ──finish──▶ done | failed
        │                 ▲  │
        │                 └──┘ start again (a re-run after a crash)
        └──────finish─────────────────────▶ done | failed

    refused, undecodable, incomplete: given at insert, final.

:data:`INITIAL_INBOX_STATES` are the states a row is inserted with (a received SMS, or
a completed or expired multipart message). :data:`INBOX_TRANSITIONS` maps *every* state
to the states an existing row may change to; a state with no successor is final, and
:data:`FINISHED_INBOX_STATES` is derived from that. The store checks each change with
:func:`check_inbox_transition` inside the transaction that makes it, against the state
the row has *in the file*, so a finished row is never started or answered twice.

An illegal change is an :class:`InboxTransitionError`, a
:class:`~device.errors.JournalError`: the caller learns the row had moved on (e.g. another
process finished it), not that the disk failed. Asking to *insert* a row in a state that
is not initial is a programming error and stays a :class:`ValueError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from device.errors import JournalError
from device.journal.rows import InboxState

#: States a new inbox row may be inserted with.
INITIAL_INBOX_STATES = frozenset(
    {InboxState.RECEIVED, InboxState.REFUSED, InboxState.UNDECODABLE, InboxState.INCOMPLETE}
)

_COMMAND_OUTCOMES = frozenset({InboxState.RUNNING, InboxState.DONE, InboxState.FAILED})

#: For every inbox state, the states an existing row in it may change to.
INBOX_TRANSITIONS: Mapping[InboxState, frozenset[InboxState]] = MappingProxyType(
    {
        InboxState.RECEIVED: _COMMAND_OUTCOMES,
        InboxState.RUNNING: _COMMAND_OUTCOMES,
        InboxState.DONE: frozenset(),
        InboxState.FAILED: frozenset(),
        InboxState.REFUSED: frozenset(),
        InboxState.UNDECODABLE: frozenset(),
        InboxState.INCOMPLETE: frozenset(),
    }
)

#: Inbox states that are final: such a row is never started or finished again.
FINISHED_INBOX_STATES = frozenset(s for s, after in INBOX_TRANSITIONS.items() if not after)


class InboxTransitionError(JournalError):
    """An inbox row was asked to change to a state the table does not allow from its own."""

    def __init__(self, inbox_id: int, old: InboxState, new: InboxState, message: str) -> None:
        super().__init__(message)
        self.inbox_id = inbox_id
        self.old = old
        self.new = new


def inbox_transition_allowed(old: InboxState, new: InboxState) -> bool:
    """Whether a row in state ``old`` may change to ``new``.

    A state missing from the table is a KeyError, never a silent yes or no (the table
    is checked to be total by the tests, so that only happens for a new, undeclared state).
    """
    return new in INBOX_TRANSITIONS[old]


def check_inbox_transition(
    inbox_id: int, old: InboxState, new: InboxState, message: str | None = None
) -> None:
    """Raise :class:`InboxTransitionError` unless row ``inbox_id`` may go from ``old`` to ``new``.

    ``message`` is the error text (the store's operations word it for what they do); by
    default it names the row and both states.
    """
    if not inbox_transition_allowed(old, new):
        raise InboxTransitionError(
            inbox_id,
            old,
            new,
            message or f"inbox row {inbox_id} cannot change from {old.value} to {new.value}",
        )


def check_initial_inbox_state(state: InboxState) -> None:
    """ValueError unless a new row may be inserted in ``state`` (a caller's mistake)."""
    if state not in INITIAL_INBOX_STATES:
        raise ValueError(f"an incoming message cannot start in state {state.value}")
