"""The inbox state table (device/journal/transitions.py) and the store that obeys it.

Every (state, new state) pair is walked twice: against the table, and against a real
journal file, through the operation that makes that change.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device.errors import JournalError
from device.journal import (
    FINISHED_INBOX_STATES,
    INBOX_TRANSITIONS,
    INITIAL_INBOX_STATES,
    InboxRow,
    InboxState,
    InboxTransitionError,
    Journal,
)
from device.journal.transitions import check_inbox_transition, inbox_transition_allowed

S = InboxState

#: The rule as the journal's docstring states it, spelled out pair by pair: received →
#: running → done | failed, running again after a crash, received straight to done |
#: failed; nothing leaves a finished state, nothing enters received or an insert-only state.
ALLOWED = frozenset(
    {
        (S.RECEIVED, S.RUNNING),
        (S.RECEIVED, S.DONE),
        (S.RECEIVED, S.FAILED),
        (S.RUNNING, S.RUNNING),
        (S.RUNNING, S.DONE),
        (S.RUNNING, S.FAILED),
    }
)
PAIRS = list(itertools.product(InboxState, repeat=2))


def test_table_is_total_and_closed() -> None:
    assert set(INBOX_TRANSITIONS) == set(InboxState)
    for after in INBOX_TRANSITIONS.values():
        assert after <= set(InboxState)
    with pytest.raises(TypeError):
        INBOX_TRANSITIONS[S.DONE] = frozenset({S.RUNNING})  # type: ignore[index]


def test_finished_and_initial_states() -> None:
    assert frozenset({S.DONE, S.FAILED, S.REFUSED, S.UNDECODABLE, S.INCOMPLETE}) == (
        FINISHED_INBOX_STATES
    )
    assert frozenset({S.RECEIVED, S.REFUSED, S.UNDECODABLE, S.INCOMPLETE}) == (INITIAL_INBOX_STATES)


@pytest.mark.parametrize(("old", "new"), PAIRS, ids=[f"{a.value}-{b.value}" for a, b in PAIRS])
def test_every_pair_against_the_table(old: InboxState, new: InboxState) -> None:
    allowed = (old, new) in ALLOWED
    assert inbox_transition_allowed(old, new) is allowed
    if allowed:
        check_inbox_transition(7, old, new)
    else:
        with pytest.raises(InboxTransitionError) as info:
            check_inbox_transition(7, old, new)
        assert isinstance(info.value, JournalError)
        assert (info.value.inbox_id, info.value.old, info.value.new) == (7, old, new)
        assert str(info.value) == f"inbox row 7 cannot change from {old.value} to {new.value}"


# --------------------------------------------------------------------------- on a file


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal.open(tmp_path / "journal.sqlite3") as j:
        yield j


def _row_in(j: Journal, state: InboxState, index: int = 1) -> InboxRow:
    """A fresh row in ``state``, reached the way the agent reaches it."""
    if state in INITIAL_INBOX_STATES:
        row, _ = j.record_incoming(
            sender="000", timestamp=None, text="ping", storage="SM", index=index, state=state
        )
        return row
    row = _row_in(j, S.RECEIVED, index)
    if state is S.RUNNING:
        return j.start(row.id, "ping", None)
    j.finish(row.id, reply=None, state=state)
    got = j.get_inbox(row.id)
    assert got is not None
    return got


def _change(j: Journal, row: InboxRow, new: InboxState) -> None:
    """Ask the journal for ``row`` → ``new`` with the one operation that makes it."""
    if new is S.RUNNING:
        j.start(row.id, "ping", None)
    else:
        j.finish(row.id, reply="pong", state=new, reply_to="000")


_REACHABLE = [(old, new) for old, new in PAIRS if new in (S.RUNNING, S.DONE, S.FAILED)]


@pytest.mark.parametrize(
    ("old", "new"), _REACHABLE, ids=[f"{a.value}-{b.value}" for a, b in _REACHABLE]
)
def test_every_pair_on_a_journal(journal: Journal, old: InboxState, new: InboxState) -> None:
    row = _row_in(journal, old)
    assert row.state is old
    if (old, new) in ALLOWED:
        _change(journal, row, new)
        after = journal.get_inbox(row.id)
        assert after is not None and after.state is new
        assert len(journal.outbox()) == (0 if new is S.RUNNING else 1)
    else:
        with pytest.raises(InboxTransitionError) as info:
            _change(journal, row, new)
        assert (info.value.old, info.value.new) == (old, new)
        assert journal.get_inbox(row.id) == row  # nothing written
        assert journal.outbox() == []  # and no reply queued


def test_no_operation_enters_an_insert_only_state() -> None:
    """RECEIVED, REFUSED, UNDECODABLE, INCOMPLETE: no existing row may change to them,
    so the store has no operation that tries (finish refuses them as arguments)."""
    insert_only = set(InboxState) - {S.RUNNING, S.DONE, S.FAILED}
    for old, new in PAIRS:
        if new in insert_only:
            assert not inbox_transition_allowed(old, new)


@pytest.mark.parametrize("state", sorted(set(InboxState) - {S.DONE, S.FAILED}, key=str))
def test_finish_refuses_other_states_as_arguments(journal: Journal, state: InboxState) -> None:
    row = _row_in(journal, S.RECEIVED)
    with pytest.raises(ValueError):
        journal.finish(row.id, reply=None, state=state)


@pytest.mark.parametrize("state", sorted(set(InboxState) - INITIAL_INBOX_STATES, key=str))
def test_no_row_begins_outside_the_initial_states(journal: Journal, state: InboxState) -> None:
    with pytest.raises(ValueError):
        journal.record_incoming(
            sender="000", timestamp=None, text="x", storage=None, index=None, state=state
        )
    assert journal.add_part(
        sender="000", reference=1, total=1, sequence=1, text="x", timestamp=None
    )
    with pytest.raises(ValueError):
        journal.complete_multipart(sender="000", reference=1, total=1, state=state)
    assert journal.inbox() == []


def test_error_messages_kept(journal: Journal) -> None:
    done = _row_in(journal, S.DONE)
    with pytest.raises(InboxTransitionError, match=r"is done; only a received or running row"):
        journal.start(done.id, "ping", None)
    with pytest.raises(InboxTransitionError, match=rf"inbox row {done.id} is already done"):
        journal.finish(done.id, reply=None, state=S.FAILED)


_OPERATIONS = st.lists(st.sampled_from([S.RUNNING, S.DONE, S.FAILED]), max_size=6)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(first=st.sampled_from(sorted(INITIAL_INBOX_STATES, key=str)), steps=_OPERATIONS)
def test_any_sequence_follows_the_table(
    journal: Journal, first: InboxState, steps: list[InboxState]
) -> None:
    """A row driven by any sequence of start/finish calls is where the table says."""
    row = _row_in(journal, first, index=len(journal.inbox()) + 1)
    journal.mark_deleted(row.id)  # the next example's row is a new one
    model = first
    for new in steps:
        if (model, new) in ALLOWED:
            _change(journal, row, new)
            model = new
        else:
            with pytest.raises(InboxTransitionError):
                _change(journal, row, new)
        got = journal.get_inbox(row.id)
        assert got is not None and got.state is model
