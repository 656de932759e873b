"""Sans-IO AT framing: bytes from the modem in, typed events out.

No asyncio and no serial port here: the caller (``device.at.channel``) reads
bytes, passes them to :meth:`AtCodec.feed`, and tells the codec which command
it has just written with :meth:`AtCodec.begin`. The codec turns the stream into
:class:`Echo`, :class:`Info`, :class:`Final`, :class:`Prompt`, :class:`Urc` and
:class:`Garbage` events.

Framing rules (3GPP TS 27.007 §4–5, and what real modules do):

* A line ends at ``\\r\\n``, at a bare ``\\r`` or at a bare ``\\n``; ``\\r\\n``
  counts once. Blank lines are skipped, except where a body line is due.
* The SMS prompt ``> `` (greater-than, space, no line end) at the start of a
  line is a :class:`Prompt`.
* Final result codes end the pending command: ``OK``, ``ERROR``,
  ``+CME ERROR: <n|text>``, ``+CMS ERROR: <n|text>``, ``NO CARRIER``, ``BUSY``,
  ``NO ANSWER``, ``NO DIALTONE``. Numeric and verbose (``AT+CMEE=2``) forms
  are both understood.
* While a command is pending, a line that starts with one of its response
  prefixes (``+CMGR:`` for ``AT+CMGR=3``) is an :class:`Info`; ``+CMGR:`` and
  ``+CMGL:`` headers are followed by exactly one body line, taken verbatim
  even when blank. Any other ``+NAME:`` / ``^NAME:`` line, and the bare
  indications in :data:`BARE_URCS` (``RING``, ``RDY``, ``SMS DONE`` …), are
  unsolicited — also in the middle of a response, which is where
  python-gsmmodem loses ``+CMTI`` indications.
* ``+CMT:``, ``+CDS:`` and ``+CBM:`` indications carry one body line, joined
  into the :class:`Urc`.
* A line that equals the pending command is its echo (echo on or off both
  work). After the prompt, lines that are not results are the module echoing
  the SMS body.
* A line longer than ``max_line`` bytes is dropped and reported as
  :class:`Garbage` of kind :attr:`GarbageKind.OVERLONG`, naming the command
  that was pending (whose response is then incomplete: the channel raises
  :class:`~device.at.errors.ResponseDamaged`); a body slot it took is spent, so
  the next line is framed afresh. The buffer never grows past that bound.
* Error codes are ASCII digits (``+CME ERROR: ²`` is a verbose text, code
  None). No input makes the codec raise: a line it fails on anyway (a bug)
  becomes a :attr:`GarbageKind.FAULT` event, and the lines around it count.
* Work is linear in the bytes fed, for any line endings (:attr:`AtCodec.scanned`).

Known limit: under the ``"GSM"`` and ``"IRA"`` character sets a text-mode SMS
body that itself contains a line break, or a body line that reads ``OK``
outside the body slot, cannot be framed unambiguously; the agent therefore
uses ``"UCS2"``, where bodies are hex.

Events do not depend on how the stream is chunked: feeding a stream whole,
byte by byte or in any pieces yields the same events, provided :meth:`begin`
is called at the same stream positions.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass

from device.at.errors import CME_MEANINGS, CMS_MEANINGS, cme_code, cms_code

LOGGER = logging.getLogger(__name__)

CR = 0x0D
LF = 0x0A
PROMPT_BYTE = 0x3E  # '>'
SPACE = 0x20

#: Default bound for one line, in bytes. A UCS2 text-mode body of a full SMS is
#: 640 hex digits and a PDU line at most about 360, so this leaves ample room.
DEFAULT_MAX_LINE = 4096

#: How many bytes of a garbage line its :class:`Garbage` event keeps.
GARBAGE_HEAD = 64

#: Unsolicited indications that are not of the ``+NAME:`` form.
BARE_URCS = frozenset(
    {
        "RING",
        "RDY",
        "SMS DONE",
        "SMS READY",
        "PB DONE",
        "CALL READY",
        "NORMAL POWER DOWN",
        "POWERED DOWN",
        "POWER DOWN",
        "+PBREADY",
        "^SYSSTART",
        "NO CARRIER",
    }
)

#: Indications followed by one body line.
TWO_LINE_URCS = frozenset({"+CMT", "+CDS", "+CBM"})

#: One-line indications recognised even where a body line is due.
SLOT_SAFE_URCS = ("+CMTI:", "+CDSI:")

#: Response prefixes whose line is followed by one body line.
BODY_PREFIXES = frozenset({"+CMGR", "+CMGL"})

#: Extended commands whose information response carries no prefix.
BARE_RESPONSE_COMMANDS = frozenset(
    {"+CGMI", "+CGMM", "+CGMR", "+CGSN", "+CIMI", "+GMI", "+GMM", "+GMR", "+GSN"}
)


class ResultKind(enum.Enum):
    """Final result codes."""

    OK = "OK"
    ERROR = "ERROR"
    CME_ERROR = "+CME ERROR"
    CMS_ERROR = "+CMS ERROR"
    NO_CARRIER = "NO CARRIER"
    BUSY = "BUSY"
    NO_ANSWER = "NO ANSWER"
    NO_DIALTONE = "NO DIALTONE"


_SIMPLE_FINALS = {
    "OK": ResultKind.OK,
    "ERROR": ResultKind.ERROR,
    "NO CARRIER": ResultKind.NO_CARRIER,
    "BUSY": ResultKind.BUSY,
    "NO ANSWER": ResultKind.NO_ANSWER,
    "NO DIALTONE": ResultKind.NO_DIALTONE,
}


@dataclass(frozen=True, slots=True)
class Echo:
    """The module repeating what was written to it (command line or SMS body)."""

    text: str


@dataclass(frozen=True, slots=True)
class Info:
    """An information line of the pending command's response (or a body line)."""

    text: str


@dataclass(frozen=True, slots=True)
class Final:
    """A final result code. ``code``/``meaning`` are set for CME/CMS errors."""

    kind: ResultKind
    code: int | None
    meaning: str
    text: str

    @property
    def ok(self) -> bool:
        return self.kind is ResultKind.OK


@dataclass(frozen=True, slots=True)
class Prompt:
    """The ``> `` prompt asking for an SMS body."""


@dataclass(frozen=True, slots=True)
class Urc:
    """An unsolicited result code.

    ``name`` is the part before the colon (``+CMTI``) or the whole bare line
    (``RDY``), upper-cased; ``args`` the text after ``": "``; ``body`` the
    second line of a two-line indication (``+CMT``), else None.
    """

    name: str
    args: str
    text: str
    body: str | None = None


class GarbageKind(enum.Enum):
    """Why bytes fit no frame."""

    #: A line nobody asked for (no command pending, or not of the pending one's form).
    STRAY = "stray line"
    #: A line longer than ``max_line``: dropped, and the response in flight is damaged.
    OVERLONG = "over-long line"
    #: A line the codec failed on (a bug): reported with its bytes, the rest of the read kept.
    FAULT = "codec fault"


@dataclass(frozen=True, slots=True)
class Garbage:
    """Bytes that fit no frame: an over-long line or a line nobody asked for.

    ``data`` is at most the first :data:`GARBAGE_HEAD` bytes; ``pending`` the command
    that was pending when the garbage came (None between commands).
    """

    data: bytes
    reason: str
    kind: GarbageKind = GarbageKind.STRAY
    pending: str | None = None


Event = Echo | Info | Final | Prompt | Urc | Garbage

_FINAL_ERR_RE = re.compile(r"^\+(CME|CMS) ERROR:\s*(.*)$", re.IGNORECASE)
_NAME_RE = re.compile(r"^([+^*#$%][A-Za-z0-9_]+):")
_CMD_PREFIX_RE = re.compile(r"^AT([+^*#$%&][A-Za-z0-9_]+)", re.IGNORECASE)
#: A numeric error code: ASCII digits, at most nine (27.007/27.005 codes have three).
_ASCII_CODE_RE = re.compile(r"[0-9]{1,9}", re.ASCII)
_DIGITS_RE = re.compile(r"[0-9]+", re.ASCII)


def parse_final(line: str) -> Final | None:
    """The :class:`Final` for ``line``, or None when it is not a final result code."""
    simple = _SIMPLE_FINALS.get(line.strip().upper())
    if simple is not None:
        return Final(simple, None, simple.value, line)
    match = _FINAL_ERR_RE.match(line.strip())
    if match is None:
        return None
    family, detail = match.group(1).upper(), match.group(2).strip()
    table = CME_MEANINGS if family == "CME" else CMS_MEANINGS
    kind = ResultKind.CME_ERROR if family == "CME" else ResultKind.CMS_ERROR
    if _ASCII_CODE_RE.fullmatch(detail):
        # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
        number = int(detail)
        code: int | None = number
        meaning = table.get(number, "unknown error code")
    elif _DIGITS_RE.fullmatch(detail):
        # More digits than any code has (int() of thousands of digits is refused too).
        code, meaning = None, "unknown error code"
    else:
        code = cme_code(detail) if family == "CME" else cms_code(detail)
        meaning = detail or "no text"
    return Final(kind, code, meaning, line)


def response_prefixes(command: str) -> tuple[tuple[str, ...], bool]:
    """Response prefixes and whether bare information lines belong to ``command``.

    ``AT+CMGR=3`` → ``(("+CMGR",), False)``; ``ATI`` → ``((), True)``;
    ``AT+CGSN`` → ``(("+CGSN",), True)`` (modules answer with bare digits).
    """
    match = _CMD_PREFIX_RE.match(command.strip())
    if match is None:
        return (), True
    prefix = match.group(1).upper()
    return (prefix,), prefix in BARE_RESPONSE_COMMANDS


class AtCodec:
    """Incremental framer for the modem → host direction. See the module docstring."""

    def __init__(self, max_line: int = DEFAULT_MAX_LINE, *, hex_bodies: bool = True) -> None:
        """``hex_bodies``: message bodies are hex (UCS2 text mode, PDU mode), so a line
        of the ``+NAME:`` form in a body slot is an indication, never the body. Turn
        it off for GSM/IRA text bodies, where only +CMTI/+CDSI are recognised there."""
        if max_line < 4:
            raise ValueError("max_line must be at least 4 bytes")
        self.max_line = max_line
        self.hex_bodies = hex_bodies
        self._buf = bytearray()
        self._skip_lf = False
        self._discarding = False
        self._body_due: str | None = None  # "info" or "urc"
        self._urc_header: Urc | None = None
        self._pending: str | None = None
        self._prefixes: tuple[str, ...] = ()
        self._bare_info = True
        self._echo_due = False
        self._prompted = False
        #: Bytes the line-end searches have covered so far: at most twice the bytes
        #: fed, whatever the line endings (tests and ``bench/`` read it).
        self.scanned = 0

    @property
    def pending(self) -> str | None:
        """The command whose final result has not been seen yet, if any."""
        return self._pending

    def begin(
        self,
        command: str,
        *,
        prefixes: tuple[str, ...] | None = None,
        bare_info: bool | None = None,
    ) -> None:
        """Declare that ``command`` (without the trailing ``\\r``) was just written.

        ``prefixes`` and ``bare_info`` override :func:`response_prefixes`.
        Replaces any command still pending (the caller timed it out).
        """
        derived, derived_bare = response_prefixes(command)
        self._pending = command.strip()
        self._prefixes = tuple(p.upper() for p in (prefixes if prefixes is not None else derived))
        self._bare_info = derived_bare if bare_info is None else bare_info
        self._echo_due = True
        self._prompted = False

    def abandon(self) -> None:
        """Forget the pending command (after a timeout); later lines count as stray."""
        self._pending = None
        self._prompted = False
        self._echo_due = False

    def feed(self, data: bytes) -> list[Event]:
        """Consume ``data`` and return the events completed by it (maybe none).

        Partial lines stay buffered until their terminator arrives. Never
        raises for any input: a line the classifier fails on (a bug) becomes a
        :attr:`GarbageKind.FAULT` event, and the lines around it still count.
        Work is linear in ``len(data)``, whatever the line endings.
        """
        return list(self.events(data))

    def events(self, data: bytes) -> Iterator[Event]:
        """:meth:`feed` as a generator: each event as soon as its line is framed, so
        a caller that dispatches while iterating keeps what came before a failure."""
        ends = _Terminators(data)
        try:
            yield from self._frame(data, ends)
        finally:
            self.scanned += ends.scanned

    def _frame(self, data: bytes, ends: _Terminators) -> Iterator[Event]:
        buf = self._buf
        n = len(data)
        i = 0
        while i < n:
            if self._skip_lf:
                self._skip_lf = False
                if data[i] == LF:
                    i += 1
                    continue
            if self._discarding:
                j = ends.next(i)
                if j < 0:
                    break
                self._discarding = False
                self._skip_lf = data[j] == CR
                i = j + 1
                continue
            if self._body_due is None:
                if not buf and data[i] == PROMPT_BYTE and i + 1 < n and data[i + 1] == SPACE:
                    yield self._prompt()
                    i += 2
                    continue
                if len(buf) == 1 and buf[0] == PROMPT_BYTE and data[i] == SPACE:
                    buf.clear()
                    yield self._prompt()
                    i += 1
                    continue
            j = ends.next(i)
            if j < 0:
                # Only what still fits is kept: the buffer never holds more than
                # max_line + 1 bytes, however large ``data`` is.
                buf += data[i : i + self.max_line + 1 - len(buf)]
                if len(buf) > self.max_line:
                    yield self._overflow()
                    self._discarding = True
                break
            buf += data[i : min(j, i + self.max_line + 1 - len(buf))]
            self._skip_lf = data[j] == CR
            i = j + 1
            if len(buf) > self.max_line:
                yield self._overflow()
                continue
            line = buf.decode("latin-1")
            buf.clear()
            yield from self._classify_guarded(line)

    def _prompt(self) -> Prompt:
        self._prompted = True
        self._echo_due = False
        return Prompt()

    def _overflow(self) -> Garbage:
        # However the stream was chunked, exactly max_line + 1 bytes are buffered.
        head = bytes(self._buf[: min(GARBAGE_HEAD, self.max_line + 1)])
        self._buf.clear()
        # A body slot that overflowed is spent: the next line is framed afresh.
        self._body_due = None
        self._urc_header = None
        return Garbage(
            head,
            f"line longer than {self.max_line} bytes dropped",
            GarbageKind.OVERLONG,
            self._pending,
        )

    def _classify_guarded(self, line: str) -> list[Event]:
        """:meth:`_classify_all`, with a bug in it costing this one line only."""
        try:
            return self._classify_all(line)
        except Exception as exc:  # a codec bug must not take the rest of the read with it
            LOGGER.exception("AT codec failed on line %r", line)
            self._body_due = None
            self._urc_header = None
            return [
                Garbage(
                    line.encode("latin-1")[:GARBAGE_HEAD],
                    f"codec fault on this line: {exc!r}",
                    GarbageKind.FAULT,
                    self._pending,
                )
            ]

    def _classify_all(self, line: str) -> list[Event]:
        """Events for one line. With hex bodies, a body slot tolerates indications and
        their blank framing lines before the body: a blank line there is passed over,
        and the body is empty only when a result code or the next header comes
        first; an indication or the hex body after it shows the blank was framing."""
        if not (self.hex_bodies and self._body_due == "info"):
            event = self._classify(line)
            return [] if event is None else [event]
        stripped = line.strip()
        if not stripped:
            return []
        name_match = _NAME_RE.match(stripped)
        next_header = name_match is not None and name_match.group(1).upper() in self._prefixes
        if parse_final(stripped) is not None or next_header:
            self._body_due = None
            event = self._classify(line)
            return [Info(""), *([] if event is None else [event])]
        event = self._classify(line)
        return [] if event is None else [event]

    def _classify(self, line: str) -> Event | None:
        if self._body_due is not None and (
            line.startswith(SLOT_SAFE_URCS) or (self.hex_bodies and _NAME_RE.match(line))
        ):
            # An indication that landed between a header and its body line: a
            # hex or PDU body never starts with "+", so it cannot be the body.
            name, _, args = line.partition(":")
            return Urc(name.upper(), args.strip(), line)
        if self._body_due == "urc":
            header = self._urc_header
            self._body_due = None
            self._urc_header = None
            if header is not None:
                return Urc(header.name, header.args, header.text, line)
        if self._body_due == "info":
            self._body_due = None
            return Info(line)
        if not line.strip():
            return None
        stripped = line.strip()
        if (
            self._pending is not None
            and self._echo_due
            and stripped.upper() == self._pending.upper()
        ):
            self._echo_due = False
            return Echo(line)
        event = self._classify_line(line, stripped)
        if isinstance(event, Info | Final):
            # The response has begun: an echo can no longer come. Indications
            # (which may precede the echo) leave the expectation in place.
            self._echo_due = False
        return event

    def _classify_line(self, line: str, stripped: str) -> Event | None:
        final = parse_final(stripped)
        if final is not None:
            if self._pending is None and final.kind is ResultKind.NO_CARRIER:
                return Urc("NO CARRIER", "", line)
            self._pending = None
            self._prompted = False
            return final
        name_match = _NAME_RE.match(stripped)
        name = name_match.group(1).upper() if name_match else None
        if self._pending is not None and name is not None and name in self._prefixes:
            if name in BODY_PREFIXES:
                self._body_due = "info"
            return Info(line)
        if name is not None:
            args = stripped[len(name) + 1 :].strip()
            urc = Urc(name, args, line)
            if name in TWO_LINE_URCS:
                self._body_due = "urc"
                self._urc_header = urc
                return None
            return urc
        if stripped.upper() in BARE_URCS:
            return Urc(stripped.upper(), "", line)
        if self._pending is not None:
            if self._prompted:
                return Echo(line)
            if self._bare_info:
                return Info(line)
            return Garbage(
                line.encode("latin-1")[:GARBAGE_HEAD],
                f"unexpected line during {self._pending}",
                GarbageKind.STRAY,
                self._pending,
            )
        return Garbage(
            line.encode("latin-1")[:GARBAGE_HEAD], "unexpected line with no command pending"
        )


class _Terminators:
    """The next CR or LF in one ``data``, found in linear time overall.

    Looking for each kind afresh from every line start would rescan, for a
    bare-LF stream, the whole rest of ``data`` for a CR that never comes, once
    per line: quadratic in one :meth:`AtCodec.feed` call. Each kind's next
    position is kept instead and searched again only once it has been passed.
    ``scanned`` counts the bytes the searches covered (tests bound it).
    """

    __slots__ = ("_cr", "_data", "_lf", "scanned")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._cr = -2  # -2: not searched yet; -1: none left
        self._lf = -2
        self.scanned = 0

    def _search(self, byte: bytes, start: int) -> int:
        found = self._data.find(byte, start)
        self.scanned += (len(self._data) if found < 0 else found + 1) - start
        return found

    def next(self, start: int) -> int:
        """Index of the first CR or LF at or after ``start``, or -1 (``start`` never decreases)."""
        if self._cr == -2 or 0 <= self._cr < start:
            self._cr = self._search(b"\r", start)
        if self._lf == -2 or 0 <= self._lf < start:
            self._lf = self._search(b"\n", start)
        if self._cr < 0:
            return self._lf
        if self._lf < 0:
            return self._cr
        return min(self._cr, self._lf)
