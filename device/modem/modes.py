"""Text or PDU mode, chosen once: one small class per mode knows how to list,
read a header and body, decode a direct ``+CMT``, build ``AT+CMGS``, and which
``AT+CMGF`` value and TE character set it runs under.

Text mode (``AT+CMGF=1``) runs under ``AT+CSCS="UCS2"``: every body and address
is hex, so the whole GSM 03.38 repertoire (``@`` is septet 0x00, ``€`` an escape
sequence) arrives exactly and a body can never be mistaken for a result code.
Some modules print numbers plainly under UCS2 all the same: the set-up learns
which kind the module is (:func:`addresses_converted`, from ``AT+CSCA?``) and a
plain-printing module's numbers are taken as printed.
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
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
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
from device.sms.charset import Charset, from_wire, to_wire
from device.sms.textbody import looks_like_part

LOGGER = logging.getLogger(__name__)

_RECEIVED = (textmode.MessageStatus.REC_UNREAD, textmode.MessageStatus.REC_READ)
#: TS 23.040 §9.1.2.5: type of number 5, alphanumeric.
_TON_ALPHANUMERIC = 5
#: A number as printed plainly: an optional ``+``, then digits, ``*`` and ``#``.
_PLAIN_NUMBER = re.compile(r"\A\+?[0-9*#]+\Z")
Received = StoredSms | UndecodableSms


@dataclass(frozen=True, slots=True)
class Submit:
    """What ``AT+CMGS`` needs: the parameter after ``=`` and the body after ``> ``;
    ``shown`` is the parameter as logs and errors show it (text mode under UCS2 sends
    ``"003000300030"`` and shows ``"000"``)."""

    parameter: str
    body: str
    shown: str


@dataclass(frozen=True, slots=True)
class MessageMode(abc.ABC):
    """How messages look on the wire in one ``AT+CMGF`` mode."""

    #: The configuration's name for the mode (``agent.mode``).
    name: ClassVar[str]
    #: The ``AT+CMGF`` value.
    cmgf: ClassVar[int]
    #: Whether the mode's addresses are printed in the TE character set and the module's
    #: way of printing them must be learnt at set-up (:func:`addresses_converted`).
    prints_addresses: ClassVar[bool] = False
    #: The TE character set (``AT+CSCS``).
    charset: Charset = Charset.UCS2
    #: Text mode: whether this module converts addresses to the TE character set (True),
    #: prints them plainly (False) or did not show it (None), learnt once at set-up from
    #: ``AT+CSCA?`` (:func:`addresses_converted`). PDU mode does not use it.
    addresses_converted: bool | None = None

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

    def needs_reading(self, message: Received) -> bool:
        """True when a listed ``message`` is better read again on its own (``AT+CMGR``)."""
        return False

    @abc.abstractmethod
    def direct(self, args: str, body: str) -> Received:
        """A ``+CMT:`` indication (header ``args`` and ``body``) as a message with no index."""

    @abc.abstractmethod
    def submit(self, destination: str, text: str) -> Submit:
        """``AT+CMGS`` for GSM-only ``text`` (≤160 septets) to ``destination``."""


@dataclass(frozen=True, slots=True)
class TextMode(MessageMode):
    """``AT+CMGF=1``: headers as text, addresses and bodies in the TE character set.

    Each header field is read on its own (:mod:`device.sms.textmode`): what
    could not be read is in the message's ``notes``. A part of a multipart
    message (``<fo>`` with TP-UDHI, its body hex with the user-data header)
    carries ``concat`` and is reassembled like a PDU-mode part. A listing has
    no ``<fo>``: a listed body that starts with a concatenation header, and any
    listed message that could not be decoded, is read again with ``AT+CMGR``
    (:meth:`needs_reading`), which shows ``<fo>`` and ``<dcs>``.
    """

    name: ClassVar[str] = "text"
    cmgf: ClassVar[int] = 1
    prints_addresses: ClassVar[bool] = True

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
            return self._received(
                storage, index, header, textmode.read_body(body, header, self.charset)
            )
        except textmode.StatusReportRecord:
            return None  # stays in storage, like a stored outgoing message
        except SmsFormatError as exc:
            return UndecodableSms(storage, index, header_line, body, str(exc))

    def listed(self, storage: str, lines: Sequence[str]) -> list[Received]:
        found: list[Received] = []
        for line, body in _records(lines):
            fields = line.partition(":")[2].strip()
            try:
                header = textmode.parse_cmgl_header(fields, self.charset)
            except textmode.StatusReportRecord:
                continue
            except SmsFormatError as exc:
                index = _leading_int(fields)
                if index is None:
                    LOGGER.error("unparseable +CMGL line without an index: %r", line)
                    continue
                found.append(UndecodableSms(storage, index, line, body, str(exc)))
                continue
            if header.index is None or header.stat not in _RECEIVED:
                continue
            if _listed_part(body, header):
                reason = "listed with a user-data header (no <fo> in +CMGL): read with AT+CMGR"
                found.append(UndecodableSms(storage, header.index, line, body, reason))
                continue
            try:
                decoded = textmode.read_body(body, header, self.charset)
            except SmsFormatError as exc:
                found.append(UndecodableSms(storage, header.index, line, body, str(exc)))
                continue
            found.append(self._received(storage, header.index, header, decoded))
        return found

    def needs_reading(self, message: Received) -> bool:
        return isinstance(message, UndecodableSms) and message.index is not None

    def direct(self, args: str, body: str) -> Received:
        try:
            header = textmode.parse_cmt_header(args, self.charset)
            return self._received(
                None, None, header, textmode.read_body(body, header, self.charset)
            )
        except SmsFormatError as exc:
            return UndecodableSms(None, None, f"+CMT: {args}", body, str(exc))

    def submit(self, destination: str, text: str) -> Submit:
        wire = to_wire(destination, self.charset)
        return Submit(f'"{wire}"', to_wire(text, self.charset), f'"{destination}"')

    def _received(
        self,
        storage: str | None,
        index: int | None,
        header: textmode.TextHeader,
        body: textmode.Body,
    ) -> StoredSms:
        """On a module that prints numbers plainly (:attr:`addresses_converted` False) the
        sender is the number as printed: ``003000300030`` is that twelve-digit number,
        not UCS2 hex for ``000``. An alphanumeric sender stays decoded."""
        message = _stored(storage, index, header, body)
        wire = header.address_wire
        alphanumeric = header.tooa is not None and (header.tooa >> 4) & 0x7 == _TON_ALPHANUMERIC
        if self.addresses_converted is False and wire and not alphanumeric:
            return replace(message, sender=wire)
        return message


def _stored(
    storage: str | None, index: int | None, header: textmode.TextHeader, body: textmode.Body
) -> StoredSms:
    """A text-mode record as a received message; a part gets its ``concat``."""
    concat = None
    if body.part is not None:
        # construct is imported only for a multipart message: a text-mode agent stays small.
        from device.sms.pdu import Concat, PduError

        part = body.part
        try:
            concat = Concat(part.reference, part.total, part.sequence, part.wide)
        except PduError as exc:
            raise SmsFormatError(str(exc)) from exc
    return StoredSms(
        storage,
        index,
        header.stat,
        header.address,
        header.timestamp,
        body.text,
        concat,
        notes=header.notes + body.notes,
        sender_type=header.tooa,
        sender_wire=header.address_wire,
    )


def _listed_part(body: str, header: textmode.TextHeader) -> bool:
    """A listed body that is a part of a multipart message rather than text.

    Under ``AT+CSDH=1`` a GSM 7-bit text under UCS2 has ``<length>`` characters,
    four hex digits each, where a part has two per octet: that length rules a
    part out. Otherwise the body must start with a concatenation header.
    """
    text = body.strip()
    if header.length is not None and header.length * 4 == len(text):
        return False
    return looks_like_part(text)


#: Indications a module may print inside a listing, between a header and its body.
_INDICATIONS = ("+CMTI:", "+CDSI:", "+CIEV:", "+CREG:", "+CEREG:", "+CGREG:", "^")


def _records(lines: Sequence[str]) -> list[tuple[str, str]]:
    """The ``(+CMGL header, body)`` pairs of a listing.

    A body is the lines after a header up to the next header, joined by
    ``\n`` (a GSM or IRA text with a line break spans lines); an echo of the
    command and indications printed between a header and its body are left
    out (27.007 §5.1 allows indications only between responses, but modules
    do not always wait).
    """
    records: list[tuple[str, list[str]]] = []
    for line in lines:
        if line.startswith("+CMGL:"):
            records.append((line, []))
        elif records and not _interjection(line):
            records[-1][1].append(line)
    return [(head, "\n".join(body)) for head, body in records]


def _interjection(line: str) -> bool:
    stripped = line.strip()
    upper = stripped.upper()
    return upper.startswith("AT+CMGL") or stripped.startswith(_INDICATIONS) or upper == "RING"


@dataclass(frozen=True, slots=True)
class PduMode(MessageMode):
    """``AT+CMGF=0``: numeric ``<stat>``, TPDUs in hex decoded here (multipart too)."""

    name: ClassVar[str] = "pdu"
    cmgf: ClassVar[int] = 0

    def __post_init__(self) -> None:
        # The PDU codec (construct: ~35 ms to import) is loaded when the mode is chosen,
        # at the agent's start; imported by the first message, it delayed that reply by
        # as much. A text-mode agent never loads it.
        import device.sms.pdu  # noqa: F401

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
        return Submit(str(length), hex_pdu, str(length))


#: The modes by their configuration name (``agent.mode``).
MODES: dict[str, type[MessageMode]] = {mode.name: mode for mode in (TextMode, PduMode)}


def addresses_converted(values: Sequence[str], charset: Charset) -> bool | None:
    """Whether the module converts addresses to ``charset``, from its ``AT+CSCA?`` answer
    (``values``: the text after ``+CSCA:``) read under ``charset``.

    27.005 §3.3.1 makes ``<sca>`` a string like ``<oa>`` (§3.1), converted per ``AT+CSCS``;
    a module that prints one plainly prints the other plainly too. True: the SCA reads
    as ``charset`` writes it (``"002B0034…"`` under UCS2), or plain and converted are
    the same there (IRA); False: it is a plain number that is not ``charset``'s form
    (``"+44…"`` under UCS2). None (not shown): no ``+CSCA`` line, an empty or unquoted
    SCA, one that is neither, or one that reads both ways (``"00310032"``: hex of
    ``12`` or the number 00310032 — an SCA has a ``+`` in practice, so this is rare).
    """
    if not values:
        return None
    field = values[0].rsplit(",", 1)[0].strip() if "," in values[0] else values[0].strip()
    if len(field) < 3 or field[0] != '"' or field[-1] != '"':
        return None
    sca = field[1:-1]
    plain = _PLAIN_NUMBER.match(sca) is not None
    try:
        decoded = from_wire(sca, charset)
        converted = (
            _PLAIN_NUMBER.match(decoded) is not None
            and to_wire(decoded, charset).upper() == sca.upper()
        )
    except SmsFormatError:
        decoded, converted = "", False
    if converted and plain:
        return True if decoded == sca else None
    if converted:
        return True
    return False if plain else None


def mode_for(name: str, charset: Charset = Charset.UCS2) -> MessageMode:
    """The mode called ``name`` (``"text"`` or ``"pdu"``); ValueError otherwise."""
    try:
        return MODES[name](charset)
    except KeyError:
        raise ValueError(f"unknown SMS mode {name!r} (known: {', '.join(MODES)})") from None
