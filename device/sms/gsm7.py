"""The GSM 03.38 default alphabet (3GPP TS 23.038 §6.2.1) and its extension table.

Values here are *unpacked* septets: one code 0x00–0x7F per byte. Septet packing
into octets belongs to PDU mode. ``0x1B`` is the escape to the extension table;
it is not a character by itself.

Edge cases:

* An escape followed by a code the extension table does not define decodes as the
  basic-table character of that code (the fallback TS 23.038 prescribes); a
  trailing lone escape decodes as a space.
* Encoding refuses any character outside the repertoire with
  :class:`~device.errors.SmsFormatError`; :func:`sanitize` replaces them visibly.
"""

from __future__ import annotations

from device.errors import SmsFormatError

ESCAPE = 0x1B

#: Basic table, index = septet value. Position 0x1B holds a placeholder (escape).
BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

#: Extension table: septet after ESC → character. 0x0A is the page break (form feed).
EXTENSION: dict[int, str] = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}

_BASIC_CODE: dict[str, int] = {ch: code for code, ch in enumerate(BASIC) if code != ESCAPE}
_EXT_CODE: dict[str, int] = {ch: code for code, ch in EXTENSION.items()}

#: Every character of the repertoire, basic table first.
REPERTOIRE: str = "".join(ch for code, ch in enumerate(BASIC) if code != ESCAPE) + "".join(
    EXTENSION.values()
)

#: Septets available in one single-part SMS.
SMS_SEPTETS = 160


def is_gsm(ch: str) -> bool:
    """True when ``ch`` (one character) is in the basic or the extension table."""
    return ch in _BASIC_CODE or ch in _EXT_CODE


def char_septets(ch: str) -> int:
    """Septets one character takes: 1 (basic), 2 (extension) or 0 (not representable)."""
    if ch in _BASIC_CODE:
        return 1
    if ch in _EXT_CODE:
        return 2
    return 0


def septet_length(text: str) -> int:
    """Septets ``text`` takes in GSM 7-bit; raises SmsFormatError for a character outside it."""
    total = 0
    for ch in text:
        n = char_septets(ch)
        if n == 0:
            raise SmsFormatError(f"character {ch!r} (U+{ord(ch):04X}) is not in GSM 03.38")
        total += n
    return total


def encode(text: str) -> bytes:
    """Unpacked septets for ``text``; extension characters become ESC + code."""
    out = bytearray()
    for ch in text:
        code = _BASIC_CODE.get(ch)
        if code is not None:
            out.append(code)
            continue
        ext = _EXT_CODE.get(ch)
        if ext is None:
            raise SmsFormatError(f"character {ch!r} (U+{ord(ch):04X}) is not in GSM 03.38")
        out.append(ESCAPE)
        out.append(ext)
    return bytes(out)


def decode(data: bytes) -> str:
    """Text for unpacked septets; raises SmsFormatError for a byte above 0x7F."""
    out: list[str] = []
    escaped = False
    for byte in data:
        if byte > 0x7F:
            raise SmsFormatError(f"byte 0x{byte:02X} is not a GSM 7-bit septet")
        if escaped:
            out.append(EXTENSION.get(byte, BASIC[byte] if byte != ESCAPE else " "))
            escaped = False
        elif byte == ESCAPE:
            escaped = True
        else:
            out.append(BASIC[byte])
    if escaped:
        out.append(" ")
    return "".join(out)


def sanitize(text: str, replacement: str = "?") -> tuple[str, int]:
    """Replace every character outside GSM 03.38 by ``replacement``.

    Returns the new text and how many characters were replaced, so that the
    caller can log it: nothing is dropped silently.
    """
    if char_septets(replacement) == 0:
        raise SmsFormatError(f"replacement {replacement!r} is not in GSM 03.38")
    replaced = 0
    out: list[str] = []
    for ch in text:
        if char_septets(ch):
            out.append(ch)
        else:
            out.append(replacement)
            replaced += 1
    return "".join(out), replaced


def fit(text: str, limit: int = SMS_SEPTETS, marker: str = "...") -> tuple[str, bool]:
    """Cut GSM text to at most ``limit`` septets, ending with ``marker`` when cut.

    ``text`` must already be GSM-only (see :func:`sanitize`). An extension
    character is never split from its escape. Returns the text and whether it
    was cut.
    """
    if septet_length(text) <= limit:
        return text, False
    budget = limit - septet_length(marker)
    if budget < 0:
        raise SmsFormatError(f"marker {marker!r} does not fit in {limit} septets")
    used = 0
    cut = 0
    for i, ch in enumerate(text):
        n = char_septets(ch)
        if used + n > budget:
            cut = i
            break
        used += n
    return text[:cut] + marker, True
