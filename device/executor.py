"""The executor: runs the commands the journal holds, each exactly once.

Each pending inbox row (RECEIVED, or RUNNING left by a crash) is parsed,
marked RUNNING in the journal *before* its handler runs, dispatched, and
finished with its reply queued in the outbox in the same commit. The "never
twice" rule: a row found RUNNING was interrupted (a crash, or a journal error
after its handler ran); it is never re-run blindly — an idempotent handler
runs again, any other is answered ``error: interrupted`` and failed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from device.commands import (
    CommandContext,
    Dispatcher,
    Registry,
    StatusSnapshot,
    format_reply,
    parse_payload,
)
from device.crash import CrashPoints
from device.journal import InboxRow, InboxState, Journal
from device.observer import AgentObserver, Counters, notify

LOGGER = logging.getLogger(__name__)


class Executor:
    """Dispatches pending rows to their handlers and journals the outcome."""

    def __init__(
        self,
        journal: Journal,
        registry: Registry,
        *,
        handler_timeout: float,
        reply_to: str,
        status: Callable[[], StatusSnapshot],
        counters: Counters,
        observer: AgentObserver,
        crash: CrashPoints,
        stop: asyncio.Event,
    ) -> None:
        self.journal = journal
        self.registry = registry
        self.dispatcher = Dispatcher(registry, timeout=handler_timeout)
        self._reply_to = reply_to
        self._status = status
        self._counters = counters
        self._observer = observer
        self._crash = crash
        self._stop = stop

    async def run_pending(self) -> None:
        """Run every pending row, oldest first; returns early when stopped."""
        for row in self.journal.pending_inbox():
            if self._stop.is_set():
                return
            # Never a blind re-run of a RUNNING row: the idempotency rule decides.
            if row.state is InboxState.RUNNING and not self._answer_interrupted(row):
                continue
            await self._execute(row)

    def _answer_interrupted(self, row: InboxRow) -> bool:
        """For a row left RUNNING: True when its handler is idempotent and may run
        again; otherwise the row is failed and answered ``error: interrupted`` here,
        and False returned. An unknown command counts as not idempotent."""
        handler = self.registry.lookup(row.command or "")
        if handler is not None and handler.idempotent:
            LOGGER.warning("inbox %d: %r was interrupted; running it again", row.id, row.command)
            return True
        LOGGER.warning("inbox %d: %r was interrupted; answering error", row.id, row.command)
        outbox = self.journal.finish(
            row.id,
            reply="error: interrupted",
            state=InboxState.FAILED,
            error="interrupted by a restart while running",
            reply_to=self._reply_to,
        )
        notify(self._observer.replied, row, outbox)
        return False

    async def _execute(self, row: InboxRow) -> None:
        parsed = parse_payload(row.text)
        row = self.journal.start(row.id, parsed.name, parsed.argument)
        self._crash.reached("after_start")
        ctx = CommandContext(
            name=parsed.name,
            argument=parsed.argument,
            sender=row.sender,
            timestamp=row.timestamp,
            journal_id=row.id,
            status=self._status,
        )
        outcome = await self.dispatcher.dispatch(ctx)
        self._crash.reached("after_handler")
        reply = outcome.reply
        if reply is not None:
            reply, warnings = format_reply(reply)
            for warning in warnings:
                LOGGER.warning("inbox %d reply: %s", row.id, warning)
        outbox = self.journal.finish(
            row.id,
            reply=reply,
            state=InboxState.DONE if outcome.ok else InboxState.FAILED,
            error=outcome.error,
            reply_to=self._reply_to,
        )
        self._counters.executed += 1
        LOGGER.info("inbox %d: %r -> %r", row.id, parsed.name, reply)
        notify(self._observer.replied, row, outbox)


__all__ = ["Executor"]
