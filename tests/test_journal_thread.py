"""The agent's journal thread (issue 14: "the journal's disk I/O must not stall the
serial reader"): :class:`device.journal.worker.AsyncJournal` on its own, then the agent
reading the line while a synced commit is slow."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import Line
from test_agent import WAIT, rig

from device.at.codec import Urc
from device.errors import JournalError, JournalReplaced
from device.journal import InboxState, InboxTransitionError, Journal
from device.journal.worker import THREAD_NAME, AsyncJournal

#: Bound of a step the worker is held at by a test (released long before, normally).
HOLD = 2.0


class Gate:
    """Holds the journal thread inside a call until :meth:`open` (or :data:`HOLD`)."""

    def __init__(self) -> None:
        #: Set once a call reached the gate; ``holding`` while it is held there.
        self.inside = threading.Event()
        self.holding = threading.Event()
        self._open = threading.Event()
        self.timed_out = False

    def hold(self) -> None:
        """In the thread: say so, then wait to be let go."""
        self.holding.set()
        self.inside.set()
        self.timed_out = not self._open.wait(HOLD)
        self.holding.clear()

    def open(self) -> None:
        self._open.set()

    async def entered(self) -> None:
        """Return once the thread is held (polled off the loop: a thread's event)."""
        entered = await asyncio.to_thread(self.inside.wait, HOLD)
        assert entered, "the journal thread never reached the gate"


def _journal_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(THREAD_NAME)]


@contextlib.contextmanager
def opened(tmp_path: Path) -> Iterator[Journal]:
    with Journal.open(tmp_path / "j.sqlite3") as journal:
        yield journal


def _receive(journal: Journal, text: str = "ping") -> int:
    row, _ = journal.record_incoming(sender="000", timestamp=None, text=text, storage=None,
                                     index=None)  # fmt: skip
    return row.id


async def test_calls_run_in_one_thread_off_the_loop_in_the_order_made(tmp_path: Path) -> None:
    with opened(tmp_path) as journal:
        threaded = AsyncJournal(journal)
        seen: list[str] = []
        queue = journal.queue_outgoing

        def queue_in_thread(destination: str, text: str) -> Any:
            seen.append(threading.current_thread().name)
            return queue(destination, text)

        journal.queue_outgoing = queue_in_thread  # type: ignore[method-assign]
        try:
            rows = await asyncio.gather(
                *(threaded.queue_outgoing("000", f"n{n}") for n in range(20))
            )
            pending = await threaded.pending_outbox()
        finally:
            await threaded.close()
        assert [r.text for r in rows] == [f"n{n}" for n in range(20)]
        assert [r.id for r in rows] == sorted(r.id for r in rows)  # committed in that order
        assert [r.id for r in pending] == [r.id for r in rows]  # the read saw every write
        assert len(set(seen)) == 1 and seen[0].startswith(THREAD_NAME)
        assert threading.current_thread().name not in seen
        assert _journal_threads() == []


async def test_an_exception_reaches_the_caller_as_it_was_raised(tmp_path: Path) -> None:
    """Same type, same object: JournalError, InboxTransitionError, ValueError, and one a
    test raises itself."""
    with opened(tmp_path) as journal:
        threaded = AsyncJournal(journal)
        try:
            inbox_id = _receive(journal)
            done = _receive(journal, "done")
            await threaded.finish(done, reply="x", state=InboxState.DONE, reply_to="000")
            with pytest.raises(InboxTransitionError):  # a finished row is never started
                await threaded.start(done, "ping", None)
            with pytest.raises(JournalError, match="no inbox row 99"):
                await threaded.start(99, "ping", None)
            with pytest.raises(ValueError, match="limit"):
                await threaded.outbox(limit=-1)
            raised = JournalError("the very one")

            def failing() -> dict[str, int]:
                raise raised

            journal.counts = failing  # type: ignore[method-assign]
            with pytest.raises(JournalError) as caught:
                await threaded.counts()
            assert caught.value is raised
            # And the journal is still usable after each of them.
            assert (await threaded.start(inbox_id, "ping", None)).state is InboxState.RUNNING
        finally:
            await threaded.close()


async def test_a_replaced_file_is_journal_replaced_in_the_caller(tmp_path: Path) -> None:
    with opened(tmp_path) as journal:
        threaded = AsyncJournal(journal)
        try:
            os.replace(journal.path, tmp_path / "moved.sqlite3")
            with pytest.raises(JournalReplaced):
                await threaded.queue_outgoing("000", "lost")
            with pytest.raises(JournalReplaced):
                await threaded.check_identity()
        finally:
            await threaded.close()


async def test_close_lets_the_calls_made_before_it_run_then_refuses(tmp_path: Path) -> None:
    with opened(tmp_path) as journal:
        threaded = AsyncJournal(journal)
        gate = Gate()
        counts = journal.counts

        def held() -> dict[str, int]:
            gate.hold()
            return counts()

        journal.counts = held  # type: ignore[method-assign]
        first = asyncio.ensure_future(threaded.counts())
        await gate.entered()
        queued = asyncio.ensure_future(threaded.queue_outgoing("000", "queued behind"))
        closing = asyncio.ensure_future(threaded.close())
        await asyncio.sleep(0)  # let close() refuse new calls
        with pytest.raises(JournalError, match="is closed"):
            await threaded.pending_outbox()
        assert not closing.done()  # it waits for the calls before it
        gate.open()
        await asyncio.wait_for(closing, WAIT)
        assert (await first)["outbox.queued"] == 0 and not gate.timed_out
        assert (await queued).text == "queued behind"
        assert [r.text for r in journal.outbox()] == ["queued behind"]
        assert _journal_threads() == []
        await threaded.close()  # twice is harmless
        with pytest.raises(JournalError, match="is closed"):
            await threaded.counts()


async def test_a_journal_closed_while_a_call_waits_is_a_journal_error(tmp_path: Path) -> None:
    """The service closes the journal; a call still queued then fails typed, at once."""
    with opened(tmp_path) as journal:
        threaded = AsyncJournal(journal)
        gate = Gate()

        def held() -> None:
            gate.hold()

        journal.checkpoint = held  # type: ignore[method-assign]
        try:
            first = asyncio.ensure_future(threaded.checkpoint())
            await gate.entered()
            queued = asyncio.ensure_future(threaded.pending_inbox())
            await asyncio.sleep(0)
            journal.close()  # not holding the journal's lock: the held call is no query
            gate.open()
            await asyncio.wait_for(first, WAIT)
            with pytest.raises(JournalError, match="is closed"):
                await asyncio.wait_for(queued, WAIT)
        finally:
            await threaded.close()


async def test_a_cancelled_caller_does_not_withdraw_its_call(tmp_path: Path) -> None:
    """CancelledError at once for the caller; the commit is still made, all of it."""
    with opened(tmp_path) as journal:
        threaded = AsyncJournal(journal)
        gate = Gate()
        checkpoint = journal.checkpoint

        def held() -> None:
            gate.hold()
            checkpoint()

        journal.checkpoint = held  # type: ignore[method-assign]
        try:
            first = asyncio.ensure_future(threaded.checkpoint())
            await gate.entered()
            caller = asyncio.ensure_future(threaded.queue_outgoing("000", "still made"))
            await asyncio.sleep(0)
            caller.cancel()
            with pytest.raises(asyncio.CancelledError):
                await caller
            assert journal.outbox() == []  # not yet: the thread is still held
            gate.open()
            await asyncio.wait_for(first, WAIT)
        finally:
            await threaded.close()
        assert [r.text for r in journal.outbox()] == ["still made"]


_NEVER_CLOSED = """
import asyncio, sys
from device.journal import Journal
from device.journal.worker import AsyncJournal

async def main():
    threaded = AsyncJournal(journal)
    asyncio.ensure_future(threaded.checkpoint())  # the thread is busy first
    asyncio.ensure_future(threaded.queue_outgoing("000", "made before exit"))
    await asyncio.sleep(0)  # both made; the loop ends, cancelling their callers

journal = Journal.open(sys.argv[1])
asyncio.run(main())
"""


def test_a_journal_thread_never_closed_finishes_its_calls_and_lets_the_process_exit(
    tmp_path: Path,
) -> None:
    """The thread is a daemon drained at exit: no hang, and no call made is lost."""
    path = tmp_path / "j.sqlite3"
    done = subprocess.run(
        [sys.executable, "-c", _NEVER_CLOSED, str(path)], timeout=60, capture_output=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with Journal.open(path) as journal:
        assert [r.text for r in journal.outbox()] == ["made before exit"]


async def test_an_unused_journal_thread_closes_without_starting(tmp_path: Path) -> None:
    with opened(tmp_path) as journal:
        threaded = AsyncJournal(journal)
        assert threaded.path == journal.path and threaded.health.condition is None
        await threaded.close()
        assert _journal_threads() == []


async def test_a_slow_synced_commit_does_not_stall_the_serial_reader(
    tmp_path: Path, line: Line
) -> None:
    """The synced commit of a command's start is held in the journal thread (a slow SD
    card: 200 ms would do, the test holds it until it has seen what it waits for, at
    most HOLD); meanwhile the agent still reads the line: the +CMTI of a second
    message is taken while that commit is in progress. Both are answered once.

    On the code before the journal thread (every call on the event loop) the loop
    itself is held: the +CMTI is read only after the commit, and this test fails."""
    async with rig(tmp_path, line) as r:
        gate = Gate()
        armed = threading.Event()
        transaction = r.journal._transaction

        @contextlib.contextmanager
        def slow_sync(*, durable: bool = True) -> Iterator[Any]:
            with transaction(durable=durable) as conn:
                yield conn
                if durable and armed.is_set():
                    armed.clear()
                    gate.hold()  # just before its COMMIT, the fdatasync

        r.journal._transaction = slow_sync  # type: ignore[method-assign]
        during: list[bool] = []
        seen = asyncio.Event()
        take = r.agent.inbox.on_urc

        def on_urc(urc: Urc) -> bool:
            if urc.name == "+CMTI":
                during.append(gate.holding.is_set())
                seen.set()
            return take(urc)

        r.agent.inbox.on_urc = on_urc  # type: ignore[method-assign]
        armed.set()
        r.gw.deliver("000", "ping: slow disk")
        await gate.entered()
        seen.clear()
        during.clear()
        r.gw.deliver("000", "ping: meanwhile")
        try:
            await asyncio.wait_for(seen.wait(), WAIT)
        finally:
            gate.open()
        assert during == [True], "the +CMTI was read only after the slow commit"
        assert not gate.timed_out
        await r.gw.wait_until(lambda m: len(m.sent) == 2, WAIT)
        assert sorted(s.text for s in r.gw.sent) == ["pong: meanwhile", "pong: slow disk"]
        assert [row.state for row in r.journal.inbox()] == [InboxState.DONE] * 2


async def test_one_command_makes_five_journal_calls_before_its_reply_goes_out(
    tmp_path: Path, line: Line
) -> None:
    """Each journal call is a hop to the journal thread and back (tens of µs): from
    +CMTI to AT+CMGS there are the five the path needs (record, the pending rows, start,
    finish, the due replies), none split in two, and fewer in all than the ten calls
    the agent made on its loop before (the pass that ran the command does not run
    again: run_pending waits for a quick run's finish itself)."""
    async with rig(tmp_path, line) as r:
        calls: list[str] = []
        idle = asyncio.Event()  # the loop asks when a retry is due after the send: idle
        submit = r.agent.journal._submit

        async def counted(fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            calls.append(fn.__name__)
            if fn.__name__ == "next_outbox_due" and "AT+CMGS" in calls:
                idle.set()
            return await submit(fn, *args, **kwargs)

        r.agent.journal._submit = counted  # type: ignore[method-assign]
        modem = r.agent.modem
        assert modem is not None
        send = modem.send_text

        async def sending(*args: Any, **kwargs: Any) -> int:
            calls.append("AT+CMGS")
            return await send(*args, **kwargs)

        modem.send_text = sending  # type: ignore[method-assign]
        for n in range(4):  # the first also meets the drain after the bring-up
            calls.clear()
            idle.clear()
            r.gw.deliver("000", f"ping: {n}")
            await r.gw.wait_until(lambda m, n=n: len(m.sent) > n, WAIT)
            await asyncio.wait_for(idle.wait(), WAIT)
            if n == 0:
                continue
            assert calls[: calls.index("AT+CMGS")] == [
                "record_incoming", "pending_inbox", "start", "finish", "pending_outbox"]
            assert len(calls) - 1 <= 9, calls
