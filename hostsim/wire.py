"""The serial line's pace and its byte log (``hostsim run --baud N --byte-log PATH``).

A real module's UART moves 10 bits per byte (start bit, 8 data bits, stop bit), so
at ``baud`` N a byte takes ``10 / N`` seconds to cross the line. :class:`Pacer`
hands bytes on at that rate: a byte is delivered when its last bit would have
arrived, i.e. byte ``k`` of a run that starts at ``t0`` (the line idle until then)
at ``t0 + (k + 1) * 10 / N``. :class:`~hostsim.pty.SimulatedModem` puts one pacer
on each direction: the module's output reaches the TE at the line rate, and what
the TE writes reaches the module at that rate (the TE's own write returns at once,
as into a UART's transmit buffer).

:class:`ByteLog` records every chunk when it is handed on (after pacing), with its
``time.monotonic()`` (system-wide on Linux, so another process can compare it with
its own clock) and its direction. With pacing, a chunk of ``n`` bytes logged at
``t`` had its first byte arrive at ``t - (n - 1) * 10 / N``: the wire time of any
exchange follows from the log.

Edge cases:

* ``baud`` None (the default): no pacing, each chunk is handed on synchronously,
  as before this module existed.
* A tick hands on every byte that has arrived by then, at most
  :data:`TICK_BYTES_TIME` of line time apart (like a UART's receive FIFO and the
  tty layer, which hand bytes on in bursts, and without waking both processes per
  byte), and the last byte of a run exactly when it arrives: the end of a transfer
  is what the other side waits for. A late tick only hands on more; the average
  rate is exact and no byte is early.
* The end is on time only if the loop's timers are: asyncio's default selector
  (epoll) sleeps in whole milliseconds, rounded up, so a tick due in 87 µs would come
  up to 1 ms late. :func:`precise_loop` makes a loop whose ``select(2)`` takes
  microseconds; ``hostsim run --baud`` runs on it (:func:`paced_loop_factory`).
* :meth:`Pacer.clear` drops what is queued (an unplug) and the line is idle again.
* A log with a path writes one JSON line per chunk
  (``{"t": …, "dir": "out"|"in", "port": …, "hex": …}``, ``out`` = module to TE),
  line-buffered so a reader sees whole lines; without a path it keeps the chunks
  in :attr:`ByteLog.chunks` (for tests).
"""

from __future__ import annotations

import asyncio
import json
import logging
import selectors
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import IO

LOGGER = logging.getLogger(__name__)

#: Bits on the line per byte: start, 8 data, stop (8N1).
BITS_PER_BYTE = 10

#: At most this much line time (seconds) between two hand-overs inside a run.
TICK_BYTES_TIME = 0.001

#: ``select(2)`` cannot watch a descriptor at or above FD_SETSIZE (1024 on Linux);
#: above this many simulated modems :func:`paced_loop_factory` keeps epoll.
MAX_SIMS_ON_SELECT = 256


class Direction(Enum):
    """Which way a chunk crossed the line."""

    TO_TE = "out"
    TO_MODULE = "in"


@dataclass(frozen=True, slots=True)
class WireChunk:
    """Bytes handed on at ``t`` (monotonic seconds) in ``direction`` on ``port``."""

    t: float
    direction: Direction
    port: str
    data: bytes


def byte_time(baud: int) -> float:
    """Seconds one byte takes on the line at ``baud`` (ValueError unless positive)."""
    if baud <= 0:
        raise ValueError("baud must be greater than 0")
    return BITS_PER_BYTE / baud


class ByteLog:
    """Every chunk that crossed a line: to the JSON-lines file ``path``, else in memory."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.chunks: list[WireChunk] = []
        self._file: IO[str] | None = (
            open(path, "a", encoding="ascii", buffering=1) if path is not None else None  # noqa: SIM115
        )

    def record(self, direction: Direction, port: str, data: bytes) -> None:
        """Log ``data`` as handed on now."""
        chunk = WireChunk(time.monotonic(), direction, port, bytes(data))
        if self._file is None:
            self.chunks.append(chunk)
            return
        self._file.write(
            json.dumps({"t": chunk.t, "dir": direction.value, "port": port, "hex": data.hex()})
            + "\n"
        )

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._file is not None:
            self._file.close()
            self._file = None


def read_log(path: str | Path) -> list[WireChunk]:
    """The chunks of a :class:`ByteLog` file, in order (a torn last line is left out)."""
    chunks: list[WireChunk] = []
    for line in Path(path).read_text(encoding="ascii").splitlines():
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue
        chunks.append(
            WireChunk(item["t"], Direction(item["dir"]), item["port"], bytes.fromhex(item["hex"]))
        )
    return chunks


def precise_loop() -> asyncio.AbstractEventLoop:
    """A selector loop whose timers fire to the microsecond: ``select(2)`` takes a
    ``timeval``, where epoll's timeout is rounded up to whole milliseconds. Only
    for processes with few descriptors (``select`` refuses one at or above
    FD_SETSIZE, 1024)."""
    return asyncio.SelectorEventLoop(selectors.SelectSelector())


def paced_loop_factory(
    baud: int | None, sims: int
) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The loop factory for a hostsim with ``sims`` modems at ``baud``: None (the
    default loop) when unpaced, :func:`precise_loop` when paced; above
    :data:`MAX_SIMS_ON_SELECT` modems (a few descriptors each) the default loop
    with a warning that transfers may end up to 1 ms late."""
    if baud is None:
        return None
    if sims > MAX_SIMS_ON_SELECT:
        LOGGER.warning(
            "%d modems: more than select(2) can watch safely (%d); "
            "keeping epoll, paced transfers may end up to 1 ms late",
            sims,
            MAX_SIMS_ON_SELECT,
        )
        return None
    return precise_loop


class Pacer:
    """Hands bytes to ``deliver`` at ``baud / 10`` bytes per second (at once when
    ``baud`` is None); order is kept."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        baud: int | None,
        deliver: Callable[[bytes], None],
    ) -> None:
        self._loop = loop
        self._byte_time = byte_time(baud) if baud is not None else 0.0
        self._deliver = deliver
        self._per_tick = max(1, int(TICK_BYTES_TIME / self._byte_time)) if baud else 1
        self._queue = bytearray()
        self._t0 = 0.0
        self._sent = 0
        self._timer: asyncio.TimerHandle | None = None

    @property
    def pending(self) -> int:
        """Bytes queued, not yet handed on."""
        return len(self._queue)

    def push(self, data: bytes) -> None:
        """Queue ``data`` behind what is on the line; never blocks."""
        if not data:
            return
        if not self._byte_time:
            self._deliver(data)
            return
        if not self._queue:
            self._t0 = self._loop.time()
            self._sent = 0
        self._queue += data
        if self._timer is None:
            self._schedule()

    def _schedule(self) -> None:
        # The next hand-over: a tick's worth of bytes on, or the run's last byte.
        due = self._t0 + (self._sent + min(self._per_tick, len(self._queue))) * self._byte_time
        self._timer = self._loop.call_at(due, self._tick)

    def _tick(self) -> None:
        self._timer = None
        elapsed = self._loop.time() - self._t0
        arrived = int(elapsed / self._byte_time + 1e-6) - self._sent
        count = min(max(arrived, 0), len(self._queue))
        if count:
            chunk = bytes(self._queue[:count])
            del self._queue[:count]
            self._sent += count
            self._deliver(chunk)
        if self._queue:
            self._schedule()

    def clear(self) -> None:
        """Drop what is queued; the line is idle."""
        self._queue.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
