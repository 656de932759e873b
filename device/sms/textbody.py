"""Text-mode message bodies (``<data>`` of 27.005 §3.1), user-data headers included.

What the body line holds depends on ``<dcs>`` and ``<fo>`` of the header
(27.005 §3.1 ``<data>``; the Telit LE910C AT reference, ``+CMGR``, says the
same): GSM 7-bit text is converted to the TE character set; 8-bit and UCS2
data, and *any* user data whose ``<fo>`` has TP-UDHI (0x40) set, is printed as
hex of the octets, the user-data header included. A part of a concatenated
message is therefore hex in every character set: :func:`read_body` takes the
header apart (TS 23.040 §9.2.3.24, the concatenation elements 0x00 and 0x08)
and gives the part's place as :class:`PartOf`. Re-exported by
:mod:`device.sms.textmode`.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from device.errors import SmsFormatError
from device.sms import gsm7, septets
from device.sms.charset import Charset, from_wire, hex_decode, ucs2_decode

if TYPE_CHECKING:
    from device.sms.textmode import TextHeader

_UDHI = 0x40
_IEI_CONCAT_8 = 0x00
_IEI_CONCAT_16 = 0x08
_CR = 0x0D


@dataclass(frozen=True, slots=True)
class PartOf:
    """The concatenation element of a part: reference, total, sequence (23.040 §9.2.3.24.1)."""

    reference: int
    total: int
    sequence: int
    wide: bool


@dataclass(frozen=True, slots=True)
class Body:
    """A decoded body: its text, its place in a multipart message, what was assumed."""

    text: str
    part: PartOf | None = None
    notes: tuple[str, ...] = ()


class _Alphabet(enum.Enum):
    GSM7 = "GSM 7-bit"
    EIGHT_BIT = "8-bit"
    UCS2 = "UCS2"


def _alphabet(dcs: int) -> _Alphabet:
    """The alphabet a TP-DCS value announces (3GPP TS 23.038 §4).

    Reserved values and the reserved alphabet 11 read as GSM 7-bit, as 23.038
    tells a receiver to do. Compressed text (general group, bit 5) raises.
    """
    group = dcs >> 4
    if group <= 0x7:  # 00xx / 01xx: general data coding (01xx: automatic deletion)
        if dcs & 0x20:
            raise SmsFormatError(f"compressed user data (DCS 0x{dcs:02X}) is not supported")
        bits = (dcs >> 2) & 0x3
        if bits == 1:
            return _Alphabet.EIGHT_BIT
        if bits == 2:
            return _Alphabet.UCS2
        return _Alphabet.GSM7
    if group == 0xE:  # message waiting indication, store, UCS2
        return _Alphabet.UCS2
    if group == 0xF:  # data coding / message class
        return _Alphabet.EIGHT_BIT if dcs & 0x04 else _Alphabet.GSM7
    return _Alphabet.GSM7  # 1000-1011 reserved, 1100/1101 message waiting (GSM 7-bit)


def decode_body(wire: str, header: TextHeader, charset: Charset) -> str:
    """The text of a body line: :func:`read_body` without the part and the notes."""
    return read_body(wire, header, charset).text


def read_body(wire: str, header: TextHeader, charset: Charset) -> Body:
    """A message body line (several lines joined by the caller as received).

    * ``fo`` with TP-UDHI (0x40): the body is hex of the whole user data,
      header included: see :func:`user_data`.
    * ``dcs`` unknown (no ``AT+CSDH=1``, or ``+CMGL``): the body is in the TE
      character set.
    * GSM 7-bit: TE character set (``charset.from_wire``).
    * UCS2: UCS2 hex whatever ``AT+CSCS`` says.
    * 8-bit: hex; each octet becomes the character U+0000–U+00FF of the same
      value (latin-1), so ``result.encode("latin-1")`` gives the bytes back.

    Surrounding blanks of a hex body are ignored; a text body is taken as is.
    An empty body is the empty string. SmsFormatError for what cannot be read.
    """
    if header.fo is not None and header.fo & _UDHI:
        return user_data(wire, header.dcs)
    if header.dcs is None:
        return Body(_from_wire(wire, charset))
    alphabet = _alphabet(header.dcs)
    if alphabet is _Alphabet.GSM7:
        return Body(_from_wire(wire, charset))
    hex_text = wire.strip(" \t\r\n")
    if alphabet is _Alphabet.UCS2:
        try:
            return Body(ucs2_decode(hex_text))
        except SmsFormatError as exc:
            raise SmsFormatError(f"UCS2 body (DCS 0x{header.dcs:02X}): {exc}") from exc
    try:
        return Body(hex_decode(hex_text).decode("latin-1"))
    except SmsFormatError as exc:
        raise SmsFormatError(f"8-bit body (DCS 0x{header.dcs:02X}): {exc}") from exc


def _from_wire(wire: str, charset: Charset) -> str:
    try:
        return from_wire(wire, charset)
    except SmsFormatError as exc:
        raise SmsFormatError(f"body: {exc}") from exc


def user_data(wire: str, dcs: int | None) -> Body:
    """The hex TP-UD of a body whose ``<fo>`` has TP-UDHI: header, then text.

    The text after the header is GSM 7-bit septets (packed from the first
    septet boundary after the header, 23.040 §9.2.3.24), UCS2 or 8-bit, as
    ``dcs`` says; an unknown ``dcs`` reads as GSM 7-bit, with a note. The
    septet count is not taken from ``<length>`` (modules count it
    differently: with or without the header, in octets or characters) but
    from the octets: when 7 bits are left over they are padding, and a
    trailing ``@`` or CR there is dropped (23.038 §6.1.2.3.1). A
    concatenation element whose sequence is 0 or above its total is ignored
    (23.040 §9.2.3.24.1); other elements are skipped. SmsFormatError when the
    hex or the header is malformed.
    """
    octets = hex_decode(wire.strip(" \t\r\n"))
    if not octets:
        raise SmsFormatError("TP-UDHI set but the body is empty")
    header_octets = octets[0] + 1
    if header_octets > len(octets):
        raise SmsFormatError(f"UDH of {header_octets} octets in {len(octets)} octets of user data")
    part = _part(octets[1:header_octets])
    notes: list[str] = []
    alphabet = _Alphabet.GSM7
    if dcs is None:
        notes.append("<dcs> unknown: user data read as GSM 7-bit")
    else:
        alphabet = _alphabet(dcs)
    body = octets[header_octets:]
    if alphabet is _Alphabet.UCS2:
        if len(body) % 2:
            raise SmsFormatError(f"UCS2 user data of odd length {len(body)}")
        text = body.decode("utf-16-be", errors="replace")
    elif alphabet is _Alphabet.EIGHT_BIT:
        text = body.decode("latin-1")
    else:
        text = _septets(octets, header_octets)
    return Body(text, part, tuple(notes))


def _septets(octets: bytes, header_octets: int) -> str:
    header_septets = (header_octets * 8 + 6) // 7
    fill = header_septets * 7 - header_octets * 8
    total = len(octets) * 8 // 7
    codes = septets.unpack(octets[header_octets:], max(total - header_septets, 0), fill)
    if len(octets) * 8 % 7 == 0 and codes and codes[-1] in (0x00, _CR):
        codes = codes[:-1]  # seven spare bits: padding, not a character
    return gsm7.decode(codes)


def _part(header: bytes) -> PartOf | None:
    """The concatenation element of a user-data header (its elements after the UDHL)."""
    found: PartOf | None = None
    i = 0
    while i < len(header):
        if i + 2 > len(header):
            raise SmsFormatError("user-data header ends inside an element")
        iei, size = header[i], header[i + 1]
        data = header[i + 2 : i + 2 + size]
        if len(data) != size:
            raise SmsFormatError(f"UDH element 0x{iei:02X} runs past the header")
        i += 2 + size
        if iei == _IEI_CONCAT_8 and size == 3:
            reference, total, sequence = data
            wide = False
        elif iei == _IEI_CONCAT_16 and size == 4:
            reference, total, sequence = int.from_bytes(data[:2], "big"), data[2], data[3]
            wide = True
        else:
            continue
        if 1 <= sequence <= total:
            found = PartOf(reference, total, sequence, wide) if total > 1 else None
    return found


_CONCAT_START = re.compile(r"\A(?:050003[0-9A-F]{6}|060804[0-9A-F]{8})", re.IGNORECASE)


def looks_like_part(wire: str) -> bool:
    """True for a hex body that starts with a concatenation header (a listing shows no ``<fo>``).

    Only the two layouts modules write for a part (23.040 §9.2.3.24.1/.8:
    ``05 00 03 rr tt ss``, ``06 08 04 rrrr tt ss``) with ``1 <= ss <= tt``
    and ``tt >= 2`` count: a UCS2 text starting U+0500 U+03xx is that
    improbable.
    """
    text = wire.strip(" \t\r\n")
    if not _CONCAT_START.match(text) or len(text) % 2:
        return False
    try:
        return user_data(text, None).part is not None
    except SmsFormatError:
        return False
