"""Text-mode (``AT+CMGF=1``) rendering of stored messages: headers and bodies.

Everything here returns *wire strings*: ``str`` whose characters are bytes
U+0000..U+00FF, encoded with latin-1 by the interpreter.

Rules (27.005 §3.1, §4.1, §3.4.1):

* ``<scts>`` is ``yy/MM/dd,hh:mm:ss±zz``, ``zz`` the zone in quarter hours
  (offsets that are not whole quarters are truncated toward zero).
* ``<tooa>``/``<toda>`` is 145 when the address starts with ``+``, 129 for other
  numbers and 208 (TON 5, alphanumeric, 23.040 §9.1.2.5) for a sender name.
* Persona quirks (:class:`~hostsim.modem.settings.Quirk`) print the time stamp
  variants real modules print: a four-digit year, a space separator, a
  one-digit zone or none.
* Addresses follow ``AT+CSCS`` (UCS2: four hex digits per character). The
  ``<stat>`` string is printed plainly in every character set (Quectel style).
* Bodies of GSM 7-bit messages (DCS alphabet 0) follow ``AT+CSCS``: GSM gives
  raw septet bytes (``@`` is 0x00), IRA gives ASCII with any other character as
  ``?``, UCS2 gives hex. Bodies of UCS2 (DCS 8) messages are UCS2 hex and of
  8-bit messages hex, whatever ``AT+CSCS`` says.
* ``<length>`` counts characters for GSM 7-bit bodies and octets for 8-bit and
  UCS2 bodies.
* A part of a concatenated message has TP-UDHI set in ``<fo>`` (68 received,
  ``AT+CSMP`` fo + 64 stored MO) and its body is the whole TP-UD, header
  included, as hex; ``<length>`` counts those octets (27.005 §3.1 ``<data>``).
* A status report has no body line: ``<fo>,<mr>,[<ra>],[<tora>],<scts>,<dt>,<st>``
  after ``+CDS:``, after ``+CMGR: <stat>,`` and after ``+CMGL: <index>,<stat>,``
  (27.005 §3.4.1, §3.4.2, §4.1; ``<fo>`` 6: SMS-STATUS-REPORT, TP-MMS set).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from device.sms import gsm7
from device.sms.charset import Charset, ucs2_encode
from device.sms.pdu import PduError
from device.sms.textmode import format_scts
from hostsim.modem import pdumode
from hostsim.modem.settings import Quirk, Settings
from hostsim.modem.storage import Status, StoredMessage

#: TP-FO of an SMS-DELIVER as modules print it (TP-MMS set: no more messages).
DELIVER_FO = 4


@dataclass(frozen=True, slots=True)
class TextFormat:
    """The settings that shape a text-mode message: ``AT+CSCS``, ``AT+CSDH``, SMSC."""

    charset: Charset
    show_header: bool
    smsc: str
    submit_fo: int = 17
    submit_vp: int = 167
    quirks: frozenset[Quirk] = frozenset()

    @classmethod
    def of(
        cls, settings: Settings, smsc: str, quirks: frozenset[Quirk] = frozenset()
    ) -> TextFormat:
        """The rendering ``settings`` ask for (``AT+CSCS``, ``AT+CSDH``, ``AT+CSMP``) and
        the persona's time stamp quirks."""
        return cls(settings.cscs, settings.csdh, smsc, settings.csmp.fo, settings.csmp.vp, quirks)

    def scts(self, when: datetime) -> str:
        """``<scts>`` of ``when``, quoted, as this persona prints it."""
        text = format_scts(when)
        date, time = text[:8], text[9:17]
        zone = text[17:]
        if Quirk.SCTS_FOUR_DIGIT_YEAR in self.quirks:
            date = f"{when.year:04d}{date[2:]}"
        if Quirk.SCTS_NO_ZONE in self.quirks:
            zone = ""
        elif Quirk.SCTS_ONE_DIGIT_ZONE in self.quirks and zone[1] == "0":
            zone = zone[0] + zone[2]
        separator = " " if Quirk.SCTS_SPACE_SEPARATOR in self.quirks else ","
        return quoted(f"{date}{separator}{time}{zone}")


_ALPHANUMERIC_TOA = 0xD0
_TON_ALPHANUMERIC = 5  # TS 23.040 §9.1.2.5
_NUMBER_CHARS = frozenset("0123456789*#")


def type_of_address(address: str) -> int:
    """145 (international) when ``address`` starts with ``+``, 129 for other numbers,
    208 (alphanumeric) for a name such as ``Twilio``."""
    if address.startswith("+"):
        return 145
    if all(ch in _NUMBER_CHARS for ch in address):
        return 129
    return _ALPHANUMERIC_TOA


def _tooa(message: StoredMessage) -> int:
    """``<tooa>``/``<toda>`` of a stored message: its own type when it has one."""
    if message.address_type is not None:
        return message.address_type
    return type_of_address(message.address)


def quoted(wire: str) -> str:
    """``wire`` between double quotes."""
    return f'"{wire}"'


def string_to_wire(text: str, charset: Charset) -> str:
    """A string parameter (address, alpha) under ``charset``; unrepresentable chars become ``?``."""
    if charset is Charset.UCS2:
        return ucs2_encode(text)
    if charset is Charset.GSM:
        clean, _ = gsm7.sanitize(text)
        return gsm7.encode(clean).decode("latin-1")
    if charset is Charset.HEX:
        return text.encode("latin-1", errors="replace").hex().upper()
    return "".join(ch if ord(ch) < 0x80 else "?" for ch in text)


def dcs_alphabet(dcs: int) -> int:
    """0 GSM 7-bit, 1 8-bit data, 2 UCS2, from a general-coding-group DCS."""
    alphabet = (dcs >> 2) & 0x03
    return 0 if alphabet == 3 else alphabet


def _udh_body(message: StoredMessage) -> tuple[str, int] | None:
    try:
        return pdumode.text_body(message)
    except PduError:
        return None  # not renderable with a header: shown as plain text


def body_to_wire(message: StoredMessage, charset: Charset) -> str:
    """The body line of ``message`` as the modem prints it (see the module rules)."""
    udh_body = _udh_body(message)
    if udh_body is not None:
        return udh_body[0]
    alphabet = dcs_alphabet(message.dcs)
    if alphabet == 2:
        return ucs2_encode(message.text)
    if alphabet == 1:
        return message.text.encode("latin-1", errors="replace").hex().upper()
    return string_to_wire(message.text, charset)


def body_length(message: StoredMessage) -> int:
    """``<length>``: characters (GSM 7-bit) or octets (8-bit, UCS2, a concatenated part)."""
    udh_body = _udh_body(message)
    if udh_body is not None:
        return udh_body[1]
    alphabet = dcs_alphabet(message.dcs)
    if alphabet == 2:
        return len(ucs2_encode(message.text)) // 2
    return len(message.text)


def _address(message: StoredMessage, fmt: TextFormat) -> str:
    if (_tooa(message) >> 4) & 0x7 == _TON_ALPHANUMERIC:
        return quoted(string_to_wire(message.address, fmt.charset))
    return quoted(number_to_wire(message.address, fmt.charset, fmt.quirks))


def number_to_wire(number: str, charset: Charset, quirks: frozenset[Quirk]) -> str:
    """A number under ``charset``, or plainly on a :attr:`Quirk.PLAIN_ADDRESSES` module."""
    return number if Quirk.PLAIN_ADDRESSES in quirks else string_to_wire(number, charset)


def _fo(fo: int, message: StoredMessage) -> int:
    """``<fo>`` with TP-UDHI set for a concatenated part."""
    return fo | pdumode.UDHI if _udh_body(message) is not None else fo


def _deliver_details(message: StoredMessage, fmt: TextFormat) -> str:
    """``,<tooa>,<fo>,<pid>,<dcs>,<sca>,<tosca>,<length>`` of a received message."""
    return (
        f",{_tooa(message)},{_fo(DELIVER_FO, message)},0,{message.dcs},"
        f"{quoted(number_to_wire(fmt.smsc, fmt.charset, fmt.quirks))},{type_of_address(fmt.smsc)},"
        f"{body_length(message)}"
    )


def _submit_details(message: StoredMessage, fmt: TextFormat) -> str:
    """``,<toda>,<fo>,<pid>,<dcs>,[<vp>],<sca>,<tosca>,<length>`` of a stored MO message."""
    return (
        f",{_tooa(message)},{_fo(fmt.submit_fo, message)},0,{message.dcs},"
        f"{fmt.submit_vp},{quoted(number_to_wire(fmt.smsc, fmt.charset, fmt.quirks))},"
        f"{type_of_address(fmt.smsc)},{body_length(message)}"
    )


def report_fields(message: StoredMessage, fmt: TextFormat) -> str:
    """``<fo>,<mr>,<ra>,<tora>,<scts>,<dt>,<st>`` of a status report; ValueError for a
    message that is none."""
    report = message.report
    if report is None:
        raise ValueError("not a status report")
    return (
        f"{pdumode.STATUS_REPORT_FO},{report.reference},{_address(message, fmt)},"
        f"{_tooa(message)},{quoted(format_scts(message.timestamp))},"
        f"{quoted(format_scts(report.discharge))},{report.status}"
    )


def cds_lines(message: StoredMessage, fmt: TextFormat) -> list[str]:
    """``+CDS: …`` of a status report routed to the TE (``AT+CNMI=…,1``): one line."""
    return [f"+CDS: {report_fields(message, fmt)}"]


def cmgr_lines(message: StoredMessage, fmt: TextFormat) -> list[str]:
    """``+CMGR: …`` header and body line for ``message`` (one line for a status report)."""
    if message.report is not None:
        return [f"+CMGR: {quoted(message.status.text)},{report_fields(message, fmt)}"]
    head = f"+CMGR: {quoted(message.status.text)},{_address(message, fmt)},"
    if message.status.received:
        head += f",{fmt.scts(message.timestamp)}"
        if fmt.show_header:
            head += _deliver_details(message, fmt)
    elif fmt.show_header:
        head += _submit_details(message, fmt)
    return [head, body_to_wire(message, fmt.charset)]


def cmgl_lines(index: int, message: StoredMessage, fmt: TextFormat) -> list[str]:
    """``+CMGL: …`` header and body line for one listed message (one line for a
    status report)."""
    if message.report is not None:
        status = quoted(message.status.text)
        return [f"+CMGL: {index},{status},{report_fields(message, fmt)}"]
    scts = fmt.scts(message.timestamp) if message.status.received else ""
    head = f"+CMGL: {index},{quoted(message.status.text)},{_address(message, fmt)},,{scts}"
    if fmt.show_header:
        head += f",{_tooa(message)},{body_length(message)}"
    return [head, body_to_wire(message, fmt.charset)]


def cmt_lines(message: StoredMessage, fmt: TextFormat) -> list[str]:
    """``+CMT: …`` header and body line of a direct delivery (``AT+CNMI=…,2``)."""
    head = f"+CMT: {_address(message, fmt)},,{fmt.scts(message.timestamp)}"
    if fmt.show_header:
        head += _deliver_details(message, fmt)
    return [head, body_to_wire(message, fmt.charset)]


def status_from_cmgl(param: str) -> Status | None:
    """The status filter of ``AT+CMGL=<stat>``: None for ``"ALL"``; ValueError when unknown."""
    if param.strip().upper() == "ALL":
        return None
    return Status.from_text(param)
