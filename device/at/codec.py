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
  :class:`Garbage`; the buffer never grows past that bound.

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
import re
from dataclasses import dataclass

from device.at.errors import CME_MEANINGS, CMS_MEANINGS, cme_code, cms_code

CR = 0x0D
LF = 0x0A
PROMPT_BYTE = 0x3E  # '>'
SPACE = 0x20

#: Default bound for one line, in bytes. A UCS2 text-mode body of a full SMS is
#: 640 hex digits and a PDU line at most about 360, so this leaves ample room.
DEFAULT_MAX_LINE = 4096

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


@dataclass(frozen=True, slots=True)
class Garbage:
    """Bytes that fit no frame: an over-long line or a line nobody asked for."""

    data: bytes
    reason: str


Event = Echo | Info | Final | Prompt | Urc | Garbage

_FINAL_ERR_RE = re.compile(r"^\+(CME|CMS) ERROR:\s*(.*)$", re.IGNORECASE)
_NAME_RE = re.compile(r"^([+^*#$%][A-Za-z0-9_]+):")
_CMD_PREFIX_RE = re.compile(r"^AT([+^*#$%&][A-Za-z0-9_]+)", re.IGNORECASE)


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
    if detail.isdigit():
        code: int | None = int(detail)
        meaning = table.get(int(detail), "unknown error code")
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
        raises for any input.
        """
        events: list[Event] = []
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
                j = _find_terminator(data, i)
                if j < 0:
                    break
                self._discarding = False
                self._skip_lf = data[j] == CR
                i = j + 1
                continue
            if self._body_due is None:
                if not buf and data[i] == PROMPT_BYTE and i + 1 < n and data[i + 1] == SPACE:
                    events.append(self._prompt())
                    i += 2
                    continue
                if len(buf) == 1 and buf[0] == PROMPT_BYTE and data[i] == SPACE:
                    buf.clear()
                    events.append(self._prompt())
                    i += 1
                    continue
            j = _find_terminator(data, i)
            if j < 0:
                buf += data[i:]
                if len(buf) > self.max_line:
                    events.append(self._overflow())
                    self._discarding = True
                break
            buf += data[i:j]
            self._skip_lf = data[j] == CR
            i = j + 1
            if len(buf) > self.max_line:
                events.append(self._overflow())
                continue
            line = buf.decode("latin-1")
            buf.clear()
            events.extend(self._classify_all(line))
        return events

    def _prompt(self) -> Prompt:
        self._prompted = True
        self._echo_due = False
        return Prompt()

    def _overflow(self) -> Garbage:
        # However the stream was chunked, at least max_line + 1 bytes are buffered.
        head = bytes(self._buf[: min(32, self.max_line + 1)])
        self._buf.clear()
        # A body slot that overflowed is spent: the next line is framed afresh.
        self._body_due = None
        self._urc_header = None
        return Garbage(head, f"line longer than {self.max_line} bytes dropped")

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
            return Garbage(line.encode("latin-1")[:64], f"unexpected line during {self._pending}")
        return Garbage(line.encode("latin-1")[:64], "unexpected line with no command pending")


def _find_terminator(data: bytes, start: int) -> int:
    """Index of the first CR or LF at or after ``start``, or -1."""
    cr = data.find(b"\r", start)
    lf = data.find(b"\n", start)
    if cr < 0:
        return lf
    if lf < 0:
        return cr
    return min(cr, lf)
