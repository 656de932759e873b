"""The console's live model of the fleet, and its fan-out to the page's event streams.

:class:`ConsoleHub` listens to the network (every SmsCommand created or changed)
and to each modem (every change; every chunk on its line, cut into lines by
:class:`~hostsim.console.traffic.LineTraffic`) and turns what it hears into
events, each a JSON object of one :class:`EventKind`:

* ``snapshot`` — first on every stream: ``sims`` (each :func:`sim_view`),
  ``commands`` (newest first, each :func:`command_view`), ``traffic`` (per Sim
  unique name, the recent lines), ``faults`` (each field of
  :class:`~hostsim.modem.faults.FaultPlan`: ``name``, ``kind``, ``default``,
  ``help``, ``metavar``) and ``controls`` (the one-shot faults of
  :data:`CONTROL_FORMS`);
* ``sim`` — one Sim's view, whenever it differs from the last one sent;
* ``command`` — one command, at creation and at every status change, with its
  status ``history``;
* ``traffic`` — one line of a Sim's AT traffic (``sim``, ``dir``, ``text``, ``t``).

Each stream (:meth:`ConsoleHub.subscribe`) has a bounded queue: a reader too slow
to keep :data:`QUEUE_SIZE` events is dropped (its stream ends; the page's
``EventSource`` reconnects and starts again from a snapshot), so a stalled
browser costs bounded memory and never blocks the loop. The hub keeps the last
:data:`MAX_COMMANDS` commands' histories. Everything runs on the loop thread.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hostsim.cloud.api.control import ControlledGateway
from hostsim.cloud.api.resource import format_date
from hostsim.cloud.network import Network, Sim, SmsCommand
from hostsim.console.traffic import LineTraffic, TrafficLine
from hostsim.modem.faults import fault_fields, fault_kind
from hostsim.modem.settings import MessageMode, RegStat
from hostsim.pty import SimulatedModem

LOGGER = logging.getLogger(__name__)

#: Events one stream may have waiting before it is dropped.
QUEUE_SIZE = 2000
#: Commands whose status history the hub keeps (the oldest forgotten first).
MAX_COMMANDS = 200
#: ``AT+CFUN`` ``<fun>`` as the page names it (27.007 §8.2).
_FUN = {0: "minimum", 1: "full", 4: "RF off"}


class EventKind(enum.Enum):
    """The ``event:`` field of each server-sent event."""

    SNAPSHOT = "snapshot"
    SIM = "sim"
    COMMAND = "command"
    TRAFFIC = "traffic"


class ModemState(enum.Enum):
    """One word for the modem, the first that holds in this order."""

    UNPLUGGED = "unplugged"
    HUNG = "hung"
    BOOTING = "booting"  # after a reset: SIM and SMS not ready yet (CME 14 / CMS 314)
    RADIO_OFF = "radio off"  # AT+CFUN=0 or 4
    READY = "ready"


@dataclass(frozen=True, slots=True)
class ControlForm:
    """A one-shot control of :data:`hostsim.cloud.api.control.CONTROLS` on the page:
    its route name, its one parameter (None: a plain button) and what the page
    says about it."""

    name: str
    param: str | None
    label: str

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "param": self.param, "label": self.label}


#: Every control but ``faults`` (the fault plan has a form per field).
CONTROL_FORMS = (
    ControlForm("reset", "not_ready_seconds", "SIM not ready for (seconds)"),
    ControlForm("unplug", "seconds", "replug after (seconds, empty: never)"),
    ControlForm("replug", None, "plug back in"),
    ControlForm("garbage", "bytes", "random bytes on the line"),
    ControlForm("hang", "seconds", "resume after (seconds, empty: never)"),
    ControlForm("resume", None, "answer again"),
)


def encode(kind: EventKind, data: object) -> bytes:
    """One server-sent event: ``event: <kind>``, one ``data:`` line of JSON, a blank line."""
    return f"event: {kind.value}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def modem_state(modem: SimulatedModem) -> ModemState:
    """The :class:`ModemState` of ``modem`` now."""
    if not modem.attached:
        return ModemState.UNPLUGGED
    if modem.hung:
        return ModemState.HUNG
    if not modem.sim_ready:
        return ModemState.BOOTING
    if modem.modem.radio.fun != 1:
        return ModemState.RADIO_OFF
    return ModemState.READY


def _reg_name(stat: RegStat) -> str:
    return stat.name.lower().replace("_", " ")


def sim_view(sim: Sim[ControlledGateway], modem: SimulatedModem) -> dict[str, Any]:
    """What the page shows of one Sim: state, registration, signal, storage, faults.

    ``signal.rssi`` is what ``AT+CSQ`` reports (99: not known, with the RF off);
    ``dbm`` is -113 + 2 × rssi (27.007 §8.5), None when not known.
    """
    emulated = modem.modem
    radio = emulated.radio
    rssi = emulated.config.rssi if radio.fun == 1 else 99
    settings = emulated.settings
    return {
        "sid": sim.sid,
        "unique_name": sim.unique_name,
        "state": modem_state(modem).value,
        "pty": modem.path if modem.attached else None,
        "sim_ready": modem.sim_ready,
        "radio": _FUN.get(radio.fun, str(radio.fun)),
        "registration": _reg_name(radio.cs_stat),
        "registered": modem.registered,
        "signal": {"rssi": rssi, "dbm": None if rssi == 99 else -113 + 2 * rssi},
        "storage": [
            {"name": name, "used": storage.used, "total": storage.total}
            for name, storage in emulated.storages.items()
        ],
        "mode": "text" if settings.cmgf is MessageMode.TEXT else "pdu",
        "echo": settings.echo,
        "pending": len(sim.pending),
        "faults": modem.faults.as_dict(),
    }


def command_view(
    command: SmsCommand, sim_name: str, history: list[dict[str, object]]
) -> dict[str, Any]:
    """One SmsCommand for the page, with the statuses it went through (``history``)."""
    return {
        "sid": command.sid,
        "sim_sid": command.sim_sid,
        "sim": sim_name,
        "payload": command.payload,
        "status": command.status.value,
        "direction": command.direction.value,
        "date_created": format_date(command.date_created),
        "date_updated": format_date(command.date_updated),
        "history": list(history),
    }


class Subscription:
    """One event stream: the encoded events to write, in order; None ends it."""

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(size + 1)
        self._size = size
        self.dropped = False

    def put(self, event: bytes) -> None:
        """Queue ``event``; when the reader is :data:`QUEUE_SIZE` behind, end the stream."""
        if self.dropped:
            return
        if self.queue.qsize() >= self._size:
            self.dropped = True
            LOGGER.warning("console stream %d events behind: dropped (it will reconnect)",
                           self._size)  # fmt: skip
            self.end()
            return
        self.queue.put_nowait(event)

    def end(self) -> None:
        """No more events: the stream closes after what is queued (or at once when dropped)."""
        if self.dropped:
            while not self.queue.empty():
                self.queue.get_nowait()
        self.queue.put_nowait(None)


class ConsoleHub:
    """The fleet as the console sees it (see the module docstring); close() detaches."""

    def __init__(
        self,
        network: Network[ControlledGateway],
        modems: Sequence[SimulatedModem],
        *,
        queue_size: int = QUEUE_SIZE,
        max_commands: int = MAX_COMMANDS,
    ) -> None:
        self._network = network
        self._pairs = list(zip(network.sims, modems, strict=True))
        self._queue_size = queue_size
        self._max_commands = max_commands
        self._subscribers: set[Subscription] = set()
        self._views: dict[str, dict[str, Any]] = {}
        self._history: OrderedDict[str, list[dict[str, object]]] = OrderedDict()
        self._closed = False
        self.traffic: dict[str, LineTraffic] = {}
        for sim, modem in self._pairs:
            traffic = LineTraffic(functools.partial(self._line, sim))
            self.traffic[sim.unique_name] = traffic
            modem.add_change_listener(functools.partial(self._sim_changed, sim, modem))
            modem.add_wire_listener(traffic.feed)
            self._views[sim.sid] = sim_view(sim, modem)
        for command in reversed(network.commands()):
            self._command(command)
        network.listeners.append(self._command)
        network.created_listeners.append(self._command)

    @property
    def subscribers(self) -> int:
        """Streams open now."""
        return len(self._subscribers)

    def snapshot(self) -> dict[str, Any]:
        """Everything a new stream starts from (the ``snapshot`` event)."""
        commands = [
            command_view(c, self._sim_name(c.sim_sid), self._history.get(c.sid, []))
            for c in self._network.commands()
            if c.sid in self._history
        ]
        return {
            "sims": [sim_view(sim, modem) for sim, modem in self._pairs],
            "commands": commands,
            "traffic": {
                name: [line.as_dict() for line in traffic.lines]
                for name, traffic in self.traffic.items()
            },
            "faults": [
                {
                    "name": field.name,
                    "kind": fault_kind(field).__name__,
                    "default": field.default,
                    "help": field.metadata["help"],
                    "metavar": field.metadata["metavar"],
                }
                for field in fault_fields()
            ],
            "controls": [form.as_dict() for form in CONTROL_FORMS],
        }

    def subscribe(self) -> Subscription:
        """A new stream, its snapshot already queued (ended at once after close())."""
        subscription = Subscription(self._queue_size)
        subscription.put(encode(EventKind.SNAPSHOT, self.snapshot()))
        if self._closed:
            subscription.end()
        else:
            self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """The stream is gone (idempotent)."""
        self._subscribers.discard(subscription)

    def close(self) -> None:
        """Detach from the network and end every stream; idempotent. (The modems' listeners
        stay, silenced: the modems close with the fleet.)"""
        if self._closed:
            return
        self._closed = True
        for listeners in (self._network.listeners, self._network.created_listeners):
            if self._command in listeners:
                listeners.remove(self._command)
        for subscription in list(self._subscribers):
            subscription.end()
        self._subscribers.clear()

    # -- what the hub hears ------------------------------------------------------------

    def _publish(self, kind: EventKind, data: object) -> None:
        if self._closed or not self._subscribers:
            return
        event = encode(kind, data)
        for subscription in list(self._subscribers):
            subscription.put(event)
            if subscription.dropped:
                self._subscribers.discard(subscription)

    def _sim_name(self, sim_sid: str) -> str:
        sim = self._network.find_sim(sim_sid)
        return sim.unique_name if sim is not None else ""

    def _sim_changed(self, sim: Sim[ControlledGateway], modem: SimulatedModem) -> None:
        if self._closed:
            return
        view = sim_view(sim, modem)
        if view != self._views.get(sim.sid):
            self._views[sim.sid] = view
            self._publish(EventKind.SIM, view)

    def _command(self, command: SmsCommand) -> None:
        history = self._history.get(command.sid)
        if history is None:
            history = self._history[command.sid] = []
            while len(self._history) > self._max_commands:
                self._history.popitem(last=False)
        if not history or history[-1]["status"] != command.status.value:
            history.append({"status": command.status.value, "t": round(time.time(), 3)})
        self._publish(
            EventKind.COMMAND, command_view(command, self._sim_name(command.sim_sid), history)
        )
        # The network's pending count is part of the Sim's view.
        for sim, modem in self._pairs:
            if sim.sid == command.sim_sid:
                self._sim_changed(sim, modem)

    def _line(self, sim: Sim[ControlledGateway], line: TrafficLine) -> None:
        self._publish(EventKind.TRAFFIC, {"sim": sim.unique_name, **line.as_dict()})
