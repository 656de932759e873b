"""Fault injection for hostsim: what a misbehaving module or line does to the TE.

A :class:`FaultPlan` holds the *persistent* faults of one modem (frozen; swap
it with :meth:`hostsim.sim.SimulatedModem.set_faults` at any time):

* ``chunk_size`` / ``chunk_delay`` — every output write is cut into chunks of
  at most ``chunk_size`` bytes, ``chunk_delay`` seconds apart (scheduled on
  the loop by :class:`ChunkedWriter`, never blocking);
* ``urc_flood`` — ``N`` vendor URCs (``+QIND: "csq",20,99`` …) before every
  line of every response, so they land between the lines of a response too;
* ``bare_lf`` — response framing with ``\\n`` instead of ``\\r\\n``;
* ``echo_stuck`` — ``ATE0`` answers ``OK`` but the echo stays on;
* ``cms_on_send`` — the probability that ``AT+CMGS`` is answered
  ``+CMS ERROR: 500``, of which a ``sent_anyway`` fraction went out all the same;
* ``invalid_cmti`` — after each real ``+CMTI`` a bogus one: index ``-1``, an
  index in another memory, or an already deleted (empty) index.

One-shot faults (reset, unplug, garbage, hang) live on
:class:`hostsim.sim.SimulatedModem`. Every random choice comes from the
modem's ``random.Random``, seeded from :class:`hostsim.sim.HostSim`'s seed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: Vendor URCs of a flood, ``{rssi}`` filled from the rng.
FLOOD_URCS = (
    '+QIND: "csq",{rssi},99',
    '+QIND: "act","LTE"',
    '+QIND: "csq",{rssi},99',
    "+QIND: 0,1",
)
#: The bogus ``+CMTI`` kinds :attr:`FaultPlan.invalid_cmti` picks from.
INVALID_CMTI_KINDS = ("negative", "other-memory", "deleted")
#: Most bytes one garbage burst may hold.
MAX_GARBAGE = 1 << 16


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Persistent faults of one modem (see the module docstring); the default is none."""

    chunk_size: int = 0
    chunk_delay: float = 0.0
    urc_flood: int = 0
    bare_lf: bool = False
    echo_stuck: bool = False
    cms_on_send: float = 0.0
    sent_anyway: float = 0.0
    invalid_cmti: bool = False

    def __post_init__(self) -> None:
        if self.chunk_size < 0:
            raise ValueError("chunk_size must be 0 (off) or positive")
        if not 0 <= self.chunk_delay <= 60:
            raise ValueError("chunk_delay must be between 0 and 60 seconds")
        if not 0 <= self.urc_flood <= 1000:
            raise ValueError("urc_flood must be between 0 and 1000")
        for name in ("cms_on_send", "sent_anyway"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability between 0 and 1")

    @property
    def active(self) -> bool:
        """Any fault set."""
        return self != FaultPlan()

    def replace(self, **changes: Any) -> FaultPlan:
        """A copy with ``changes``; ValueError for unknown names or bad values."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, object]:
        """The plan as JSON-ready data."""
        return dataclasses.asdict(self)

    def updated_from_strings(self, fields: Mapping[str, str]) -> FaultPlan:
        """A copy with settings parsed from text (HTTP form fields); ValueError on any
        unknown name or unparsable value. Booleans: true/false, 1/0, yes/no, on/off."""
        changes: dict[str, object] = {}
        for field in dataclasses.fields(self):
            text = fields.get(field.name)
            if text is None:
                continue
            changes[field.name] = _parse(field.name, field.type, text)
        unknown = set(fields) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        return self.replace(**changes)


def _parse(name: str, kind: object, text: str) -> object:
    value = text.strip().lower()
    if kind in ("bool", bool):
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{name} must be true or false, got {text!r}")
    try:
        if kind in ("int", int):
            return int(value)
        return float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {text!r}") from None


def flood_lines(rng: random.Random, count: int) -> list[str]:
    """``count`` vendor URC lines chosen by ``rng``."""
    return [rng.choice(FLOOD_URCS).format(rssi=rng.randint(5, 31)) for _ in range(count)]


def garbage(rng: random.Random, count: int) -> bytes:
    """``count`` random bytes (line noise) from ``rng``."""
    return bytes(rng.getrandbits(8) for _ in range(count))


class ChunkedWriter:
    """Writes the modem's output through ``write``, cut per the current plan.

    Without chunking, output goes straight through (behind any chunks still
    queued, so order holds). With ``chunk_size`` each write becomes chunks of
    at most that many bytes; the first is written at once, each next one
    ``chunk_delay`` seconds later via ``loop.call_later`` (``call_soon`` for 0).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        write: Callable[[bytes], None],
        plan: Callable[[], FaultPlan],
    ) -> None:
        self._loop = loop
        self._write = write
        self._plan = plan
        self._queue: deque[bytes] = deque()
        self._timer: asyncio.TimerHandle | asyncio.Handle | None = None

    @property
    def pending(self) -> int:
        """Bytes queued and not yet written."""
        return sum(len(chunk) for chunk in self._queue)

    def write(self, data: bytes) -> None:
        """Queue ``data``; never blocks."""
        if not data:
            return
        size = self._plan().chunk_size
        if size <= 0:
            if not self._queue:
                self._write(data)
                return
            self._queue.append(data)
            return
        for start in range(0, len(data), size):
            self._queue.append(data[start : start + size])
        if self._timer is None:
            self._next()

    def _next(self) -> None:
        self._timer = None
        if not self._queue:
            return
        self._write(self._queue.popleft())
        if self._queue:
            delay = self._plan().chunk_delay
            if delay > 0:
                self._timer = self._loop.call_later(delay, self._next)
            else:
                self._timer = self._loop.call_soon(self._next)

    def clear(self) -> None:
        """Drop whatever is queued (unplug, close)."""
        self._queue.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
