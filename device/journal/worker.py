"""The agent's journal thread: every journal call of the agent, off its event loop.

A synced commit is one ``fdatasync`` of the WAL, milliseconds to tens of milliseconds
on an SD card; made on the event loop, it stops the serial reader for that long (no
``+CMTI``, no response is read meanwhile). :class:`AsyncJournal` puts the agent's
journal calls -- writes *and* reads -- on one thread of their own, and the caller
awaits the result: the loop goes on reading the line while the disk works.

What it keeps of the synchronous :class:`~device.journal.Journal`:

* **Order.** One thread, fed first in first out: calls run in the order they were
  made, each to its end before the next begins, so a read made after a write sees it
  (the outbox's ``pending_outbox`` sees the reply a ``finish`` awaited by another task
  queued before it). The connection is used by that thread only (the journal's lock
  still serialises it with a caller who uses the synchronous journal directly, as
  tests and ``smscmd journal`` do).
* **Errors.** The exception a call raised in the thread (JournalError,
  JournalCannotRecord, JournalReplaced, InboxTransitionError, ValueError ...) is
  raised to the awaiting caller as it is: the same object, of the same type.
* **All or nothing.** A call, once made, is not withdrawn: a caller cancelled while
  it waits gets CancelledError at once, and the call still runs to its end in the
  thread (committed or rolled back, as a synchronous call would have been).

Each method is the journal's method of the same name and signature
(:func:`_in_thread`); the in-memory :attr:`AsyncJournal.health` and
:attr:`AsyncJournal.path` are read directly (see each). :meth:`AsyncJournal.close`
lets the calls made before it run, then joins the thread; a call made after it is a
JournalError (``journal ... is closed``), like a call on a closed journal, and never
waits. The thread is started by the first call.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

from device.errors import JournalError
from device.journal import Journal
from device.journal.health import JournalHealth

LOGGER = logging.getLogger(__name__)

#: The journal thread's name (``smscmd-journal_0``): tests check that none is left running.
THREAD_NAME = "smscmd-journal"

P = ParamSpec("P")
T = TypeVar("T")


def _in_thread(
    method: Callable[Concatenate[Journal, P], T],
) -> Callable[Concatenate[AsyncJournal, P], Coroutine[Any, Any, T]]:
    """``method`` of :class:`Journal` as a coroutine method of :class:`AsyncJournal` that
    runs it in the journal thread (same parameters, same result, same exceptions).

    The method is looked up on the journal when called, not when the class is made, so
    that a test which replaces one on its journal object is heard.
    """
    name = method.__name__

    async def call(self: AsyncJournal, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return cast(T, await self._submit(getattr(self._journal, name), *args, **kwargs))

    call.__name__ = name
    call.__qualname__ = f"AsyncJournal.{name}"
    call.__doc__ = f":meth:`Journal.{name}`, in the journal thread.\n\n{method.__doc__ or ''}"
    return call


class AsyncJournal:
    """A :class:`~device.journal.Journal` whose calls run on one thread and are awaited.

    The journal stays the caller's (it is not closed here); :meth:`close` ends the thread.
    """

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=THREAD_NAME)
        self._closed = False
        self._used = False

    # -- what is read directly -----------------------------------------------------

    @property
    def path(self) -> Path:
        """The journal file (fixed at open)."""
        return self._journal.path

    @property
    def health(self) -> JournalHealth:
        """Whether the last write succeeded. Read on the loop while the thread writes it:
        :class:`JournalHealth` is thread-safe (its condition is one reference, replaced
        whole under its lock), and a condition read a call late is a poll a call late."""
        return self._journal.health

    # -- the thread ----------------------------------------------------------------

    async def _submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` in the thread and await it (see the module)."""
        if self._closed:
            raise JournalError(f"journal {self.path} is closed")
        self._used = True
        future = asyncio.get_running_loop().run_in_executor(
            self._executor, functools.partial(fn, *args, **kwargs)
        )
        return await asyncio.shield(future)

    async def close(self) -> None:
        """Refuse new calls, let those already made run, and join the thread.

        Closing twice is harmless. Cancelled while calls still run, it does not wait for
        them: the thread ends after the last one by itself.
        """
        if self._closed:
            return
        self._closed = True
        if not self._used:
            self._executor.shutdown(wait=True)
            return
        barrier = asyncio.get_running_loop().run_in_executor(self._executor, _nothing)
        try:
            await asyncio.shield(barrier)
        finally:
            # After the barrier nothing is queued: the thread exits at once.
            self._executor.shutdown(wait=barrier.done())
        LOGGER.debug("journal thread for %s stopped", self.path)

    # -- the calls (the agent's, nothing else) ------------------------------------

    record_incoming = _in_thread(Journal.record_incoming)
    mark_deleted = _in_thread(Journal.mark_deleted)
    forget_absent = _in_thread(Journal.forget_absent)
    settled_on_modem = _in_thread(Journal.settled_on_modem)
    pending_inbox = _in_thread(Journal.pending_inbox)
    start = _in_thread(Journal.start)
    finish = _in_thread(Journal.finish)
    add_part = _in_thread(Journal.add_part)
    complete_multipart = _in_thread(Journal.complete_multipart)
    expire_parts = _in_thread(Journal.expire_parts)
    queue_outgoing = _in_thread(Journal.queue_outgoing)
    pending_outbox = _in_thread(Journal.pending_outbox)
    mark_sent = _in_thread(Journal.mark_sent)
    mark_send_failed = _in_thread(Journal.mark_send_failed)
    next_outbox_due = _in_thread(Journal.next_outbox_due)
    reschedule_outbox = _in_thread(Journal.reschedule_outbox)
    outbox = _in_thread(Journal.outbox)
    prune = _in_thread(Journal.prune)
    counts = _in_thread(Journal.counts)
    probe = _in_thread(Journal.probe)
    check_identity = _in_thread(Journal.check_identity)
    checkpoint = _in_thread(Journal.checkpoint)


def _nothing() -> None:
    """The barrier :meth:`AsyncJournal.close` waits for: every call before it has run."""


__all__ = ["THREAD_NAME", "AsyncJournal"]
