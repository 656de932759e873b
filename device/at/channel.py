"""The asyncio side of the AT layer: one serial port, one command in flight.

:class:`AtChannel` owns the port (through pyserial-asyncio, or any asyncio
transport given to :meth:`AtChannel.attach`), feeds every byte
to the sans-IO :class:`~device.at.codec.AtCodec`, and turns its events into
command results and unsolicited-code callbacks:

* :meth:`AtChannel.command` writes one command line and waits, under a timeout,
  for its final result. The waiter is in place *before* the bytes are written.
  A second caller waits for the first to finish (an ``asyncio.Lock``).
* :meth:`AtChannel.command_with_body` is the two-phase SMS send: the command,
  then the ``> `` prompt, then the body and Ctrl-Z; ESC cancels when the prompt
  does not come or the send is abandoned.
* Unsolicited result codes go to every listener added with
  :meth:`AtChannel.add_urc_listener`, in the reader's own callback; a listener
  that raises is logged and never stops the reader.
* When the port fails or closes, the command in flight fails with
  :class:`~device.at.errors.ConnectionLost` and :attr:`AtChannel.closed` is set.
* A line of the response that was too long for the codec (dropped unread) makes
  :meth:`AtChannel.command` raise :class:`~device.at.errors.ResponseDamaged`
  with what did arrive, even after ``OK``: the caller must not act on half an
  answer. The SMS send keeps its ``+CMGS`` reference when that arrived.
* Nothing that happens on a read escapes the read callback: an event that
  cannot be dispatched, or the codec failing, is logged, and the other events
  of the same read still count (the ``OK`` of a send in flight among them).
* A write to a serial port goes to its descriptor at once (:func:`write_now`):
  pyserial-asyncio's transport would wait for the loop's next iteration first.
  What the port does not take at once, and every write behind bytes still queued,
  goes through the transport, in order.
* The final result wakes the caller directly (a timer bounds the wait), not
  through ``wait_for`` and ``shield``, which took three loop iterations.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import serial
import serial_asyncio

from device.at.codec import (
    AtCodec,
    Echo,
    Event,
    Final,
    Garbage,
    GarbageKind,
    Info,
    Prompt,
    ResultKind,
    Urc,
)
from device.at.errors import (
    CmeError,
    CmsError,
    CommandError,
    CommandTimeout,
    ConnectionLost,
    ModemError,
    ResponseDamaged,
    SmsInputCancelled,
)

LOGGER = logging.getLogger(__name__)

CTRL_Z = "\x1a"
ESC = "\x1b"

UrcListener = Callable[[Urc], None]

#: Makes the line under a channel: given the protocol factory, returns
#: ``(transport, protocol)`` (see :meth:`AtChannel.attach`).
Connector = Callable[
    [Callable[[], asyncio.Protocol]],
    Awaitable[tuple[asyncio.BaseTransport, asyncio.BaseProtocol]],
]

#: After a timed-out command, the line must stay silent this long (seconds)
#: before the next command is written, so that the late answer of the old
#: command cannot be taken for the answer of the new one.
QUIET_PERIOD = 0.5


@dataclass(frozen=True, slots=True)
class Response:
    """A completed command: its information lines and its final result."""

    command: str
    lines: tuple[str, ...]
    final: Final

    def prefixed(self, prefix: str) -> list[str]:
        """The text after ``prefix:`` of each line that starts with it."""
        head = prefix + ":"
        return [line[len(head) :].strip() for line in self.lines if line.startswith(head)]


def write_now(transport: asyncio.Transport, data: bytes) -> int:
    """Write what the serial port under ``transport`` takes of ``data`` now; how many
    bytes that was.

    pyserial-asyncio's ``SerialTransport.write`` only queues and waits for the loop to
    report the descriptor writable, one loop iteration later: on the critical path
    (``AT+CMGR``, ``AT+CMGS``) that is latency for nothing. 0 when the transport is
    no serial one (no ``serial`` attribute: the in-memory link, a test's), when it
    still has bytes queued (they go first), or when the descriptor takes nothing now
    (full: ``BlockingIOError``) or fails (the transport's own write then reports it).
    """
    port = getattr(transport, "serial", None)
    if port is None or transport.get_write_buffer_size():
        return 0
    try:
        return os.write(port.fileno(), data)
    except OSError:
        return 0


class _Expired(Exception):
    """A command's time ran out (set on its future by the timer)."""


def error_for(command: str, final: Final) -> CommandError:
    """The typed exception for a failed final result."""
    if final.kind is ResultKind.CME_ERROR:
        return CmeError(command, final.code, final.meaning)
    if final.kind is ResultKind.CMS_ERROR:
        return CmsError(command, final.code, final.meaning)
    return CommandError(command, None, final.kind.value)


class _Exchange:
    """Book-keeping for the command in flight."""

    def __init__(self, command: str, loop: asyncio.AbstractEventLoop) -> None:
        self.command = command
        self.lines: list[str] = []
        #: Heads of response lines dropped as over-long.
        self.dropped: list[bytes] = []
        self.done: asyncio.Future[Final] = loop.create_future()
        self.prompt: asyncio.Future[None] = loop.create_future()
        self.expects_prompt = False

    def finish(self, final: Final, *, whole: bool = True) -> Response:
        """The response; the typed error of a failed result, or with ``whole``
        :class:`ResponseDamaged` when a line of it was dropped as over-long."""
        if not final.ok:
            raise error_for(self.command, final)
        lines = tuple(self.lines)
        if whole and self.dropped:
            raise ResponseDamaged(self.command, lines, tuple(self.dropped), final.text)
        return Response(self.command, lines, final)


class _Protocol(asyncio.Protocol):
    def __init__(self, channel: AtChannel) -> None:
        self._channel = channel

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._channel._connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._channel._data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._channel._connection_lost(exc)


class AtChannel:
    """A line speaking AT commands. Create with :meth:`open` (a serial port) or
    :meth:`attach` (any asyncio transport, e.g. the in-memory link of ``hostsim.link``)."""

    def __init__(
        self,
        *,
        default_timeout: float = 10.0,
        max_line: int | None = None,
        quiet_period: float = QUIET_PERIOD,
    ) -> None:
        self.default_timeout = default_timeout
        self.quiet_period = quiet_period
        self._resync = False
        self._rx = asyncio.Event()
        self._codec = AtCodec() if max_line is None else AtCodec(max_line)
        self._transport: asyncio.Transport | None = None
        self._lock = asyncio.Lock()
        self._exchange: _Exchange | None = None
        self._listeners: list[UrcListener] = []
        self.closed = asyncio.Event()
        self.garbage_count = 0
        #: Echoed lines seen so far; more after ``ATE0`` means the module reset.
        self.echo_count = 0
        self.port = ""

    @classmethod
    async def attach(
        cls,
        connect: Connector,
        *,
        port: str = "",
        default_timeout: float = 10.0,
        quiet_period: float = QUIET_PERIOD,
    ) -> AtChannel:
        """A channel on whatever transport ``connect`` makes.

        ``connect`` gets the protocol factory and returns ``(transport, protocol)``,
        as ``loop.create_connection`` and ``serial_asyncio.create_serial_connection``
        do; it raises :class:`ConnectionLost` when there is no line to be had (that
        exception passes through unchanged). ``port`` names the line in logs and
        errors. The transport may call ``connection_made`` now or on a later loop
        iteration: the channel can write as soon as ``connect`` returns.
        """
        channel = cls(default_timeout=default_timeout, quiet_period=quiet_period)
        channel.port = port
        transport, _ = await connect(lambda: _Protocol(channel))
        if not isinstance(transport, asyncio.Transport):
            raise TypeError(f"an AT channel needs a read/write transport, not {transport!r}")
        channel._transport = transport
        return channel

    @classmethod
    async def open(
        cls,
        port: str,
        *,
        baudrate: int = 115200,
        default_timeout: float = 10.0,
        quiet_period: float = QUIET_PERIOD,
    ) -> AtChannel:
        """Open the serial port ``port``; raises ConnectionLost when it cannot be opened."""
        loop = asyncio.get_running_loop()

        async def serial_line(
            factory: Callable[[], asyncio.Protocol],
        ) -> tuple[asyncio.BaseTransport, asyncio.BaseProtocol]:
            try:
                # exclusive: a second program on the same AT port would interleave commands.
                transport, protocol = await serial_asyncio.create_serial_connection(
                    loop, factory, port, baudrate=baudrate, exclusive=True
                )
            except (OSError, serial.SerialException) as exc:
                raise ConnectionLost(f"cannot open {port}: {exc}") from exc
            return transport, protocol

        return await cls.attach(
            serial_line, port=port, default_timeout=default_timeout, quiet_period=quiet_period
        )

    # -- public API -------------------------------------------------------

    def add_urc_listener(self, listener: UrcListener) -> Callable[[], None]:
        """Call ``listener`` for every unsolicited code; returns a function that removes it."""
        self._listeners.append(listener)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return remove

    async def command(
        self,
        command: str,
        *,
        timeout: float | None = None,
        prefixes: tuple[str, ...] | None = None,
        bare_info: bool | None = None,
    ) -> Response:
        """Run ``command`` (no trailing CR) and return its response.

        Raises :class:`CommandError` (``CmeError``/``CmsError``) for an error
        result, :class:`CommandTimeout`, or :class:`ConnectionLost`.
        """
        limit = self.default_timeout if timeout is None else timeout
        async with self._lock:
            await self._resynchronise()
            exchange = self._start(command, prefixes, bare_info)
            try:
                self._write(command + "\r")
                final = await self._wait(exchange.done, command, limit)
            finally:
                self._exchange = None
        return exchange.finish(final)

    async def command_with_body(
        self, command: str, body: str, *, timeout: float | None = None
    ) -> Response:
        """Run a prompting command (``AT+CMGS``): wait for ``> ``, send ``body`` + Ctrl-Z.

        ``body`` is a wire string (latin-1 characters). When the prompt does
        not come in time, ESC is written to leave the prompt state and
        :class:`CommandTimeout` raised.
        """
        limit = self.default_timeout if timeout is None else timeout
        async with self._lock:
            await self._resynchronise()
            exchange = self._start(command, None, None)
            exchange.expects_prompt = True
            try:
                self._write(command + "\r")
                waiting: list[asyncio.Future[Any]] = [exchange.prompt, exchange.done]
                done, _ = await asyncio.wait(
                    waiting, timeout=limit, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    self._abandon(ESC)
                    raise CommandTimeout(command, limit)
                if not exchange.done.done():
                    self._write(body + CTRL_Z)
                final = await self._wait(exchange.done, command, limit, cancel_with=ESC)
            finally:
                self._exchange = None
        # The send's outcome is what counts: a reference that arrived is kept (the
        # caller treats a missing one as an uncertain send); the drop was logged.
        return exchange.finish(final, whole=False)

    async def close(self) -> None:
        """Close the port; idempotent. Any command in flight fails with ConnectionLost."""
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.close()
        if transport is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closed.wait(), 2.0)
        self.closed.set()

    # -- internals ----------------------------------------------------------

    def _start(
        self, command: str, prefixes: tuple[str, ...] | None, bare_info: bool | None
    ) -> _Exchange:
        if self.closed.is_set() or self._transport is None:
            raise ConnectionLost(f"{self.port or 'port'} is closed")
        exchange = _Exchange(command, asyncio.get_running_loop())
        self._exchange = exchange
        self._codec.begin(command, prefixes=prefixes, bare_info=bare_info)
        return exchange

    async def _wait(
        self, future: asyncio.Future[Final], command: str, limit: float, cancel_with: str = ""
    ) -> Final:
        """The final result, or CommandTimeout after ``limit`` seconds (then the line is
        resynchronised, ``cancel_with`` written). The caller awaits ``future`` itself: the
        result wakes it in one loop iteration. Cancelling the caller cancels ``future``
        too, which nothing else waits on (the exchange ends with the caller)."""

        def expire() -> None:
            if not future.done():
                future.set_exception(_Expired())

        timer = asyncio.get_running_loop().call_later(limit, expire)
        try:
            return await future
        except _Expired:
            self._abandon(cancel_with)
            raise CommandTimeout(command, limit) from None
        finally:
            timer.cancel()

    def cancel_sms_input(self) -> None:
        """Write ESC, which ends an SMS text entry without sending it (harmless in
        command mode), and let the line settle before the next command."""
        self._codec.abandon()
        self._resync = True
        if not self.closed.is_set():
            with contextlib.suppress(ModemError):
                self._write(ESC)

    async def _resynchronise(self) -> None:
        """After a timeout: let late answers arrive and be discarded as stray.

        Waits until the line has been quiet for :attr:`quiet_period`, at most
        ten quiet periods in all (a module that never stops talking is then
        left to the command's own timeout).
        """
        if not self._resync:
            return
        self._resync = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10 * self.quiet_period
        while not self.closed.is_set() and loop.time() < deadline:
            self._rx.clear()
            try:
                await asyncio.wait_for(self._rx.wait(), self.quiet_period)
            except TimeoutError:
                return

    def _abandon(self, cancel_with: str) -> None:
        self._resync = True
        self._codec.abandon()
        if cancel_with and not self.closed.is_set():
            with contextlib.suppress(ModemError):
                self._write(cancel_with)

    def _write(self, text: str) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            raise ConnectionLost(f"{self.port or 'port'} is closed")
        data = text.encode("latin-1")
        LOGGER.debug("%s <- %r", self.port, data)
        sent = write_now(transport, data)
        if sent < len(data):
            transport.write(data[sent:])

    def _connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def _data_received(self, data: bytes) -> None:
        """Feed one read to the codec and dispatch each event as it is framed. Never
        raises: that would drop the rest of the read (maybe a final result with it)."""
        self._rx.set()
        LOGGER.debug("%s -> %r", self.port, data)
        try:
            for event in self._codec.events(data):
                try:
                    self._dispatch(event)
                except Exception:
                    LOGGER.exception("%s: dispatching %r failed", self.port, event)
        except Exception:
            # The codec's own guard turns a failing line into a Garbage event; this is
            # the last line of defence for a failure in its framing loop.
            LOGGER.exception("%s: the AT codec failed on %r; the rest of this read is lost",
                             self.port, data)  # fmt: skip

    def _dispatch(self, event: Event) -> None:
        exchange = self._exchange
        if isinstance(event, Urc):
            for listener in list(self._listeners):
                try:
                    listener(event)
                except Exception:
                    LOGGER.exception("URC listener %r failed on %r", listener, event.text)
        elif isinstance(event, Info):
            if exchange is not None:
                exchange.lines.append(event.text)
            else:
                LOGGER.warning(
                    "%s: response line with no command pending: %r", self.port, event.text
                )
        elif isinstance(event, Final):
            if exchange is not None and not exchange.done.done():
                exchange.done.set_result(event)
            else:
                LOGGER.warning("%s: stray final result %r", self.port, event.text)
        elif isinstance(event, Prompt):
            if exchange is not None and exchange.expects_prompt:
                if not exchange.prompt.done():
                    exchange.prompt.set_result(None)
                return
            # The module is waiting for SMS text: an earlier process died between
            # AT+CMGS and Ctrl-Z, and our command became part of that text.
            # ESC cancels the SMS (never Ctrl-Z, which would send it).
            LOGGER.warning("%s: unexpected SMS prompt; cancelling the pending SMS with ESC",
                           self.port)  # fmt: skip
            self.cancel_sms_input()
            if exchange is not None and not exchange.done.done():
                exchange.done.set_exception(
                    SmsInputCancelled(f"{exchange.command!r} was taken as SMS text; cancelled")
                )
                exchange.done.exception()  # retrieved by the waiter; mark it seen
        elif isinstance(event, Garbage):
            self._garbage(event, exchange)
        elif isinstance(event, Echo):
            self.echo_count += 1
            LOGGER.debug("%s: echo %r", self.port, event.text)

    def _garbage(self, event: Garbage, exchange: _Exchange | None) -> None:
        """Count and log; an over-long line while a command runs damages its response."""
        self.garbage_count += 1
        LOGGER.warning("%s: %s: %r", self.port, event.reason, event.data)
        if (
            event.kind is GarbageKind.OVERLONG
            and event.pending is not None
            and exchange is not None
            and not exchange.done.done()
        ):
            exchange.dropped.append(event.data)

    def _connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            LOGGER.warning("%s: connection lost: %s", self.port, exc)
        else:
            LOGGER.info("%s: closed", self.port)
        self._transport = None
        self.closed.set()
        exchange = self._exchange
        if exchange is not None:
            for future in (exchange.done, exchange.prompt):
                if not future.done():
                    future.set_exception(ConnectionLost(f"{self.port}: {exc or 'closed'}"))
                    # The exception is consumed by whoever waits; mark it retrieved
                    # for the future nobody waits on.
                    future.exception()
