"""What the modem hands the agent: received messages, identity, and the
helpers that turn module output (stored PDUs, ``+CMTI``, ``+CSQ``, storage
names) into them. Reading text or PDU mode output is :mod:`device.modem.modes`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from device.sms import textmode

if TYPE_CHECKING:
    # construct is imported only in PDU mode: a text-mode agent stays small.
    from device.sms.pdu import Concat

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
    #: What the decoder assumed or could not read (a reserved DCS read as GSM 7-bit,
    #: a first octet that disagreed with ``<stat>``, trailing octets ignored …): the
    #: journal keeps them with the row.
    notes: tuple[str, ...] = ()
    #: The sender's type-of-address octet (23.040 §9.1.2.5: 129 unknown, 145
    #: international, 161 national, 208 alphanumeric …); None when the module did not
    #: say (text mode without ``AT+CSDH=1``).
    sender_type: int | None = None
    #: The sender exactly as the module printed it (text mode: in the TE character set,
    #: before decoding); None in PDU mode, whose address octets say it all. The
    #: admission check (:mod:`device.admission`) compares it with the agreed set.
    sender_wire: str | None = None
    #: The user data was shorter than its length said: ``text`` is what was complete.
    #: Such a message is journaled undecodable and never run.
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class UndecodableSms:
    """A message whose header or body could not be decoded (kept for the journal)."""

    storage: str | None
    index: int | None
    raw_header: str
    raw_body: str
    reason: str


def signal_text(rssi: int | None) -> str:
    """Human text for a ``+CSQ`` rssi (0–31, 99 unknown)."""
    if rssi is None or rssi == 99 or not 0 <= rssi <= 31:
        return "unknown"
    return f"{-113 + 2 * rssi} dBm"


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
    """A stored PDU as a received message; None for what is not one (stored outgoing
    messages by their ``<stat>``, status reports), which stays in storage untouched.
    The ``<stat>`` is trusted over the first octet (:func:`device.sms.pdu.decode_received`)."""
    from device.sms.pdu import PduError, decode_received

    if stat not in (textmode.MessageStatus.REC_UNREAD, textmode.MessageStatus.REC_READ):
        return None
    try:
        received = decode_received(pdu_hex)
    except PduError as exc:
        return UndecodableSms(storage, index, header, pdu_hex, str(exc))
    if received is None:
        return None  # a status report: stays in storage
    sms = received.sms
    concat = sms.concat if sms.concat is not None and sms.concat.total > 1 else None
    return StoredSms(
        storage,
        index,
        stat,
        sms.sender or "",
        sms.timestamp,
        sms.text,
        concat,
        notes=received.notes,
        sender_type=_toa(sms.address.ton, sms.address.npi),
        truncated=received.truncated,
    )


def _toa(ton: int, npi: int) -> int:
    """The type-of-address octet (23.040 §9.1.2.5): extension bit, TON, NPI."""
    return 0x80 | (ton & 0x7) << 4 | (npi & 0xF)


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
