"""The agent: modem lifecycle + journal + dispatcher + outbox, wired together.

One task drives everything that touches the serial line, so there is exactly
one command in flight and no locking beyond the channel's own:

1. open the port (reconnect with capped exponential backoff, reset on success);
2. bring the modem up (probe, configure, SIM, SMS set-up, network), waiting
   while the module reports itself busy;
3. on reaching ``ready``, and after every re-initialisation, drain the storage
   (``AT+CMGL="ALL"``) through the same path as new indications;
4. wait for ``+CMTI`` indications; each index is read, committed to the
   journal, and only then deleted from the modem; then pending commands run and
   the outbox is flushed;
5. when idle, sleep until woken or until the next timer: every
   ``health_interval`` a health check (signal, registration, and that the
   settings are still ours; a timeout sends the machine back to probing, a
   closed port back to disconnected), every ``sweep_interval`` a safety sweep
   of the storage for messages whose ``+CMTI`` never came (and pruning of old
   journal rows), and whenever a failed reply is due for another attempt.

A module that restarts forgets its settings, and reading with the wrong
character set would garble messages. A restart is recognised by its boot
banner (``RDY``, ``SMS DONE`` …), by echo coming back after ``ATE0``, by
settings found changed in the health check, and before any message is
journaled as undecodable. Whenever one is seen the agent stops what it is
doing — before journaling, deleting or sending anything more — and
re-initialises; messages stay in the modem's storage until then.

Running the journaled commands (the "never twice" rule) lives in
:mod:`device.executor`; sending, and the retry / uncertain / final rule for a
failed send, in :mod:`device.outbox`; crash points (a test hook) in :mod:`device.crash`;
observer hooks and counters in :mod:`device.observer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from device.at.channel import AtChannel
from device.at.codec import Urc
from device.at.errors import (
    CommandError,
    CommandTimeout,
    ConnectionLost,
    ModemError,
    SmsInputCancelled,
)
from device.commands import (
    Registry,
    StatusSnapshot,
)
from device.config import Config
from device.crash import CRASH_ENV, CRASH_POINTS, CrashPoints
from device.errors import JournalError
from device.executor import Executor
from device.journal import InboxState, Journal, backoff
from device.modem import (
    Lifecycle,
    Modem,
    ModemState,
    SmsSettings,
    StoredSms,
    Trigger,
    UndecodableSms,
    decode_direct,
    parse_cmti,
    retry_while_busy,
    signal_text,
)
from device.observer import AgentObserver, Counters, notify
from device.outbox import Outbox, SendPolicy
from device.profiles import PROFILES, by_name, detect, is_banner

LOGGER = logging.getLogger(__name__)

PROBE_TIMEOUT = 2.0
PROBE_ATTEMPTS = 5


class _Restart(Exception):
    """Leave the ready loop and go through bring-up again."""


class Agent:
    """Runs until :meth:`stop`."""

    def __init__(
        self,
        config: Config,
        journal: Journal,
        registry: Registry,
        *,
        observer: AgentObserver | None = None,
        open_channel: Callable[[], Awaitable[AtChannel]] | None = None,
    ) -> None:
        """``open_channel`` replaces opening ``config.port`` (an in-memory link in
        tests); it raises :class:`ConnectionLost` when the link cannot be had."""
        if config.port is None and open_channel is None:
            raise ValueError("the agent needs a serial port (config agent.port or --port)")
        self.config = config
        self.port: str = config.port or "in-memory link"
        self._open_channel = open_channel
        self.journal = journal
        self.registry = registry
        self.observer = observer or AgentObserver()
        self.lifecycle = Lifecycle(self._state_changed)
        self.counters = Counters()
        self.started = time.monotonic()
        self.modem: Modem | None = None
        self._channel: AtChannel | None = None
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._indications: list[tuple[str, int]] = []
        self._direct: list[Urc] = []
        self._restart_reason: str | None = None
        self._echo_baseline = 0
        self._echo_means_restart = True
        self.profile = PROFILES["generic"]
        self._drain_needed = True
        self._error_streak = 0
        self._crash = CrashPoints.from_env()
        self.executor = Executor(
            journal,
            registry,
            handler_timeout=config.handler_timeout,
            reply_to=config.reply_to,
            status=self.status,
            counters=self.counters,
            observer=self.observer,
            crash=self._crash,
            stop=self._stop,
        )
        self.outbox = Outbox(
            journal,
            SendPolicy.from_config(config),
            counters=self.counters,
            observer=self.observer,
            crash=self._crash,
            stop=self._stop,
            send_timeout=config.send_timeout,
        )

    # -- control ----------------------------------------------------------

    def stop(self) -> None:
        """Ask the agent to finish the step in hand and return from :meth:`run`."""
        self._stop.set()
        self._wake.set()

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
        backoff = self.config.reconnect_initial
        try:
            while not self._stop.is_set():
                channel = await self._connect()
                if channel is None:
                    await self._pause(backoff)
                    backoff = min(backoff * 2, self.config.reconnect_max)
                    continue
                backoff = self.config.reconnect_initial
                try:
                    await self._serve(channel)
                finally:
                    await channel.close()
                    self.modem = None
                    self._channel = None
                if not self._stop.is_set():
                    self.lifecycle.fire(Trigger.PORT_LOST)
                    self.counters.reconnects += 1
                    await self._pause(backoff)
        finally:
            self.lifecycle.fire(Trigger.STOP)
            LOGGER.info("agent stopped")

    async def _connect(self) -> AtChannel | None:
        try:
            if self._open_channel is not None:
                channel = await self._open_channel()
            else:
                channel = await AtChannel.open(
                    self.port,
                    baudrate=self.config.baudrate,
                    default_timeout=self.config.command_timeout,
                )
        except ConnectionLost as exc:
            LOGGER.warning("%s", exc)
            return None
        channel.add_urc_listener(self._on_urc)
        self._channel = channel
        self.modem = Modem(
            channel,
            SmsSettings(
                storage=self.config.storage,
                mode=self.config.mode,
                profile=self.config.profile,
            ),
            command_timeout=self.config.command_timeout,
        )
        self.lifecycle.fire(Trigger.CONNECTED)
        return channel

    async def _serve(self, channel: AtChannel) -> None:
        """Bring up and serve one open port until it closes or the agent stops."""
        modem = self.modem
        assert modem is not None
        while not self._stop.is_set() and not channel.closed.is_set():
            try:
                if not await self._bring_up(modem):
                    return
                await self._ready_loop(modem, channel)
            except ConnectionLost as exc:
                LOGGER.warning("serial port lost: %s", exc)
                return
            except (_Restart, ModemError) as exc:
                if isinstance(exc, _Restart) or self._restart_reason is not None:
                    # A command that failed after a restart was seen failed because
                    # of it (settings lost): re-initialise, no error.
                    LOGGER.warning("re-initialising the modem: %s", self._restart_reason)
                    self.counters.reinitialisations += 1
                    self.lifecycle.fire(Trigger.RESET_DETECTED)
                elif isinstance(exc, CommandTimeout):
                    LOGGER.warning("modem stopped answering: %s", exc)
                    self.lifecycle.fire(Trigger.UNRESPONSIVE)
                else:
                    self._error_streak += 1
                    pause = backoff(
                        self._error_streak, self.config.reconnect_initial, self.config.reconnect_max
                    )
                    LOGGER.error("modem error, re-initialising in %.1f s: %s", pause, exc)
                    self.lifecycle.fire(Trigger.UNRESPONSIVE)
                    await self._pause(pause)
            except JournalError as exc:
                # Nothing was deleted from the modem without a commit: back off and
                # start over; the messages are still in storage.
                LOGGER.error(
                    "journal error, retrying in %.0f s: %s", self.config.reconnect_max, exc
                )
                self.lifecycle.fire(Trigger.UNRESPONSIVE)
                await self._pause(self.config.reconnect_max)

    def _restart_needed(self, reason: str) -> None:
        if self._restart_reason is None:
            self._restart_reason = reason
        self._wake.set()

    def _check_restart(self) -> None:
        """Raise _Restart when the module was seen to restart (see the module docstring)."""
        channel = self._channel
        if (
            channel is not None
            and self._echo_means_restart
            and channel.echo_count > self._echo_baseline
        ):
            self._restart_needed("echo is back on")
        if self._restart_reason is not None:
            raise _Restart(self._restart_reason)

    async def _bring_up(self, modem: Modem) -> bool:
        """Drive the lifecycle from probing to ready; False when stopped or the port died."""
        self._restart_reason = None
        for attempt in range(1, PROBE_ATTEMPTS + 1):
            try:
                await modem.probe(PROBE_TIMEOUT)
                break
            except (CommandTimeout, SmsInputCancelled) as exc:
                LOGGER.info("no answer to AT (attempt %d of %d): %s", attempt, PROBE_ATTEMPTS, exc)
                # A module left in SMS text entry by a crashed sender answers nothing
                # (some do not even re-prompt): ESC leaves it without sending.
                modem.channel.cancel_sms_input()
            except CommandError as exc:
                LOGGER.info("probe answered with an error: %s", exc)
                break
        else:
            LOGGER.warning("the modem on %s does not answer; reopening the port", self.port)
            return False
        self.lifecycle.fire(Trigger.ANSWERED)
        echoes_after_ate0 = modem.channel.echo_count
        delay = self.config.reconnect_initial
        if not await retry_while_busy(
            modem.configure, delay=delay, what="configure", stop=self._stop
        ):
            return False
        self.profile = (
            detect(modem.identity.model, modem.identity.manufacturer)
            if self.config.profile == "auto"
            else by_name(self.config.profile)
        )
        LOGGER.info("module profile: %s (%s)", self.profile.name, self.profile.description)
        self.lifecycle.fire(Trigger.CONFIGURED)
        waits = 0
        while True:
            ready, detail = await modem.sim_status()
            if ready:
                break
            waits += 1
            pause = backoff(waits, delay, self.config.health_interval)
            LOGGER.info("SIM not ready (%s); checking again in %.1f s", detail, pause)
            if await self._pause(pause):
                return False
        self.lifecycle.fire(Trigger.SIM_READY)
        if not await retry_while_busy(
            modem.setup_sms, delay=delay, what="SMS set-up", stop=self._stop
        ):
            return False
        self.lifecycle.fire(Trigger.SMS_READY)
        waits = 0
        while (await modem.refresh_registration()) not in (1, 5):
            waits += 1
            pause = backoff(waits, delay, self.config.health_interval)
            LOGGER.info(
                "not registered (%s); checking again in %.1f s", modem.registration_text, pause
            )
            if await self._pause(pause):
                return False
        await modem.refresh_signal()
        if self._restart_reason is not None:
            raise _Restart(self._restart_reason)
        # Echo that survives ATE0 is a module quirk, not a restart: stop reading it as one.
        echo_stuck = modem.channel.echo_count > echoes_after_ate0 + 1
        if echo_stuck and self._echo_means_restart:
            LOGGER.warning("the module keeps echo on despite ATE0; tolerated")
        self._echo_means_restart = not echo_stuck
        self._echo_baseline = modem.channel.echo_count
        self._error_streak = 0
        self.lifecycle.fire(Trigger.REGISTERED)
        LOGGER.info(
            "ready: %s, %s, signal %s",
            modem.identity.describe(),
            modem.registration_text,
            signal_text(modem.rssi),
        )
        self._drain_needed = True
        return True

    async def _ready_loop(self, modem: Modem, channel: AtChannel) -> None:
        loop = asyncio.get_running_loop()
        next_health = loop.time() + self.config.health_interval
        next_sweep = loop.time() + self.config.sweep_interval
        while not self._stop.is_set():
            if channel.closed.is_set():
                raise ConnectionLost(f"{self.port} closed")
            self._check_restart()
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
            await self.outbox.flush(modem, self._check_restart)
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
                await self._health_check(modem)
                next_health = loop.time() + self.config.health_interval

    def _expire_parts(self) -> None:
        """Multipart messages whose parts stopped coming: journaled incomplete, answered."""
        cutoff = datetime.now(UTC) - timedelta(seconds=self.config.concat_timeout)
        for row in self.journal.expire_parts(cutoff):
            LOGGER.warning("inbox %d: incomplete message from %r: %s", row.id, row.sender,
                           row.error)  # fmt: skip
            notify(self.observer.received, row)

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
            or self._restart_reason is not None
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

    async def _health_check(self, modem: Modem) -> None:
        await modem.refresh_signal()
        changed = await modem.settings_intact()
        if changed is not None:
            self._restart_needed(f"settings lost ({changed}): the module restarted?")
            self._check_restart()
        stat = await modem.refresh_registration()
        if stat not in (1, 5):
            LOGGER.warning("lost registration (%s)", modem.registration_text)
            self.lifecycle.fire(Trigger.DEREGISTERED)
            raise _Restart("registration lost")

    async def _pause(self, seconds: float) -> bool:
        """Wait ``seconds`` unless stopped first; True when stopped."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)
        return self._stop.is_set()

    # -- indications --------------------------------------------------------

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
        elif is_banner(self.profile, urc.text):
            if self.lifecycle.state not in (ModemState.DISCONNECTED, ModemState.PROBING):
                LOGGER.warning("boot banner %r: the modem restarted", urc.name)
                self._restart_needed(f"boot banner {urc.name}")
        else:
            LOGGER.debug("unsolicited %r ignored", urc.text)

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
        self._check_restart()
        self._crash.reached("after_read")
        if isinstance(message, StoredSms) and message.concat is not None:
            await self._commit_part(modem, message)
            return
        if isinstance(message, UndecodableSms):
            # Before calling a message undecodable, make sure it is not our settings
            # that changed under us (a restart without banner): then it is re-read.
            changed = await modem.settings_intact()
            if changed is not None:
                self._restart_needed(f"settings lost ({changed}) while reading a message")
                self._check_restart()
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
            self._restart_needed("+CMT direct delivery: indications must be set up again")

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

    def _state_changed(self, before: ModemState, after: ModemState) -> None:
        notify(self.observer.state_changed, before, after)


__all__ = ["CRASH_ENV", "CRASH_POINTS", "Agent", "AgentObserver", "Counters"]
