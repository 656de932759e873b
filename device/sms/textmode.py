"""Text-mode (``AT+CMGF=1``) message records: ``+CMGR``, ``+CMGL`` and ``+CMT`` headers and bodies.

3GPP TS 27.005 §3.4.3 (``+CMGR``), §3.4.2 (``+CMGL``) and §3.4.1 (the ``+CMT``
unsolicited result code). Every function takes *wire strings* (the line's bytes
decoded as latin-1, see :mod:`device.sms.charset`) and the ``AT+CSCS``
character set in force when the line was printed.

Header layouts accepted (``[..]`` may be empty, trailing groups need ``AT+CSDH=1``)::

    +CMGR: <stat>,<oa>,[<alpha>],<scts>[,<tooa>,<fo>,<pid>,<dcs>,<sca>,<tosca>,<length>]
    +CMGR: <stat>,<da>,[<alpha>][,<toda>,<fo>,<pid>,<dcs>,[<vp>],<sca>,<tosca>,<length>]
    +CMGL: <index>,<stat>,<oa/da>,[<alpha>],[<scts>][,<tooa/toda>,<length>]
    +CMT: <oa>,[<alpha>],<scts>[,<tooa>,<fo>,<pid>,<dcs>,<sca>,<tosca>,<length>]

The second ``+CMGR`` form (SMS-SUBMIT) is chosen by a ``STO UNSENT`` /
``STO SENT`` status; its ``<vp>`` (relative or absolute) is not checked and is dropped.
Status-report and command records (``+CMGR: <stat>,<fo>,<mr>,…``) are refused.

Tolerances, because modules differ:

* fields are split on commas outside double quotes; spaces around a field and a
  trailing ``\\r\\n`` are ignored; quotes around numbers are accepted;
* ``<stat>`` as text (any case), as UCS2 hex of that text, or as a number 0–3;
* ``<oa>``/``<da>``/``<sca>`` as hex or plain under UCS2
  (:func:`~device.sms.charset.address_from_wire`);
* empty detail fields (``,,``) become ``None``;
* the ``+CMGR: ``/``+CMGL: ``/``+CMT: `` prefix may be left on.

Anything else malformed raises :class:`~device.errors.SmsFormatError`, never
``IndexError``/``ValueError`` from the standard library.
"""

from __future__ import annotations

import contextlib
import enum
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from device.errors import SmsFormatError
from device.sms.charset import Charset, address_from_wire, from_wire, hex_decode, ucs2_decode

__all__ = [
    "MessageStatus",
    "TextHeader",
    "decode_body",
    "format_scts",
    "parse_cmgl_header",
    "parse_cmgr_header",
    "parse_cmt_header",
    "parse_scts",
    "split_fields",
]


class MessageStatus(enum.Enum):
    """``<stat>`` of a stored message, by its text-mode name."""

    REC_UNREAD = "REC UNREAD"
    REC_READ = "REC READ"
    STO_UNSENT = "STO UNSENT"
    STO_SENT = "STO SENT"
    ALL = "ALL"

    @property
    def code(self) -> int:
        """The PDU-mode number of this status (0 unread … 3 sent, 4 all)."""
        return _STATUS_CODES[self]

    @property
    def stored_outgoing(self) -> bool:
        """True for ``STO UNSENT`` / ``STO SENT`` (an SMS-SUBMIT record)."""
        return self in (MessageStatus.STO_UNSENT, MessageStatus.STO_SENT)


_STATUS_CODES: dict[MessageStatus, int] = {
    MessageStatus.REC_UNREAD: 0,
    MessageStatus.REC_READ: 1,
    MessageStatus.STO_UNSENT: 2,
    MessageStatus.STO_SENT: 3,
    MessageStatus.ALL: 4,
}

#: Numbers a *message* may carry as ``<stat>``; 4 ("ALL") is a query, not a state.
_STATUS_BY_NUMBER: dict[int, MessageStatus] = {
    code: status for status, code in _STATUS_CODES.items() if status is not MessageStatus.ALL
}


@dataclass(frozen=True, slots=True)
class TextHeader:
    """One text-mode message header, decoded.

    ``address`` is ``<oa>`` for received and ``<da>`` for stored outgoing
    messages (possibly empty for a stored draft). ``timestamp`` is ``None`` when
    the record has no ``<scts>`` (SMS-SUBMIT, or an empty ``+CMGL`` field). The
    detail fields (``tooa`` … ``length``) are ``None`` unless the module printed
    them (``AT+CSDH=1``); ``+CMGL`` only ever gives ``tooa`` and ``length``.
    ``index`` is set for ``+CMGL`` only. ``+CMT`` headers carry ``REC_UNREAD``.
    """

    stat: MessageStatus
    address: str
    alpha: str | None
    timestamp: datetime | None
    tooa: int | None
    fo: int | None
    pid: int | None
    dcs: int | None
    sca: str | None
    tosca: int | None
    length: int | None
    index: int | None


@dataclass(frozen=True, slots=True)
class _Field:
    """One raw header field: its wire text without quotes, and whether it was quoted."""

    text: str
    quoted: bool


_BLANKS = " \t"


def split_fields(text: str) -> list[tuple[str, bool]]:
    """Split a header's wire text into ``(value, quoted)`` pairs.

    Commas inside double quotes do not split; blanks around a field are
    dropped; an empty string is one empty field and a trailing comma adds an
    empty field. An unterminated quote, a quote inside an unquoted field or
    text between a closing quote and the next comma raises SmsFormatError.
    """
    return [(f.text, f.quoted) for f in _split(text)]


def _split(text: str) -> list[_Field]:
    fields: list[_Field] = []
    n = len(text)
    i = 0
    while True:
        while i < n and text[i] in _BLANKS:
            i += 1
        if i < n and text[i] == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise SmsFormatError(f"unterminated quoted string in {text[:60]!r}")
            fields.append(_Field(text[i + 1 : end], quoted=True))
            i = end + 1
            while i < n and text[i] in _BLANKS:
                i += 1
            if i < n and text[i] != ",":
                raise SmsFormatError(
                    f"unexpected {text[i]!r} after a quoted field in {text[:60]!r}"
                )
        else:
            end = text.find(",", i)
            if end < 0:
                end = n
            value = text[i:end].strip(_BLANKS)
            if '"' in value:
                raise SmsFormatError(f"stray quote in field {value[:40]!r}")
            fields.append(_Field(value, quoted=False))
            i = end
        if i >= n:
            return fields
        i += 1  # the comma


# --- timestamps -------------------------------------------------------------------------------

#: Largest ``|zz|`` accepted. 27.007 (+CCLK) says -48…+48, which predates UTC+14
#: (+56); TP-SCTS (23.040 §9.2.3.11) can carry up to 79 quarter hours, so that
#: is the limit here: whatever the network can encode, we read.
MAX_QUARTER_HOURS = 79

_SCTS_RE = re.compile(
    r"\A(\d{2})/(\d{2})/(\d{2}),(\d{2}):(\d{2}):(\d{2})([+-])(\d{1,2})\Z",
    re.ASCII,
)


def parse_scts(text: str) -> datetime:
    """A timezone-aware datetime for ``yy/MM/dd,hh:mm:ss±zz`` (one pair of quotes optional).

    ``yy`` 00–99 means 2000–2099; ``zz`` counts quarter hours (``+04`` is
    UTC+01:00, ``-20`` UTC-05:00), one or two digits, at most
    :data:`MAX_QUARTER_HOURS`. A missing zone, an impossible date (31 April,
    second 60) or any other deviation raises SmsFormatError.
    """
    body = text.strip(_BLANKS)
    if len(body) >= 2 and body[0] == '"' and body[-1] == '"':
        body = body[1:-1]
    match = _SCTS_RE.match(body)
    if match is None:
        raise SmsFormatError(f"malformed timestamp {text[:40]!r} (want yy/MM/dd,hh:mm:ss±zz)")
    yy, mo, dd, hh, mi, ss, sign, zz = match.groups()
    quarters = int(zz)
    if quarters > MAX_QUARTER_HOURS:
        raise SmsFormatError(f"time zone {sign}{zz} quarter hours is out of range in {text!r}")
    offset = timedelta(minutes=15 * quarters)
    if sign == "-":
        offset = -offset
    try:
        return datetime(
            2000 + int(yy),
            int(mo),
            int(dd),
            int(hh),
            int(mi),
            int(ss),
            tzinfo=timezone(offset),
        )
    except ValueError as exc:
        raise SmsFormatError(f"impossible timestamp {text!r}: {exc}") from exc


def format_scts(dt: datetime) -> str:
    """``yy/MM/dd,hh:mm:ss±zz`` for an aware datetime, without the surrounding quotes.

    Microseconds are dropped. A naive datetime, a year outside 2000–2099, or
    an offset that is not a whole number of quarter hours within
    ±:data:`MAX_QUARTER_HOURS` raises SmsFormatError. Zero offset prints ``+00``.
    """
    offset = dt.utcoffset()
    if offset is None:
        raise SmsFormatError("timestamp must be timezone-aware")
    if not 2000 <= dt.year <= 2099:
        raise SmsFormatError(f"year {dt.year} cannot be written as yy (2000-2099)")
    seconds = int(offset.total_seconds())
    if offset % timedelta(minutes=15) or abs(seconds) > MAX_QUARTER_HOURS * 900:
        raise SmsFormatError(f"offset {offset} is not a quarter-hour multiple within range")
    sign = "-" if seconds < 0 else "+"
    quarters = abs(seconds) // 900
    return (
        f"{dt.year % 100:02d}/{dt.month:02d}/{dt.day:02d},"
        f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}{sign}{quarters:02d}"
    )


# --- field helpers ----------------------------------------------------------------------------

_UINT_RE = re.compile(r"\A\d{1,10}\Z", re.ASCII)


def _opt_int(field: _Field, name: str, maximum: int = 255) -> int | None:
    """An unsigned decimal field, ``None`` when empty; quotes tolerated."""
    if field.text == "":
        return None
    if not _UINT_RE.match(field.text):
        raise SmsFormatError(f"<{name}> is not a number: {field.text[:20]!r}")
    value = int(field.text)
    if value > maximum:
        raise SmsFormatError(f"<{name}> {value} is out of range 0-{maximum}")
    return value


def _req_int(field: _Field, name: str, maximum: int) -> int:
    value = _opt_int(field, name, maximum)
    if value is None:
        raise SmsFormatError(f"<{name}> is missing")
    return value


def _parse_stat(field: _Field, charset: Charset) -> MessageStatus:
    """``<stat>`` as text, UCS2 hex of text (any charset, tried second) or number 0–3."""
    text = field.text
    if _UINT_RE.match(text):
        status = _STATUS_BY_NUMBER.get(int(text))
        if status is None:
            raise SmsFormatError(f"<stat> {text} is not a message status (0-3)")
        return status
    candidates = [text]
    if text and len(text) % 4 == 0:
        with contextlib.suppress(SmsFormatError):
            candidates.append(ucs2_decode(text))
    for candidate in candidates:
        try:
            status = MessageStatus(" ".join(candidate.upper().split()))
        except ValueError:
            continue
        if status is not MessageStatus.ALL:
            return status
    raise SmsFormatError(f"unknown <stat> {text[:40]!r} (CSCS {charset.value})")


def _opt_alpha(field: _Field, charset: Charset) -> str | None:
    return None if field.text == "" else _from_wire(field.text, charset, "<alpha>")


def _from_wire(wire: str, charset: Charset, what: str) -> str:
    """``from_wire`` with the field named in the error message."""
    try:
        return from_wire(wire, charset)
    except SmsFormatError as exc:
        raise SmsFormatError(f"{what}: {exc}") from exc


def _opt_address(field: _Field, charset: Charset) -> str | None:
    return None if field.text == "" else address_from_wire(field.text, charset)


def _timestamp(field: _Field, charset: Charset, *, required: bool) -> datetime | None:
    """``<scts>``; under UCS2 a hex-encoded timestamp is accepted too."""
    if field.text == "":
        if required:
            raise SmsFormatError("<scts> is missing")
        return None
    try:
        return parse_scts(field.text)
    except SmsFormatError:
        if charset is not Charset.UCS2 or len(field.text) % 4:
            raise
    try:
        decoded = ucs2_decode(field.text)
    except SmsFormatError:
        raise SmsFormatError(f"malformed timestamp {field.text[:40]!r}") from None
    return parse_scts(decoded)


def _fields(fields_text: str, prefix: str) -> list[_Field]:
    text = fields_text.strip(" \t\r\n")
    if text.upper().startswith(prefix):
        text = text[len(prefix) :].lstrip(_BLANKS)
    if not text:
        raise SmsFormatError(f"empty {prefix} header")
    return _split(text)


_MAX_LENGTH = 65535

#: ``tooa, fo, pid, dcs, sca, tosca, length`` of an SMS-DELIVER header.
_Details = tuple[int | None, int | None, int | None, int | None, str | None, int | None, int | None]
_NO_DETAILS: _Details = (None, None, None, None, None, None, None)


def _deliver_details(fields: list[_Field], charset: Charset) -> _Details:
    """``<tooa>,<fo>,<pid>,<dcs>,<sca>,<tosca>,<length>`` (exactly seven fields)."""
    tooa, fo, pid, dcs, sca, tosca, length = fields
    return (
        _opt_int(tooa, "tooa"),
        _opt_int(fo, "fo"),
        _opt_int(pid, "pid"),
        _opt_int(dcs, "dcs"),
        _opt_address(sca, charset),
        _opt_int(tosca, "tosca"),
        _opt_int(length, "length", _MAX_LENGTH),
    )


# --- public parsers ---------------------------------------------------------------------------


def parse_cmgr_header(fields_text: str, charset: Charset) -> TextHeader:
    """Parse what follows ``+CMGR: `` in text mode.

    A ``REC …`` status selects the SMS-DELIVER layout (4 fields, or 11 with
    ``AT+CSDH=1``); a ``STO …`` status selects the SMS-SUBMIT layout (3
    fields, 4 when a module adds an empty or timestamp field, or 11 with
    details; ``<vp>`` is dropped). Other field counts raise SmsFormatError.
    """
    fields = _fields(fields_text, "+CMGR:")
    stat = _parse_stat(fields[0], charset)
    count = len(fields)
    if stat.stored_outgoing:
        if count in (3, 4):
            timestamp = _timestamp(fields[3], charset, required=False) if count == 4 else None
            return TextHeader(
                stat,
                address_from_wire(fields[1].text, charset),
                _opt_alpha(fields[2], charset),
                timestamp,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
            )
        if count == 11:
            return TextHeader(
                stat,
                address_from_wire(fields[1].text, charset),
                _opt_alpha(fields[2], charset),
                None,
                _opt_int(fields[3], "toda"),
                _opt_int(fields[4], "fo"),
                _opt_int(fields[5], "pid"),
                _opt_int(fields[6], "dcs"),
                _opt_address(fields[8], charset),
                _opt_int(fields[9], "tosca"),
                _opt_int(fields[10], "length", _MAX_LENGTH),
                None,
            )
        raise SmsFormatError(f"+CMGR (SMS-SUBMIT) header has {count} fields, want 3 or 11")
    if count not in (4, 11):
        raise SmsFormatError(f"+CMGR (SMS-DELIVER) header has {count} fields, want 4 or 11")
    details = _NO_DETAILS
    if count == 11:
        details = _deliver_details(fields[4:], charset)
    return TextHeader(
        stat,
        address_from_wire(fields[1].text, charset),
        _opt_alpha(fields[2], charset),
        _timestamp(fields[3], charset, required=True),
        *details,
        None,
    )


def parse_cmgl_header(fields_text: str, charset: Charset) -> TextHeader:
    """Parse what follows ``+CMGL: `` in text mode (one message of the list).

    Accepts 5 fields, 7 with ``AT+CSDH=1`` (``<tooa/toda>``, ``<length>``), and
    4 for modules that leave out the empty ``<scts>`` of stored outgoing
    messages. ``<scts>`` may be empty. ``fo``/``pid``/``dcs`` are always
    ``None``, so :func:`decode_body` falls back to the TE character set.
    """
    fields = _fields(fields_text, "+CMGL:")
    count = len(fields)
    if count not in (4, 5, 7):
        raise SmsFormatError(f"+CMGL header has {count} fields, want 5 or 7")
    index = _req_int(fields[0], "index", _MAX_LENGTH)
    stat = _parse_stat(fields[1], charset)
    timestamp = _timestamp(fields[4], charset, required=False) if count >= 5 else None
    tooa = _opt_int(fields[5], "tooa") if count == 7 else None
    length = _opt_int(fields[6], "length", _MAX_LENGTH) if count == 7 else None
    return TextHeader(
        stat,
        address_from_wire(fields[2].text, charset),
        _opt_alpha(fields[3], charset),
        timestamp,
        tooa,
        None,
        None,
        None,
        None,
        None,
        length,
        index,
    )


def parse_cmt_header(fields_text: str, charset: Charset) -> TextHeader:
    """Parse what follows ``+CMT: `` in text mode (3 fields, 10 with ``AT+CSDH=1``).

    The result's ``stat`` is ``REC_UNREAD``: a directly delivered message has
    not been read by anyone yet, and is not stored.
    """
    fields = _fields(fields_text, "+CMT:")
    count = len(fields)
    if count not in (3, 10):
        raise SmsFormatError(f"+CMT header has {count} fields, want 3 or 10")
    details = _NO_DETAILS
    if count == 10:
        details = _deliver_details(fields[3:], charset)
    return TextHeader(
        MessageStatus.REC_UNREAD,
        address_from_wire(fields[0].text, charset),
        _opt_alpha(fields[1], charset),
        _timestamp(fields[2], charset, required=True),
        *details,
        None,
    )


# --- bodies -----------------------------------------------------------------------------------


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


_UDHI = 0x40


def decode_body(wire: str, header: TextHeader, charset: Charset) -> str:
    """The text of a message body line (several lines joined by the caller as received).

    * ``fo`` with TP-UDHI (0x40): the body is hex of the whole user data
      including the header; not handled yet → SmsFormatError.
    * ``dcs`` unknown (no ``AT+CSDH=1``, or ``+CMGL``): the body is in the TE
      character set.
    * GSM 7-bit: TE character set (``charset.from_wire``).
    * UCS2: UCS2 hex whatever ``AT+CSCS`` says.
    * 8-bit: hex; each octet becomes the character U+0000–U+00FF of the same
      value (latin-1), so ``result.encode("latin-1")`` gives the bytes back.

    Surrounding blanks of a hex body are ignored; a text body is taken as is.
    An empty body is the empty string.
    """
    if header.fo is not None and header.fo & _UDHI:
        raise SmsFormatError("concatenated/UDH message not supported in text mode")
    if header.dcs is None:
        return _from_wire(wire, charset, "body")
    alphabet = _alphabet(header.dcs)
    if alphabet is _Alphabet.GSM7:
        return _from_wire(wire, charset, "body")
    hex_text = wire.strip(" \t\r\n")
    if alphabet is _Alphabet.UCS2:
        try:
            return ucs2_decode(hex_text)
        except SmsFormatError as exc:
            raise SmsFormatError(f"UCS2 body (DCS 0x{header.dcs:02X}): {exc}") from exc
    try:
        return hex_decode(hex_text).decode("latin-1")
    except SmsFormatError as exc:
        raise SmsFormatError(f"8-bit body (DCS 0x{header.dcs:02X}): {exc}") from exc
