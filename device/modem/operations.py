"""SMS operations over an :class:`~device.at.channel.AtChannel`: bring-up steps,
health reads, and list/read/delete/send in text or PDU mode.

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
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from device.at.channel import AtChannel, Response
from device.at.errors import CmsError, CommandError, ResponseError
from device.errors import SmsFormatError
from device.modem.messages import (
    REGISTERED,
    REGISTRATION,
    ModuleIdentity,
    StoredSms,
    UndecodableSms,
    _leading_int,
    _pdu_stat,
    from_pdu,
)
from device.sms import textmode
from device.sms.charset import Charset, to_wire

LOGGER = logging.getLogger(__name__)

#: Per-command timeouts as multiples of the configured command timeout, by command
#: prefix (others: 1). Listing a full storage takes a module several seconds.
#: ``AT+CMGS`` has its own configured timeout (``timeouts.send``).
COMMAND_TIMEOUT_FACTORS: dict[str, float] = {"+CMGL": 3.0, "+CPMS": 1.5}
DEFAULT_SEND_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class SmsSettings:
    """What ``configure`` sets up; all from the agent's configuration."""

    storage: str = "SM"
    #: "text" (AT+CMGF=1, UCS2 strings) or "pdu" (AT+CMGF=0, TPDUs decoded here).
    mode: str = "text"


_CREG_RE = re.compile(r"^\s*(?:\d+\s*,\s*)?(\d+)")
_CSQ_RE = re.compile(r"^\s*(\d+)\s*,\s*(\d+)")
_CMGS_RE = re.compile(r"^\s*(\d+)")


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
