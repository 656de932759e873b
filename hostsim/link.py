"""An in-memory line between an :class:`~device.at.channel.AtChannel` and an emulated modem.

The pty endpoint (:mod:`hostsim.pty`) needs a kernel pseudo-terminal and the
agent's serial stack on top of it; for the agent's behaviour tests, this link
joins the same :class:`~hostsim.pty.SimulatedModem` (its fault timers, its
chunking fault, its network wiring) to the channel with no fd at all::

    ports = LoopbackPorts(BYTES)
    async with HostSim(endpoint=ports.endpoint) as sim:
        channel = await ports.open(sim.modems[0].path)

:class:`LoopbackPorts` plays the part of ``/dev``: :meth:`LoopbackPorts.endpoint`
has :class:`~hostsim.pty.PtyEndpoint`'s signature, so a modem built with it
registers a port under its :attr:`LoopbackEndpoint.path` (``loopback:N``) and
its ``link`` name, and :meth:`LoopbackPorts.open` attaches a channel to it
through :meth:`AtChannel.attach <device.at.channel.AtChannel.attach>`.

A :class:`LinkVariant` says how the modem's bytes reach the TE (what the agent's
reader must cope with): whole writes, byte at a time, in chunks with a delay
between them, or with seeded noise lines. Edge cases, chosen to match the pty:

* Delivery is never synchronous: a write is delivered on a later loop
  iteration, in order, so the channel is never re-entered from its own write.
* A TE write reaches the modem whole, whatever the variant, as the pty master
  reads a short write at once (so a test's own modem event cannot land in the
  middle of a command line it did not mean to split).
* One TE at a time (the agent opens its port exclusively): a second open of an
  attached port raises :class:`~device.at.errors.ConnectionLost`, as does an
  open of a name nobody registered (a missing device file).
* What the modem writes while no TE is attached is dropped, as pyserial
  flushes a pty's input queue on open.
* Closing the TE's transport hands the modem the bytes still on their way to
  it, then drops the rest and calls ``connection_lost(None)``.
* :meth:`LoopbackEndpoint.close` is the unplug: the port's names disappear and
  an attached TE gets ``connection_lost`` with an :class:`OSError` (EIO), as
  its reads on a vanished pty fail. ``close`` is idempotent.
* Noise (:attr:`LinkVariant.garbage_rate`) is a line of bytes from 0x80–0xFF
  appended to a modem write that ends with a final result code, so it reaches
  the TE between two commands: a line no command asked for, which the codec
  reports as garbage. It never lands inside a response, where no real line
  noise could be told from data either.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import logging
import os
import random
import re
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from device.at.channel import QUIET_PERIOD, AtChannel
from device.at.errors import ConnectionLost

LOGGER = logging.getLogger(__name__)

#: A modem write that ends with a final result code (after it, no command is pending).
_ENDS_WITH_FINAL = re.compile(rb"(?:OK|ERROR|\+CM[ES] ERROR:[^\r\n]*)\r\n\Z")


class Endpoint(Protocol):
    """What :class:`~hostsim.pty.SimulatedModem` needs of the line to the TE
    (:class:`~hostsim.pty.PtyEndpoint` and :class:`LoopbackEndpoint` both are one)."""

    path: str

    @property
    def link(self) -> Path | None: ...

    @property
    def closed(self) -> bool: ...

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


#: Builds the modem's end of the line: ``(loop, on_data, link=...)``, as ``PtyEndpoint``.
EndpointFactory = Callable[..., Endpoint]


@dataclass(frozen=True, slots=True)
class LinkVariant:
    """How the modem's bytes travel to the TE over a loopback link.

    ``chunk_size`` None delivers each write whole; otherwise in pieces of at most
    that many bytes, ``delay`` seconds apart (0: on the next loop iteration).
    ``garbage_rate`` is the chance that a modem write ending with a final result
    code is followed by a noise line of 1–``garbage_max`` bytes, drawn from a
    ``random.Random(seed)`` per connection.
    """

    name: str
    chunk_size: int | None = None
    delay: float = 0.0
    garbage_rate: float = 0.0
    garbage_max: int = 24
    seed: int = 0

    def __post_init__(self) -> None:
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        if self.delay < 0 or not 0.0 <= self.garbage_rate <= 1.0 or self.garbage_max < 1:
            raise ValueError("delay must not be negative, garbage_rate must be in [0, 1]")


WHOLE = LinkVariant("whole")
BYTES = LinkVariant("bytes", chunk_size=1)
CHUNKED = LinkVariant("chunked", chunk_size=13, delay=0.0005)
GARBAGE = LinkVariant("garbage", garbage_rate=0.5, seed=10)

#: The variants the agent's behaviour tests run over.
VARIANTS = (WHOLE, BYTES, CHUNKED, GARBAGE)


class _Wire:
    """One direction: pieces delivered in order, each on a later loop iteration."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        variant: LinkVariant,
        deliver: Callable[[bytes], None],
    ) -> None:
        self._loop = loop
        self._variant = variant
        self._deliver = deliver
        self._queue: deque[bytes] = deque()
        self._timer: asyncio.TimerHandle | asyncio.Handle | None = None

    def send(self, data: bytes) -> None:
        size = self._variant.chunk_size
        if size is None:
            self._queue.append(data)
        else:
            self._queue.extend(data[i : i + size] for i in range(0, len(data), size))
        if self._timer is None:
            self._timer = self._loop.call_soon(self._step)

    def _step(self) -> None:
        self._timer = None
        if not self._queue:
            return
        self._deliver(self._queue.popleft())
        if self._queue:
            delay = self._variant.delay
            self._timer = (
                self._loop.call_later(delay, self._step)
                if delay > 0
                else self._loop.call_soon(self._step)
            )

    def flush(self) -> None:
        """Deliver what is queued now (the TE closing: its written bytes still arrive)."""
        self.clear_timer()
        while self._queue:
            self._deliver(self._queue.popleft())

    def clear(self) -> None:
        self.clear_timer()
        self._queue.clear()

    def clear_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class LoopbackTransport(asyncio.Transport):
    """The TE's end of a loopback link: what :meth:`AtChannel.attach` writes to."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        endpoint: LoopbackEndpoint,
        protocol: asyncio.Protocol,
        variant: LinkVariant,
    ) -> None:
        super().__init__({"peername": endpoint.path})
        self._loop = loop
        self._endpoint = endpoint
        self._protocol = protocol
        self._variant = variant
        self._rng = random.Random(variant.seed)
        self._closing = False
        self._up = _Wire(loop, WHOLE, endpoint.receive)
        self._down = _Wire(loop, variant, protocol.data_received)
        loop.call_soon(protocol.connection_made, self)

    # -- asyncio.Transport --------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Send to the modem; ignored once closing (the channel checks first)."""
        if not self._closing and data:
            self._up.send(bytes(data))

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Close the TE's side: bytes already written reach the modem, then
        ``connection_lost(None)``; idempotent."""
        if self._closing:
            return
        self._up.flush()
        self._lose(None)

    def abort(self) -> None:
        self._up.clear()
        self._lose(None)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        if not isinstance(protocol, asyncio.Protocol):
            raise TypeError("a loopback link needs a streaming asyncio.Protocol")
        self._protocol = protocol

    # -- the modem's side ---------------------------------------------------

    def deliver(self, data: bytes) -> None:
        """Bytes from the modem, on their way to the TE (with noise, per the variant)."""
        if self._closing:
            return
        variant = self._variant
        if (
            variant.garbage_rate
            and _ENDS_WITH_FINAL.search(data)
            and self._rng.random() < variant.garbage_rate
        ):
            noise = bytes(self._rng.randrange(0x80, 0x100)
                          for _ in range(self._rng.randint(1, variant.garbage_max)))  # fmt: skip
            data += b"\r\n" + noise + b"\r\n"
        self._down.send(data)

    def _lose(self, exc: Exception | None) -> None:
        if self._closing:
            return
        self._closing = True
        self._up.clear()
        self._down.clear()
        self._endpoint.detach(self)
        self._loop.call_soon(self._protocol.connection_lost, exc)


class LoopbackEndpoint:
    """The modem's end of a loopback port, in :class:`~hostsim.pty.PtyEndpoint`'s shape."""

    def __init__(
        self,
        ports: LoopbackPorts,
        loop: asyncio.AbstractEventLoop,
        on_data: Callable[[bytes], None],
        *,
        link: str | os.PathLike[str] | None = None,
    ) -> None:
        self._ports = ports
        self._loop = loop
        self._on_data = on_data
        self._te: LoopbackTransport | None = None
        self._closed = False
        self.path = f"loopback:{next(ports.numbers)}"
        self.link = Path(link) if link is not None else None
        LOGGER.info("%s ready%s", self.path, f" (link {self.link})" if self.link else "")

    @property
    def closed(self) -> bool:
        """True after :meth:`close` (the unplug)."""
        return self._closed

    @property
    def attached(self) -> bool:
        """A TE has the port open."""
        return self._te is not None

    def write(self, data: bytes) -> None:
        """Bytes for the TE; dropped while none is attached, and after :meth:`close`."""
        if self._te is not None and data:
            self._te.deliver(data)

    def receive(self, data: bytes) -> None:
        """Bytes from the TE, to the modem."""
        if not self._closed:
            self._on_data(data)

    def connect(self, factory: Callable[[], asyncio.Protocol]) -> LoopbackTransport:
        """Attach a TE; ConnectionLost when unplugged or already attached."""
        if self._closed:
            raise ConnectionLost(f"cannot open {self.path}: unplugged")
        if self._te is not None:
            raise ConnectionLost(f"cannot open {self.path}: in use by another TE")
        self._te = LoopbackTransport(self._loop, self, factory(), self._ports.variant)
        return self._te

    def detach(self, transport: LoopbackTransport) -> None:
        """The TE's transport closed."""
        if self._te is transport:
            self._te = None

    def close(self) -> None:
        """Unplug: the names go, an attached TE loses its line (EIO); idempotent."""
        if self._closed:
            return
        self._closed = True
        self._ports.forget(self)
        te, self._te = self._te, None
        if te is not None:
            te._lose(OSError(errno.EIO, f"{self.path} unplugged"))
        LOGGER.info("%s closed", self.path)


class LoopbackPorts:
    """The names under which loopback endpoints can be opened, and the variant they use."""

    def __init__(self, variant: LinkVariant = WHOLE) -> None:
        self.variant = variant
        self.numbers = itertools.count()
        self._names: dict[str, LoopbackEndpoint] = {}

    def endpoint(
        self,
        loop: asyncio.AbstractEventLoop,
        on_data: Callable[[bytes], None],
        *,
        link: str | os.PathLike[str] | None = None,
    ) -> LoopbackEndpoint:
        """A new endpoint under ``loopback:N`` and ``link`` (which then names it,
        replacing an earlier holder, as the pty's symlink is replaced)."""
        endpoint = LoopbackEndpoint(self, loop, on_data, link=link)
        self._names[endpoint.path] = endpoint
        if endpoint.link is not None:
            self._names[os.fspath(endpoint.link)] = endpoint
        return endpoint

    def forget(self, endpoint: LoopbackEndpoint) -> None:
        """Remove every name of ``endpoint`` (its unplug)."""
        for name in [n for n, e in self._names.items() if e is endpoint]:
            del self._names[name]

    async def open(
        self,
        name: str | os.PathLike[str],
        *,
        default_timeout: float = 10.0,
        quiet_period: float = QUIET_PERIOD,
    ) -> AtChannel:
        """An :class:`AtChannel` on the endpoint called ``name`` (its path or link);
        ConnectionLost when there is none, or it is in use."""
        key = os.fspath(name)

        async def connect(factory: Callable[[], asyncio.Protocol]) -> tuple[Any, Any]:
            endpoint = self._names.get(key)
            if endpoint is None:
                raise ConnectionLost(f"cannot open {key}: no such loopback port")
            transport = endpoint.connect(factory)
            return transport, transport.get_protocol()

        return await AtChannel.attach(
            connect, port=key, default_timeout=default_timeout, quiet_period=quiet_period
        )

    def opener(
        self, name: str | os.PathLike[str], *, default_timeout: float = 10.0
    ) -> Callable[[], Awaitable[AtChannel]]:
        """A zero-argument factory for ``Agent(open_channel=...)``: opens ``name`` anew
        on each call (so a replugged modem is found under its link)."""

        async def open_channel() -> AtChannel:
            return await self.open(name, default_timeout=default_timeout)

        return open_channel
