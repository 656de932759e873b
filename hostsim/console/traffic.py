"""One modem's AT traffic as lines, for the console: bounded, escaped, in order.

:class:`LineTraffic` takes the chunks that cross a modem's line (both directions,
as :meth:`hostsim.pty.SimulatedModem.add_wire_listener` hands them on) and cuts
them into lines at ``\\r`` and ``\\n``; what it keeps is bounded (the last
:data:`MAX_LINES` lines).

Edge cases:

* Bytes that end no line (the SMS prompt ``> ``, a body ending in Ctrl-Z, a noise
  burst) are held until the line ends, or until bytes arrive in the other
  direction (the exchange moved on: the TE answers the prompt, the module its
  Ctrl-Z), then shown as a line of their own. No timer.
* A line longer than :data:`MAX_LINE_BYTES` is cut there into several lines (the
  ``overlong_line`` fault, garbage): what is shown and kept stays bounded.
* A byte outside printable ASCII is shown escaped (``\\x1a``); a backslash as
  ``\\\\``, so the text reads back unambiguously.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from hostsim.wire import Direction

#: Lines kept per modem (the oldest dropped first).
MAX_LINES = 500
#: A line is cut after this many bytes.
MAX_LINE_BYTES = 256
_ENDS = b"\r\n"


@dataclass(frozen=True, slots=True)
class TrafficLine:
    """One line that crossed the line at ``t`` (wall clock, seconds) in ``direction``."""

    t: float
    direction: Direction
    text: str

    def as_dict(self) -> dict[str, object]:
        """JSON-ready: ``t``, ``dir`` (``in`` to the module, ``out`` to the TE), ``text``."""
        return {"t": round(self.t, 3), "dir": self.direction.value, "text": self.text}


def escape(data: bytes) -> str:
    """``data`` as printable text: ASCII 0x20-0x7e as is (a backslash doubled), the rest
    as ``\\xNN``."""
    out: list[str] = []
    for byte in data:
        if byte == 0x5C:
            out.append("\\\\")
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


class LineTraffic:
    """The recent lines of one modem; ``on_line`` is called with each new one."""

    def __init__(
        self,
        on_line: Callable[[TrafficLine], None] | None = None,
        *,
        clock: Callable[[], float] = time.time,
        max_lines: int = MAX_LINES,
    ) -> None:
        self.lines: deque[TrafficLine] = deque(maxlen=max_lines)
        self._on_line = on_line
        self._clock = clock
        self._partial: dict[Direction, bytearray] = {d: bytearray() for d in Direction}

    def feed(self, direction: Direction, data: bytes) -> None:
        """A chunk crossed the line in ``direction``."""
        for other in Direction:
            if other is not direction:
                self._flush(other)
        partial = self._partial[direction]
        for byte in data:
            if byte in _ENDS:
                self._flush(direction)
                continue
            partial.append(byte)
            if len(partial) >= MAX_LINE_BYTES:
                self._flush(direction)

    def _flush(self, direction: Direction) -> None:
        partial = self._partial[direction]
        if not partial:
            return
        line = TrafficLine(self._clock(), direction, escape(bytes(partial)))
        partial.clear()
        self.lines.append(line)
        if self._on_line is not None:
            self._on_line(line)
