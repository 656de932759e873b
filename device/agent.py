"""The agent: the wake/sleep loop over a ready modem, and the counters.

The parts, each in its own module:

- :mod:`device.modem.supervisor` opens the port (reconnecting with backoff),
  brings the modem up by its declared table of steps, detects restarts, runs
  the health check, and maps errors to lifecycle triggers; it hands the agent a
  ready modem and takes it back when it is lost;
- :mod:`device.inbox` takes messages off the modem: read, journal, delete;
- :mod:`device.executor` runs the journaled commands (the "never twice" rule);
- :mod:`device.outbox` sends the replies (retry / uncertain / final).

One task drives everything that touches the serial line, so there is exactly
one command in flight and no locking beyond the channel's own. While the modem
is ready, the loop here:

1. stops at once when the supervisor saw a restart (before journaling,
   deleting or sending anything more: messages stay in storage until the
   re-initialisation);
2. drains the storage (``AT+CMGL="ALL"``) on every ready modem handed out and
   takes every ``+CMTI``/``+CMT`` indication that woke it; then pending
   commands run, the outbox is flushed, and the messages whose rows are settled
   (their reply sent) are deleted from the modem;
3. when idle, sleeps until woken or until the next timer: every
   ``health_interval`` a health check (and the journal's: its file still the one
   open, its WAL checkpointed), every ``sweep_interval`` a safety sweep
   of the storage for messages whose ``+CMTI`` never came, when a batch of old
   journal rows is due to be pruned, and whenever a failed reply is due for another
   attempt. Pruning (:mod:`device.pruning`) also runs at the end of a busy step: an
   agent under continuous traffic prunes too, a bounded batch at a time.

A journal that cannot record (disk full) is reported while it lasts
(``smscmd status`` "trouble", the observer's ``journal_condition``, the unit's
``STATUS=``); the supervisor suspends and retries, and the outbox sends nothing
meanwhile. A journal deleted or replaced under the agent
(:class:`~device.errors.JournalReplaced`) stops it: the handler runs in flight are
drained, every reply still queued in the old file is logged (it is lost with it),
and the error propagates (``smscmd run`` exits 1, and systemd starts it again on a
new journal: the modem's storage still holds every message not yet journaled).

Every journal call, read or write, goes through the agent's one journal thread
(:class:`~device.journal.worker.AsyncJournal`): the loop awaits it and goes on reading
the line while the disk syncs, and the calls run in the order they are made. The
thread is joined when :meth:`Agent.run` ends, after the handler runs in flight are
drained (their replies are journaled); a call after that is a JournalError.

Crash points (a test hook) live in :mod:`device.crash`, observer hooks and
counters in :mod:`device.observer`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Any

from device.at.channel import AtChannel
from device.at.codec import Urc
from device.at.errors import ConnectionLost
from device.commands import Registry, StatusSnapshot
from device.config import Config
from device.crash import CRASH_ENV, CRASH_POINTS, CrashPoints
from device.errors import JournalCannotRecord, JournalError, JournalReplaced
from device.executor import Executor
from device.inbox import Inbox
from device.journal import Journal, OutboxState
from device.journal.worker import AsyncJournal
from device.modem import Lifecycle, Modem, ModemState, Trigger, signal_text
from device.modem.profiles import Profile
from device.modem.supervisor import ModemSupervisor, OpenChannel
from device.observer import AgentObserver, Counters, LastError, notify
from device.outbox import Outbox, SendPolicy
from device.pruning import Pruner
from device.retry import wait_any

LOGGER = logging.getLogger(__name__)


class Agent:
    """Runs until :meth:`stop`."""

    def __init__(
        self,
        config: Config,
        journal: Journal,
        registry: Registry,
        *,
        observer: AgentObserver | None = None,
        open_channel: OpenChannel | None = None,
        last_error: LastError | None = None,
    ) -> None:
        """``open_channel`` replaces opening ``config.port`` (an in-memory link in
        tests); it raises :class:`ConnectionLost` when the link cannot be had.
        ``last_error`` is kept across agents by a service that builds a new one on a
        reload (a fresh one otherwise)."""
        self.config = config
        #: The journal, through the agent's journal thread (closed when :meth:`run` ends).
        self.journal = AsyncJournal(journal)
        self.registry = registry
        #: Retention: finished rows pruned in batches, idle or busy (:mod:`device.pruning`).
        self.pruner = Pruner(self.journal)
        self.observer = observer or AgentObserver()
        self.lifecycle = Lifecycle(self._state_changed)
        self.counters = Counters()
        self.last_error = last_error if last_error is not None else LastError()
        self.started = time.monotonic()
        #: The journal condition last reported (``journal cannot record: …``), or None.
        self._journal_condition: str | None = None
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        #: A message queued (control socket, MQTT ``…/send``) since the step's outbox
        #: flush began: the loop takes another step instead of sleeping. A flag rather
        #: than clearing the wake before each step, which made every finished run (the
        #: executor sets the wake) cost one more idle pass of journal calls.
        self._send_queued = False
        crash = CrashPoints.from_env()
        self.supervisor = ModemSupervisor(
            config,
            self.lifecycle,
            counters=self.counters,
            stop=self._stop,
            wake=self._wake,
            on_urc=self._on_urc,
            open_channel=open_channel,
            on_trouble=lambda texts: notify(self.observer.trouble, texts),
            on_error=self._error,
        )
        self.inbox = Inbox(
            self.journal,
            allowed_senders=config.allowed_senders,
            concat_timeout=config.concat_timeout,
            restart=self.supervisor.restarts,
            counters=self.counters,
            observer=self.observer,
            crash=crash,
            stop=self._stop,
            wake=self._wake,
        )
        self.executor = Executor(
            self.journal,
            registry,
            handler_timeout=config.handler_timeout,
            reply_to=config.reply_to,
            status=self.status,
            counters=self.counters,
            observer=self.observer,
            crash=crash,
            stop=self._stop,
            wake=self._wake,
        )
        self.outbox = Outbox(
            self.journal,
            SendPolicy.from_config(config),
            counters=self.counters,
            observer=self.observer,
            crash=crash,
            stop=self._stop,
            send_timeout=config.send_timeout,
            on_error=self._error,
        )

    # -- control ----------------------------------------------------------

    def stop(self) -> None:
        """Ask the agent to finish the step in hand and return from :meth:`run`."""
        self._stop.set()
        self._wake.set()

    def reconfigure(self, config: Config, registry: Registry) -> None:
        """Apply a reloaded ``config`` to the running agent, without dropping the modem.

        Takes effect from the next step of the loop: the handlers (the registry's
        contents are replaced in place, so a command already running finishes with the
        handler it started with), the allowed senders, the handler timeout, retention,
        the sweep period and the health interval (from the next sweep or check), and
        the ``[timeouts]`` of the modem: the next AT command, send, bring-up wait and
        reconnect use them (a command already on the line ends under the old one).
        Every other key is fixed for the agent's life; :mod:`device.service` builds a
        new agent for those.
        """
        self.config = config
        self.inbox.allowed = config.allowed_senders
        self.executor.dispatcher.timeout = config.handler_timeout
        self.outbox.send_timeout = config.send_timeout
        self.supervisor.retime(config)
        self.registry.replace(registry)

    @property
    def port(self) -> str:
        return self.supervisor.port

    @property
    def modem(self) -> Modem | None:
        """The modem on the open link (None while disconnected)."""
        return self.supervisor.modem

    @property
    def profile(self) -> Profile:
        """The module profile (``generic`` until the modem was configured)."""
        return self.supervisor.profile

    @property
    def state(self) -> ModemState:
        return self.lifecycle.state

    def status(self) -> StatusSnapshot:
        modem = self.modem
        if modem is None:
            return StatusSnapshot("unknown", "unknown", "unknown")
        return StatusSnapshot(
            modem.identity.describe(), modem.registration_text, signal_text(modem.rssi)
        )

    async def status_report(self) -> dict[str, Any]:
        """Everything ``smscmd status`` shows, JSON-ready."""
        modem = self.modem
        identity = modem.identity if modem is not None else None
        return {
            "state": self.lifecycle.state.value,
            "state_since": self.lifecycle.since.isoformat(timespec="seconds"),
            "port": self.port,
            "module": {
                "manufacturer": identity.manufacturer if identity else None,
                "model": identity.model if identity else None,
                "revision": identity.revision if identity else None,
                "imei": identity.imei if identity else None,
                "iccid": (modem.iccid or None) if modem is not None else None,
            },
            "profile": self.profile.name,
            "registration": modem.registration_text if modem is not None else "unknown",
            "signal": signal_text(modem.rssi if modem is not None else None),
            "trouble": [
                *([journal] if (journal := self.journal.health.text()) else []),
                *self.supervisor.trouble.texts,
            ],
            "last_error": last.as_dict() if (last := self.last_error.current()) else None,
            "settings_not_sticking": dict(modem.not_sticking) if modem is not None else {},
            "uptime_seconds": round(time.monotonic() - self.started, 1),
            "counters": dataclasses.asdict(self.counters),
            "journal": await self.journal.counts(),
            "journal_path": str(self.journal.path.resolve()),
        }

    async def queue_send(self, text: str, destination: str | None = None) -> dict[str, Any]:
        """Commit an originated message to the outbox and wake the sender."""
        row = await self.journal.queue_outgoing(destination or self.config.reply_to, text)
        LOGGER.info("outbox %d: queued for %s: %r", row.id, row.destination, text)
        self._send_queued = True  # seen by the loop's step even if it flushed already
        self._wake.set()
        return row.as_dict()

    # -- main loop --------------------------------------------------------

    async def run(self) -> None:
        """Serve until stopped. Modem and journal trouble is recovered from, not raised."""
        try:
            await self.inbox.expire_parts()
            await self.pruner.step(self.config)
        except JournalCannotRecord:  # logged by the journal; the sweeps do it later
            self._journal_changed()
        try:
            await self.supervisor.run(self._session)
        except JournalReplaced as exc:
            LOGGER.critical("%s; stopping (the next start opens the journal at the path)", exc)
            await self.executor.drain()
            await self._log_what_is_lost(exc)
            raise
        finally:
            await self.executor.drain()  # replies of runs in flight are journaled, not lost
            await self.outbox.record_held_at_stop()  # a send's outcome the disk refused
            for unfinished in self.executor.unfinished.values():
                LOGGER.error(
                    "inbox %d: %r -> %r, never recorded (lost: the row stays running): %r",
                    unfinished.row.id, unfinished.name, unfinished.reply, unfinished.row.text,
                )  # fmt: skip
            for held in self.outbox.unrecorded.values():
                row = held.row
                LOGGER.error(
                    "outbox %d: %s to %s but never recorded: the next start sends it again"
                    " (a duplicate): %r",
                    row.id, held.describe(), row.destination, row.text,
                )  # fmt: skip
            await self.journal.close()  # after the drain: the runs' replies are journaled
            self.lifecycle.fire(Trigger.STOP)
            LOGGER.info("agent stopped")

    async def _session(self, modem: Modem, channel: AtChannel) -> None:
        """Serve a ready modem until stopped; raises when the modem is lost."""
        loop = asyncio.get_running_loop()
        restarts = self.supervisor.restarts
        self.inbox.drain_needed = True
        next_health = loop.time() + self.config.health_interval
        next_sweep = loop.time() + self.config.sweep_interval
        while not self._stop.is_set():
            if channel.closed.is_set():
                raise ConnectionLost(f"{self.port} closed")
            restarts.check()
            self._journal_changed()
            if self.inbox.drain_needed:
                next_sweep = loop.time() + self.config.sweep_interval
            await self.inbox.take(modem)
            await self.executor.run_pending()
            self._send_queued = False  # what is queued from here on, this flush may miss
            await self.outbox.flush(modem, restarts.check)
            await self.inbox.delete_settled(modem)  # reply before delete
            await self.pruner.step(self.config)  # busy or not; after the step's replies
            self._journal_changed()
            if self._work_waiting():
                continue
            self._wake.clear()
            if self._work_waiting():  # came in between: not slept over
                continue
            # Idle: sleep until woken, or until the next timer (health check, safety
            # sweep, a reply due for another attempt). No polling.
            now = loop.time()
            deadline = min(
                next_health, next_sweep, now + self.pruner.due_in(), now + await self.outbox.wait()
            )
            if await wait_any(self._wake, channel.closed, timeout=max(0.0, deadline - now)):
                continue
            now = loop.time()
            if now >= next_sweep:
                LOGGER.debug("safety sweep of the modem storage")
                self.inbox.drain_needed = True
                await self.inbox.expire_parts()
            if now >= next_health:
                await self.supervisor.health_check(modem)
                await self.journal.check_identity()
                await self.journal.checkpoint()
                next_health = loop.time() + self.config.health_interval

    def _journal_changed(self) -> None:
        """Tell the observer when the journal's condition changed (polled: the journal
        is written from the journal thread, which calls no observer)."""
        text = self.journal.health.text()
        if text != self._journal_condition:
            self._journal_condition = text
            notify(self.observer.journal_condition, text)

    async def _log_what_is_lost(self, cause: JournalReplaced) -> None:
        """Log each reply the replaced journal still holds queued: it is gone with that
        file (one held unrecorded is logged by :meth:`run` in any case)."""
        try:
            rows = await self.journal.outbox(limit=None)
            queued = [r for r in rows if r.state is OutboxState.QUEUED]
        except JournalError as exc:
            LOGGER.error("cannot list the replies still queued: %s", exc)
            return
        for row in queued:
            if row.id not in self.outbox.unrecorded:
                LOGGER.error("outbox %d: reply to %s lost with the journal (%s): %r",
                             row.id, row.destination, cause, row.text)  # fmt: skip

    def _work_waiting(self) -> bool:
        return (
            self.inbox.waiting
            or self.executor.waiting
            or self._send_queued
            or self.supervisor.restarts.reason is not None
            or self._stop.is_set()
        )

    def _on_urc(self, urc: Urc) -> None:
        if not self.inbox.on_urc(urc):
            self.supervisor.on_urc(urc)

    def _error(self, text: str) -> None:
        notify(self.observer.error, self.last_error.record(text))
        self._journal_changed()

    def _state_changed(self, before: ModemState, after: ModemState) -> None:
        notify(self.observer.state_changed, before, after)


__all__ = ["CRASH_ENV", "CRASH_POINTS", "Agent", "AgentObserver", "Counters"]
