"""The cellular modem: its lifecycle as a state machine, and its SMS operations.

The lifecycle is a ``transitions`` machine declared as data (:data:`STATES`,
:data:`TRANSITIONS`). Callbacks only keep books; the I/O is done by
:class:`Modem`'s ``bring_up`` steps, which fire a trigger once a step
succeeded::

    disconnected ─connected→ probing ─answered→ configuring ─configured→
    waiting_for_sim ─sim_ready→ setting_up_sms ─sms_ready→ waiting_for_network
    ─registered→ ready

    any state after probing ─unresponsive→ probing  (commands time out)
    ready ─deregistered→ waiting_for_network
    any state ─port_lost→ disconnected   ·   any state ─stop→ stopped

Configuration puts the module in text mode with the ``"UCS2"`` TE character
set: every body and address is hex, so the whole GSM 03.38 repertoire
(``@`` is septet 0x00, ``€`` is an escape sequence) arrives exactly and a body
can never be mistaken for a result code. Steps that fail because the SIM or
the SMS service is still starting (``+CME ERROR: 14``, ``+CMS ERROR: 314``, or
``+CMS ERROR: 500`` during boot on some modules) are retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from transitions import Machine

from device.at.channel import AtChannel, Response
from device.at.errors import CmsError, CommandError, ModemError, ResponseError
from device.errors import SmsFormatError
from device.sms import textmode
from device.sms.charset import Charset, to_wire

if TYPE_CHECKING:
    # construct is imported only in PDU mode: a text-mode agent stays small.
    from device.sms.pdu import Concat

LOGGER = logging.getLogger(__name__)


class ModemState(enum.Enum):
    """Where the modem is in its lifecycle."""

    DISCONNECTED = "disconnected"
    PROBING = "probing"
    CONFIGURING = "configuring"
    WAITING_FOR_SIM = "waiting_for_sim"
    SETTING_UP_SMS = "setting_up_sms"
    WAITING_FOR_NETWORK = "waiting_for_network"
    READY = "ready"
    STOPPED = "stopped"


S = ModemState
_ATTACHED = [
    S.PROBING,
    S.CONFIGURING,
    S.WAITING_FOR_SIM,
    S.SETTING_UP_SMS,
    S.WAITING_FOR_NETWORK,
    S.READY,
]

STATES: list[ModemState] = list(ModemState)

TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "connected", "source": S.DISCONNECTED, "dest": S.PROBING},
    {"trigger": "answered", "source": S.PROBING, "dest": S.CONFIGURING},
    {"trigger": "configured", "source": S.CONFIGURING, "dest": S.WAITING_FOR_SIM},
    {"trigger": "sim_ready", "source": S.WAITING_FOR_SIM, "dest": S.SETTING_UP_SMS},
    {"trigger": "sms_ready", "source": S.SETTING_UP_SMS, "dest": S.WAITING_FOR_NETWORK},
    {"trigger": "registered", "source": S.WAITING_FOR_NETWORK, "dest": S.READY},
    {"trigger": "deregistered", "source": S.READY, "dest": S.WAITING_FOR_NETWORK},
    {"trigger": "unresponsive", "source": _ATTACHED, "dest": S.PROBING},
    {"trigger": "reset_detected", "source": _ATTACHED, "dest": S.PROBING},
    {"trigger": "port_lost", "source": [S.DISCONNECTED, *_ATTACHED], "dest": S.DISCONNECTED},
    {"trigger": "stop", "source": [S.DISCONNECTED, *_ATTACHED], "dest": S.STOPPED},
]

#: Registration status codes of +CREG / +CEREG (3GPP TS 27.007 §7.2).
REGISTRATION = {
    0: "not registered",
    1: "registered (home)",
    2: "searching",
    3: "registration denied",
    4: "unknown",
    5: "registered (roaming)",
}
REGISTERED = frozenset({1, 5})

#: Per-command timeouts as multiples of the configured command timeout, by command
#: prefix (others: 1). Listing a full storage takes a module several seconds.
#: ``AT+CMGS`` has its own configured timeout (``timeouts.send``).
COMMAND_TIMEOUT_FACTORS: dict[str, float] = {"+CMGL": 3.0, "+CPMS": 1.5}
DEFAULT_SEND_TIMEOUT = 60.0


class Lifecycle:
    """The state machine alone: current state, triggers, a change listener."""

    def __init__(self, on_change: Callable[[ModemState, ModemState], None] | None = None) -> None:
        self._on_change = on_change
        self.state: ModemState = S.DISCONNECTED
        self._machine = Machine(
            model=self,
            states=STATES,
            transitions=TRANSITIONS,
            initial=S.DISCONNECTED,
            auto_transitions=False,
            after_state_change=None,
        )
        self.since = datetime.now().astimezone()

    def fire(self, trigger: str) -> None:
        """Fire ``trigger``; a trigger that does not apply in this state is ignored and logged."""
        before = self.state
        if trigger not in self._machine.get_triggers(before):
            LOGGER.debug("trigger %s ignored in state %s", trigger, before.value)
            return
        getattr(self, "trigger")(trigger)  # noqa: B009 - method added by transitions
        after = self.state
        if after is not before:
            self.since = datetime.now().astimezone()
            LOGGER.info("modem: %s -> %s (%s)", before.value, after.value, trigger)
            if self._on_change is not None:
                self._on_change(before, after)


@dataclass(frozen=True, slots=True)
class ModuleIdentity:
    manufacturer: str
    model: str
    revision: str
    imei: str

    def describe(self) -> str:
        return " ".join(p for p in (self.manufacturer, self.model) if p) or "unknown module"


@dataclass(frozen=True, slots=True)
class StoredSms:
    """A received SMS: read from storage, or delivered directly (``+CMT``, no index)."""

    storage: str | None
    index: int | None
    status: textmode.MessageStatus
    sender: str
    timestamp: datetime | None
    text: str
    #: For one part of a concatenated message (PDU mode): reference, total, sequence.
    concat: Concat | None = None


@dataclass(frozen=True, slots=True)
class UndecodableSms:
    """A message whose header or body could not be decoded (kept for the journal)."""

    storage: str | None
    index: int | None
    raw_header: str
    raw_body: str
    reason: str


@dataclass(frozen=True, slots=True)
class SmsSettings:
    """What ``configure`` sets up; all from the agent's configuration."""

    storage: str = "SM"
    retry_delay: float = 1.0
    #: "text" (AT+CMGF=1, UCS2 strings) or "pdu" (AT+CMGF=0, TPDUs decoded here).
    mode: str = "text"


_CREG_RE = re.compile(r"^\s*(?:\d+\s*,\s*)?(\d+)")
_CSQ_RE = re.compile(r"^\s*(\d+)\s*,\s*(\d+)")
_CMGS_RE = re.compile(r"^\s*(\d+)")


def signal_text(rssi: int | None) -> str:
    """Human text for a ``+CSQ`` rssi (0–31, 99 unknown)."""
    if rssi is None or rssi == 99 or not 0 <= rssi <= 31:
        return "unknown"
    return f"{-113 + 2 * rssi} dBm"


class Modem:
    """SMS operations over an :class:`AtChannel`, in text mode with UCS2 strings."""

    charset = Charset.UCS2

    def __init__(
        self, channel: AtChannel, settings: SmsSettings, *, command_timeout: float = 10.0
    ) -> None:
        self.channel = channel
        self.settings = settings
        self.command_timeout = command_timeout
        self.identity = ModuleIdentity("", "", "", "")
        self.registration: int | None = None
        self.rssi: int | None = None
        self.read_storage = settings.storage
        self.pdu = settings.mode == "pdu"
        self.cmgf = 0 if self.pdu else 1

    async def at(self, command: str, **kwargs: Any) -> Response:
        """Run one command with its timeout from :data:`COMMAND_TIMEOUT_FACTORS`."""
        timeout = kwargs.pop("timeout", None)
        if timeout is None:
            timeout = self.command_timeout
            for prefix, factor in COMMAND_TIMEOUT_FACTORS.items():
                if command.upper().startswith("AT" + prefix):
                    timeout = self.command_timeout * factor
        return await self.channel.command(command, timeout=timeout, **kwargs)

    # -- bring-up steps (each raises ModemError when it cannot complete) -----

    async def probe(self, timeout: float) -> None:
        """Check that something answers AT; turn echo off on the way."""
        await self.at("ATE0", timeout=timeout)

    async def configure(self) -> None:
        """Settings that do not need the SIM: verbose errors, text mode, header detail."""
        await self.at("AT+CMEE=2")
        await self.at(f"AT+CMGF={self.cmgf}")
        await self.at("AT+CSDH=1")
        await self.identify()

    async def identify(self) -> None:
        manufacturer = await self._single_line("AT+CGMI")
        model = await self._single_line("AT+CGMM")
        revision = await self._single_line("AT+CGMR")
        imei = await self._single_line("AT+CGSN")
        self.identity = ModuleIdentity(manufacturer, model, revision, imei)

    async def _single_line(self, command: str) -> str:
        try:
            response = await self.at(command)
        except CommandError as exc:
            LOGGER.info("%s not answered: %s", command, exc)
            return ""
        for line in response.lines:
            text = line.strip()
            if text:
                prefix = command[2:] + ":"
                return text[len(prefix) :].strip() if text.upper().startswith(prefix) else text
        return ""

    async def sim_status(self) -> tuple[bool, str]:
        """``(ready, detail)`` from ``AT+CPIN?``.

        A SIM that is busy, missing or locked is *not ready* (with the
        module's words as the detail), not an error: the caller keeps waiting.
        """
        try:
            response = await self.at("AT+CPIN?")
        except CommandError as exc:
            return False, exc.meaning
        values = response.prefixed("+CPIN")
        if values and values[0].strip('"').upper() == "READY":
            return True, "READY"
        return False, values[0] if values else "no +CPIN line"

    async def setup_sms(self) -> None:
        """Storage, character set and indications (needs the SIM's SMS service).

        ``AT+CPMS`` goes before ``AT+CSCS="UCS2"`` so that the memory names
        are still plain text for modules that apply the TE character set to them.
        """
        storage = self.settings.storage
        await self.at(f'AT+CPMS="{storage}","{storage}","{storage}"')
        self.read_storage = storage
        await self.at(f'AT+CSCS="{self.charset.value}"')
        # fo=17 (SMS-SUBMIT, relative validity), vp=167 (24 h), pid 0, dcs 0:
        # replies go out as GSM 7-bit whatever the TE character set.
        await self.at("AT+CSMP=17,167,0,0")
        # mode 2: buffer indications while a command runs, flush after;
        # mt 1: store and indicate with +CMTI; no cell broadcast; status reports off.
        await self.at("AT+CNMI=2,1,0,0,0")

    async def prepare_send(self) -> None:
        """Just enough set-up to send one SMS (for ``smscmd send`` without an agent)."""
        await self.probe(self.command_timeout)
        await self.at("AT+CMEE=2")
        await self.at(f"AT+CMGF={self.cmgf}")
        await self.at(f'AT+CSCS="{self.charset.value}"')
        await self.at("AT+CSMP=17,167,0,0")

    async def settings_intact(self) -> str | None:
        """None when text mode, UCS2 and ``+CMTI`` indications are still in force.

        Otherwise the name of the setting that changed: a module that restarted
        without a banner (or another program on the port) shows itself this way.
        """
        cmgf = (await self.at("AT+CMGF?")).prefixed("+CMGF")
        if not cmgf or cmgf[0].strip() != str(self.cmgf):
            return f"AT+CMGF is {cmgf[0] if cmgf else '?'}"
        cscs = (await self.at("AT+CSCS?")).prefixed("+CSCS")
        value = cscs[0].strip().strip('"').upper() if cscs else "?"
        if value not in (self.charset.value, to_wire(self.charset.value, self.charset)):
            return f"AT+CSCS is {value}"
        cnmi = (await self.at("AT+CNMI?")).prefixed("+CNMI")
        fields = [f.strip() for f in cnmi[0].split(",")] if cnmi else []
        if len(fields) < 2 or fields[1] != "1":
            return f"AT+CNMI is {cnmi[0] if cnmi else '?'}"
        return None

    async def refresh_registration(self) -> int | None:
        """Read +CREG and +CEREG; the better of the two is kept (LTE-M reports via CEREG)."""
        best: int | None = None
        for command, prefix in (("AT+CREG?", "+CREG"), ("AT+CEREG?", "+CEREG")):
            try:
                response = await self.at(command)
            except CommandError:
                continue
            for value in response.prefixed(prefix):
                match = _CREG_RE.match(value)
                if match:
                    stat = int(match.group(1))
                    if best is None or (stat in REGISTERED and best not in REGISTERED):
                        best = stat
        self.registration = best
        return best

    async def refresh_signal(self) -> int | None:
        response = await self.at("AT+CSQ")
        for value in response.prefixed("+CSQ"):
            match = _CSQ_RE.match(value)
            if match:
                self.rssi = int(match.group(1))
                return self.rssi
        raise ResponseError(f"AT+CSQ: no +CSQ line in {response.lines!r}")

    @property
    def registration_text(self) -> str:
        if self.registration is None:
            return "unknown"
        return REGISTRATION.get(self.registration, f"status {self.registration}")

    # -- SMS operations ------------------------------------------------------

    async def _select_read_storage(self, storage: str) -> None:
        """Point ``<mem1>`` (read/delete) at ``storage``; the name in hex if plain is refused."""
        if storage == self.read_storage:
            return
        try:
            await self.at(f'AT+CPMS="{storage}"')
        except CommandError as exc:
            LOGGER.info("plain AT+CPMS refused (%s); trying the UCS2 form", exc)
            await self.at(f'AT+CPMS="{to_wire(storage, self.charset)}"')
        self.read_storage = storage

    async def read(self, storage: str, index: int) -> StoredSms | UndecodableSms | None:
        """Read one message; None when the index holds no received message.

        ``+CMS ERROR: 321`` (empty index) also gives None. Messages that are
        not received ones (stored outgoing) give None too and stay untouched.
        """
        await self._select_read_storage(storage)
        try:
            response = await self.at(f"AT+CMGR={index}")
        except CmsError as exc:
            if exc.code == 321:
                return None
            raise
        if not response.lines:
            return None
        header_line = response.lines[0]
        body = response.lines[1] if len(response.lines) > 1 else ""
        fields = header_line.partition(":")[2].strip()
        if self.pdu:
            return from_pdu(storage, index, header_line, _pdu_stat(fields), body)
        try:
            header = textmode.parse_cmgr_header(fields, self.charset)
            if header.stat not in (
                textmode.MessageStatus.REC_UNREAD,
                textmode.MessageStatus.REC_READ,
            ):
                return None
            text = textmode.decode_body(body, header, self.charset)
        except SmsFormatError as exc:
            return UndecodableSms(storage, index, header_line, body, str(exc))
        return StoredSms(storage, index, header.stat, header.address, header.timestamp, text)

    async def list_received(self) -> list[StoredSms | UndecodableSms]:
        """Every received message in the read storage (``AT+CMGL="ALL"``), oldest index first.

        Under UCS2 some modules want the status string itself in hex; when the
        plain form is refused the hex form is tried.
        """
        await self._select_read_storage(self.settings.storage)
        if self.pdu:
            return await self._list_pdu()
        try:
            response = await self.at('AT+CMGL="ALL"')
        except CommandError as exc:
            LOGGER.info("plain AT+CMGL refused (%s); trying the UCS2 form", exc)
            response = await self.at(f'AT+CMGL="{to_wire("ALL", self.charset)}"')
        found: list[StoredSms | UndecodableSms] = []
        lines = list(response.lines)
        for i, line in enumerate(lines):
            if not line.startswith("+CMGL:"):
                continue
            body = lines[i + 1] if i + 1 < len(lines) else ""
            fields = line.partition(":")[2].strip()
            try:
                header = textmode.parse_cmgl_header(fields, self.charset)
            except SmsFormatError as exc:
                index = _leading_int(fields)
                if index is None:
                    LOGGER.error("unparseable +CMGL line without an index: %r", line)
                    continue
                found.append(UndecodableSms(self.read_storage, index, line, body, str(exc)))
                continue
            if header.index is None or header.stat not in (
                textmode.MessageStatus.REC_UNREAD,
                textmode.MessageStatus.REC_READ,
            ):
                continue
            try:
                text = textmode.decode_body(body, header, self.charset)
            except SmsFormatError as exc:
                found.append(UndecodableSms(self.read_storage, header.index, line, body, str(exc)))
                continue
            found.append(
                StoredSms(
                    self.read_storage,
                    header.index,
                    header.stat,
                    header.address,
                    header.timestamp,
                    text,
                )
            )
        found.sort(key=lambda m: -1 if m.index is None else m.index)
        return found

    async def _list_pdu(self) -> list[StoredSms | UndecodableSms]:
        response = await self.at("AT+CMGL=4")  # 4: all messages
        found: list[StoredSms | UndecodableSms] = []
        lines = list(response.lines)
        for i, line in enumerate(lines):
            if not line.startswith("+CMGL:"):
                continue
            fields = line.partition(":")[2].strip()
            index = _leading_int(fields)
            if index is None:
                LOGGER.error("unparseable +CMGL line without an index: %r", line)
                continue
            stat = _pdu_stat(fields.split(",", 1)[1] if "," in fields else "")
            body = lines[i + 1] if i + 1 < len(lines) else ""
            message = from_pdu(self.read_storage, index, line, stat, body)
            if message is not None:
                found.append(message)
        found.sort(key=lambda m: -1 if m.index is None else m.index)
        return found

    async def delete(self, storage: str, index: int) -> None:
        """Delete exactly one index (delflag 0) — never a bulk delete."""
        await self._select_read_storage(storage)
        await self.at(f"AT+CMGD={index},0")

    async def send_text(self, destination: str, text: str, *, timeout: float | None = None) -> int:
        """Send GSM-only ``text`` (≤160 septets) to ``destination``; returns the reference."""
        limit = timeout if timeout is not None else DEFAULT_SEND_TIMEOUT
        if self.pdu:
            from device.sms.pdu import encode_submit

            hex_pdu, length = encode_submit(destination, text, encoding="gsm7")
            command = f"AT+CMGS={length}"
            body = hex_pdu
        else:
            command = f'AT+CMGS="{to_wire(destination, self.charset)}"'
            body = to_wire(text, self.charset)
        response = await self.channel.command_with_body(command, body, timeout=limit)
        for value in response.prefixed("+CMGS"):
            match = _CMGS_RE.match(value)
            if match:
                return int(match.group(1))
        raise ResponseError(f"{command}: OK without a +CMGS reference: {response.lines!r}")


def decode_direct(
    charset: Charset, args: str, body: str, *, pdu: bool = False
) -> StoredSms | UndecodableSms:
    """A ``+CMT:`` indication (header ``args`` and ``body``) as a message with no index."""
    if pdu:
        message = from_pdu(None, None, f"+CMT: {args}", textmode.MessageStatus.REC_UNREAD, body)
        if message is None:
            return UndecodableSms(None, None, f"+CMT: {args}", body, "not an SMS-DELIVER")
        return message
    try:
        header = textmode.parse_cmt_header(args, charset)
        text = textmode.decode_body(body, header, charset)
    except SmsFormatError as exc:
        return UndecodableSms(None, None, f"+CMT: {args}", body, str(exc))
    return StoredSms(None, None, header.stat, header.address, header.timestamp, text)


def _pdu_stat(fields: str) -> textmode.MessageStatus:
    """The numeric ``<stat>`` that starts ``fields`` (PDU mode): 0 unread, 1 read …"""
    value = _leading_int(fields)
    by_code = {s.code: s for s in textmode.MessageStatus}
    return by_code.get(value if value is not None else -1, textmode.MessageStatus.REC_READ)


def from_pdu(
    storage: str | None,
    index: int | None,
    header: str,
    stat: textmode.MessageStatus,
    pdu_hex: str,
) -> StoredSms | UndecodableSms | None:
    """A stored PDU as a received message; None for what is not an SMS-DELIVER
    (stored outgoing messages, status reports), which stays in storage untouched."""
    from device.sms.pdu import PduError, PduKind, decode_pdu

    if stat not in (textmode.MessageStatus.REC_UNREAD, textmode.MessageStatus.REC_READ):
        return None
    try:
        sms = decode_pdu(pdu_hex)
    except PduError as exc:
        return UndecodableSms(storage, index, header, pdu_hex, str(exc))
    if sms.kind is not PduKind.DELIVER:
        return None
    concat = sms.concat if sms.concat is not None and sms.concat.total > 1 else None
    return StoredSms(storage, index, stat, sms.sender or "", sms.timestamp, sms.text, concat)


def _leading_int(text: str) -> int | None:
    match = re.match(r"\s*(\d+)", text)
    return int(match.group(1)) if match else None


def parse_cmti(args: str) -> tuple[str, int] | None:
    """``"SM",3`` → ``("SM", 3)``; None when malformed (e.g. a negative index)."""
    match = re.match(r'^\s*"?([A-Za-z0-9]+)"?\s*,\s*(\d+)\s*$', args)
    if match is None:
        return None
    return normalise_storage(match.group(1)), int(match.group(2))


def normalise_storage(name: str) -> str:
    """A memory name as the journal keys it: upper case, and decoded when a module
    printed it in UCS2 hex (``"0053004D"`` → ``"SM"``) under ``AT+CSCS="UCS2"``."""
    if len(name) == 8 and re.fullmatch(r"[0-9A-Fa-f]{8}", name):
        try:
            decoded = bytes.fromhex(name).decode("utf-16-be")
        except UnicodeDecodeError:
            decoded = ""
        if re.fullmatch(r"[A-Za-z]{2}", decoded):
            return decoded.upper()
    return name.upper()


async def retry_while_busy(
    step: Callable[[], Any], *, delay: float, what: str, stop: asyncio.Event
) -> bool:
    """Run the async ``step`` until it does not fail with a busy error.

    Returns False when ``stop`` was set while waiting. Non-busy errors propagate.
    """
    while not stop.is_set():
        try:
            await step()
            return True
        except CommandError as exc:
            if not (exc.busy or (isinstance(exc, CmsError) and exc.code == 500)):
                raise
            LOGGER.info("%s: modem not ready yet (%s); retrying in %.1f s", what, exc, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
    return False


__all__ = [
    "STATES",
    "TRANSITIONS",
    "Lifecycle",
    "Modem",
    "ModemError",
    "ModemState",
    "StoredSms",
    "UndecodableSms",
    "parse_cmti",
    "retry_while_busy",
    "signal_text",
]
