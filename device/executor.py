"""The executor: runs the commands the journal holds, each exactly once.

Each pending inbox row (RECEIVED, or RUNNING left by a crash) is parsed,
marked RUNNING in the journal *before* its handler runs, dispatched, and
finished with its reply queued in the outbox in the same commit. The "never
twice" rule: a row found RUNNING that is not in flight here was interrupted
(a crash, or a journal error after its handler ran); it is never re-run
blindly — an idempotent handler runs again, any other is answered
``error: interrupted`` and failed.

Concurrency: each row runs as its own task, so that a slow handler does not
hold the agent's loop (the inbox, the outbox) or the commands behind it. A
handler runs at most ``Handler.concurrency`` rows at once (default 1); a row
whose handler is at its limit stays RECEIVED, and rows of one handler start
oldest first. The row is journaled RUNNING *before* its task starts (awaited in
:meth:`Executor.run_pending`, by the agent's loop), and the reply still goes through
the outbox, which sends one message at a time. A finished run wakes the loop.
A journal error inside a run is raised from the next :meth:`run_pending`, as if
the loop had met it itself. An outcome the journal could not record (a full disk
at ``finish``) is held in memory (:attr:`Executor.unfinished`) and recorded before
any other row starts, so that the handler's own reply is sent once there is room --
not ``error: interrupted`` nor a second run; only a stop before that loses it (it is
logged).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from device.commands import (
    CommandContext,
    Dispatcher,
    ParsedCommand,
    Registry,
    StatusSnapshot,
    format_reply,
    parse_payload,
)
from device.crash import CrashPoints
from device.errors import JournalError
from device.journal import InboxRow, InboxState
from device.journal.worker import AsyncJournal
from device.observer import AgentObserver, Counters, notify

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Unfinished:
    """A run whose outcome the journal could not record: the row is still RUNNING."""

    row: InboxRow
    name: str
    reply: str | None
    state: InboxState
    error: str | None
    #: The registered name of the handler that ran (None: none did), and the seconds
    #: its dispatch took (None: no run), for the observer's ``finished``.
    handler: str | None = None
    run_time: float | None = None


class Executor:
    """Dispatches pending rows to their handlers and journals the outcome."""

    def __init__(
        self,
        journal: AsyncJournal,
        registry: Registry,
        *,
        handler_timeout: float,
        reply_to: str,
        status: Callable[[], StatusSnapshot],
        counters: Counters,
        observer: AgentObserver,
        crash: CrashPoints,
        stop: asyncio.Event,
        wake: asyncio.Event | None = None,
    ) -> None:
        """``wake`` is set when a run finishes (its reply is queued, a slot is free)."""
        self.journal = journal
        self.registry = registry
        self.dispatcher = Dispatcher(registry, timeout=handler_timeout)
        self._reply_to = reply_to
        self._status = status
        self._counters = counters
        self._observer = observer
        self._crash = crash
        self._stop = stop
        self._wake = wake or asyncio.Event()
        #: Inbox id → the task running it.
        self._running: dict[int, asyncio.Task[None]] = {}
        #: Handler name → rows of it in flight.
        self._busy: collections.Counter[str] = collections.Counter()
        self._failure: BaseException | None = None
        self._finished = False
        #: Rows whose handler has returned and whose outcome is being journaled.
        self._recording: set[int] = set()
        #: Whether the last :meth:`_start_ready` left a row waiting for a free slot.
        self._slot_wanted = False
        #: Inbox id → an outcome the journal could not record yet (see the module).
        self.unfinished: dict[int, Unfinished] = {}

    @property
    def in_flight(self) -> int:
        """Rows whose handler is running now."""
        return len(self._running)

    @property
    def waiting(self) -> bool:
        """True when a run finished since the last :meth:`run_pending`: a slot is free
        (a row may wait for it) or a journal error is to be raised. The loop checks it
        after clearing its wake event, so a run that ended meanwhile is not slept over."""
        return self._finished

    async def run_pending(self) -> None:
        """Start every pending row that has a free slot, oldest first, and go on while
        runs finish at once (a quick handler's rows all run in one call, as they did
        one by one before); returns without waiting for slow runs (see :meth:`drain`),
        early when stopped. Raises the journal error a finished run met.

        A run is quick when its handler returned in the step it was given: then only
        its ``finish`` in the journal thread is waited for (the reader goes on
        meanwhile), never a handler. The pending rows are read again only when a slot
        was wanted: nothing else can have become pending meanwhile (the inbox, which
        records new rows, runs in the same task), so a finished run whose outcome is
        journaled here leaves :attr:`waiting` false.
        """
        while True:
            self._finished = False
            self._raise_failure()
            if not await self._start_ready():
                return
            await asyncio.sleep(0)  # let the runs just started begin (and quick ones end)
            quick = [self._running[i] for i in self._recording if i in self._running]
            if quick:
                await asyncio.wait(quick)
            if not self._finished:
                return
            if self._failure is None and not self._slot_wanted:
                self._finished = False  # what it tells is done: a reply queued, no row waits
                return

    async def _start_ready(self) -> int:
        """Journal RUNNING and start a task for each pending row with a free slot
        (first the outcomes held :attr:`unfinished`: JournalError while they cannot be)."""
        for held in list(self.unfinished.values()):
            await self._record(held)
            LOGGER.warning("inbox %d: outcome recorded at last", held.row.id)
        started = 0
        self._slot_wanted = False
        for row in await self.journal.pending_inbox():
            if self._stop.is_set():
                break
            if row.id in self._running or row.id in self.unfinished:
                continue
            # Never a blind re-run of a RUNNING row: the idempotency rule decides.
            if row.state is InboxState.RUNNING and not await self._answer_interrupted(row):
                continue
            parsed = parse_payload(row.text)
            handler = self.dispatcher.registry.lookup(parsed.name)
            key, limit = (handler.name, handler.concurrency) if handler else ("", 0)
            if limit and self._busy[key] >= limit:
                self._slot_wanted = True
                continue  # stays RECEIVED; the run that frees the slot wakes the loop
            running = await self.journal.start(row.id, parsed.name, parsed.argument)
            self._crash.reached("after_start")
            self._busy[key] += 1
            self._running[row.id] = asyncio.create_task(
                self._execute(running, parsed, key), name=f"inbox-{row.id}"
            )
            started += 1
        return started

    async def drain(self) -> None:
        """Wait for every run in flight (each is bounded by its handler's timeout); if
        this wait is cancelled, the runs are cancelled (their rows stay RUNNING, and
        the idempotency rule decides at the next start)."""
        tasks = list(self._running.values())
        if not tasks:
            return
        LOGGER.info("waiting for %d running command(s)", len(tasks))
        try:
            await asyncio.gather(*tasks, return_exceptions=True)
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    def _raise_failure(self) -> None:
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    async def _answer_interrupted(self, row: InboxRow) -> bool:
        """For a row left RUNNING: True when its handler is idempotent and may run
        again; otherwise the row is failed and answered ``error: interrupted`` here,
        and False returned. An unknown command counts as not idempotent."""
        handler = self.registry.lookup(row.command or "")
        if handler is not None and handler.idempotent:
            LOGGER.warning("inbox %d: %r was interrupted; running it again", row.id, row.command)
            return True
        LOGGER.warning("inbox %d: %r was interrupted; answering error", row.id, row.command)
        outbox = await self.journal.finish(
            row.id,
            reply="error: interrupted",
            state=InboxState.FAILED,
            error="interrupted by a restart while running",
            reply_to=self._reply_to,
        )
        notify(self._observer.finished, row, InboxState.FAILED, None, None)
        finished = replace(row, state=InboxState.FAILED, reply="error: interrupted",
                           error="interrupted by a restart while running")  # fmt: skip
        notify(self._observer.replied, finished, outbox)
        return False

    async def _execute(self, row: InboxRow, parsed: ParsedCommand, key: str) -> None:
        """Run one started row to its journaled outcome; frees its slot and wakes the loop."""
        try:
            await self._run(row, parsed, key)
        except Exception as exc:  # a journal error: the loop raises it (see run_pending)
            if row.id not in self.unfinished:  # (a held outcome was logged as such)
                LOGGER.error("inbox %d: not finished: %s", row.id, exc)
            self._failure = exc
        finally:
            self._recording.discard(row.id)
            self._busy[key] -= 1
            del self._running[row.id]
            self._finished = True
            self._wake.set()

    async def _run(self, row: InboxRow, parsed: ParsedCommand, key: str) -> None:
        """Dispatch ``row`` to ``key``'s handler (``""``: none registered) and record it."""
        ctx = CommandContext(
            name=parsed.name,
            argument=parsed.argument,
            sender=row.sender,
            timestamp=row.timestamp,
            journal_id=row.id,
            status=self._status,
        )
        begun = time.monotonic()
        outcome = await self.dispatcher.dispatch(ctx)
        run_time = time.monotonic() - begun
        self._crash.reached("after_handler")
        reply = outcome.reply
        if reply is not None:
            reply, warnings = format_reply(reply)
            for warning in warnings:
                LOGGER.warning("inbox %d reply: %s", row.id, warning)
        state = InboxState.DONE if outcome.ok else InboxState.FAILED
        self._recording.add(row.id)  # a quick run is waited for from here (run_pending)
        await self._record(
            Unfinished(row, parsed.name, reply, state, outcome.error, key or None, run_time)
        )

    async def _record(self, held: Unfinished) -> None:
        """Finish ``held.row``; on a JournalError hold it in :attr:`unfinished`, re-raise."""
        row = held.row
        try:
            outbox = await self.journal.finish(
                row.id, reply=held.reply, state=held.state, error=held.error,
                reply_to=self._reply_to,
            )  # fmt: skip
        except JournalError as exc:
            if row.id not in self.unfinished:
                LOGGER.error("inbox %d: %r -> %r, but the journal cannot record it (%s); held"
                             " in memory", row.id, held.name, held.reply, exc)  # fmt: skip
            self.unfinished[row.id] = held
            raise
        self.unfinished.pop(row.id, None)
        self._counters.executed += 1
        LOGGER.info("inbox %d: %r -> %r", row.id, held.name, held.reply)
        notify(self._observer.finished, row, held.state, held.handler, held.run_time)
        finished = replace(row, state=held.state, reply=held.reply, error=held.error)
        notify(self._observer.replied, finished, outbox)


__all__ = ["Executor", "Unfinished"]
