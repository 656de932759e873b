"""The modem supervisor: it hands out a ready modem, and says when it is lost.

:meth:`ModemSupervisor.run` owns the serial line's life:

1. open the port (or the ``open_channel`` link), reconnecting with capped
   exponential backoff (``reconnect_initial`` … ``reconnect_max``, see
   :mod:`device.retry`) that resets on success;
2. bring the modem up by running :data:`BRING_UP` — a declared table of steps,
   one per lifecycle state (the action, the trigger fired on success, the
   retry rule) — from whatever state the lifecycle is in, until ``ready``;
3. hand the ready modem to the caller's session (the agent's wake/sleep loop),
   which returns or raises when the modem is lost;
4. map what the session raised to a trigger through :data:`ERROR_RULES`, a
   declared table from error type to trigger and recovery, fire it, and go
   back to 2 (or to 1 when the port is gone).

Recovery follows the state the trigger leads to: a restart or an unresponsive
modem goes back to probing; a registration loss goes back to waiting for the
network (no re-probing, not a re-initialisation); a journal failure suspends
the ready modem and then resumes it without re-probing — nothing was deleted
from the modem without a commit, so the messages are still in its storage for
the drain that follows. The holds of suspensions in a row back off
(``reconnect_initial`` doubling up to ``reconnect_max``: a full disk may last),
and the same error again is logged at DEBUG only. A journal replaced or deleted
under the agent (:class:`~device.errors.JournalReplaced`) is not recovered from
here: it propagates, and the agent stops.

Restart detection (:class:`Restarts`): a module that restarts forgets its
settings, and reading with the wrong character set would garble messages. A
restart is recognised by its boot banner (``RDY``, ``SMS DONE`` …; the later
lines of one boot are that boot, not more restarts: :data:`BOOT_WINDOW`), by
echo coming back after ``ATE0`` (unless the module keeps echo on despite
``ATE0``, which is tolerated), by settings found changed in the health check,
and (by the inbox) before any message is journaled as undecodable or given up
as unreadable. The health check (signal, settings intact, registration) runs
when the session asks for it.

Nothing loops: re-initialisations (and error answers) in a row back off with
``reconnect_initial`` … ``reconnect_max`` (the first is at once), and from
:data:`ESCALATE_AFTER` in a row on they are reported as :class:`Trouble`
(the log, :attr:`ModemSupervisor.trouble` in ``smscmd status``, the listener
behind the unit's ``STATUS=``) until a health check passes. A verified setting
that reads back otherwise right after it was set does not stick on this module:
it is reported the same way and run with (the health check then expects that
read-back, :meth:`~device.modem.operations.Modem.note_read_backs`), instead of
being taken for a restart again and again.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from device.at.channel import AtChannel
from device.at.codec import Urc
from device.at.errors import (
    CommandError,
    CommandTimeout,
    ConnectionLost,
    ModemError,
    SmsInputCancelled,
)
from device.config import Config
from device.errors import JournalError, JournalReplaced, SmscmdError
from device.modem.lifecycle import Lifecycle, ModemState, Trigger
from device.modem.messages import REGISTERED, signal_text
from device.modem.operations import Modem, SmsSettings, retry_while_busy
from device.modem.profiles import PROFILES, Profile
from device.modem.restarts import (
    BOOT_WINDOW,
    ESCALATE_AFTER,
    InARow,
    RestartDetected,
    Restarts,
    Trouble,
    TroubleListener,
    TroubleReport,
)
from device.observer import Counters
from device.retry import Backoff, wait_any

LOGGER = logging.getLogger(__name__)

PROBE_TIMEOUT = 2.0
PROBE_ATTEMPTS = 5
#: Opens the link to the modem; raises ConnectionLost when it cannot be had.
OpenChannel = Callable[[], Awaitable[AtChannel]]
#: Serves a ready modem until it is lost (returns, or raises an ERROR_RULES error).
Session = Callable[[Modem, AtChannel], Awaitable[None]]


class RegistrationLost(SmscmdError):
    """The modem is answering but no longer registered to a network."""


class Retry(enum.Enum):
    """How a bring-up step is tried again."""

    PROBE = "probe"  # PROBE_ATTEMPTS silent tries, ESC after each; an error answer is an answer
    WHILE_BUSY = "while_busy"  # again every reconnect_initial while the module says it is busy
    UNTIL_READY = "until_ready"  # the check again with backoff reconnect_initial … health_interval
    AFTER_HOLD = "after_hold"  # once, after a hold that backs off (the journal may recover)


#: A step's action: None when done, else why not yet (for UNTIL_READY steps).
Action = Callable[["ModemSupervisor", Modem], Awaitable[str | None]]


@dataclass(frozen=True, slots=True)
class Step:
    """One bring-up step: in ``state`` run ``action`` by ``retry``; then ``trigger``."""

    state: ModemState
    action: Action
    trigger: Trigger
    retry: Retry
    what: str


class Recovery(enum.Enum):
    """What the supervisor does after firing an error's trigger."""

    REOPEN = "reopen"  # the port is gone: close it and reconnect
    REINITIALISE = "reinitialise"  # a restart: bring-up from probing, counted
    PROBE = "probe"  # the modem stopped answering: bring-up from probing
    PROBE_AFTER_BACKOFF = "probe_after_backoff"  # an error answer: the same, after a backoff
    WAIT_FOR_NETWORK = "wait_for_network"  # bring-up resumes at the registration wait
    SUSPEND = "suspend"  # the journal failed: hold the ready modem, then resume


@dataclass(frozen=True, slots=True)
class ErrorRule:
    error: type[Exception]
    trigger: Trigger
    recovery: Recovery


#: Error type -> trigger and recovery; the first rule whose type matches wins.
ERROR_RULES: tuple[ErrorRule, ...] = (
    ErrorRule(ConnectionLost, Trigger.PORT_LOST, Recovery.REOPEN),
    ErrorRule(RestartDetected, Trigger.RESET_DETECTED, Recovery.REINITIALISE),
    ErrorRule(RegistrationLost, Trigger.DEREGISTERED, Recovery.WAIT_FOR_NETWORK),
    ErrorRule(JournalError, Trigger.JOURNAL_FAILED, Recovery.SUSPEND),
    ErrorRule(CommandTimeout, Trigger.UNRESPONSIVE, Recovery.PROBE),
    ErrorRule(ModemError, Trigger.UNRESPONSIVE, Recovery.PROBE_AFTER_BACKOFF),
)
#: How each recovery's error is put as "the last error" (ModemSupervisor's ``on_error``).
_SAID: dict[Recovery, str] = {
    Recovery.REOPEN: "port lost",
    Recovery.REINITIALISE: "modem restarted",
    Recovery.PROBE: "modem stopped answering",
    Recovery.PROBE_AFTER_BACKOFF: "modem error",
    Recovery.WAIT_FOR_NETWORK: "lost registration",
    Recovery.SUSPEND: "journal error",
}
_RESTART_RULE = ERROR_RULES[1]
#: States in which a boot banner needs nothing: a bring-up from the start is under way.
_STARTING = frozenset({ModemState.DISCONNECTED, ModemState.PROBING})
_UNRESPONSIVE_RULE = next(r for r in ERROR_RULES if r.recovery is Recovery.PROBE)
_RECOVERABLE = tuple(rule.error for rule in ERROR_RULES)


def rule_for(error: Exception, *, restart_seen: bool) -> ErrorRule | None:
    """The rule for ``error``; None for an error the supervisor does not recover
    from (a bug: it propagates). A modem error after a restart was seen failed
    because of it (settings lost): it is the restart's rule, not an error's."""
    for rule in ERROR_RULES:
        if isinstance(error, rule.error):
            if restart_seen and rule.trigger is Trigger.UNRESPONSIVE:
                return _RESTART_RULE
            return rule
    return None


class ModemSupervisor:
    """Opens, brings up, watches and recovers the modem; see the module docstring."""

    def __init__(
        self,
        config: Config,
        lifecycle: Lifecycle,
        *,
        counters: Counters,
        stop: asyncio.Event,
        wake: asyncio.Event,
        on_urc: Callable[[Urc], None],
        open_channel: OpenChannel | None = None,
        on_trouble: TroubleListener | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        """``on_error`` hears every error it logs and recovers from, as one line."""
        if config.port is None and open_channel is None:
            raise ValueError("the agent needs a serial port (config agent.port or --port)")
        self.config = config
        self.port: str = config.port or "in-memory link"
        self.lifecycle = lifecycle
        self._counters = counters
        self._stop = stop
        self._on_urc = on_urc
        self._open_channel = open_channel
        self._on_error = on_error or (lambda text: None)
        self._reconnect, self._waits = _backoffs(config)
        self.restarts = Restarts(wake)
        self.profile: Profile = PROFILES["generic"]
        self.modem: Modem | None = None
        #: What it runs on with but reports (``smscmd status``, the unit's STATUS=).
        self.trouble = TroubleReport(on_trouble)
        self._in_a_row = InARow(self._reconnect, self.trouble)
        #: Echo count right after ATE0, while a bring-up from probing is under way.
        self._echoes_after_ate0: int | None = None
        #: Journal suspensions in a row (reset by a passed health check), the last
        #: one's error (logged once), and how long the current one holds.
        self._holds = 0
        self._hold_error: str | None = None
        self._hold = 0.0

    def retime(self, config: Config) -> None:
        """A reload's timeouts, in place: the next AT command (the modem's and the
        channel's default), bring-up wait and reconnect use them."""
        self.config = config
        self._reconnect, self._waits = _backoffs(config)
        self._in_a_row.backoff = self._reconnect
        if self.modem is not None:
            self.modem.command_timeout = config.command_timeout
            self.modem.channel.default_timeout = config.command_timeout

    # -- the line ------------------------------------------------------------

    async def run(self, session: Session) -> None:
        """Connect, bring up, serve ``session``, recover; until stopped."""
        failures = 0
        while not self._stop.is_set():
            channel = await self.connect()
            if channel is None:
                failures += 1
                await self.pause(self._reconnect.delay(failures))
                continue
            failures = 0
            try:
                await self._serve(channel, session)
            finally:
                await channel.close()
                self.modem = None
                self.restarts.channel = None
            if not self._stop.is_set():
                self.lifecycle.fire(Trigger.PORT_LOST)
                self._counters.reconnects += 1
                await self.pause(self._reconnect.delay(1))

    async def connect(self) -> AtChannel | None:
        """Open the link and build the modem on it; None (logged) when it cannot be had."""
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
            self._on_error(f"reconnecting: {exc}")
            return None
        channel.add_urc_listener(self._on_urc)
        self.restarts.channel = channel
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

    async def _serve(self, channel: AtChannel, session: Session) -> None:
        """Bring up and serve one open link until it closes or the agent stops."""
        modem = self.modem
        assert modem is not None
        while not self._stop.is_set() and not channel.closed.is_set():
            try:
                if not await self.bring_up(modem):
                    return
                await session(modem, channel)
            except JournalReplaced:
                raise  # the agent stops: what it wrote from now on would be lost
            except _RECOVERABLE as exc:
                rule = rule_for(exc, restart_seen=self.restarts.reason is not None)
                assert rule is not None  # every caught type has a rule
                if not await self._recover(rule, exc):
                    return

    async def _recover(self, rule: ErrorRule, exc: Exception) -> bool:
        """Fire ``rule``'s trigger and recover; False when the port is to be reopened.

        An error whose trigger the table does not take from the current state (say a
        journal error outside ``ready``) is a driver bug: it is logged as one and the
        modem is probed again, rather than the agent stopping on :class:`InvalidTrigger`.
        """
        if rule.recovery is not Recovery.REOPEN and not self.lifecycle.can(rule.trigger):
            LOGGER.error(
                "bug: %s in state %s has no %s transition; probing the modem again",
                type(exc).__name__,
                self.lifecycle.state.value,
                rule.trigger.value,
            )
            rule = _UNRESPONSIVE_RULE
        recovery = rule.recovery
        restart = self.restarts.reason if recovery is Recovery.REINITIALISE else None
        self._on_error(f"{_SAID[recovery]}: {restart or exc}")
        if recovery is Recovery.REOPEN:
            LOGGER.warning("serial port lost: %s", exc)
            return False  # PORT_LOST is fired once the port is closed
        if recovery in (Recovery.REINITIALISE, Recovery.PROBE_AFTER_BACKOFF):
            reason = str(self.restarts.reason or exc)
            self._counters.reinitialisations += 1
            if recovery is Recovery.REINITIALISE:
                # The first one in a row is at once (a module reboot recovers fast).
                pause = self._in_a_row.next(reason, first_at_once=True)
                LOGGER.warning("re-initialising the modem in %.1f s: %s", pause, reason)
            else:
                pause = self._in_a_row.next(reason, first_at_once=False)
                LOGGER.error("modem error, re-initialising in %.1f s: %s", pause, reason)
            self.lifecycle.fire(rule.trigger)
            await self.pause(pause)
            return True
        if recovery is Recovery.PROBE:
            LOGGER.warning("modem stopped answering: %s", exc)
        elif recovery is Recovery.WAIT_FOR_NETWORK:
            LOGGER.warning("lost registration: %s; waiting for the network", exc)
        elif recovery is Recovery.SUSPEND:
            # Nothing was deleted from the modem without a commit: hold, then resume;
            # the messages are still in storage.
            self._holds += 1
            self._hold = self._reconnect.delay(self._holds)
            level = logging.DEBUG if str(exc) == self._hold_error else logging.ERROR
            self._hold_error = str(exc)
            LOGGER.log(level, "journal error, retrying in %.1f s: %s", self._hold, exc)
        self.lifecycle.fire(rule.trigger)
        return True

    async def pause(self, seconds: float) -> bool:
        """Wait ``seconds`` unless stopped first; True when stopped."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)
        return self._stop.is_set()

    # -- bring-up ------------------------------------------------------------

    async def bring_up(self, modem: Modem) -> bool:
        """Run :data:`BRING_UP` from the current state until ready; False when
        stopped, or when the modem does not answer (the port is to be reopened)."""
        ran = False
        while (step := BRING_UP.get(self.lifecycle.state)) is not None:
            if not await self._attempt(step, modem):
                return False
            self.lifecycle.fire(step.trigger)
            ran = True
        if ran:
            LOGGER.info(
                "ready: %s, %s, signal %s",
                modem.identity.describe(),
                modem.registration_text,
                signal_text(modem.rssi),
            )
        return self.lifecycle.state is ModemState.READY

    async def _attempt(self, step: Step, modem: Modem) -> bool:
        """Run ``step.action`` by its retry rule; False when it did not succeed."""
        if step.retry is Retry.PROBE:
            return await self._probe_attempts(step, modem)
        if step.retry is Retry.WHILE_BUSY:
            return await retry_while_busy(
                lambda: step.action(self, modem),
                delay=self.config.reconnect_initial,
                what=step.what,
                stop=self._stop,
            )
        if step.retry is Retry.AFTER_HOLD:
            # Held on a live port: a port that closes meanwhile ends the hold at once
            # (port_lost from here), so a dead port is never reported ready.
            if await wait_any(self._stop, modem.channel.closed, timeout=self._hold):
                return False
            return await step.action(self, modem) is None
        waits = 0
        while (detail := await step.action(self, modem)) is not None:
            waits += 1
            pause = self._waits.delay(waits)
            LOGGER.info("%s (%s); checking again in %.1f s", step.what, detail, pause)
            if await self.pause(pause):
                return False
        return True

    async def _probe_attempts(self, step: Step, modem: Modem) -> bool:
        for attempt in range(1, PROBE_ATTEMPTS + 1):
            try:
                await step.action(self, modem)
                return True
            except (CommandTimeout, SmsInputCancelled) as exc:
                LOGGER.info("no answer to AT (attempt %d of %d): %s", attempt, PROBE_ATTEMPTS, exc)
                # A module left in SMS text entry by a crashed sender answers nothing
                # (some do not even re-prompt): ESC leaves it without sending.
                modem.channel.cancel_sms_input()
            except CommandError as exc:
                LOGGER.info("probe answered with an error: %s", exc)
                return True
        LOGGER.warning("the modem on %s does not answer; reopening the port", self.port)
        self._on_error(f"the modem on {self.port} does not answer; reopening the port")
        return False

    async def _probe(self, modem: Modem) -> None:
        # A new bring-up from the start: what was seen before it is dealt with by it.
        self.restarts.reason = None
        try:
            await modem.probe(PROBE_TIMEOUT)
        finally:
            self._echoes_after_ate0 = modem.channel.echo_count

    async def _configure(self, modem: Modem) -> None:
        await modem.configure()  # identifies the module, which picks its profile
        self.profile = modem.profile
        LOGGER.info("module profile: %s (%s)", self.profile.name, self.profile.description)

    async def _sim(self, modem: Modem) -> str | None:
        ready, detail = await modem.sim_status()
        if ready and not modem.iccid:
            await modem.read_iccid()  # shown by smscmd status
        return None if ready else detail

    async def _setup_sms(self, modem: Modem) -> None:
        await modem.setup_sms()
        # Read back at once: a setting that already shows otherwise does not stick on
        # this module (no restart can explain it). It is reported and run with, and the
        # health check takes this read-back as intact instead of re-initialising forever.
        stuck = await modem.note_read_backs()
        shown = "; ".join(f"AT+{name} reads back {value}" for name, value in stuck.items())
        text = f"{shown} right after it was set: running with it" if stuck else None
        self.trouble.report(Trouble.SETTINGS, text)

    async def _network(self, modem: Modem) -> str | None:
        echoes = self._echoes_after_ate0
        if echoes is None:
            # Back from a registration loss, not probed again: a banner or echo seen
            # while waiting is a restart now, not once the network is back.
            self.restarts.check()
        if await modem.refresh_registration() not in REGISTERED:
            return modem.registration_text
        await modem.refresh_signal()
        if echoes is None:
            # A module that restarted silently while off the network (no banner, echo
            # left off) shows itself by its settings, as in the health check.
            self.restarts.check()
            changed = await modem.settings_intact()
            if changed is not None:
                self.restarts.needed(f"settings lost ({changed}): the module restarted?")
                self.restarts.check()
        else:
            if self.restarts.reason is not None:
                raise RestartDetected(self.restarts.reason)
            # Echo that survives ATE0 is a module quirk, not a restart: stop reading it as one.
            echo_stuck = modem.channel.echo_count > echoes + 1
            if echo_stuck and self.restarts.echo_means_restart:
                LOGGER.warning("the module keeps echo on despite ATE0; tolerated")
            self.restarts.echo_means_restart = not echo_stuck
            self._echoes_after_ate0 = None
        self.restarts.echo_baseline = modem.channel.echo_count
        return None

    async def _resume(self, modem: Modem) -> None:
        LOGGER.info("resuming after the journal error (the modem was not re-probed)")

    # -- watching ------------------------------------------------------------

    async def health_check(self, modem: Modem) -> None:
        """Signal, settings intact, registration; raises RestartDetected or RegistrationLost."""
        await modem.refresh_signal()
        changed = await modem.settings_intact()
        if changed is not None:
            self.restarts.needed(f"settings lost ({changed}): the module restarted?")
            self.restarts.check()
        if await modem.refresh_registration() not in REGISTERED:
            raise RegistrationLost(modem.registration_text)
        # A ready modem that stayed healthy: whatever came before is no longer "in a row".
        self._in_a_row.healthy()
        self._holds, self._hold_error = 0, None

    def on_urc(self, urc: Urc) -> None:
        """Boot banners (per the module profile) are restarts (:meth:`Restarts.urc`)."""
        self.restarts.urc(self.profile, urc, starting=self.lifecycle.state in _STARTING)


def _backoffs(config: Config) -> tuple[Backoff, Backoff]:
    """Reconnects (``reconnect_initial`` … ``reconnect_max``) and bring-up waits (…
    ``health_interval``)."""
    return (
        Backoff(config.reconnect_initial, config.reconnect_max),
        Backoff(config.reconnect_initial, config.health_interval),
    )


def _done(step: Callable[[ModemSupervisor, Modem], Awaitable[None]]) -> Action:
    """An action that always completes (its retry rule handles its errors)."""

    async def action(sup: ModemSupervisor, modem: Modem) -> str | None:
        await step(sup, modem)
        return None

    return action


S, T = ModemState, Trigger
#: The bring-up, one step per state; the lifecycle's state picks the next step.
BRING_UP: dict[ModemState, Step] = {
    step.state: step
    for step in (
        Step(S.PROBING, _done(ModemSupervisor._probe), T.ANSWERED, Retry.PROBE, "probe"),
        Step(
            S.CONFIGURING,
            _done(ModemSupervisor._configure),
            T.CONFIGURED,
            Retry.WHILE_BUSY,
            "configure",
        ),
        Step(
            S.WAITING_FOR_SIM, ModemSupervisor._sim, T.SIM_READY, Retry.UNTIL_READY, "SIM not ready"
        ),
        Step(
            S.SETTING_UP_SMS,
            _done(ModemSupervisor._setup_sms),
            T.SMS_READY,
            Retry.WHILE_BUSY,
            "SMS set-up",
        ),
        Step(
            S.WAITING_FOR_NETWORK,
            ModemSupervisor._network,
            T.REGISTERED,
            Retry.UNTIL_READY,
            "not registered",
        ),
        Step(S.SUSPENDED, _done(ModemSupervisor._resume), T.RESUMED, Retry.AFTER_HOLD, "journal"),
    )
}


__all__ = [
    "BOOT_WINDOW",
    "BRING_UP",
    "ERROR_RULES",
    "ESCALATE_AFTER",
    "PROBE_ATTEMPTS",
    "PROBE_TIMEOUT",
    "ErrorRule",
    "ModemSupervisor",
    "Recovery",
    "RegistrationLost",
    "RestartDetected",
    "Restarts",
    "Retry",
    "Step",
    "Trouble",
    "TroubleListener",
    "TroubleReport",
    "rule_for",
]
