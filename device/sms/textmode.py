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
  trailing ``\\r\\n`` are ignored; quotes around numbers are accepted; an
  unquoted ``<scts>`` that the split cut at its comma is joined again;
* ``<stat>`` as text (any case), as UCS2 hex of that text, or as a number 0–3;
* ``<oa>``/``<da>``/``<sca>`` as hex or plain under UCS2
  (:func:`~device.sms.charset.address_from_wire`); an alphanumeric ``<oa>``
  (``<tooa>`` with TON 5, 23.040 §9.1.2.5) in the TE character set, hex under UCS2;
* ``<scts>`` with the variants of :mod:`device.sms.scts`;
* empty detail fields (``,,``) become ``None``;
* the ``+CMGR: ``/``+CMGL: ``/``+CMT: `` prefix may be left on.

Each field is read on its own, so that one odd field costs that field, not the
message: a detail, ``<alpha>`` or ``<scts>`` that cannot be read becomes
``None`` and a sentence in :attr:`TextHeader.notes` (a time stamp is kept raw
there); so does an unreadable ``<stat>`` of a record with the received layout,
and extra fields. What is left raises :class:`~device.errors.SmsFormatError`,
never ``IndexError``/``ValueError`` from the standard library: an empty or
unsplittable header, too few fields, an unreadable ``<index>``, a status report.
Bodies (:func:`read_body`, user-data headers included) are :mod:`device.sms.textbody`.
"""

from __future__ import annotations

import contextlib
import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from device.errors import SmsFormatError
from device.sms.charset import Charset, address_from_wire, from_wire, ucs2_decode
from device.sms.scts import MAX_QUARTER_HOURS, format_scts, parse_scts, read_scts
from device.sms.textbody import Body, PartOf, decode_body, read_body

__all__ = [
    "MAX_QUARTER_HOURS",
    "Body",
    "MessageStatus",
    "PartOf",
    "StatusReportRecord",
    "TextHeader",
    "decode_body",
    "format_scts",
    "parse_cmgl_header",
    "parse_cmgr_header",
    "parse_cmt_header",
    "parse_scts",
    "read_body",
    "read_scts",
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
    the record has no ``<scts>`` (SMS-SUBMIT, or an empty ``+CMGL`` field) or one
    that could not be read (its raw text is then in ``notes``). The
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
    #: What was assumed or dropped while reading (a field that could not be read
    #: costs that field, not the message): "time stamp kept raw: …" and the like.
    notes: tuple[str, ...] = ()
    #: ``<oa>``/``<da>`` exactly as printed (without quotes), for the admission check.
    address_wire: str = field(default="", compare=False)

    @property
    def alphanumeric(self) -> bool:
        """True when ``<tooa>`` says the address is alphanumeric (TON 5, 23.040 §9.1.2.5)."""
        return self.tooa is not None and (self.tooa >> 4) & 0x7 == _TON_ALPHANUMERIC


_TON_ALPHANUMERIC = 5


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


# --- field helpers ----------------------------------------------------------------------------

_UINT_RE = re.compile(r"\A\d{1,10}\Z", re.ASCII)
_T = TypeVar("_T")


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


class _Notes:
    """What a lenient header reader assumed or dropped, one sentence each."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[str] = []

    def field(self, read: Callable[[], _T], name: str) -> _T | None:
        """``read()``, or None and a note when it raises SmsFormatError."""
        try:
            return read()
        except SmsFormatError as exc:
            self.items.append(f"{name} ignored: {exc}")
            return None

    def timestamp(self, field: _Field, charset: Charset) -> datetime | None:
        """``<scts>`` (under UCS2 hex-encoded too); None and a note when unreadable."""
        when, note = read_scts(field.text)
        if when is None and charset is Charset.UCS2 and len(field.text) % 4 == 0:
            with contextlib.suppress(SmsFormatError):
                when, note = read_scts(ucs2_decode(field.text))
        if note is not None:
            self.items.append(note)
        return when


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


def _sender(field: _Field, tooa: int | None, charset: Charset, notes: _Notes) -> str:
    """``<oa>``/``<da>``: a number, or the text of an alphanumeric address (TON 5).

    Under UCS2 an alphanumeric sender is UCS2 hex like every other string
    (27.005 §3.1: ``<oa>`` is converted to the TE character set, its type is
    ``<tooa>``), so it is decoded whatever characters it holds; a number that
    is not hex stays as printed (see :func:`address_from_wire`). An
    alphanumeric sender that cannot be decoded is kept as printed, with a note.
    """
    if tooa is not None and (tooa >> 4) & 0x7 == _TON_ALPHANUMERIC and field.text:
        try:
            return from_wire(field.text, charset)
        except SmsFormatError as exc:
            notes.items.append(f"alphanumeric sender kept as printed: {exc}")
            return field.text
    return address_from_wire(field.text, charset)


_DATE_RE = re.compile(r"\A\d{2,4}/\d{2}/\d{2}\Z", re.ASCII)
_TIME_RE = re.compile(r"\A\d{2}:\d{2}:\d{2}(?:[+-]\d{1,2})?\Z", re.ASCII)


def _fields(fields_text: str, prefix: str) -> list[_Field]:
    text = fields_text.strip(" \t\r\n")
    if text.upper().startswith(prefix):
        text = text[len(prefix) :].lstrip(_BLANKS)
    if not text:
        raise SmsFormatError(f"empty {prefix} header")
    return _join_unquoted_timestamps(_split(text))


def _join_unquoted_timestamps(fields: list[_Field]) -> list[_Field]:
    """An unquoted ``yy/MM/dd,hh:mm:ss±zz`` splits in two at its comma: join it again."""
    joined: list[_Field] = []
    i = 0
    while i < len(fields):
        here = fields[i]
        if (
            i + 1 < len(fields)
            and not here.quoted
            and not fields[i + 1].quoted
            and _DATE_RE.match(here.text)
            and _TIME_RE.match(fields[i + 1].text)
        ):
            joined.append(_Field(f"{here.text},{fields[i + 1].text}", quoted=False))
            i += 2
            continue
        joined.append(here)
        i += 1
    return joined


_MAX_LENGTH = 65535


@dataclass(frozen=True, slots=True)
class _Details:
    """``<tooa>,<fo>,<pid>,<dcs>,<sca>,<tosca>,<length>``, each read on its own."""

    tooa: int | None = None
    fo: int | None = None
    pid: int | None = None
    dcs: int | None = None
    sca: str | None = None
    tosca: int | None = None
    length: int | None = None

    @classmethod
    def read(cls, fields: list[_Field], charset: Charset, notes: _Notes) -> _Details:
        """Seven fields; one that cannot be read becomes None and a note."""
        tooa, fo, pid, dcs, sca, tosca, length = fields
        return cls(
            notes.field(lambda: _opt_int(tooa, "tooa"), "<tooa>"),
            notes.field(lambda: _opt_int(fo, "fo"), "<fo>"),
            notes.field(lambda: _opt_int(pid, "pid"), "<pid>"),
            notes.field(lambda: _opt_int(dcs, "dcs"), "<dcs>"),
            _opt_address(sca, charset),
            notes.field(lambda: _opt_int(tosca, "tosca"), "<tosca>"),
            notes.field(lambda: _opt_int(length, "length", _MAX_LENGTH), "<length>"),
        )


_NO_DETAILS = _Details()


@dataclass(frozen=True, slots=True)
class _Core:
    """The fields every layout has: status, address, alpha, time stamp, index."""

    stat: MessageStatus
    sender: _Field
    alpha: _Field
    timestamp: datetime | None
    index: int | None = None


def _header(core: _Core, details: _Details, charset: Charset, notes: _Notes) -> TextHeader:
    return TextHeader(
        core.stat,
        _sender(core.sender, details.tooa, charset, notes),
        notes.field(lambda: _opt_alpha(core.alpha, charset), "<alpha>"),
        core.timestamp,
        details.tooa,
        details.fo,
        details.pid,
        details.dcs,
        details.sca,
        details.tosca,
        details.length,
        core.index,
        tuple(notes.items),
        core.sender.text,
    )


def _looks_like_timestamp(field: _Field) -> bool:
    """A field that can stand where ``<scts>`` stands (not a status report's ``<tora>``)."""
    return not _UINT_RE.match(field.text)


class StatusReportRecord(SmsFormatError):
    """The record is a status report (``<stat>,<fo>,<mr>,…``, 27.005 §3.4.3), not a message."""


def _refuse_status_report(fields: list[_Field], first: int) -> None:
    """``<fo>,<mr>`` (two bare numbers) where the address stands: a status report."""
    if len(fields) > first + 1 and all(
        not f.quoted and _UINT_RE.match(f.text) for f in fields[first : first + 2]
    ):
        raise StatusReportRecord("a status-report record, not an SMS-DELIVER")


def _stat(field: _Field, charset: Charset, notes: _Notes, received_layout: bool) -> MessageStatus:
    """``<stat>``; when it cannot be read but the layout is a received message's, REC READ."""
    try:
        return _parse_stat(field, charset)
    except SmsFormatError as exc:
        if not received_layout:
            raise
        notes.items.append(f"<stat> ignored ({exc}): read as REC READ by its layout")
        return MessageStatus.REC_READ


# --- public parsers ---------------------------------------------------------------------------


def parse_cmgr_header(fields_text: str, charset: Charset) -> TextHeader:
    """Parse what follows ``+CMGR: `` in text mode.

    A ``REC …`` status selects the SMS-DELIVER layout (4 fields, or 11 with
    ``AT+CSDH=1``); a ``STO …`` status selects the SMS-SUBMIT layout (3
    fields, 4 when a module adds an empty or timestamp field, or 11 with
    details; ``<vp>`` is dropped). Each field is read on its own: a detail,
    ``<alpha>`` or ``<scts>`` that cannot be read becomes None and a note in
    ``notes`` (the raw time stamp is in its note); so does an unreadable
    ``<stat>`` when the record has the received layout (read as ``REC READ``);
    a received record of another field count keeps its first four. Still
    SmsFormatError: an empty or unsplittable header, fewer than four fields of
    a received record, a stored outgoing record of another field count, a
    status-report record (a number where ``<scts>`` stands).
    """
    fields = _fields(fields_text, "+CMGR:")
    _refuse_status_report(fields, 1)
    notes = _Notes()
    count = len(fields)
    received_layout = count >= 4 and _looks_like_timestamp(fields[3])
    stat = _stat(fields[0], charset, notes, received_layout)
    if stat.stored_outgoing:
        if count in (3, 4):
            timestamp = None
            if count == 4 and fields[3].text:
                timestamp = notes.timestamp(fields[3], charset)
            core = _Core(stat, fields[1], fields[2], timestamp)
            return _header(core, _NO_DETAILS, charset, notes)
        if count == 11:
            details = _Details.read([*fields[3:7], *fields[8:11]], charset, notes)
            return _header(_Core(stat, fields[1], fields[2], None), details, charset, notes)
        raise SmsFormatError(f"+CMGR (SMS-SUBMIT) header has {count} fields, want 3 or 11")
    if not received_layout:
        raise SmsFormatError(f"+CMGR (SMS-DELIVER) header has no <scts> ({count} fields)")
    details = _NO_DETAILS
    if count == 11:
        details = _Details.read(fields[4:], charset, notes)
    elif count != 4:
        notes.items.append(f"{count} fields (want 4 or 11): the details are ignored")
    timestamp = notes.timestamp(fields[3], charset)
    return _header(_Core(stat, fields[1], fields[2], timestamp), details, charset, notes)


def parse_cmgl_header(fields_text: str, charset: Charset) -> TextHeader:
    """Parse what follows ``+CMGL: `` in text mode (one message of the list).

    Accepts 5 fields, 7 with ``AT+CSDH=1`` (``<tooa/toda>``, ``<length>``), and
    4 for modules that leave out the empty ``<scts>`` of stored outgoing
    messages; another count of 5 or more keeps the first five, with a note.
    ``<scts>`` may be empty. ``fo``/``pid``/``dcs`` are always ``None``, so
    :func:`decode_body` falls back to the TE character set. Fields are read
    on their own as in :func:`parse_cmgr_header`; ``<index>`` must be read.
    """
    fields = _fields(fields_text, "+CMGL:")
    _refuse_status_report(fields, 2)
    notes = _Notes()
    count = len(fields)
    if count < 4:
        raise SmsFormatError(f"+CMGL header has {count} fields, want 5 or 7")
    index = _req_int(fields[0], "index", _MAX_LENGTH)
    received_layout = count >= 5 and _looks_like_timestamp(fields[4])
    stat = _stat(fields[1], charset, notes, received_layout)
    timestamp = None
    if count >= 5 and fields[4].text:
        timestamp = notes.timestamp(fields[4], charset)
    details = _NO_DETAILS
    if count == 7:
        details = _Details(
            tooa=notes.field(lambda: _opt_int(fields[5], "tooa"), "<tooa>"),
            length=notes.field(lambda: _opt_int(fields[6], "length", _MAX_LENGTH), "<length>"),
        )
    elif count not in (4, 5):
        notes.items.append(f"{count} fields (want 5 or 7): the details are ignored")
    core = _Core(stat, fields[2], fields[3], timestamp, index)
    return _header(core, details, charset, notes)


def parse_cmt_header(fields_text: str, charset: Charset) -> TextHeader:
    """Parse what follows ``+CMT: `` in text mode (3 fields, 10 with ``AT+CSDH=1``).

    The result's ``stat`` is ``REC_UNREAD``: a directly delivered message has
    not been read by anyone yet, and is not stored. Fields are read on their
    own as in :func:`parse_cmgr_header`; another count of 3 or more keeps the
    first three, with a note.
    """
    fields = _fields(fields_text, "+CMT:")
    notes = _Notes()
    count = len(fields)
    if count < 3:
        raise SmsFormatError(f"+CMT header has {count} fields, want 3 or 10")
    details = _NO_DETAILS
    if count == 10:
        details = _Details.read(fields[3:], charset, notes)
    elif count != 3:
        notes.items.append(f"{count} fields (want 3 or 10): the details are ignored")
    timestamp = notes.timestamp(fields[2], charset)
    core = _Core(MessageStatus.REC_UNREAD, fields[0], fields[1], timestamp)
    return _header(core, details, charset, notes)
