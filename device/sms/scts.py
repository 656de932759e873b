"""TP-SCTS time stamps as text mode prints them: ``yy/MM/dd,hh:mm:ss±zz``.

3GPP TS 27.005 §3.1 (``<scts>``, in the time-string format of 27.007 §8.15
``+CCLK``); ``zz`` is the zone in quarter hours. Real modules print variants:
a four-digit year, a space instead of the comma, a one-digit zone, no zone at
all. :func:`parse_scts` reads the variants with a zone; :func:`read_scts` is
what the header readers use: it never raises, and keeps what it cannot read
in a note. Re-exported by :mod:`device.sms.textmode`.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from device.errors import SmsFormatError

_BLANKS = " \t"

#: Largest ``|zz|`` accepted. 27.007 (+CCLK) says -48…+48, which predates UTC+14
#: (+56); TP-SCTS (23.040 §9.2.3.11) can carry up to 79 quarter hours, so that
#: is the limit here: whatever the network can encode, we read.
MAX_QUARTER_HOURS = 79

_SCTS_RE = re.compile(
    r"\A(\d{4}|\d{1,2})/(\d{2})/(\d{2})[, ](\d{2}):(\d{2}):(\d{2})(?:([+-])(\d{1,2}))?\Z",
    re.ASCII,
)


def parse_scts(text: str) -> datetime:
    """A timezone-aware datetime for ``yy/MM/dd,hh:mm:ss±zz`` (one pair of quotes optional).

    ``yy`` 00–99 means 2000–2099; ``zz`` counts quarter hours (``+04`` is
    UTC+01:00, ``-20`` UTC-05:00), one or two digits, at most
    :data:`MAX_QUARTER_HOURS`. Two variants real modules print are read too:
    a four-digit year (``2026/11/25,…``), a one-digit year (``6/11/25``, as
    gammu's ``ATGEN_DecodeDateTime`` says Samsung phones print it), and a space instead of the comma
    between date and time. A missing zone, an impossible date (31 April,
    second 60) or any other deviation raises SmsFormatError
    (:func:`read_scts` reads a zone-less time stamp as UTC).
    """
    when, zoned = _scts(text)
    if not zoned:
        raise SmsFormatError(f"timestamp {text[:40]!r} has no time zone")
    return when


def read_scts(text: str) -> tuple[datetime | None, str | None]:
    """``<scts>`` as a header reader wants it: never raises.

    Returns the time stamp and a note: ``(dt, None)`` when it parses,
    ``(dt in UTC, note)`` when the zone is missing, ``(None, "time stamp kept
    raw: …")`` when it cannot be read at all (the raw text is in the note).
    """
    try:
        when, zoned = _scts(text)
    except SmsFormatError:
        return None, f"time stamp kept raw: {text[:40]!r}"
    if not zoned:
        return when, f"time stamp {text[:40]!r} has no zone: read as UTC"
    return when, None


def _scts(text: str) -> tuple[datetime, bool]:
    """The time stamp and whether it had a zone (UTC when not)."""
    body = text.strip(_BLANKS)
    if len(body) >= 2 and body[0] == '"' and body[-1] == '"':
        body = body[1:-1]
    match = _SCTS_RE.match(body)
    if match is None:
        raise SmsFormatError(f"malformed timestamp {text[:40]!r} (want yy/MM/dd,hh:mm:ss±zz)")
    year, mo, dd, hh, mi, ss, sign, zz = match.groups()
    offset = timedelta(0)
    if zz is not None:
        quarters = int(zz)
        if quarters > MAX_QUARTER_HOURS:
            raise SmsFormatError(f"time zone {sign}{zz} quarter hours is out of range in {text!r}")
        offset = timedelta(minutes=15 * quarters)
        if sign == "-":
            offset = -offset
    try:
        when = datetime(
            int(year) if len(year) == 4 else 2000 + int(year),
            int(mo),
            int(dd),
            int(hh),
            int(mi),
            int(ss),
            tzinfo=timezone(offset),
        )
    except ValueError as exc:
        raise SmsFormatError(f"impossible timestamp {text!r}: {exc}") from exc
    return when, zz is not None


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
