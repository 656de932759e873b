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
* A status report (:attr:`StoredMessage.report`) is an SMS-STATUS-REPORT:
  TP-MMS set, TP-SRQ clear, no parameter indicator (no user data).
* ``<alpha>`` is always empty (no phonebook lookup), as on Quectel modules.
* A stored message that cannot be one PDU (more than one SMS of text, a sender
  that is neither a number nor 11 GSM characters) raises :class:`PduError`.
* An ``AT+CMGS`` body is the hex PDU (whitespace ignored, any case) and must be
  an SMS-SUBMIT whose TPDU is exactly ``<length>`` octets; anything else is
  :class:`PduError` (``+CMS ERROR: 304`` upstream). An ``AT+CMGW`` body is
  an SMS-SUBMIT for a stored MO status (2, 3) and an SMS-DELIVER for a
  received one (0, 1), as 27.005 §3.5.3 asks.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from datetime import datetime

from construct import ConstructError

from device.errors import SmsFormatError
from device.sms import gsm7
from device.sms.pdu import (
    SMSC,
    STATUS_REPORT,
    Address,
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


@functools.lru_cache(maxsize=256)
def render(message: StoredMessage, smsc: str, vp: int = 167) -> RenderedPdu:
    """``message`` as the PDU a module prints; PduError when it cannot be one PDU.

    ``smsc`` may be empty ("no SMSC": prefix ``00``); ``vp`` is the relative
    validity period of a stored MO message. Kept for the last 256 (message, smsc,
    vp), all immutable: a module keeps a PDU as it came and only prints it, so a
    received message is rendered when it is stored (PDU mode, ``MessageRouting``) and
    ``AT+CMGR`` answers without building it (~0.3 ms of hostsim's think time).
    """
    center = smsc or None
    if message.report is not None:
        pdu_hex = _status_report(message, center)
        return RenderedPdu(pdu_hex, _tpdu_length(pdu_hex))
    encoding = encoding_of(message.dcs)
    if message.status.received:
        pdu_hex = encode_deliver(
            message.address,
            message.text,
            timestamp=message.timestamp,
            smsc=center,
            concat=message.concat,
            encoding=encoding,
            sender_type=message.address_type,
        )
    else:
        pdu_hex, _ = encode_submit(
            message.address,
            message.text,
            validity=relative_period(vp & 0xFF),
            smsc=center,
            concat=message.concat,
            encoding=encoding,
            status_report=message.srr,
        )
    return RenderedPdu(pdu_hex, _tpdu_length(pdu_hex))


#: TP-FO of the status reports the emulated network sends: SMS-STATUS-REPORT, TP-MMS set.
STATUS_REPORT_FO = 0x06


def _status_report(message: StoredMessage, smsc: str | None) -> str:
    """The SMS-STATUS-REPORT PDU (hex, SMSC prefix first) of a stored status report."""
    report = message.report
    if report is None:
        raise PduError("not a status report")
    value = {
        "fo": {"udhi": False, "srq": False, "lp": False, "no_more": True, "mti": 2},
        "mr": report.reference,
        "ra": Address.parse(message.address),
        "scts": message.timestamp,
        "dt": report.discharge,
        "st": report.status,
        "pi": None,
        "pi_more": None,
        "pid": None,
        "dcs": None,
        "udl": None,
        "ud": None,
    }
    try:
        raw: bytes = SMSC.build(smsc) + STATUS_REPORT.build(value)
    except (ConstructError, SmsFormatError) as exc:
        raise PduError(f"cannot encode the status report: {exc}") from exc
    return raw.hex().upper()


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


def _printed(pdu: RenderedPdu, message: StoredMessage) -> str:
    """The PDU line as printed: with ``FF`` padding after it, or cut short, per
    :attr:`StoredMessage.printed_extra`."""
    extra = message.printed_extra
    if extra >= 0:
        return pdu.hex + "FF" * extra
    return pdu.hex[: 2 * extra]


def cmgr_lines(message: StoredMessage, smsc: str, vp: int = 167) -> list[str]:
    """``+CMGR: <stat>,,<length>`` and the PDU line."""
    pdu = render(message, smsc, vp)
    return [f"+CMGR: {message.status.number},,{pdu.length}", _printed(pdu, message)]


def cmgl_lines(index: int, message: StoredMessage, smsc: str, vp: int = 167) -> list[str]:
    """``+CMGL: <index>,<stat>,,<length>`` and the PDU line."""
    pdu = render(message, smsc, vp)
    return [f"+CMGL: {index},{message.status.number},,{pdu.length}", _printed(pdu, message)]


def cds_lines(message: StoredMessage, smsc: str) -> list[str]:
    """``+CDS: <length>`` and the PDU line of a status report routed to the TE (``ds`` 1)."""
    pdu = render(message, smsc)
    return [f"+CDS: {pdu.length}", pdu.hex]


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
    #: TP-SRR: the sender asks for a status report.
    srr: bool = False
    #: TP-SCTS of an SMS-DELIVER written with ``AT+CMGW`` (None otherwise).
    timestamp: datetime | None = None


def decode_submit(body: bytes, length: int, *, kind: PduKind = PduKind.SUBMIT) -> Submitted:
    """The PDU typed in the prompt; PduError when malformed, not ``length`` long or
    not of ``kind`` (an SMS-SUBMIT, or an SMS-DELIVER written to storage)."""
    try:
        wire = body.decode("ascii")
    except UnicodeDecodeError as exc:
        raise PduError("PDU body is not ASCII hex") from exc
    pdu: SmsPdu = decode_pdu(wire)
    if pdu.kind is not kind:
        raise PduError(f"expected an {kind}, got an {pdu.kind}")
    if pdu.tpdu_length != length:
        raise PduError(f"<length> {length} but the TPDU has {pdu.tpdu_length} octets")
    address = str(pdu.address)
    if kind is PduKind.SUBMIT and pdu.address.ton is Ton.ALPHANUMERIC:
        raise PduError(f"destination {address!r} is not a number")
    return Submitted(address, pdu.text, pdu.dcs, pdu.concat, pdu.status_report, pdu.timestamp)


def fits_one_sms(text: str) -> bool:
    """True when ``text`` fits one PDU without a header (GSM 7-bit, else UCS-2)."""
    if all(gsm7.is_gsm(ch) for ch in text):
        return gsm7.septet_length(text) <= gsm7.SMS_SEPTETS
    return len(text.encode("utf-16-be", "surrogatepass")) <= 140
