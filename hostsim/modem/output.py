"""What the emulated modem writes to the TE: V.250 framing, results, held URCs.

:class:`ModemOutput` is the modem's output buffer. Framing follows V.250 §5.7.1
and the :class:`Framing` in force (``ATV``, ``ATQ``, ``S3``, ``S4``), ``<eol>``
being ``<S3><S4>`` (``\\r\\n`` by default; ``<S4>`` alone under the
``bare_lf`` fault):

* ``ATV1``: information text ``<eol><line>[<eol><line>…]<eol>``, a result
  ``<eol><verbose code><eol>``, the SMS prompt ``<eol>> ``;
* ``ATV0``: information text ``<line><eol>`` per line (no header), a result
  ``<numeric code><S3>`` (:data:`~hostsim.modem.results.NUMERIC_CODES`; an
  extended one such as ``+CME ERROR: 10`` keeps its text), the prompt ``> ``;
* ``ATQ1``: no final result codes at all (information text and unsolicited
  codes still go out).

Under ``urc_flood`` vendor URCs precede every information line and every final
result.

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
from dataclasses import dataclass

from hostsim.modem.faults import FaultPlan, flood_lines
from hostsim.modem.results import NUMERIC_CODES

LOGGER = logging.getLogger(__name__)

#: Most unsolicited result codes held while they cannot be emitted.
MAX_HELD_URCS = 64


@dataclass(frozen=True, slots=True)
class Framing:
    """The result-code format in force: ``ATV``, ``ATQ`` and the ``S3`` / ``S4`` characters."""

    verbose: bool = True
    quiet: bool = False
    s3: int = 13
    s4: int = 10


class ModemOutput:
    """The pending output of one modem; ``plan`` gives the faults in force at each write,
    ``framing`` the result-code format (V1 with ``\\r\\n`` when not given)."""

    def __init__(
        self,
        plan: Callable[[], FaultPlan],
        rng: Callable[[], random.Random],
        framing: Callable[[], Framing] | None = None,
    ) -> None:
        self._plan = plan
        self._rng = rng
        self._framing = framing if framing is not None else Framing
        self._out = bytearray()
        self._held: list[bytes] = []
        self._buffered: list[list[str]] = []

    @property
    def eol(self) -> bytes:
        """The line ending in force: ``<S3><S4>``, or ``<S4>`` alone under ``bare_lf``."""
        framing = self._framing()
        if self._plan().bare_lf:
            return bytes([framing.s4])
        return bytes([framing.s3, framing.s4])

    def frame(self, lines: list[str]) -> bytes:
        """Information text: ``<eol><line>[<eol><line>…]<eol>`` (``ATV0``: ``<line><eol>``
        each); empty for no lines; unencodable characters become ``?``."""
        if not lines:
            return b""
        eol = self.eol.decode("latin-1")
        if self._framing().verbose:
            text = eol + eol.join(lines) + eol
        else:
            text = "".join(line + eol for line in lines)
        return text.encode("latin-1", "replace")

    def raw(self, data: bytes | int) -> None:
        """Append bytes as they are (echo, the prompt, injected noise): one int is one byte."""
        if isinstance(data, int):
            self._out.append(data)
        else:
            self._out += data

    def prompt(self) -> None:
        """The SMS prompt ``<eol>> `` (``ATV0``: ``> ``)."""
        self._out += (self.eol if self._framing().verbose else b"") + b"> "

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
        """A final result code (``OK``, ``ERROR``, ``+CMS ERROR: …``), flooded before it;
        nothing under ``ATQ1``; ``<code><S3>`` under ``ATV0``."""
        framing = self._framing()
        if framing.quiet:
            return
        self._flood()
        if framing.verbose:
            self._out += self.frame([result])
            return
        code = NUMERIC_CODES.get(result)
        text = result if code is None else str(code)
        self._out += text.encode("latin-1", "replace") + bytes([framing.s3])

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
