"""PDU mode (``AT+CMGF=0``): SMS-DELIVER, SMS-SUBMIT and SMS-STATUS-REPORT TPDUs.

Layouts from 3GPP TS 23.040 §9.2.2 (TPDUs), §9.1.2 (address fields and
semi-octets), §9.2.3 (parameters) and TS 23.038 §4 (TP-DCS), as ``construct``
definitions. A PDU, as a module prints it after ``+CMGR:``/``+CMGL:``, is the
SMSC address (TS 24.011 RP address: a length octet counting the type-of-address
octet and the semi-octets, ``00`` for "no SMSC") followed by the TPDU.

The TPDU type comes from TP-MTI (bits 1–0 of the first octet), read as a
module's message storage sees it: ``00`` SMS-DELIVER (received), ``01``
SMS-SUBMIT (stored outgoing), ``10`` SMS-STATUS-REPORT (received); ``11`` is
reserved and raises. (In the MS→SC direction ``10`` would be an SMS-COMMAND;
modules never hand one to the TE.)

Documented choices:

* **Reserved DCS.** Coding groups 1000–1011 and the reserved alphabet ``11`` of
  the general group decode as GSM 7-bit, as TS 23.038 §4 tells a receiving
  entity to do; :attr:`DataCoding.reserved` says so. **Compressed** user data
  (general group, bit 5; TS 23.042) raises :class:`PduError`: nothing here can
  decompress it, and guessing would be worse.
* **GSM 7-bit** ``data`` is the unpacked septets (one GSM 03.38 code per byte,
  escapes included): after a UDH the packed octets do not start on an octet
  boundary, so they are no meaningful unit. An unknown extension code reads as
  its basic-table character (TS 23.038 §6.2.1.1, via :mod:`device.sms.gsm7`).
* **UCS-2** is read as UTF-16-BE, so surrogate pairs (emoji) decode. An odd
  octet count raises; an unpaired surrogate (a sender that split a pair across
  parts) becomes U+FFFD in ``text`` — ``data`` keeps the octets.
* **8-bit** ``text`` maps each octet to U+0000–U+00FF (latin-1), as
  :func:`device.sms.textmode.decode_body` does; ``data`` is the octets.
* **Concatenation** (IEI 0x00, 0x08): an element with total or sequence 0, or
  sequence above total, is ignored (TS 23.040 §9.2.3.24.1); a wrong length
  raises; when repeated, the last one counts. Any other IEI is skipped by its
  length and kept in ``udh``.
* **Strictness**: truncated fields, octets after the user data, a TP-UDL above
  160 septets / 140 octets, an address above 20 semi-octets, non-BCD time
  stamps and impossible dates raise :class:`PduError` in :func:`decode_pdu`.
* **What modules store** is read by :func:`decode_received`, which the header's
  ``<stat>`` has told that the message was received: octets after the user
  data are ignored (modules pad the SIM record with ``FF``; gammu's
  ``ATGEN_DecodePDUMessage`` ignores them too), a user data shorter than TP-UDL
  keeps the characters that are complete and says it is truncated, a first
  octet saying SMS-SUBMIT (or the reserved TP-MTI 3) is read as an SMS-DELIVER
  anyway, and each of these, and a reserved DCS value, becomes a note.
* Time stamps are timezone-aware in the sender's zone (TS 23.040 §9.2.3.11:
  bit 3 of the last octet is the sign, the rest two swapped BCD digits of
  quarter hours); years 00–99 are 2000–2099.
"""

from __future__ import annotations

import bisect
import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from construct import (
    Adapter,
    BitsInteger,
    BitStruct,
    Bytes,
    ConstructError,
    Flag,
    GreedyBytes,
    GreedyRange,
    If,
    Int8ub,
    Int16ub,
    Optional,
    Padding,
    Pass,
    Prefixed,
    RepeatUntil,
    Struct,
    Switch,
    Terminated,
    ValidationError,
    this,
)

from device.errors import SmsFormatError
from device.sms import gsm7, septets
from device.sms.textmode import format_scts, parse_scts

__all__ = [
    "Address",
    "Concat",
    "DataCoding",
    "Encoding",
    "MessageWaiting",
    "PduError",
    "PduKind",
    "ReceivedPdu",
    "SmsPdu",
    "Ton",
    "UdhElement",
    "data_coding",
    "decode_pdu",
    "decode_received",
    "encode_deliver",
    "encode_submit",
    "relative_period",
    "relative_validity",
    "split_for_concat",
]


class PduError(SmsFormatError):
    """A PDU that is malformed or truncated, or a message that cannot be encoded as one."""


class PduKind(enum.StrEnum):
    """The TPDU type (TP-MTI as seen by the MS)."""

    DELIVER = "deliver"
    SUBMIT = "submit"
    STATUS_REPORT = "status-report"


class Encoding(enum.StrEnum):
    """The alphabet of the user data (TS 23.038 §4)."""

    GSM7 = "gsm7"
    EIGHT_BIT = "8bit"
    UCS2 = "ucs2"


class Ton(enum.IntEnum):
    """Type of number, bits 6–4 of the type-of-address octet (TS 23.040 §9.1.2.5)."""

    UNKNOWN = 0
    INTERNATIONAL = 1
    NATIONAL = 2
    NETWORK_SPECIFIC = 3
    SUBSCRIBER = 4
    ALPHANUMERIC = 5
    ABBREVIATED = 6
    RESERVED = 7


#: Numbering plan "ISDN/telephone" (E.164), and "unknown" (used with alphanumeric).
NPI_ISDN = 1
NPI_UNKNOWN = 0

_MAX_ADDRESS_SEMI_OCTETS = 20
_MAX_ALPHA_SEPTETS = 11
_MAX_SEPTETS = 160
_MAX_OCTETS = 140


# --- value types ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Address:
    """An address field: digits (``0-9*#abc``) or alphanumeric text, and its type.

    ``number`` never carries the ``+``; ``str(address)`` adds it for
    :attr:`Ton.INTERNATIONAL`. ``npi`` is the raw 4-bit numbering plan.
    """

    number: str
    ton: Ton
    npi: int

    def __str__(self) -> str:
        return f"+{self.number}" if self.ton is Ton.INTERNATIONAL else self.number

    @classmethod
    def parse(cls, text: str) -> Address:
        """``+digits`` → international/ISDN (0x91); digits → unknown/ISDN (0x81), digits being
        ``0-9*#`` (``a``-``c`` only by building an Address directly);
        anything else → alphanumeric (0xD0, at most 11 GSM septets)."""
        if text.startswith("+") and _is_digits(text[1:]):
            return cls(text[1:], Ton.INTERNATIONAL, NPI_ISDN)
        if _is_digits(text):
            return cls(text, Ton.UNKNOWN, NPI_ISDN)
        if not text:
            raise PduError("empty address")
        return cls(text, Ton.ALPHANUMERIC, NPI_UNKNOWN)


@dataclass(frozen=True, slots=True)
class Concat:
    """One part of a concatenated message (TS 23.040 §9.2.3.24.1 / .8).

    ``wide`` selects the 16-bit reference element (IEI 0x08); a reference above
    255 needs it. ``1 <= sequence <= total <= 255`` or PduError.
    """

    reference: int
    total: int
    sequence: int
    wide: bool = False

    def __post_init__(self) -> None:
        limit = 0xFFFF if self.wide else 0xFF
        if not 0 <= self.reference <= limit:
            raise PduError(f"concat reference {self.reference} is out of range 0-{limit}")
        if not 1 <= self.sequence <= self.total <= 255:
            raise PduError(f"concat part {self.sequence} of {self.total} is impossible")


@dataclass(frozen=True, slots=True)
class UdhElement:
    """One information element of a user-data header, undecoded."""

    iei: int
    data: bytes


@dataclass(frozen=True, slots=True)
class MessageWaiting:
    """Message waiting indication of DCS groups 1100/1101/1110 (TS 23.038 §4).

    ``kind``: 0 voicemail, 1 fax, 2 electronic mail, 3 other. ``store`` is
    False for group 1100 ("discard message").
    """

    active: bool
    kind: int
    store: bool


@dataclass(frozen=True, slots=True)
class DataCoding:
    """A decoded TP-DCS octet; ``value`` is the octet itself."""

    value: int
    encoding: Encoding
    message_class: int | None
    compressed: bool
    auto_delete: bool
    reserved: bool
    waiting: MessageWaiting | None


@dataclass(frozen=True, slots=True)
class SmsPdu:
    """A decoded PDU. ``address`` is TP-OA (DELIVER), TP-DA (SUBMIT) or TP-RA (STATUS-REPORT).

    ``timestamp`` is TP-SCTS (None for SUBMIT); ``reference`` is TP-MR (None
    for DELIVER); ``validity`` is a relative period, an absolute time or None
    (SUBMIT only); ``discharge_time``/``status`` are TP-DT/TP-ST of a status
    report. ``status_report`` is TP-SRI/TP-SRR/TP-SRQ by kind. ``tpdu_length``
    is the octet count ``+CMGR`` prints (without the SMSC part). A status report
    without user data has ``text == ""``.
    """

    kind: PduKind
    smsc: str | None
    address: Address
    text: str
    encoding: Encoding
    data: bytes
    coding: DataCoding
    pid: int
    timestamp: datetime | None
    concat: Concat | None
    udh: tuple[UdhElement, ...]
    reference: int | None
    validity: timedelta | datetime | None
    discharge_time: datetime | None
    status: int | None
    status_report: bool
    tpdu_length: int

    @property
    def sender(self) -> str | None:
        """The originating address (``+`` for international) of an SMS-DELIVER, else None."""
        return str(self.address) if self.kind is PduKind.DELIVER else None

    @property
    def recipient(self) -> str | None:
        """TP-DA of an SMS-SUBMIT or TP-RA of a status report, else None."""
        return None if self.kind is PduKind.DELIVER else str(self.address)

    @property
    def destination(self) -> str | None:
        """Alias of :attr:`recipient`."""
        return self.recipient

    @property
    def dcs(self) -> int:
        """The raw TP-DCS octet."""
        return self.coding.value

    @property
    def message_class(self) -> int | None:
        """Message class 0–3 when the DCS gives one."""
        return self.coding.message_class


# --- TP-DCS -----------------------------------------------------------------------------------

_ALPHABETS = (Encoding.GSM7, Encoding.EIGHT_BIT, Encoding.UCS2)


def data_coding(value: int) -> DataCoding:
    """Decode a TP-DCS octet (TS 23.038 §4); never raises for 0–255."""
    group = value >> 4
    if group < 0x8:  # 00xx general data coding, 01xx the same marked for automatic deletion
        alphabet = (value >> 2) & 0x3
        return DataCoding(
            value=value,
            encoding=_ALPHABETS[alphabet] if alphabet < 3 else Encoding.GSM7,
            message_class=value & 0x3 if value & 0x10 else None,
            compressed=bool(value & 0x20),
            auto_delete=bool(value & 0x40),
            reserved=alphabet == 3,
            waiting=None,
        )
    if group in (0xC, 0xD, 0xE):  # message waiting: discard / store (GSM 7-bit) / store (UCS2)
        return DataCoding(
            value=value,
            encoding=Encoding.UCS2 if group == 0xE else Encoding.GSM7,
            message_class=None,
            compressed=False,
            auto_delete=False,
            reserved=False,
            waiting=MessageWaiting(active=bool(value & 0x08), kind=value & 0x3, store=group != 0xC),
        )
    if group == 0xF:  # data coding / message class
        return DataCoding(
            value=value,
            encoding=Encoding.EIGHT_BIT if value & 0x04 else Encoding.GSM7,
            message_class=value & 0x3,
            compressed=False,
            auto_delete=False,
            reserved=False,
            waiting=None,
        )
    # 1000-1011: reserved coding groups, read as GSM 7-bit (TS 23.038 §4).
    return DataCoding(value, Encoding.GSM7, None, False, False, True, None)


_DCS_FOR: dict[Encoding, int] = {Encoding.GSM7: 0x00, Encoding.EIGHT_BIT: 0x04, Encoding.UCS2: 0x08}


# --- semi-octets and time stamps --------------------------------------------------------------

_SEMI_DIGITS = "0123456789*#abc"
_DIGIT_RE = re.compile(r"\A[0-9*#]+\Z")
_SEMI_RE = re.compile(r"\A[0-9*#abc]*\Z")


def _is_digits(text: str) -> bool:
    """Digits a phone number is written with (``a``-``c`` only via :class:`Address` itself)."""
    return bool(_DIGIT_RE.match(text))


def _semi_decode(value: bytes, count: int | None) -> str:
    """Swapped semi-octets; ``count`` digits, or all with a trailing F filler dropped."""
    nibbles: list[int] = []
    for octet in value:
        nibbles.append(octet & 0x0F)
        nibbles.append(octet >> 4)
    if count is None:
        if nibbles and nibbles[-1] == 0xF:
            nibbles.pop()
    else:
        del nibbles[count:]
    if 0xF in nibbles:
        raise ValidationError("filler semi-octet F inside an address")
    return "".join(_SEMI_DIGITS[n] for n in nibbles)


def _semi_encode(digits: str) -> bytes:
    nibbles = [_SEMI_DIGITS.index(ch) for ch in digits]
    if len(nibbles) % 2:
        nibbles.append(0xF)
    return bytes(nibbles[i] | nibbles[i + 1] << 4 for i in range(0, len(nibbles), 2))


def _bcd(octet: int) -> int:
    """A swapped BCD octet: the low nibble is the tens digit."""
    tens, units = octet & 0x0F, octet >> 4
    if tens > 9 or units > 9:
        raise ValidationError(f"0x{octet:02X} is not a swapped BCD octet")
    return tens * 10 + units


def _to_bcd(number: int) -> int:
    return number // 10 | (number % 10) << 4


def _scts_decode(raw: bytes) -> datetime:
    yy, mo, dd, hh, mi, ss = (_bcd(octet) for octet in raw[:6])
    tz = raw[6]
    if tz >> 4 > 9:
        raise ValidationError(f"time zone octet 0x{tz:02X} is not BCD")
    quarters = (tz & 0x07) * 10 + (tz >> 4)
    sign = "-" if tz & 0x08 else "+"
    try:
        return parse_scts(
            f"{yy:02d}/{mo:02d}/{dd:02d},{hh:02d}:{mi:02d}:{ss:02d}{sign}{quarters:02d}"
        )
    except SmsFormatError as exc:
        raise ValidationError(str(exc)) from exc


def _scts_encode(when: datetime) -> bytes:
    text = format_scts(when)  # yy/MM/dd,hh:mm:ss±zz, validated
    fields = [int(text[i : i + 2]) for i in (0, 3, 6, 9, 12, 15)]
    quarters = int(text[18:20])
    tz = _to_bcd(quarters) | (0x08 if text[17] == "-" else 0)
    return bytes([*(_to_bcd(f) for f in fields), tz])


# --- validity period --------------------------------------------------------------------------


def relative_period(vp: int) -> timedelta:
    """The period of a relative TP-VP octet (TS 23.040 §9.2.3.12.1), ``vp`` 0-255."""
    if vp <= 143:
        return timedelta(minutes=5 * (vp + 1))
    if vp <= 167:
        return timedelta(hours=12, minutes=30 * (vp - 143))
    if vp <= 196:
        return timedelta(days=vp - 166)
    return timedelta(weeks=vp - 192)


_RELATIVE_PERIODS = tuple(relative_period(vp) for vp in range(256))


def relative_validity(period: timedelta) -> int:
    """The TP-VP octet (relative format) of the shortest period at least ``period``.

    Periods above 63 weeks become 63 weeks (0xFF); zero or negative raises.
    """
    if period <= timedelta(0):
        raise PduError(f"validity period {period} must be positive")
    return min(bisect.bisect_left(_RELATIVE_PERIODS, period), 255)


def _enhanced_validity(raw: bytes) -> timedelta | None:
    """TP-VP enhanced format (TS 23.040 §9.2.3.12.3); None for "no period" or reserved."""
    index = 0
    while raw[index] & 0x80 and index < 5:  # extension: more functionality octets follow
        index += 1
    fmt = raw[0] & 0x07
    value = raw[index + 1 :]
    if fmt == 1:
        return relative_period(value[0])
    if fmt == 2:
        return timedelta(seconds=value[0])
    if fmt == 3 and len(value) >= 3:
        return timedelta(hours=_bcd(value[0]), minutes=_bcd(value[1]), seconds=_bcd(value[2]))
    return None


# --- construct layouts ------------------------------------------------------------------------


class _AddressAdapter(Adapter):  # type: ignore[misc]
    """TP-OA/TP-DA/TP-RA (TS 23.040 §9.1.2.5) ↔ :class:`Address`."""

    def _decode(self, obj: Any, context: Any, path: Any) -> Address:
        length = int(obj.length)
        if length > _MAX_ADDRESS_SEMI_OCTETS:
            raise ValidationError(f"address of {length} semi-octets (max 20)", path=path)
        ton = Ton(obj.toa.ton)
        if ton is Ton.ALPHANUMERIC:
            number = gsm7.decode(septets.unpack(obj.value, length * 4 // 7))
        else:
            number = _semi_decode(obj.value, length)
        return Address(number, ton, int(obj.toa.npi))

    def _encode(self, obj: Address, context: Any, path: Any) -> dict[str, Any]:
        if obj.ton is Ton.ALPHANUMERIC:
            codes = gsm7.encode(obj.number)
            if len(codes) > _MAX_ALPHA_SEPTETS:
                raise ValidationError(f"alphanumeric address {obj.number!r} over 11 septets")
            value = septets.pack(codes)
            length = (7 * len(codes) + 3) // 4
        else:
            if not _SEMI_RE.match(obj.number) or len(obj.number) > _MAX_ADDRESS_SEMI_OCTETS:
                raise ValidationError(f"invalid address digits {obj.number!r}")
            value = _semi_encode(obj.number)
            length = len(obj.number)
        toa = {"ext": True, "ton": int(obj.ton), "npi": obj.npi}
        return {"length": length, "toa": toa, "value": value}


class _SmscAdapter(Adapter):  # type: ignore[misc]
    """The SMSC prefix (length counts the TOA octet; 0 = none) ↔ ``str | None``."""

    def _decode(self, obj: Any, context: Any, path: Any) -> str | None:
        if obj.body is None:
            return None
        value: bytes = obj.body.value
        ton = Ton(obj.body.toa.ton)
        if ton is Ton.ALPHANUMERIC:
            return gsm7.decode(septets.unpack(value, len(value) * 8 // 7))
        return str(Address(_semi_decode(value, None), ton, int(obj.body.toa.npi)))

    def _encode(self, obj: str | None, context: Any, path: Any) -> dict[str, Any]:
        if obj is None:
            return {"length": 0, "body": None}
        address = Address.parse(obj)
        if address.ton is Ton.ALPHANUMERIC or len(address.number) > _MAX_ADDRESS_SEMI_OCTETS:
            raise ValidationError(f"SMSC {obj!r} is not a phone number")
        value = _semi_encode(address.number)
        toa = {"ext": True, "ton": int(address.ton), "npi": address.npi}
        return {"length": len(value) + 1, "body": {"toa": toa, "value": value}}


class _TimestampAdapter(Adapter):  # type: ignore[misc]
    """TP-SCTS / TP-DT / absolute TP-VP (7 swapped-BCD octets) ↔ aware datetime."""

    def _decode(self, obj: bytes, context: Any, path: Any) -> datetime:
        return _scts_decode(obj)

    def _encode(self, obj: datetime, context: Any, path: Any) -> bytes:
        return _scts_encode(obj)


class _RelativeValidityAdapter(Adapter):  # type: ignore[misc]
    """Relative TP-VP octet ↔ timedelta (encoding rounds up to the next representable period)."""

    def _decode(self, obj: int, context: Any, path: Any) -> timedelta:
        return _RELATIVE_PERIODS[obj]

    def _encode(self, obj: timedelta, context: Any, path: Any) -> int:
        return relative_validity(obj)


class _DcsAdapter(Adapter):  # type: ignore[misc]
    """TP-DCS octet ↔ :class:`DataCoding`."""

    def _decode(self, obj: int, context: Any, path: Any) -> DataCoding:
        return data_coding(obj)

    def _encode(self, obj: DataCoding, context: Any, path: Any) -> int:
        return obj.value


_TOA = BitStruct("ext" / Flag, "ton" / BitsInteger(3), "npi" / BitsInteger(4))

ADDRESS = _AddressAdapter(
    Struct("length" / Int8ub, "toa" / _TOA, "value" / Bytes((this.length + 1) // 2))
)

SMSC = _SmscAdapter(
    Struct(
        "length" / Int8ub,
        "body" / If(this.length > 0, Struct("toa" / _TOA, "value" / Bytes(this._.length - 1))),
    )
)

TIMESTAMP = _TimestampAdapter(Bytes(7))
DCS = _DcsAdapter(Int8ub)

DELIVER_FIRST_OCTET = BitStruct(
    "reply_path" / Flag,
    "udhi" / Flag,
    "sri" / Flag,
    Padding(1),
    "lp" / Flag,
    "no_more" / Flag,  # TP-MMS: 1 = no more messages waiting
    "mti" / BitsInteger(2),
)

SUBMIT_FIRST_OCTET = BitStruct(
    "reply_path" / Flag,
    "udhi" / Flag,
    "srr" / Flag,
    "vpf" / BitsInteger(2),
    "rd" / Flag,
    "mti" / BitsInteger(2),
)

STATUS_REPORT_FIRST_OCTET = BitStruct(
    Padding(1),
    "udhi" / Flag,
    "srq" / Flag,
    Padding(1),
    "lp" / Flag,
    "no_more" / Flag,
    "mti" / BitsInteger(2),
)

PARAMETER_INDICATOR = BitStruct("ext" / Flag, Padding(4), "udl" / Flag, "dcs" / Flag, "pid" / Flag)


def _ud_octets(context: Any) -> int:
    """Octets of TP-UD: packed septets for GSM 7-bit (uncompressed), else TP-UDL octets."""
    coding: DataCoding | None = context.dcs
    udl = int(context.udl)
    if coding is None or (coding.encoding is Encoding.GSM7 and not coding.compressed):
        return septets.packed_length(udl)
    return udl


DELIVER = Struct(
    "fo" / DELIVER_FIRST_OCTET,
    "oa" / ADDRESS,
    "pid" / Int8ub,
    "dcs" / DCS,
    "scts" / TIMESTAMP,
    "udl" / Int8ub,
    "ud" / Bytes(_ud_octets),
    Terminated,
)

#: TP-VPF: 0 none, 1 enhanced (7 octets), 2 relative (1 octet), 3 absolute (7 octets).
VALIDITY = Switch(
    this.fo.vpf,
    {0: Pass, 1: Bytes(7), 2: _RelativeValidityAdapter(Int8ub), 3: TIMESTAMP},
)

SUBMIT = Struct(
    "fo" / SUBMIT_FIRST_OCTET,
    "mr" / Int8ub,
    "da" / ADDRESS,
    "pid" / Int8ub,
    "dcs" / DCS,
    "vp" / VALIDITY,
    "udl" / Int8ub,
    "ud" / Bytes(_ud_octets),
    Terminated,
)


def _pi(name: str) -> Any:
    return lambda ctx: ctx.pi is not None and bool(ctx.pi[name])


STATUS_REPORT = Struct(
    "fo" / STATUS_REPORT_FIRST_OCTET,
    "mr" / Int8ub,
    "ra" / ADDRESS,
    "scts" / TIMESTAMP,
    "dt" / TIMESTAMP,
    "st" / Int8ub,
    "pi" / Optional(PARAMETER_INDICATOR),
    "pi_more" / If(_pi("ext"), RepeatUntil(lambda octet, _lst, _ctx: not octet & 0x80, Int8ub)),
    "pid" / If(_pi("pid"), Int8ub),
    "dcs" / If(_pi("dcs"), DCS),
    "udl" / If(_pi("udl"), Int8ub),
    "ud" / If(lambda ctx: ctx.udl is not None, Bytes(_ud_octets)),
    Terminated,
)

#: The PDU as printed by ``+CMGR``/``+CMGL``: SMSC prefix, then the TPDU.
FRAME = Struct("smsc" / SMSC, "tpdu" / GreedyBytes)

INFORMATION_ELEMENT = Struct("iei" / Int8ub, "data" / Prefixed(Int8ub, GreedyBytes))

#: TP-UDH: UDHL, then elements that must fill exactly UDHL octets.
USER_DATA_HEADER = Prefixed(
    Int8ub, Struct("elements" / GreedyRange(INFORMATION_ELEMENT), Terminated)
)

CONCAT_8 = Struct("reference" / Int8ub, "total" / Int8ub, "sequence" / Int8ub, Terminated)
CONCAT_16 = Struct("reference" / Int16ub, "total" / Int8ub, "sequence" / Int8ub, Terminated)

_IEI_CONCAT_8 = 0x00
_IEI_CONCAT_16 = 0x08

_TPDU_BY_MTI: dict[int, tuple[PduKind, Any]] = {
    0: (PduKind.DELIVER, DELIVER),
    1: (PduKind.SUBMIT, SUBMIT),
    2: (PduKind.STATUS_REPORT, STATUS_REPORT),
}


# --- decoding ---------------------------------------------------------------------------------


def _pdu_bytes(pdu: str | bytes) -> bytes:
    if isinstance(pdu, bytes | bytearray | memoryview):
        return bytes(pdu)
    try:
        return bytes.fromhex("".join(pdu.split()))
    except ValueError as exc:
        raise PduError(f"PDU is not hex: {pdu[:40]!r}") from exc


def _concat_from(element: UdhElement) -> Concat | None:
    wide = element.iei == _IEI_CONCAT_16
    try:
        parsed = (CONCAT_16 if wide else CONCAT_8).parse(element.data)
    except ConstructError as exc:
        raise PduError(f"concatenation element 0x{element.iei:02X} of wrong length") from exc
    reference, total, sequence = int(parsed.reference), int(parsed.total), int(parsed.sequence)
    if not 1 <= sequence <= total:
        return None  # TS 23.040 §9.2.3.24.1: ignore the element
    return Concat(reference, total, sequence, wide)


@dataclass(frozen=True, slots=True)
class _UserData:
    udh: tuple[UdhElement, ...]
    concat: Concat | None
    data: bytes
    text: str


def _user_data(udhi: bool, coding: DataCoding, udl: int, ud: bytes) -> _UserData:
    if coding.compressed:
        raise PduError(f"compressed user data (DCS 0x{coding.value:02X}) is not supported")
    gsm = coding.encoding is Encoding.GSM7
    if udl > (_MAX_SEPTETS if gsm else _MAX_OCTETS):
        raise PduError(f"TP-UDL {udl} is over the limit for {coding.encoding}")
    udh: tuple[UdhElement, ...] = ()
    concat: Concat | None = None
    header_octets = 0
    if udhi:
        if not ud:
            raise PduError("TP-UDHI set but the user data is empty")
        header_octets = ud[0] + 1
        if header_octets > len(ud):
            raise PduError(f"UDH of {header_octets} octets in {len(ud)} octets of user data")
        parsed = USER_DATA_HEADER.parse(ud[:header_octets])
        udh = tuple(UdhElement(int(e.iei), bytes(e.data)) for e in parsed.elements)
        for element in udh:
            if element.iei in (_IEI_CONCAT_8, _IEI_CONCAT_16):
                concat = _concat_from(element)
    body = ud[header_octets:]
    if gsm:
        header_septets = (header_octets * 8 + 6) // 7
        fill = header_septets * 7 - header_octets * 8
        count = udl - header_septets
        if count < 0:
            raise PduError(f"TP-UDL {udl} septets is shorter than the UDH")
        codes = septets.unpack(body, count, fill)
        return _UserData(udh, concat, codes, gsm7.decode(codes))
    if udl < header_octets:
        raise PduError(f"TP-UDL {udl} octets is shorter than the UDH")
    if coding.encoding is Encoding.UCS2:
        if len(body) % 2:
            raise PduError(f"UCS-2 user data of odd length {len(body)}")
        return _UserData(udh, concat, body, body.decode("utf-16-be", errors="replace"))
    return _UserData(udh, concat, body, body.decode("latin-1"))


def decode_pdu(pdu: str | bytes) -> SmsPdu:
    """Decode a PDU with its SMSC prefix, as ``+CMGR``/``+CMGL`` print it in PDU mode.

    ``pdu`` is the hex text (any case; whitespace anywhere is ignored) or the
    raw octets (``bytes`` are never read as hex text). Raises :class:`PduError`
    for anything malformed, truncated or followed by extra octets, and for
    compressed user data.
    """
    raw = _pdu_bytes(pdu)
    try:
        frame = FRAME.parse(raw)
        tpdu: bytes = frame.tpdu
        if not tpdu:
            raise PduError("PDU ends after the SMSC address")
        mti = tpdu[0] & 0x3
        if mti not in _TPDU_BY_MTI:
            raise PduError("reserved TP-MTI 3")
        kind, layout = _TPDU_BY_MTI[mti]
        parsed = layout.parse(tpdu)
        return _to_pdu(kind, frame.smsc, parsed, len(tpdu))
    except PduError:
        raise
    except (ConstructError, SmsFormatError) as exc:
        raise PduError(f"malformed PDU: {exc}") from exc


#: An SMS-DELIVER up to TP-UDL; the user data and whatever follows it are taken as they come.
DELIVER_HEAD = Struct(
    "fo" / DELIVER_FIRST_OCTET,
    "oa" / ADDRESS,
    "pid" / Int8ub,
    "dcs" / DCS,
    "scts" / TIMESTAMP,
    "udl" / Int8ub,
    "ud" / GreedyBytes,
)

_MTI_NAMES = {1: "SMS-SUBMIT", 3: "the reserved TP-MTI 3"}


@dataclass(frozen=True, slots=True)
class ReceivedPdu:
    """A received message as :func:`decode_received` read it: ``notes`` say what was
    assumed or ignored; ``truncated``: the user data was shorter than TP-UDL said and
    ``sms.text`` holds only the characters that were complete."""

    sms: SmsPdu
    notes: tuple[str, ...]
    truncated: bool


def decode_received(pdu: str | bytes) -> ReceivedPdu | None:
    """Decode a stored PDU that the ``+CMGR``/``+CMGL`` header's ``<stat>`` says was
    received (REC UNREAD / REC READ), as leniently as real modules need.

    * The header's ``<stat>`` is trusted over TP-MTI: a first octet that says
      SMS-SUBMIT (1) or the reserved 3 is read as an SMS-DELIVER, with a note (and
      raises when it does not read as one: never as a SUBMIT, whose destination
      would pass for a sender). An
      SMS-STATUS-REPORT (2) is a received message too (``+CDSI``), but no SMS:
      None, and it stays in storage.
    * Octets after the user data (``FF`` padding of the SIM record, 3GPP TS 31.102
      §4.2.25 / TS 51.011 §10.5.3; more than TP-UDL needs) are ignored, with a note.
    * A user data shorter than TP-UDL: the complete septets / octets (UCS-2: whole
      code units) are kept, ``truncated`` is set and a note says how much was there.
    * A reserved DCS value is read as TS 23.038 §4 tells a receiving entity (GSM
      7-bit), and a reserved bit is ignored; a note says which.

    Raises :class:`PduError` for what still cannot be read (a header cut short, a
    truncated UDH, compressed user data, a bad address or time stamp).
    """
    raw = _pdu_bytes(pdu)
    try:
        frame = FRAME.parse(raw)
        tpdu: bytes = frame.tpdu
        if not tpdu:
            raise PduError("PDU ends after the SMSC address")
        mti = tpdu[0] & 0x3
        if mti == 2:
            return None
        notes: list[str] = []
        if mti in _MTI_NAMES:
            notes.append(
                f"first octet 0x{tpdu[0]:02X} says {_MTI_NAMES[mti]}, but <stat> says "
                "received: read as an SMS-DELIVER"
            )
        try:
            parsed = DELIVER_HEAD.parse(tpdu)
        except (ConstructError, SmsFormatError) as exc:
            if mti not in _MTI_NAMES:
                raise
            # Never read as the SMS-SUBMIT it says it is: its destination would pass
            # for a sender (our own reply to 000, stored with a wrong <stat>).
            raise PduError(
                f"first octet 0x{tpdu[0]:02X} says {_MTI_NAMES[mti]}, <stat> says received, "
                f"and it does not read as an SMS-DELIVER: {exc}"
            ) from exc
        coding: DataCoding = parsed.dcs
        notes.extend(_coding_notes(coding))
        ud = bytes(parsed.ud)
        needed = _ud_octets(parsed)
        truncated = len(ud) < needed
        if len(ud) > needed:
            extra = ud[needed:]
            padding = " (FF padding)" if set(extra) == {0xFF} else ""
            notes.append(f"{len(extra)} octet(s) after the user data ignored{padding}")
            ud = ud[:needed]
        elif truncated:
            notes.append(f"user data truncated: {len(ud)} of {needed} octets")
            parsed.udl = _complete_units(coding, ud, bool(parsed.fo.udhi))
            if coding.encoding is not Encoding.GSM7:
                ud = ud[: parsed.udl]
        parsed.ud = ud
        sms = _to_pdu(PduKind.DELIVER, frame.smsc, parsed, len(tpdu))
        return ReceivedPdu(sms, tuple(notes), truncated)
    except PduError:
        raise
    except (ConstructError, SmsFormatError) as exc:
        raise PduError(f"malformed PDU: {exc}") from exc


def _complete_units(coding: DataCoding, ud: bytes, udhi: bool) -> int:
    """The TP-UDL that the octets ``ud`` really hold: whole septets (GSM 7-bit), the
    header and whole UCS-2 code units after it, or the octets."""
    if coding.encoding is Encoding.GSM7:
        return len(ud) * 8 // 7
    if coding.encoding is Encoding.UCS2:
        header = ud[0] + 1 if udhi and ud else 0
        return len(ud) - max(len(ud) - header, 0) % 2
    return len(ud)


def _coding_notes(coding: DataCoding) -> tuple[str, ...]:
    """What was assumed of a reserved TP-DCS (TS 23.038 §4)."""
    value, group = coding.value, coding.value >> 4
    if coding.reserved:
        return (f"reserved DCS 0x{value:02X} read as the GSM 7-bit alphabet (TS 23.038 §4)",)
    if group == 0xF and value & 0x08:
        return (f"reserved bit 3 of DCS 0x{value:02X} ignored (TS 23.038 §4, group 1111)",)
    if group in (0xC, 0xD, 0xE) and value & 0x04:
        return (f"reserved bit 2 of DCS 0x{value:02X} ignored (TS 23.038 §4, message waiting)",)
    return ()


def _to_pdu(kind: PduKind, smsc: str | None, parsed: Any, tpdu_length: int) -> SmsPdu:
    fo = parsed.fo
    coding: DataCoding = parsed.dcs if parsed.dcs is not None else data_coding(0)
    if kind is PduKind.STATUS_REPORT and parsed.udl is None:
        user = _UserData((), None, b"", "")
    else:
        user = _user_data(bool(fo.udhi), coding, int(parsed.udl), bytes(parsed.ud))
    validity: timedelta | datetime | None = None
    if kind is PduKind.SUBMIT:
        vp = parsed.vp
        validity = _enhanced_validity(vp) if isinstance(vp, bytes) else vp
    status_flag = {PduKind.DELIVER: "sri", PduKind.SUBMIT: "srr", PduKind.STATUS_REPORT: "srq"}
    address: Address = {
        PduKind.DELIVER: parsed.get("oa"),
        PduKind.SUBMIT: parsed.get("da"),
        PduKind.STATUS_REPORT: parsed.get("ra"),
    }[kind]
    return SmsPdu(
        kind=kind,
        smsc=smsc,
        address=address,
        text=user.text,
        encoding=coding.encoding,
        data=user.data,
        coding=coding,
        pid=int(parsed.pid) if parsed.pid is not None else 0,
        timestamp=parsed.get("scts"),
        concat=user.concat,
        udh=user.udh,
        reference=None if kind is PduKind.DELIVER else int(parsed.mr),
        validity=validity,
        discharge_time=parsed.get("dt"),
        status=int(parsed.st) if kind is PduKind.STATUS_REPORT else None,
        status_report=bool(fo[status_flag[kind]]),
        tpdu_length=tpdu_length,
    )


# --- encoding ---------------------------------------------------------------------------------


def _choose(text: str | bytes, encoding: str | None) -> Encoding:
    if isinstance(text, bytes):
        if encoding not in (None, Encoding.EIGHT_BIT):
            raise PduError(f"bytes can only be sent as 8-bit, not {encoding}")
        return Encoding.EIGHT_BIT
    if encoding is None:
        return Encoding.GSM7 if all(gsm7.is_gsm(ch) for ch in text) else Encoding.UCS2
    try:
        return Encoding(encoding)
    except ValueError as exc:
        raise PduError(f"unknown encoding {encoding!r}") from exc


def _concat_udh(concat: Concat | None) -> bytes:
    if concat is None:
        return b""
    wide = concat.wide
    fields = {"reference": concat.reference, "total": concat.total, "sequence": concat.sequence}
    element = {
        "iei": _IEI_CONCAT_16 if wide else _IEI_CONCAT_8,
        "data": (CONCAT_16 if wide else CONCAT_8).build(fields),
    }
    data: bytes = USER_DATA_HEADER.build({"elements": [element]})
    return data


def _header_septets(header_octets: int) -> int:
    return (header_octets * 8 + 6) // 7


def _encode_user_data(
    text: str | bytes, encoding: Encoding, concat: Concat | None
) -> tuple[int, bytes]:
    """TP-UDL and TP-UD (UDH included) for ``text``; raises PduError when it does not fit."""
    udh = _concat_udh(concat)
    if encoding is Encoding.GSM7:
        if isinstance(text, bytes):  # _choose never picks GSM 7-bit for bytes
            raise PduError("bytes cannot be sent as GSM 7-bit")
        try:
            codes = gsm7.encode(text)
        except SmsFormatError as exc:
            raise PduError(str(exc)) from exc
        header_septets = _header_septets(len(udh))
        udl = header_septets + len(codes)
        if udl > _MAX_SEPTETS:
            raise PduError(f"{udl} septets do not fit one SMS (160); use split_for_concat")
        fill = header_septets * 7 - len(udh) * 8
        return udl, udh + septets.pack(codes, fill)
    if isinstance(text, bytes):
        body = text
    else:
        try:
            body = text.encode("utf-16-be" if encoding is Encoding.UCS2 else "latin-1")
        except UnicodeEncodeError as exc:
            raise PduError(f"text cannot be encoded as {encoding}: {exc}") from exc
    udl = len(udh) + len(body)
    if udl > _MAX_OCTETS:
        raise PduError(f"{udl} octets do not fit one SMS (140); use split_for_concat")
    return udl, udh + body


def _build(layout: Any, value: Any) -> bytes:
    try:
        data: bytes = layout.build(value)
    except (ConstructError, SmsFormatError) as exc:
        raise PduError(f"cannot encode: {exc}") from exc
    return data


def encode_submit(
    destination: str,
    text: str | bytes,
    *,
    reference: int = 0,
    validity: timedelta | None = timedelta(days=1),
    smsc: str | None = None,
    concat: Concat | None = None,
    encoding: str | None = None,
    status_report: bool = False,
) -> tuple[str, int]:
    """An SMS-SUBMIT PDU for ``AT+CMGS``: ``(hex, tpdu_length)``.

    The hex starts with the SMSC prefix (``00``: use the SIM's SMSC);
    ``tpdu_length`` excludes it and is what ``AT+CMGS=<length>`` wants.
    ``encoding`` None picks GSM 7-bit when every character is in GSM 03.38,
    else UCS-2; ``bytes`` text is always 8-bit. ``validity`` is sent in the
    relative format, rounded up to the next representable period (5 minutes …
    63 weeks). ``destination`` must be a number (``+`` for international).
    Raises PduError when the text does not fit one PDU.
    """
    address = Address.parse(destination)
    if address.ton is Ton.ALPHANUMERIC:
        raise PduError(f"destination {destination!r} is not a phone number")
    if not 0 <= reference <= 255:
        raise PduError(f"TP-MR {reference} is out of range 0-255")
    chosen = _choose(text, encoding)
    udl, ud = _encode_user_data(text, chosen, concat)
    tpdu = _build(
        SUBMIT,
        {
            "fo": {
                "reply_path": False,
                "udhi": concat is not None,
                "srr": status_report,
                "vpf": 0 if validity is None else 2,
                "rd": False,
                "mti": 1,
            },
            "mr": reference,
            "da": address,
            "pid": 0,
            "dcs": data_coding(_DCS_FOR[chosen]),
            "vp": validity,
            "udl": udl,
            "ud": ud,
        },
    )
    prefix = _build(SMSC, smsc)
    return (prefix + tpdu).hex().upper(), len(tpdu)


def encode_deliver(
    sender: str,
    text: str | bytes,
    *,
    timestamp: datetime,
    smsc: str | None = None,
    concat: Concat | None = None,
    encoding: str | None = None,
    sender_type: int | None = None,
) -> str:
    """An SMS-DELIVER PDU with its SMSC prefix, as a module would print it (hex).

    ``sender``: ``+digits`` (international), digits (unknown type) or up to 11
    GSM characters (alphanumeric). ``sender_type`` overrides that choice with a
    type-of-address octet (TS 23.040 §9.1.2.5; e.g. ``0xD0`` sends the digits
    ``"000"`` as alphanumeric text, ``0xA1`` as a national number); a ``+`` is
    then dropped. ``timestamp`` must be aware, 2000–2099, with a whole number of
    quarter hours as offset. Encoding as for :func:`encode_submit`. TP-MMS says
    "no more messages".
    """
    chosen = _choose(text, encoding)
    udl, ud = _encode_user_data(text, chosen, concat)
    tpdu = _build(
        DELIVER,
        {
            "fo": {
                "reply_path": False,
                "udhi": concat is not None,
                "sri": False,
                "lp": False,
                "no_more": True,
                "mti": 0,
            },
            "oa": _typed_address(sender, sender_type),
            "pid": 0,
            "dcs": data_coding(_DCS_FOR[chosen]),
            "scts": timestamp,
            "udl": udl,
            "ud": ud,
        },
    )
    return (_build(SMSC, smsc) + tpdu).hex().upper()


def _typed_address(text: str, type_of_address: int | None) -> Address:
    """``text`` as an address: typed by :meth:`Address.parse`, or by the given octet."""
    if type_of_address is None:
        return Address.parse(text)
    if not 0x80 <= type_of_address <= 0xFF:
        raise PduError(f"type-of-address 0x{type_of_address:02X} lacks the extension bit")
    ton = Ton((type_of_address >> 4) & 0x7)
    return Address(text.removeprefix("+") if ton is not Ton.ALPHANUMERIC else text, ton,
                   type_of_address & 0xF)  # fmt: skip


def split_for_concat(
    text: str | bytes, reference: int, *, encoding: str | None = None
) -> list[tuple[str | bytes, Concat]]:
    """Cut ``text`` into parts that each fit one PDU with a concatenation header.

    With an 8-bit reference (``reference`` <= 255, 6-octet UDH) a part holds
    153 septets (GSM 7-bit), 67 UTF-16 code units (UCS-2) or 134 octets
    (8-bit); a larger ``reference`` selects the 16-bit reference element
    (7-octet UDH: 152 septets, 66 code units, 133 octets). A character is never
    cut: an extension character keeps its escape, an emoji its surrogate pair.
    Always returns at least one part (total 1 for a short text: the caller may
    then send it without a header); more than 255 parts raises PduError.
    """
    chosen = _choose(text, encoding)
    wide = reference > 0xFF
    header_octets = 7 if wide else 6
    if isinstance(text, bytes):
        size = _MAX_OCTETS - header_octets
        chunks: list[str | bytes] = [text[i : i + size] for i in range(0, len(text), size)]
    else:
        cost: Callable[[str], int]
        if chosen is Encoding.GSM7:
            budget = _MAX_SEPTETS - _header_septets(header_octets)
            cost = gsm7.char_septets
        elif chosen is Encoding.UCS2:
            budget = (_MAX_OCTETS - header_octets) // 2
            cost = _utf16_units
        else:
            budget = _MAX_OCTETS - header_octets
            cost = _one
        chunks = []
        start = used = 0
        for i, ch in enumerate(text):
            n = cost(ch)
            if n == 0:
                raise PduError(f"character {ch!r} (U+{ord(ch):04X}) is not in GSM 03.38")
            if used + n > budget:
                chunks.append(text[start:i])
                start, used = i, 0
            used += n
        chunks.append(text[start:])
    if not chunks:
        chunks = [text[:0]]
    if len(chunks) > 255:
        raise PduError(f"text needs {len(chunks)} parts (max 255)")
    total = len(chunks)
    return [(chunk, Concat(reference, total, i, wide)) for i, chunk in enumerate(chunks, 1)]


def _utf16_units(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1


def _one(_ch: str) -> int:
    return 1
