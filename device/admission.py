"""Which senders' commands run: ``allowed_senders``, by digits, by type and by wire form.

A string compare is not enough (issue 12, "Only 000, by type as well as by digits"):

* **By type** (3GPP TS 23.040 §9.1.2.5, the type-of-address octet, when the module gave
  it: always in PDU mode, with ``AT+CSDH=1`` in text mode). An alphanumeric address
  (TON 5) is text that anyone sending through an SMS aggregator may choose, ``"000"``
  included: never admitted. TON 7 is reserved. A national (2) or subscriber (4) number
  is a number of the national or local numbering plan, without prefix or escape digits:
  ``000`` so typed is another address than the short code ``000`` and is refused too.
  A short code is typed unknown (0, "organized according to the network dialling
  plan"), network specific (3, "administration/service number specific to the serving
  network") or abbreviated (6). An entry with ``+`` (``+4915…``) needs TON international
  (1); any other entry, one of the short-code types.
* **By wire form** (text mode): the address must have been printed the way the agreed
  TE character set says (``AT+CSCS``, 27.005 §3.1 ``<oa>``: "converted to characters of
  the currently selected TE character set"). Under UCS2 ``000`` is ``003000300030``; a
  plain ``000`` there is refused, and so is anything but the exact form.
* **By the module's way of printing** (text mode): some modules print addresses plainly
  although UCS2 was agreed, and then the phone number ``003000300030`` is printed as
  ``003000300030`` — which reads as UCS2 hex for ``000``. One address cannot tell the two
  apart, so the set-up reads ``AT+CSCA?`` (27.005 §3.3.1: ``<sca>`` is converted like
  ``<oa>``) once: :attr:`~device.modem.modes.MessageMode.addresses_converted`.

  ========= ==========================================================================
  converted today's wire-form rule (``003000300030`` under UCS2 is ``000``)
  plain     the sender is the number as printed (the mode does not decode it): a plain
            ``000`` is 000 and admitted, ``003000300030`` a twelve-digit number, refused
  unknown   the wire-form rule, and a printed form of decimal digits only that decodes
            to another number is refused as ambiguous: it is equally that plain number.
            Fail-closed, because a spoofer chooses the ambiguous form; a hex form with
            A–F in it (``+`` is ``002B``) is never a plain number and is still read
  ========= ==========================================================================

  On a module that does not answer ``AT+CSCA?`` a short code such as ``000`` (hex all
  digits) therefore runs no commands in text mode; the journal says why and PDU mode,
  where addresses are semi-octets (23.040 §9.1.2.5), is unaffected.

A refusal is a reason (for the journal's ``error``), admission is None.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from device.errors import SmsFormatError
from device.modem.messages import StoredSms
from device.sms.charset import Charset, to_wire

LOGGER = logging.getLogger(__name__)

#: TONs (TS 23.040 §9.1.2.5) under which a plain-digit entry (a short code) is admitted.
SHORT_CODE_TONS = frozenset({0, 3, 6})
TON_INTERNATIONAL = 1
_TON_NAMES = {
    0: "unknown",
    1: "international",
    2: "national",
    3: "network specific",
    4: "subscriber",
    5: "alphanumeric",
    6: "abbreviated",
    7: "reserved",
}


def ton_of(type_of_address: int) -> int:
    """Bits 6–4 of a type-of-address octet."""
    return (type_of_address >> 4) & 0x7


def refusal(
    message: StoredSms,
    allowed: Collection[str],
    charset: Charset,
    addresses_converted: bool | None = True,
) -> str | None:
    """Why ``message``'s commands may not run; None when they may.

    ``charset`` is the agreed TE character set, which a text-mode
    :attr:`StoredSms.sender_wire` must match exactly (hex digits in any case) when
    ``addresses_converted``; when it is False the sender must have been printed plainly,
    when None an all-digit printed form that is not the sender is ambiguous (see the
    module docstring). A message without ``sender_wire`` (PDU mode) ignores both.
    """
    sender = message.sender
    if sender not in allowed:
        return f"sender {sender!r} is not allowed"
    if message.sender_type is not None:
        ton = ton_of(message.sender_type)
        wanted = {TON_INTERNATIONAL} if sender.startswith("+") else SHORT_CODE_TONS
        if ton not in wanted:
            return (
                f"sender {sender!r} has address type 0x{message.sender_type:02X} "
                f"({_TON_NAMES[ton]}), not a number of the allowed kind"
            )
    printed = message.sender_wire
    if printed is None:
        return None
    if addresses_converted is False:
        if printed != sender:
            return f"sender {sender!r} was printed as {printed!r}, not plainly as this module does"
        return None
    try:
        expected = to_wire(sender, charset)
    except SmsFormatError:
        expected = None
    if expected is None or not _same_wire(printed, expected, charset):
        return (
            f"sender {sender!r} was printed as {printed!r}, not as the "
            f"{charset.value} character set writes it ({expected!r})"
        )
    if addresses_converted is None and printed.isdigit() and printed != sender:
        return (
            f"sender {sender!r} was printed as {printed!r}, which is also the plain number "
            f"{printed!r}: this module did not show at set-up (AT+CSCA?) how it prints addresses"
        )
    return None


def _same_wire(printed: str, expected: str, charset: Charset) -> bool:
    if charset in (Charset.UCS2, Charset.HEX):
        return printed.upper() == expected.upper()
    return printed == expected


__all__ = ["SHORT_CODE_TONS", "refusal", "ton_of"]
