"""TE character sets of ``AT+CSCS``: how strings look on the serial line.

The AT codec hands lines over as ``str`` decoded with latin-1, so every byte
0x00–0xFF is one character U+0000–U+00FF and nothing is lost. These functions
convert between such *wire strings* and real text.

* ``"GSM"``: bytes are GSM 03.38 septets (``@`` is 0x00, extension characters
  are 0x1B + code).
* ``"IRA"``: 7-bit ASCII (ITU T.50); anything else cannot be represented.
* ``"UCS2"``: four hex digits per UTF-16 code unit, so characters beyond the BMP
  (emoji) are surrogate pairs, eight hex digits.
* ``"HEX"``: two hex digits per byte (used for 8-bit data).
"""

from __future__ import annotations

import enum
import re

from device.errors import SmsFormatError
from device.sms import gsm7


class Charset(enum.Enum):
    """Character sets the agent and hostsim understand, by their AT name."""

    GSM = "GSM"
    IRA = "IRA"
    UCS2 = "UCS2"
    HEX = "HEX"

    @classmethod
    def parse(cls, name: str) -> Charset:
        """The charset for an ``AT+CSCS`` name (quotes and case ignored)."""
        cleaned = name.strip().strip('"').upper()
        try:
            return cls(cleaned)
        except ValueError:
            raise SmsFormatError(f"unsupported TE character set {name!r}") from None


_HEX_RE = re.compile(r"\A(?:[0-9A-Fa-f]{2})*\Z")


def ucs2_encode(text: str) -> str:
    """Upper-case UCS2 hex of ``text`` (UTF-16BE code units)."""
    return text.encode("utf-16-be", errors="surrogatepass").hex().upper()


def ucs2_decode(hex_text: str) -> str:
    """Text from UCS2 hex; raises SmsFormatError for odd lengths, non-hex or lone surrogates."""
    if len(hex_text) % 4 or not _HEX_RE.match(hex_text):
        raise SmsFormatError(f"not UCS2 hex: {hex_text[:40]!r}")
    try:
        return bytes.fromhex(hex_text).decode("utf-16-be")
    except UnicodeDecodeError as exc:
        raise SmsFormatError(f"invalid UTF-16 in UCS2 hex: {exc.reason}") from exc


def hex_decode(hex_text: str) -> bytes:
    """Bytes from hex digits; raises SmsFormatError when it is not hex."""
    if not _HEX_RE.match(hex_text):
        raise SmsFormatError(f"not hex: {hex_text[:40]!r}")
    return bytes.fromhex(hex_text)


def to_wire(text: str, charset: Charset) -> str:
    """The wire string (latin-1 characters) that represents ``text`` in ``charset``."""
    if charset is Charset.UCS2:
        return ucs2_encode(text)
    if charset is Charset.GSM:
        return gsm7.encode(text).decode("latin-1")
    if charset is Charset.IRA:
        for ch in text:
            if ord(ch) > 0x7F:
                raise SmsFormatError(f"character {ch!r} is not in IRA (ASCII)")
        return text
    try:
        return text.encode("latin-1").hex().upper()
    except UnicodeEncodeError as exc:
        raise SmsFormatError(f"character {text[exc.start]!r} does not fit in one byte") from exc


def from_wire(wire: str, charset: Charset) -> str:
    """Text for a wire string in ``charset``; raises SmsFormatError when malformed."""
    if charset is Charset.UCS2:
        return ucs2_decode(wire)
    if charset is Charset.GSM:
        try:
            raw = wire.encode("latin-1")
        except UnicodeEncodeError as exc:
            raise SmsFormatError("GSM wire string holds a non-byte character") from exc
        return gsm7.decode(raw)
    if charset is Charset.IRA:
        return wire
    return hex_decode(wire).decode("latin-1")


_ADDRESS_CHARS = frozenset("+0123456789*#abcABC")


def address_from_wire(wire: str, charset: Charset) -> str:
    """A phone number or short code as printed under ``charset``.

    Under UCS2 most modules print addresses as hex (``"000"`` as
    ``"003000300030"``) but some print them plainly. A string is read as hex
    only if it decodes to address characters; otherwise it is kept as it is, so
    that a plain ``"1234"`` is not taken for U+1234.
    """
    if charset is Charset.UCS2 and wire and len(wire) % 4 == 0 and _HEX_RE.match(wire):
        try:
            decoded = ucs2_decode(wire)
        except SmsFormatError:
            return wire
        if all(ch in _ADDRESS_CHARS for ch in decoded):
            return decoded
        return wire
    if charset is Charset.GSM:
        try:
            return from_wire(wire, charset)
        except SmsFormatError:
            return wire
    return wire
