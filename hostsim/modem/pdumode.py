"""PDU mode (``AT+CMGF=0``) of the emulated modem: stored messages as PDUs, submitted PDUs decoded.

Everything here returns *wire strings* (hex digits and ASCII) or raises; the
handlers in :mod:`hostsim.modem.handlers.sms` turn failures into result codes.

Rules (27.005 §3.1, §3.4.1, §3.5.1; 23.040 §9.2):

* A PDU line is the SMSC address (TS 24.011, from :attr:`ModemConfig.smsc`)
  followed by the TPDU, in upper-case hex. ``<length>`` counts TPDU octets only.
* A received message (REC UNREAD / REC READ) is an SMS-DELIVER built from its
  sender, text, time stamp and DCS (TP-MMS set, TP-PID 0); a stored MO
  message (STO UNSENT / STO SENT) is an SMS-SUBMIT with TP-MR 0 and the
  relative validity period of ``AT+CSMP``. A part of a concatenated message
  carries the concatenation element (IEI 0x00, or 0x08 for a 16-bit reference)
  and TP-UDHI.
* ``<alpha>`` is always empty (no phonebook lookup), as on Quectel modules.
* A stored message that cannot be one PDU (more than one SMS of text, a sender
  that is neither a number nor 11 GSM characters) raises :class:`PduError`.
* An ``AT+CMGS`` body is the hex PDU (whitespace ignored, any case) and must be
  an SMS-SUBMIT whose TPDU is exactly ``<length>`` octets; anything else is
  :class:`PduError` (``+CMS ERROR: 304`` upstream).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from device.sms import gsm7
from device.sms.pdu import (
    Concat,
    Encoding,
    PduError,
    PduKind,
    SmsPdu,
    Ton,
    data_coding,
    decode_pdu,
    encode_deliver,
    encode_submit,
    relative_period,
    split_for_concat,
)
from hostsim.modem.storage import StoredMessage

#: TP-UDHI in the first octet (TS 23.040 §9.2.3.23).
UDHI = 0x40
#: The longest possible TPDU: an SMS-SUBMIT with a 20-digit address, an
#: absolute or enhanced validity period and 140 octets of user data.
MAX_TPDU = 164


@dataclass(frozen=True, slots=True)
class RenderedPdu:
    """A message as a PDU line: ``hex`` with the SMSC prefix, ``length`` of the TPDU."""

    hex: str
    length: int

    @property
    def tpdu(self) -> bytes:
        """The TPDU octets (the SMSC prefix cut off)."""
        raw = bytes.fromhex(self.hex)
        return raw[1 + raw[0] :]


def encoding_of(dcs: int) -> Encoding:
    """The alphabet a TP-DCS octet selects."""
    return data_coding(dcs & 0xFF).encoding


def _tpdu_length(pdu_hex: str) -> int:
    raw = bytes.fromhex(pdu_hex)
    return len(raw) - 1 - raw[0]


def render(message: StoredMessage, smsc: str, vp: int = 167) -> RenderedPdu:
    """``message`` as the PDU a module prints; PduError when it cannot be one PDU.

    ``smsc`` may be empty ("no SMSC": prefix ``00``); ``vp`` is the relative
    validity period of a stored MO message.
    """
    center = smsc or None
    encoding = encoding_of(message.dcs)
    if message.status.received:
        pdu_hex = encode_deliver(
            message.address,
            message.text,
            timestamp=message.timestamp,
            smsc=center,
            concat=message.concat,
            encoding=encoding,
        )
    else:
        pdu_hex, _ = encode_submit(
            message.address,
            message.text,
            validity=relative_period(vp & 0xFF),
            smsc=center,
            concat=message.concat,
            encoding=encoding,
        )
    return RenderedPdu(pdu_hex, _tpdu_length(pdu_hex))


def concatenated(message: StoredMessage, reference: int, smsc: str) -> list[StoredMessage]:
    """``message`` cut into concatenated parts (TS 23.040 §9.2.3.24.1), each with its header.

    GSM 7-bit for DCS 0, else UCS2; even a short text is one part of one.
    ``reference`` 0–65535 (above 255: the 16-bit element). ValueError (a
    :class:`PduError` when a part cannot be a PDU, e.g. an alphanumeric sender
    over 11 characters) before anything is returned.
    """
    if not 0 <= reference <= 0xFFFF:
        raise ValueError(f"concat reference {reference} is out of range 0-65535")
    encoding = Encoding.GSM7 if message.dcs == 0 else Encoding.UCS2
    parts: list[StoredMessage] = []
    for part, concat in split_for_concat(message.text, reference, encoding=encoding):
        assert isinstance(part, str)  # a str is cut into str parts
        parts.append(replace(message, text=part, concat=concat))
        render(parts[-1], smsc)  # PduError (a ValueError) now, not later
    return parts


def user_data(tpdu: bytes) -> bytes:
    """TP-UD (header included) of an SMS-DELIVER or SMS-SUBMIT built by :func:`render`."""
    mti = tpdu[0] & 0x03
    position = 1 if mti == 0 else 2  # SMS-SUBMIT has TP-MR before the address
    address_digits = tpdu[position]
    position += 2 + (address_digits + 1) // 2  # length, type of address, semi-octets
    position += 2  # TP-PID, TP-DCS
    if mti == 0:
        position += 7  # TP-SCTS
    else:
        position += {0: 0, 1: 7, 2: 1, 3: 7}[(tpdu[0] >> 3) & 0x03]  # TP-VP by TP-VPF
    return tpdu[position + 1 :]  # after TP-UDL


def text_body(message: StoredMessage) -> tuple[str, int] | None:
    """Text-mode body and ``<length>`` of a concatenated part, None for a plain message.

    27.005 §3.1 ``<data>``: with TP-UDHI set the whole TP-UD, header included,
    is printed as hex (two characters per octet); ``<length>`` counts its octets.
    """
    if message.concat is None:
        return None
    ud = user_data(render(message, "").tpdu)
    return ud.hex().upper(), len(ud)


def cmgr_lines(message: StoredMessage, smsc: str, vp: int = 167) -> list[str]:
    """``+CMGR: <stat>,,<length>`` and the PDU line."""
    pdu = render(message, smsc, vp)
    return [f"+CMGR: {message.status.number},,{pdu.length}", pdu.hex]


def cmgl_lines(index: int, message: StoredMessage, smsc: str, vp: int = 167) -> list[str]:
    """``+CMGL: <index>,<stat>,,<length>`` and the PDU line."""
    pdu = render(message, smsc, vp)
    return [f"+CMGL: {index},{message.status.number},,{pdu.length}", pdu.hex]


def cmt_lines(message: StoredMessage, smsc: str) -> list[str]:
    """``+CMT: ,<length>`` and the PDU line of a direct delivery (``AT+CNMI=…,2``)."""
    pdu = render(message, smsc)
    return [f"+CMT: ,{pdu.length}", pdu.hex]


@dataclass(frozen=True, slots=True)
class Submitted:
    """What an ``AT+CMGS`` PDU asks to send."""

    destination: str
    text: str
    dcs: int
    concat: Concat | None


def decode_submit(body: bytes, length: int) -> Submitted:
    """The SMS-SUBMIT typed in the prompt; PduError when malformed or not ``length`` long."""
    try:
        wire = body.decode("ascii")
    except UnicodeDecodeError as exc:
        raise PduError("PDU body is not ASCII hex") from exc
    pdu: SmsPdu = decode_pdu(wire)
    if pdu.kind is not PduKind.SUBMIT:
        raise PduError(f"AT+CMGS needs an SMS-SUBMIT, got an {pdu.kind}")
    if pdu.tpdu_length != length:
        raise PduError(f"<length> {length} but the TPDU has {pdu.tpdu_length} octets")
    destination = pdu.recipient or ""
    if pdu.address.ton is Ton.ALPHANUMERIC:
        raise PduError(f"destination {destination!r} is not a number")
    return Submitted(destination, pdu.text, pdu.dcs, pdu.concat)


def fits_one_sms(text: str) -> bool:
    """True when ``text`` fits one PDU without a header (GSM 7-bit, else UCS-2)."""
    if all(gsm7.is_gsm(ch) for ch in text):
        return gsm7.septet_length(text) <= gsm7.SMS_SEPTETS
    return len(text.encode("utf-16-be", "surrogatepass")) <= 140
