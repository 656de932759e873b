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

The hand-over is one queue and one ``call_soon_threadsafe`` per call: the caller
awaits a plain future that the thread's result sets (a ``ThreadPoolExecutor`` with
``run_in_executor`` and ``shield`` took ~0.13 ms more per call, six calls on the
path from ``+CMTI`` to ``AT+CMGS``). The thread is a daemon that an ``atexit`` hook
drains and joins (as ``concurrent.futures`` does for its workers), so a journal the
agent never closed cannot keep the process from exiting, and no call made is lost at
exit.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import logging
import queue
import threading
import weakref
from collections.abc import Callable, Coroutine
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

#: One call for the thread: the loop and the future to answer on, and the call.
_Call = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]

#: The threads running now, drained and joined at exit (see the module).
_RUNNING: weakref.WeakSet[AsyncJournal] = weakref.WeakSet()


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
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False

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
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name=f"{THREAD_NAME}_0",
                                            daemon=True)  # fmt: skip
            self._thread.start()
            _RUNNING.add(self)
        self._calls.put((loop, future, functools.partial(fn, *args, **kwargs)))
        # A cancelled caller cancels only this future: the call still runs (_answer).
        return await future

    def _serve(self) -> None:
        """The thread: each call in turn, its outcome handed to the loop, until None."""
        while (call := self._calls.get()) is not None:
            loop, future, fn = call
            try:
                result = fn()
            except BaseException as exc:  # the caller's to see, as it was raised
                outcome: tuple[Any, BaseException | None] = (None, exc)
            else:
                outcome = (result, None)
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
                loop.call_soon_threadsafe(_answer, future, *outcome)

    def _stop_thread(self) -> threading.Thread | None:
        """Ask the thread to end after the calls queued so far; the thread (None if none)."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._calls.put(None)
        _RUNNING.discard(self)
        return thread

    async def close(self) -> None:
        """Refuse new calls, let those already made run, and join the thread.

        Closing twice is harmless. Cancelled while calls still run, it does not wait for
        them: the thread ends after the last one by itself.
        """
        if self._closed:
            return
        self._closed = True
        thread = self._stop_thread()
        if thread is None:
            return
        await asyncio.to_thread(thread.join)
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
    queue_publish = _in_thread(Journal.queue_publish)
    pending_publish = _in_thread(Journal.pending_publish)
    published = _in_thread(Journal.published)
    publish_queue_size = _in_thread(Journal.publish_queue_size)


def _answer(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    """On the loop: the outcome of a call, unless its caller was cancelled meanwhile."""
    if future.cancelled():
        if exc is not None:
            LOGGER.debug("a call whose caller was cancelled failed: %r", exc)
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


@atexit.register
def _drain_at_exit() -> None:
    """Let every journal thread still running finish the calls made, then join it."""
    for journal in list(_RUNNING):
        thread = journal._stop_thread()
        if thread is not None:
            thread.join()


__all__ = ["THREAD_NAME", "AsyncJournal"]
