"""What the emulated modem writes to the TE: ATV1 framing, results, held URCs.

:class:`ModemOutput` is the modem's output buffer. Framing is
``<eol><line>[<eol><line>…]<eol>``, ``<eol>`` being ``\\r\\n`` (``\\n`` under
the ``bare_lf`` fault); under ``urc_flood`` vendor URCs precede every
information line and every final result.

Two places keep unsolicited result codes, each at most :data:`MAX_HELD_URCS`,
the oldest dropped (27.005 §3.4.1 allows that for a full buffer):

* *held*: a URC that arrives while a command runs or the SMS prompt is open
  waits for the final result (:meth:`flush_held`). A burst held this way goes
  out back to back, in one write.
* *buffered*: new-message indications under ``AT+CNMI`` mode 0 stay in the
  module (:meth:`buffer`) until a mode other than 0 is selected; then they are
  moved behind the held ones (:meth:`release_buffer`, ``<bfr>`` 0: they follow
  that command's ``OK``) or cleared (:meth:`drop_buffer`, ``<bfr>`` 1).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

from hostsim.modem.faults import FaultPlan, flood_lines

LOGGER = logging.getLogger(__name__)

#: Most unsolicited result codes held while they cannot be emitted.
MAX_HELD_URCS = 64


class ModemOutput:
    """The pending output of one modem; ``plan`` gives the faults in force at each write."""

    def __init__(self, plan: Callable[[], FaultPlan], rng: Callable[[], random.Random]) -> None:
        self._plan = plan
        self._rng = rng
        self._out = bytearray()
        self._held: list[bytes] = []
        self._buffered: list[list[str]] = []

    @property
    def eol(self) -> bytes:
        """The line ending in force (``\\r\\n``, or ``\\n`` under ``bare_lf``)."""
        return b"\n" if self._plan().bare_lf else b"\r\n"

    def frame(self, lines: list[str]) -> bytes:
        """``<eol><line>[<eol><line>…]<eol>`` (empty for no lines); unencodable characters
        become ``?``."""
        if not lines:
            return b""
        eol = self.eol.decode("latin-1")
        return (eol + eol.join(lines) + eol).encode("latin-1", "replace")

    def raw(self, data: bytes | int) -> None:
        """Append bytes as they are (echo, the prompt, injected noise): one int is one byte."""
        if isinstance(data, int):
            self._out.append(data)
        else:
            self._out += data

    def prompt(self) -> None:
        """The SMS prompt ``<eol>> ``."""
        self._out += self.eol + b"> "

    def lines(self, lines: list[str]) -> None:
        """Framed lines with no flood between them (boot banner lines)."""
        self._out += self.frame(lines)

    def info(self, lines: list[str]) -> None:
        """Information-response lines; under ``urc_flood`` a flood before each."""
        if not self._plan().urc_flood:
            self._out += self.frame(lines)
            return
        for line in lines:
            self._flood()
            self._out += self.frame([line])

    def final(self, result: str) -> None:
        """A final result code (``OK``, ``ERROR``, ``+CMS ERROR: …``), flooded before it."""
        self._flood()
        self._out += self.frame([result])

    def urc(self, lines: list[str], *, hold: bool) -> None:
        """Unsolicited lines, now, or held with ``hold`` (oldest dropped beyond the limit)."""
        data = self.frame(lines)
        if hold:
            self._held.append(data)
            del self._held[:-MAX_HELD_URCS]
        else:
            self._out += data

    def flush_held(self) -> None:
        """Emit every held URC, oldest first."""
        for data in self._held:
            self._out += data
        self._held.clear()

    def drop_held(self) -> None:
        """Forget the held URCs (a reboot)."""
        self._held.clear()

    @property
    def buffered(self) -> int:
        """How many indications the ``AT+CNMI`` mode 0 buffer keeps."""
        return len(self._buffered)

    def buffer(self, lines: list[str]) -> None:
        """Keep an indication in the module (``AT+CNMI`` mode 0); framed when released."""
        self._buffered.append(lines)
        del self._buffered[:-MAX_HELD_URCS]

    def release_buffer(self) -> None:
        """Move the buffered indications behind the held URCs, oldest first."""
        for lines in self._buffered:
            self.urc(lines, hold=True)
        self._buffered.clear()

    def drop_buffer(self) -> None:
        """Clear the buffered indications (``<bfr>`` 1, a reboot)."""
        self._buffered.clear()

    def drain(self) -> bytes:
        """Return and clear the pending output (empty when there is none)."""
        out = bytes(self._out)
        self._out.clear()
        if out:
            LOGGER.debug("modem -> TE %r", out)
        return out

    def _flood(self) -> None:
        count = self._plan().urc_flood
        if count:
            self._out += self.frame(flood_lines(self._rng(), count))
