"""GSM 7-bit packing: unpacked septets (see :mod:`device.sms.gsm7`) ↔ octets.

3GPP TS 23.038 §6.1.2.1.1: septets are laid end to end from the least
significant bit of the first octet upwards, so that septet *n* starts at bit
``7n`` of the little-endian bit string. TS 23.040 §9.2.3.24 adds *fill bits*:
after a user-data header, zero bits up to the next septet boundary (counted
from the start of the user data), so that the text starts on a septet
boundary. ``fill_bits`` is that count (0–6) and the first septet starts at bit
``fill_bits`` of ``data``.

Edge cases:

* ``count == 0`` unpacks to ``b""`` whatever ``data`` holds; packing ``b""``
  with no fill bits gives ``b""``, and with fill bits gives one zero octet
  (the fill bits still take space).
* When 7 spare bits remain in the last octet they are zero; TS 23.038 allows a
  sender to put a CR there instead, which :func:`unpack` never reads because
  the septet count comes from TP-UDL.
* :func:`unpack` raises :class:`~device.errors.SmsFormatError` when ``data``
  is too short for ``count`` septets after ``fill_bits``; :func:`pack` raises
  it for a value above 0x7F. Neither looks at anything beyond what it needs.
"""

from __future__ import annotations

from device.errors import SmsFormatError

__all__ = ["pack", "packed_length", "unpack"]


def packed_length(count: int, fill_bits: int = 0) -> int:
    """Octets that ``count`` septets take after ``fill_bits`` fill bits."""
    return (fill_bits + 7 * count + 7) // 8


def pack(septets: bytes, fill_bits: int = 0) -> bytes:
    """Pack unpacked septets (one 0x00–0x7F value per byte) after ``fill_bits`` zero bits."""
    if not 0 <= fill_bits <= 6:
        raise SmsFormatError(f"fill bits must be 0-6, not {fill_bits}")
    acc = 0
    shift = fill_bits
    for value in septets:
        if value > 0x7F:
            raise SmsFormatError(f"0x{value:02X} is not a septet")
        acc |= value << shift
        shift += 7
    return acc.to_bytes(packed_length(len(septets), fill_bits), "little")


def unpack(data: bytes, count: int, fill_bits: int = 0) -> bytes:
    """The first ``count`` septets of ``data``, skipping ``fill_bits`` leading bits."""
    if not 0 <= fill_bits <= 6:
        raise SmsFormatError(f"fill bits must be 0-6, not {fill_bits}")
    if count < 0:
        raise SmsFormatError(f"septet count must not be negative, not {count}")
    needed = packed_length(count, fill_bits)
    if len(data) < needed:
        raise SmsFormatError(
            f"{count} septets after {fill_bits} fill bits need {needed} octets, got {len(data)}"
        )
    acc = int.from_bytes(data[:needed], "little") >> fill_bits
    out = bytearray(count)
    for i in range(count):
        out[i] = acc & 0x7F
        acc >>= 7
    return bytes(out)
