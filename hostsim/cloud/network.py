"""The emulated Super SIM network: SmsCommands between the API and the modems.

One :class:`Network` per hostsim. It owns the Sims (each with its emulated
modem), the SmsCommand records and their status lifecycle, following Twilio's
public description of the SmsCommand resource:

* ``to_sim`` (mobile terminated): created ``queued``; ``sent`` at the first
  delivery attempt; ``delivered`` once the modem stored the SMS (or passed it
  to the TE with ``+CMT``). While the modem cannot take it — not registered,
  storage full, unplugged — the command stays ``sent`` and the network tries
  again: at once whenever the modem changes (a message deleted, registration
  back), and otherwise on a timer with capped exponential backoff. A command
  not delivered within the *retry window* (24 h by default, like Twilio)
  becomes ``failed``; so does every undelivered command of a hostsim that shuts
  down. Commands for one Sim are delivered in the order they were created.
* ``from_sim`` (mobile originated): an SMS the modem sends to ``000`` becomes a
  command with status ``received``. SMS to any other destination are refused:
  the modem answers ``+CMS ERROR: 21`` (short message transfer rejected) —
  a Super SIM reaches only ``000``. A modem that is not registered (out of
  coverage, ``AT+CFUN=0``/``4``, ``AT+COPS=2``) reaches nothing: ``+CMS ERROR: 331``
  (no network service).
* A delivery the modem shows as ``+CMT`` and that waits for the TE's
  ``AT+CNMA`` (``AT+CSMS=1``, 27.005 §3.4.4; the gateway answers
  :data:`AWAITING_ACK`) stays ``sent``, and nothing else goes to that Sim,
  until the gateway settles it: acknowledged, it is ``delivered``; not
  acknowledged (a negative ``AT+CNMA``, the module's timeout) it is delivered
  again, like any held command — at the next change of the modem (where the
  module, after a timeout, has stopped routing to the TE and stores it) or by
  the retry timer.

The network sees a gateway only through the :class:`Gateway` protocol: whether
it is attached and registered, a delivery that may fail, and a say on every
SMS it sends (:meth:`Gateway.on_submit`); the pty runtime
(:class:`hostsim.pty.SimulatedModem`) is one implementation.

Observers (the HTTP layer's callbacks and the fleet webhook) get every status
change through :attr:`Network.listeners`; they must not block. A new ``to_sim``
command (``queued``, which is no status change) goes to
:attr:`Network.created_listeners` (the console shows it).

Time comes from the event loop (``loop.time()`` for timers) and from
:attr:`Network.clock` for resource dates, so tests can control both.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import random
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Generic, Protocol, TypeVar

LOGGER = logging.getLogger(__name__)

#: The only number a Super SIM can send SMS to.
COMMANDS_NUMBER = "000"
#: RP-cause 21 (3GPP TS 24.011 Annex E-2), reported as +CMS ERROR: 21.
REFUSED_DESTINATION_CMS = 21
#: What :meth:`Gateway.deliver` answers for a ``+CMT`` that waits for ``AT+CNMA``.
AWAITING_ACK = -2
#: 27.005 §3.2.5 "no network service": an SMS sent while not registered.
NO_NETWORK_CMS = 331
#: Super SIM retries delivery for up to 24 hours.
DEFAULT_RETRY_WINDOW = 24 * 3600.0
DEFAULT_RETRY_INITIAL = 1.0
DEFAULT_RETRY_MAX = 300.0


class Status(enum.Enum):
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    RECEIVED = "received"
    FAILED = "failed"


class Direction(enum.Enum):
    TO_SIM = "to_sim"
    FROM_SIM = "from_sim"


class CallbackMethod(enum.Enum):
    GET = "GET"
    POST = "POST"


@dataclass(frozen=True, slots=True)
class SmsCommand:
    """One SmsCommand resource (immutable: a status change makes a new record)."""

    sid: str
    account_sid: str
    sim_sid: str
    payload: str
    status: Status
    direction: Direction
    date_created: datetime
    date_updated: datetime
    callback_url: str | None = None
    callback_method: CallbackMethod = CallbackMethod.POST
    #: Creation order, for a stable newest-first order within one second.
    seq: int = 0


class Gateway(Protocol):
    """What the network needs of the gateway modem that holds a Sim (the seam to the runtime)."""

    @property
    def attached(self) -> bool:
        """The modem is plugged in: a delivery can reach it."""
        ...

    @property
    def registered(self) -> bool:
        """The modem is registered to the network (home or roaming): False also while its
        radio is off (``AT+CFUN=0``/``4``) or it deregistered (``AT+COPS=2``)."""
        ...

    def deliver(self, sender: str, text: str) -> int | None:
        """An SMS from ``sender`` reaches the modem: its storage index (-1 for a ``+CMT``
        direct delivery, :data:`AWAITING_ACK` for one that waits for ``AT+CNMA``),
        or None when it could not take it (storage full)."""
        ...

    def on_acknowledged(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener(acknowledged)`` when a delivery that answered
        :data:`AWAITING_ACK` is settled."""
        ...

    def on_submit(self, decide: Callable[[str, str], int | None]) -> None:
        """From now on, ask ``decide(destination, text)`` about every SMS the modem sends:
        None accepts it, a number refuses it with that ``+CMS ERROR`` code."""
        ...

    def add_change_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every change of the modem (a good moment to retry)."""
        ...


G = TypeVar("G", bound=Gateway)


@dataclass
class Sim(Generic[G]):
    """A Super SIM in the fleet, inside one gateway modem."""

    sid: str
    unique_name: str
    gateway: G
    #: to_sim commands not delivered yet, oldest first.
    pending: list[str] = field(default_factory=list)


class SidFactory:
    """Twilio-style sids: a two-letter prefix and 32 lower-case hex digits.

    Seeded for stable sids across runs (``--seed``), else cryptographically random.
    """

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed) if seed is not None else None

    def hex32(self) -> str:
        if self._rng is None:
            return secrets.token_hex(16)
        return f"{self._rng.getrandbits(128):032x}"

    def sid(self, prefix: str) -> str:
        return prefix + self.hex32()


Listener = Callable[[SmsCommand], None]


class Network(Generic[G]):
    """Routes SmsCommands between the API and the gateways (of type ``G``)."""

    def __init__(
        self,
        account_sid: str,
        sids: SidFactory,
        *,
        retry_window: float = DEFAULT_RETRY_WINDOW,
        retry_initial: float = DEFAULT_RETRY_INITIAL,
        retry_max: float = DEFAULT_RETRY_MAX,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if retry_window <= 0 or retry_initial <= 0 or retry_max < retry_initial:
            raise ValueError("retry window and intervals must be > 0, max >= initial")
        self.account_sid = account_sid
        self.sids = sids
        self.retry_window = retry_window
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.clock = clock or (lambda: datetime.now(UTC).replace(microsecond=0))
        self.sims: list[Sim[G]] = []
        self.listeners: list[Listener] = []
        #: Called with each new ``to_sim`` command (``queued``); from_sim ones are announced.
        self.created_listeners: list[Listener] = []
        self._commands: dict[str, SmsCommand] = {}
        self._seq = 0
        self._deadline: dict[str, float] = {}
        self._next_try: dict[str, float] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._closed = False
        self._delivering = False
        self._held: dict[str, str] = {}
        #: Sim sid -> the command shown to its modem that waits for ``AT+CNMA``.
        self._unacked: dict[str, str] = {}

    # -- fleet -------------------------------------------------------------

    def add_sim(self, gateway: G, unique_name: str) -> Sim[G]:
        """Put a Sim (with a new ``HS`` sid) into ``gateway`` and route its traffic."""
        if self.find_sim(unique_name) is not None:
            raise ValueError(f"a Sim named {unique_name!r} exists already")
        sim = Sim(self.sids.sid("HS"), unique_name, gateway)
        self.sims.append(sim)
        gateway.on_submit(functools.partial(self._submitted, sim))
        gateway.add_change_listener(functools.partial(self._modem_changed, sim))
        gateway.on_acknowledged(functools.partial(self._acknowledged, sim))
        return sim

    def find_sim(self, key: str) -> Sim[G] | None:
        """The Sim whose sid or unique name is ``key``."""
        for sim in self.sims:
            if key in (sim.sid, sim.unique_name):
                return sim
        return None

    # -- commands ------------------------------------------------------------

    def get(self, sid: str) -> SmsCommand | None:
        return self._commands.get(sid)

    def commands(
        self,
        *,
        sim_sid: str | None = None,
        status: Status | None = None,
        direction: Direction | None = None,
    ) -> list[SmsCommand]:
        """Matching commands, newest first."""
        found = [
            c
            for c in self._commands.values()
            if (sim_sid is None or c.sim_sid == sim_sid)
            and (status is None or c.status is status)
            and (direction is None or c.direction is direction)
        ]
        found.sort(key=lambda c: (c.date_created, c.seq), reverse=True)
        return found

    def create(
        self,
        sim: Sim[G],
        payload: str,
        *,
        callback_url: str | None = None,
        callback_method: CallbackMethod = CallbackMethod.POST,
    ) -> SmsCommand:
        """A new ``to_sim`` command, ``queued``; delivery is attempted right after."""
        command = self._new_command(
            sim,
            payload,
            Status.QUEUED,
            Direction.TO_SIM,
            callback_url=callback_url,
            callback_method=callback_method,
        )
        sim.pending.append(command.sid)
        loop = asyncio.get_running_loop()
        self._deadline[command.sid] = loop.time() + self.retry_window
        loop.call_soon(self._deliver_pending, sim)
        self._announce(command, self.created_listeners)
        return command

    def close(self) -> None:
        """Stop retrying; undelivered ``to_sim`` commands become ``failed``."""
        if self._closed:
            return
        self._closed = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for sim in self.sims:
            for sid in list(sim.pending):
                self._set_status(sid, Status.FAILED)
            sim.pending.clear()

    def __iter__(self) -> Iterator[SmsCommand]:
        return iter(self.commands())

    # -- internals -----------------------------------------------------------

    def _new_command(
        self,
        sim: Sim[G],
        payload: str,
        status: Status,
        direction: Direction,
        *,
        callback_url: str | None = None,
        callback_method: CallbackMethod = CallbackMethod.POST,
    ) -> SmsCommand:
        now = self.clock()
        return self._store(
            SmsCommand(
                sid=self.sids.sid("HC"),
                account_sid=self.account_sid,
                sim_sid=sim.sid,
                payload=payload,
                status=status,
                direction=direction,
                date_created=now,
                date_updated=now,
                callback_url=callback_url,
                callback_method=callback_method,
            )
        )

    def _store(self, command: SmsCommand) -> SmsCommand:
        self._seq += 1
        command = replace(command, seq=self._seq)
        self._commands[command.sid] = command
        return command

    def _set_status(self, sid: str, status: Status) -> SmsCommand:
        command = self._commands[sid]
        if command.status is status:
            return command
        updated = replace(command, status=status, date_updated=self.clock())
        self._commands[sid] = updated
        LOGGER.info("SmsCommand %s: %s -> %s", sid, command.status.value, status.value)
        self._announce(updated)
        return updated

    def _announce(self, command: SmsCommand, listeners: list[Listener] | None = None) -> None:
        for listener in list(self.listeners if listeners is None else listeners):
            try:
                listener(command)
            except Exception:
                LOGGER.exception("network listener failed on %s", command.sid)

    def _modem_changed(self, sim: Sim[G]) -> None:
        if sim.pending and not self._closed and not self._delivering:
            # Storage freed or registration back: try now rather than at the timer.
            asyncio.get_running_loop().call_soon(self._deliver_pending, sim)

    def _deliver_pending(self, sim: Sim[G]) -> None:
        """Deliver ``sim``'s pending commands in order until one cannot be delivered
        (or waits for the TE's acknowledgement)."""
        if self._closed or sim.sid in self._unacked:
            return
        loop = asyncio.get_running_loop()
        while sim.pending:
            sid = sim.pending[0]
            command = self._commands[sid]
            if loop.time() >= self._deadline.get(sid, float("inf")):
                LOGGER.warning("SmsCommand %s not delivered within the retry window", sid)
                sim.pending.pop(0)
                self._forget_timer(sid)
                self._set_status(sid, Status.FAILED)
                continue
            if command.status is Status.QUEUED:
                self._set_status(sid, Status.SENT)
            if not self._try_deliver(sim, command):
                self._schedule_retry(sim, sid)
                return
            if sim.sid in self._unacked:
                return  # shown; delivered once acknowledged (_acknowledged)
            sim.pending.pop(0)
            self._forget_timer(sid)
            self._set_status(sid, Status.DELIVERED)

    def _try_deliver(self, sim: Sim[G], command: SmsCommand) -> bool:
        """Hand ``command`` to the modem; False (logged once per reason) when it cannot take it."""
        gateway = sim.gateway
        reason: str | None = None
        if not gateway.attached:
            reason = "modem unplugged"
        elif not gateway.registered:
            reason = "not registered"
        else:
            self._delivering = True  # our own delivery's change notice is no reason to retry
            try:
                index = gateway.deliver(COMMANDS_NUMBER, command.payload)
            finally:
                self._delivering = False
            if index is not None:
                self._held.pop(command.sid, None)
                if index == AWAITING_ACK:
                    self._unacked[sim.sid] = command.sid
                return True
            reason = "storage full"
        if self._held.get(command.sid) != reason:
            self._held[command.sid] = reason
            LOGGER.info("Sim %s: %s held (%s); retrying", sim.unique_name, command.sid, reason)
        return False

    def _acknowledged(self, sim: Sim[G], positive: bool) -> None:
        """The TE settled the ``+CMT`` of ``sim``'s first pending command."""
        sid = self._unacked.pop(sim.sid, None)
        if sid is None or self._closed:
            return
        if positive and sim.pending and sim.pending[0] == sid:
            sim.pending.pop(0)
            self._forget_timer(sid)
            self._set_status(sid, Status.DELIVERED)
        else:
            LOGGER.info("Sim %s: %s not acknowledged; delivering again", sim.unique_name, sid)
            self._schedule_retry(sim, sid)
        asyncio.get_running_loop().call_soon(self._deliver_pending, sim)

    def _schedule_retry(self, sim: Sim[G], sid: str) -> None:
        if sid in self._timers:
            return  # a retry is already due; modem changes also retry at once
        loop = asyncio.get_running_loop()
        delay = self._next_try.get(sid, self.retry_initial)
        self._next_try[sid] = min(delay * 2, self.retry_max)
        delay = min(delay, max(0.0, self._deadline[sid] - loop.time()))

        def fire() -> None:
            self._timers.pop(sid, None)
            self._deliver_pending(sim)

        self._timers[sid] = loop.call_later(delay, fire)

    def _forget_timer(self, sid: str) -> None:
        timer = self._timers.pop(sid, None)
        if timer is not None:
            timer.cancel()
        self._next_try.pop(sid, None)
        self._deadline.pop(sid, None)
        self._held.pop(sid, None)

    def _submitted(self, sim: Sim[G], destination: str, text: str) -> int | None:
        """The modem's ``AT+CMGS``: refused unless registered and to 000, else a
        ``from_sim`` command."""
        if not sim.gateway.registered:
            LOGGER.warning("Sim %s: SMS refused, not registered", sim.unique_name)
            return NO_NETWORK_CMS
        if destination != COMMANDS_NUMBER:
            LOGGER.warning(
                "Sim %s: SMS to %r refused (a Super SIM reaches only %s)",
                sim.unique_name,
                destination,
                COMMANDS_NUMBER,
            )
            return REFUSED_DESTINATION_CMS
        command = self._new_command(sim, text, Status.RECEIVED, Direction.FROM_SIM)
        LOGGER.info("SmsCommand %s from Sim %s: %r", command.sid, sim.unique_name, text)
        self._announce(command)
        return None
