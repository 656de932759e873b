"""The agent: the wake/sleep loop over a ready modem, and the counters.

The parts, each in its own module:

- :mod:`device.modem.supervisor` opens the port (reconnecting with backoff),
  brings the modem up by its declared table of steps, detects restarts, runs
  the health check, and maps errors to lifecycle triggers; it hands the agent a
  ready modem and takes it back when it is lost;
- :mod:`device.executor` runs the journaled commands (the "never twice" rule);
- :mod:`device.outbox` sends the replies (retry / uncertain / final).

One task drives everything that touches the serial line, so there is exactly
one command in flight and no locking beyond the channel's own. While the modem
is ready, the loop here:

1. stops at once when the supervisor saw a restart (before journaling,
   deleting or sending anything more: messages stay in storage until the
   re-initialisation);
2. drains the storage (``AT+CMGL="ALL"``) on every ready modem handed out and
   takes every ``+CMTI``/``+CMT`` indication that woke it — each message is
   committed to the journal first and deleted from the modem second (nothing
   is lost in between; before journaling one as undecodable the settings are
   checked, a restarted module would garble it); then pending
   commands run and the outbox is flushed;
3. when idle, sleeps until woken or until the next timer: every
   ``health_interval`` a health check, every ``sweep_interval`` a safety sweep
   of the storage for messages whose ``+CMTI`` never came (and pruning of old
   journal rows), and whenever a failed reply is due for another attempt.

Crash points (a test hook) live in :mod:`device.crash`, observer hooks and
counters in :mod:`device.observer`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from device.at.channel import AtChannel
from device.at.codec import Urc
from device.at.errors import CommandError, ConnectionLost
from device.commands import Registry, StatusSnapshot
from device.config import Config
from device.crash import CRASH_ENV, CRASH_POINTS, CrashPoints
from device.executor import Executor
from device.journal import InboxState, Journal
from device.modem import (
    Lifecycle,
    Modem,
    ModemState,
    StoredSms,
    Trigger,
    UndecodableSms,
    decode_direct,
    parse_cmti,
    signal_text,
)
from device.modem.supervisor import ModemSupervisor, OpenChannel
from device.observer import AgentObserver, Counters, notify
from device.outbox import Outbox, SendPolicy
from device.profiles import Profile

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
    ) -> None:
        """``open_channel`` replaces opening ``config.port`` (an in-memory link in
        tests); it raises :class:`ConnectionLost` when the link cannot be had."""
        self.config = config
        self.journal = journal
        self.registry = registry
        self.observer = observer or AgentObserver()
        self.lifecycle = Lifecycle(self._state_changed)
        self.counters = Counters()
        self.started = time.monotonic()
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._crash = crash = CrashPoints.from_env()
        self.supervisor = ModemSupervisor(
            config,
            self.lifecycle,
            counters=self.counters,
            stop=self._stop,
            wake=self._wake,
            on_urc=self._on_urc,
            open_channel=open_channel,
        )
        self._indications: list[tuple[str, int]] = []
        self._direct: list[Urc] = []
        self._drain_needed = True
        self.executor = Executor(
            journal,
            registry,
            handler_timeout=config.handler_timeout,
            reply_to=config.reply_to,
            status=self.status,
            counters=self.counters,
            observer=self.observer,
            crash=crash,
            stop=self._stop,
        )
        self.outbox = Outbox(
            journal,
            SendPolicy.from_config(config),
            counters=self.counters,
            observer=self.observer,
            crash=crash,
            stop=self._stop,
            send_timeout=config.send_timeout,
        )

    # -- control ----------------------------------------------------------

    def stop(self) -> None:
        """Ask the agent to finish the step in hand and return from :meth:`run`."""
        self._stop.set()
        self._wake.set()

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

    def status_report(self) -> dict[str, Any]:
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
            },
            "profile": self.profile.name,
            "registration": modem.registration_text if modem is not None else "unknown",
            "signal": signal_text(modem.rssi if modem is not None else None),
            "uptime_seconds": round(time.monotonic() - self.started, 1),
            "counters": dataclasses.asdict(self.counters),
            "journal": self.journal.counts(),
        }

    def queue_send(self, text: str, destination: str | None = None) -> dict[str, Any]:
        """Commit an originated message to the outbox and wake the sender."""
        row = self.journal.queue_outgoing(destination or self.config.reply_to, text)
        LOGGER.info("outbox %d: queued for %s: %r", row.id, row.destination, text)
        self._wake.set()
        return row.as_dict()

    # -- main loop --------------------------------------------------------

    async def run(self) -> None:
        """Serve until stopped. Modem and journal trouble is recovered from, not raised."""
        self._expire_parts()
        self._prune()
        try:
            await self.supervisor.run(self._session)
        finally:
            self.lifecycle.fire(Trigger.STOP)
            LOGGER.info("agent stopped")

    async def _session(self, modem: Modem, channel: AtChannel) -> None:
        """Serve a ready modem until stopped; raises when the modem is lost."""
        loop = asyncio.get_running_loop()
        restarts = self.supervisor.restarts
        self._drain_needed = True
        next_health = loop.time() + self.config.health_interval
        next_sweep = loop.time() + self.config.sweep_interval
        while not self._stop.is_set():
            if channel.closed.is_set():
                raise ConnectionLost(f"{self.port} closed")
            restarts.check()
            if self._drain_needed:
                self._drain_needed = False
                await self._drain(modem)
                next_sweep = loop.time() + self.config.sweep_interval
            while self._indications and not self._stop.is_set():
                storage, index = self._indications.pop(0)
                await self._take(modem, storage, index)
            while self._direct and not self._stop.is_set():
                urc = self._direct.pop(0)
                await self._commit_and_delete(
                    modem, decode_direct(modem.charset, urc.args, urc.body or "", pdu=modem.pdu)
                )
            await self.executor.run_pending()
            await self.outbox.flush(modem, restarts.check)
            if self._work_waiting():
                continue
            self._wake.clear()
            if self._work_waiting():
                continue
            # Idle: sleep until woken, or until the next timer (health check, safety
            # sweep, a reply due for another attempt). No polling.
            now = loop.time()
            deadline = min(next_health, next_sweep, now + self.outbox.wait())
            if await self._wait_wake(channel, max(0.0, deadline - now)):
                continue
            now = loop.time()
            if now >= next_sweep:
                LOGGER.debug("safety sweep of the modem storage")
                self._drain_needed = True
                self._expire_parts()
                self._prune()
            if now >= next_health:
                await self.supervisor.health_check(modem)
                next_health = loop.time() + self.config.health_interval

    def _prune(self) -> None:
        """Bounded growth: drop finished rows older than the retention time."""
        cutoff = datetime.now(UTC) - timedelta(days=self.config.retention_days)
        removed = self.journal.prune(older_than=cutoff, keep_last=self.config.keep_last)
        if removed:
            LOGGER.info("journal: pruned %d finished row(s) older than %s", removed, cutoff)

    def _work_waiting(self) -> bool:
        return bool(
            self._indications
            or self._direct
            or self._drain_needed
            or self.supervisor.restarts.reason is not None
            or self._stop.is_set()
        )

    async def _wait_wake(self, channel: AtChannel, timeout: float) -> bool:
        waits = [
            asyncio.ensure_future(self._wake.wait()),
            asyncio.ensure_future(channel.closed.wait()),
        ]
        try:
            done, _ = await asyncio.wait(
                waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        return bool(done)

    def _on_urc(self, urc: Urc) -> None:
        if urc.name == "+CMTI":
            parsed = parse_cmti(urc.args)
            if parsed is None:
                LOGGER.warning("malformed +CMTI indication %r; draining storage instead", urc.text)
                self._drain_needed = True
            else:
                self._indications.append(parsed)
            self._wake.set()
        elif urc.name == "+CMT":
            # Direct delivery means +CNMI is not ours any more: take the message,
            # then re-initialise so that indications go through storage again.
            LOGGER.warning("direct delivery (+CMT) although +CMTI was configured: %r", urc.text)
            self._direct.append(urc)
            self._wake.set()
        elif urc.name == "+CDSI":
            LOGGER.info("status report stored: %s (left in storage)", urc.args)
        else:
            self.supervisor.on_urc(urc)

    # -- receive path ---------------------------------------------------------

    async def _drain(self, modem: Modem) -> None:
        """Take everything already in storage, oldest index first."""
        messages = await modem.list_received()
        if messages:
            LOGGER.info("%d message(s) waiting in storage", len(messages))
        cleared = self.journal.forget_absent(
            modem.read_storage, (m.index for m in messages if m.index is not None)
        )
        if cleared:
            LOGGER.info("journal: %d row(s) no longer on the modem (deleted before a crash)",
                        cleared)  # fmt: skip
        for message in messages:
            await self._commit_and_delete(modem, message)

    async def _take(self, modem: Modem, storage: str, index: int) -> None:
        try:
            message = await modem.read(storage, index)
        except CommandError as exc:
            LOGGER.warning("cannot read %s index %d: %s; draining storage", storage, index, exc)
            self._drain_needed = True
            return
        if message is None:
            LOGGER.info("%s index %d holds no received message (already handled?)", storage, index)
            return
        await self._commit_and_delete(modem, message)

    async def _commit_and_delete(self, modem: Modem, message: StoredSms | UndecodableSms) -> None:
        """Journal first, delete from the modem second: nothing is lost in between."""
        self.supervisor.restarts.check()
        self._crash.reached("after_read")
        if isinstance(message, StoredSms) and message.concat is not None:
            await self._commit_part(modem, message)
            return
        if isinstance(message, UndecodableSms):
            # Before calling a message undecodable, make sure it is not our settings
            # that changed under us (a restart without banner): then it is re-read.
            changed = await modem.settings_intact()
            if changed is not None:
                self.supervisor.restarts.needed(
                    f"settings lost ({changed}) while reading a message"
                )
                self.supervisor.restarts.check()
            LOGGER.error(
                "undecodable message at %s index %s: %s",
                message.storage,
                message.index,
                message.reason,
            )
            row, new = self.journal.record_incoming(
                sender="",
                timestamp=None,
                text=f"{message.raw_header}\n{message.raw_body}",
                storage=message.storage,
                index=message.index,
                state=InboxState.UNDECODABLE,
                error=message.reason,
            )
            if new:
                self.counters.undecodable += 1
        else:
            state, refusal = self._admission(message.sender)
            allowed = refusal is None
            row, new = self.journal.record_incoming(
                sender=message.sender,
                timestamp=message.timestamp,
                text=message.text,
                storage=message.storage,
                index=message.index,
                state=state,
                error=refusal,
            )
            if new:
                self.counters.received += 1
                if not allowed:
                    self.counters.refused += 1
                    LOGGER.warning(
                        "refused message from %r (inbox %d): not in allowed_senders",
                        message.sender,
                        row.id,
                    )
        self._crash.reached("after_commit")
        if message.storage is not None and message.index is not None:
            await modem.delete(message.storage, message.index)
            self._crash.reached("after_delete")
        self.journal.mark_deleted(row.id)
        if new:
            LOGGER.info("inbox %d: %s from %r: %r", row.id, row.state.value, row.sender, row.text)
            notify(self.observer.received, row)
        if message.storage is None:
            self.supervisor.restarts.needed(
                "+CMT direct delivery: indications must be set up again"
            )

    def _admission(self, sender: str) -> tuple[InboxState, str | None]:
        """RECEIVED for an allowed sender; REFUSED with the reason otherwise."""
        if sender in self.config.allowed_senders:
            return InboxState.RECEIVED, None
        return InboxState.REFUSED, f"sender {sender!r} is not allowed"

    async def _commit_part(self, modem: Modem, message: StoredSms) -> None:
        """One part of a concatenated message: held in the journal (committed before the
        modem delete, like any message); the whole message is journaled once its last
        part is in, whatever order the parts came in."""
        concat = message.concat
        assert concat is not None
        new = self.journal.add_part(
            sender=message.sender,
            reference=concat.reference,
            total=concat.total,
            sequence=concat.sequence,
            text=message.text,
            timestamp=message.timestamp,
        )
        if message.storage is not None and message.index is not None:
            await modem.delete(message.storage, message.index)
        LOGGER.info("part %d/%d (reference %d) from %r%s", concat.sequence, concat.total,
                    concat.reference, message.sender, "" if new else " again: ignored")  # fmt: skip
        state, refusal = self._admission(message.sender)
        row = self.journal.complete_multipart(
            sender=message.sender,
            reference=concat.reference,
            total=concat.total,
            state=state,
            error=refusal,
        )
        if row is not None:
            self.counters.received += 1
            LOGGER.info("inbox %d: %d-part message from %r: %r", row.id, concat.total,
                        row.sender, row.text)  # fmt: skip
            notify(self.observer.received, row)

    def _expire_parts(self) -> None:
        """Multipart messages whose parts stopped coming: journaled incomplete, answered."""
        cutoff = datetime.now(UTC) - timedelta(seconds=self.config.concat_timeout)
        for row in self.journal.expire_parts(cutoff):
            LOGGER.warning("inbox %d: incomplete message from %r: %s", row.id, row.sender,
                           row.error)  # fmt: skip
            notify(self.observer.received, row)

    def _state_changed(self, before: ModemState, after: ModemState) -> None:
        notify(self.observer.state_changed, before, after)


__all__ = ["CRASH_ENV", "CRASH_POINTS", "Agent", "AgentObserver", "Counters"]
