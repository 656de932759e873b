"""Text or PDU mode, chosen once: one small class per mode knows how to list,
read a header and body, decode a direct ``+CMT``, build ``AT+CMGS``, and which
``AT+CMGF`` value and TE character set it runs under.

Text mode (``AT+CMGF=1``) runs under ``AT+CSCS="UCS2"``: every body and address
is hex, so the whole GSM 03.38 repertoire (``@`` is septet 0x00, ``€`` an escape
sequence) arrives exactly and a body can never be mistaken for a result code.
PDU mode (``AT+CMGF=0``) decodes the TPDUs here (multipart included); the
character set still applies to storage names and the header fields some
modules print.

A message whose header or body cannot be decoded becomes an
:class:`~device.modem.messages.UndecodableSms` (kept for the journal), never an
exception; a stored message that is not a received one (stored outgoing, a
status report) gives None and stays in storage untouched.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from device.errors import SmsFormatError
from device.modem.messages import (
    StoredSms,
    UndecodableSms,
    _leading_int,
    _pdu_stat,
    from_pdu,
)
from device.sms import textmode
from device.sms.charset import Charset, to_wire

LOGGER = logging.getLogger(__name__)

_RECEIVED = (textmode.MessageStatus.REC_UNREAD, textmode.MessageStatus.REC_READ)
Received = StoredSms | UndecodableSms


@dataclass(frozen=True, slots=True)
class Submit:
    """What ``AT+CMGS`` needs: the parameter after ``=`` and the body after ``> ``."""

    parameter: str
    body: str


@dataclass(frozen=True, slots=True)
class MessageMode(abc.ABC):
    """How messages look on the wire in one ``AT+CMGF`` mode."""

    #: The configuration's name for the mode (``agent.mode``).
    name: ClassVar[str]
    #: The ``AT+CMGF`` value.
    cmgf: ClassVar[int]
    #: The TE character set (``AT+CSCS``).
    charset: Charset = Charset.UCS2

    @property
    @abc.abstractmethod
    def list_stats(self) -> tuple[str, ...]:
        """``AT+CMGL`` parameters for "all messages", tried in order while refused."""

    @abc.abstractmethod
    def read(self, storage: str, index: int, header_line: str, body: str) -> Received | None:
        """An ``AT+CMGR`` answer (its ``+CMGR:`` line and the body line)."""

    @abc.abstractmethod
    def listed(self, storage: str, lines: Sequence[str]) -> list[Received]:
        """The received messages in an ``AT+CMGL`` answer, in the order listed."""

    @abc.abstractmethod
    def direct(self, args: str, body: str) -> Received:
        """A ``+CMT:`` indication (header ``args`` and ``body``) as a message with no index."""

    @abc.abstractmethod
    def submit(self, destination: str, text: str) -> Submit:
        """``AT+CMGS`` for GSM-only ``text`` (≤160 septets) to ``destination``."""


@dataclass(frozen=True, slots=True)
class TextMode(MessageMode):
    """``AT+CMGF=1``: headers as text, addresses and bodies in the TE character set."""

    name: ClassVar[str] = "text"
    cmgf: ClassVar[int] = 1

    @property
    def list_stats(self) -> tuple[str, ...]:
        # Under UCS2 some modules want the status string itself in hex.
        return ('"ALL"', f'"{to_wire("ALL", self.charset)}"')

    def read(self, storage: str, index: int, header_line: str, body: str) -> Received | None:
        fields = header_line.partition(":")[2].strip()
        try:
            header = textmode.parse_cmgr_header(fields, self.charset)
            if header.stat not in _RECEIVED:
                return None
            text = textmode.decode_body(body, header, self.charset)
        except SmsFormatError as exc:
            return UndecodableSms(storage, index, header_line, body, str(exc))
        return StoredSms(
            storage,
            index,
            header.stat,
            header.address,
            header.timestamp,
            text,
            sender_wire=_wire_field(fields, 1),
            sender_type=header.tooa,
        )

    def listed(self, storage: str, lines: Sequence[str]) -> list[Received]:
        found: list[Received] = []
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
                found.append(UndecodableSms(storage, index, line, body, str(exc)))
                continue
            if header.index is None or header.stat not in _RECEIVED:
                continue
            try:
                text = textmode.decode_body(body, header, self.charset)
            except SmsFormatError as exc:
                found.append(UndecodableSms(storage, header.index, line, body, str(exc)))
                continue
            found.append(
                StoredSms(
                    storage,
                    header.index,
                    header.stat,
                    header.address,
                    header.timestamp,
                    text,
                    sender_wire=_wire_field(fields, 2),
                    sender_type=header.tooa,
                )
            )
        return found

    def direct(self, args: str, body: str) -> Received:
        try:
            header = textmode.parse_cmt_header(args, self.charset)
            text = textmode.decode_body(body, header, self.charset)
        except SmsFormatError as exc:
            return UndecodableSms(None, None, f"+CMT: {args}", body, str(exc))
        return StoredSms(
            None,
            None,
            header.stat,
            header.address,
            header.timestamp,
            text,
            sender_wire=_wire_field(args, 0),
            sender_type=header.tooa,
        )

    def submit(self, destination: str, text: str) -> Submit:
        return Submit(f'"{to_wire(destination, self.charset)}"', to_wire(text, self.charset))


@dataclass(frozen=True, slots=True)
class PduMode(MessageMode):
    """``AT+CMGF=0``: numeric ``<stat>``, TPDUs in hex decoded here (multipart too)."""

    name: ClassVar[str] = "pdu"
    cmgf: ClassVar[int] = 0

    @property
    def list_stats(self) -> tuple[str, ...]:
        return ("4",)  # 4: all messages

    def read(self, storage: str, index: int, header_line: str, body: str) -> Received | None:
        fields = header_line.partition(":")[2].strip()
        return from_pdu(storage, index, header_line, _pdu_stat(fields), body)

    def listed(self, storage: str, lines: Sequence[str]) -> list[Received]:
        found: list[Received] = []
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
            message = from_pdu(storage, index, line, stat, body)
            if message is not None:
                found.append(message)
        return found

    def direct(self, args: str, body: str) -> Received:
        header = f"+CMT: {args}"
        message = from_pdu(None, None, header, textmode.MessageStatus.REC_UNREAD, body)
        if message is None:
            return UndecodableSms(None, None, header, body, "not an SMS-DELIVER")
        return message

    def submit(self, destination: str, text: str) -> Submit:
        # construct is imported only in PDU mode: a text-mode agent stays small.
        from device.sms.pdu import encode_submit

        hex_pdu, length = encode_submit(destination, text, encoding="gsm7")
        return Submit(str(length), hex_pdu)


def _wire_field(fields_text: str, position: int) -> str:
    """Header field ``position`` as printed (27.005 §3.4.3/§3.4.2/§3.4.1: ``<oa>`` is
    field 1 of ``+CMGR``, 2 of ``+CMGL``, 0 of ``+CMT``), for the admission check;
    "" when it is not there, which no sender's wire form matches."""
    try:
        fields = textmode.split_fields(fields_text)
    except SmsFormatError:
        return ""
    return fields[position][0] if position < len(fields) else ""


#: The modes by their configuration name (``agent.mode``).
MODES: dict[str, type[MessageMode]] = {mode.name: mode for mode in (TextMode, PduMode)}


def mode_for(name: str, charset: Charset = Charset.UCS2) -> MessageMode:
    """The mode called ``name`` (``"text"`` or ``"pdu"``); ValueError otherwise."""
    try:
        return MODES[name](charset)
    except KeyError:
        raise ValueError(f"unknown SMS mode {name!r} (known: {', '.join(MODES)})") from None
