"""The SMS prompt of ``AT+CMGS`` and ``AT+CMGW``: the body being typed, and what it decodes to.

:class:`SmsPrompt` collects the body between the ``> `` prompt and Ctrl-Z /
ESC, bounded at :data:`MAX_BODY` bytes (more marks it overflowed; the send
then fails). :func:`decode_text_body` and :func:`decode_pdu_body` turn a
finished body into what is sent, or raise :class:`CommandFailed` with the
``+CMS ERROR`` code a module answers (305 in text mode, 304 in PDU mode).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from device.errors import SmsFormatError
from device.sms import gsm7
from device.sms.charset import Charset, from_wire
from device.sms.pdu import PduError, PduKind
from hostsim.modem import pdumode
from hostsim.modem.results import CommandFailed
from hostsim.modem.settings import Settings
from hostsim.modem.storage import Status

#: TP-SRR in the first octet of an SMS-SUBMIT (TS 23.040 §9.2.3.5): ask for a status report.
SRR = 0x20

LOGGER = logging.getLogger(__name__)

#: Longest SMS body accepted in the prompt, in bytes (UCS2 hex of 70 chars is 280).
MAX_BODY = 1024


@dataclass(frozen=True, slots=True)
class PendingSubmit:
    """What the ``AT+CMGS`` / ``AT+CMGW`` that opened the prompt asked for."""

    destination: str
    #: ``<length>`` of a PDU-mode prompt (then ``destination`` is empty).
    pdu_length: int | None = None
    #: ``AT+CMGW``: store the message with this ``<stat>`` instead of sending it.
    write: Status | None = None


class SmsPrompt:
    """The body of one ``AT+CMGS``, from the prompt to Ctrl-Z / ESC."""

    def __init__(self) -> None:
        self._submit: PendingSubmit | None = None
        self._body = bytearray()
        self._overflow = False

    @property
    def empty(self) -> bool:
        """Nothing typed since the prompt (a ``\\n`` then is the command line's tail)."""
        return not self._body

    def begin(self, submit: PendingSubmit) -> None:
        """Open the prompt for ``submit``, forgetting any earlier body."""
        self._submit = submit
        self._body.clear()
        self._overflow = False

    def append(self, byte: int) -> None:
        """One byte of the body; beyond :data:`MAX_BODY` it is dropped and the body overflowed."""
        if len(self._body) < MAX_BODY:
            self._body.append(byte)
        else:
            self._overflow = True

    def erase(self) -> None:
        """Backspace: forget the last byte typed (nothing when the body is empty).

        An overflowed body stays overflowed: what was dropped is not brought back.
        """
        if self._body:
            self._body.pop()

    def leave(self) -> tuple[PendingSubmit, bytes, bool]:
        """Close the prompt: what was asked for, the body and whether it overflowed."""
        pending = self._submit if self._submit is not None else PendingSubmit("")
        body = bytes(self._body)
        overflow = self._overflow
        self._submit = None
        self._body.clear()
        self._overflow = False
        return pending, body, overflow


def decode_body(
    pending: PendingSubmit, body: bytes, overflow: bool, settings: Settings
) -> pdumode.Submitted:
    """What a finished prompt sends or writes: the PDU in PDU mode, else the text
    for ``pending.destination`` (no concatenation header; TP-SRR from the
    ``AT+CSMP`` first octet); CommandFailed (304 in PDU mode, 305 in text mode)
    for an overflowed or undecodable body."""
    if pending.pdu_length is not None:
        if overflow:
            raise CommandFailed.cms(304)
        received = pending.write is not None and pending.write.received
        kind = PduKind.DELIVER if received else PduKind.SUBMIT
        return decode_pdu_body(body, pending.pdu_length, kind)
    if overflow:
        raise CommandFailed.cms(305)
    text, dcs = decode_text_body(body, settings)
    srr = bool(settings.csmp.fo & SRR)
    return pdumode.Submitted(pending.destination, text, dcs, None, srr)


def decode_pdu_body(body: bytes, length: int, kind: PduKind = PduKind.SUBMIT) -> pdumode.Submitted:
    """The SMS-SUBMIT (or the SMS-DELIVER ``AT+CMGW`` stores) of a PDU-mode prompt
    body; CMS 304 when it cannot be sent."""
    try:
        return pdumode.decode_submit(body, length, kind=kind)
    except PduError as exc:
        LOGGER.info("SMS PDU refused: %s", exc)
        raise CommandFailed.cms(304) from exc


def decode_text_body(body: bytes, settings: Settings) -> tuple[str, int]:
    """Text and DCS of a text-mode prompt body; CMS 305 when it cannot be sent.

    The body is decoded per ``AT+CSCS``. With ``AT+CSMP`` DCS 8 (UCS2) any
    text of up to 70 UTF-16 units is sent; otherwise every character must be
    in GSM 03.38 and fit 160 septets. (Under ``"GSM"`` an extension-table
    character cannot be typed: its 0x1B escape is ESC, which cancels.)
    """
    charset = settings.cscs
    wire = body.decode("latin-1")
    try:
        if charset is Charset.IRA and any(b > 0x7F for b in body):
            raise SmsFormatError("non-ASCII byte under IRA")
        text = from_wire(wire, charset)
    except SmsFormatError as exc:
        LOGGER.info("SMS body refused: %s", exc)
        raise CommandFailed.cms(305) from exc
    if settings.csmp.dcs == 8:
        if len(text.encode("utf-16-be", errors="surrogatepass")) > 140:
            raise CommandFailed.cms(305)
        return text, 8
    try:
        septets = gsm7.septet_length(text)
    except SmsFormatError as exc:
        LOGGER.info("SMS body refused: %s", exc)
        raise CommandFailed.cms(305) from exc
    if septets > gsm7.SMS_SEPTETS:
        raise CommandFailed.cms(305)
    return text, 0
