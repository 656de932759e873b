"""The asyncio AT channel over a real pseudo-terminal, against a scripted peer.

The peer is the pty master, driven by the test: it reads what the channel
wrote and answers byte for byte, so timeouts, lost ports, URCs inside
responses and the SMS prompt are exercised exactly. Where one read must hold
several lines exactly, the channel sits on a transport whose reads the test
makes itself (:class:`_Wire`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
from collections.abc import AsyncIterator, Callable

import pytest
from harness import PtyPeer

from device.at.channel import AtChannel, Response, write_now
from device.at.codec import GARBAGE_HEAD, AtCodec, Event, Urc
from device.at.errors import (
    CmeError,
    CmsError,
    CommandError,
    CommandTimeout,
    ConnectionLost,
    ResponseDamaged,
    ResponseError,
)


@contextlib.asynccontextmanager
async def connected(timeout: float = 2.0) -> AsyncIterator[tuple[PtyPeer, AtChannel]]:
    peer = PtyPeer.pair()
    channel = await AtChannel.open(peer.path, default_timeout=timeout)
    try:
        yield peer, channel
    finally:
        await channel.close()
        peer.close()


async def test_command_response_and_urc_inside_it() -> None:
    async with connected() as (peer, channel):
        seen: list[Urc] = []
        channel.add_urc_listener(seen.append)
        task = asyncio.create_task(channel.command("AT+CSQ"))
        await peer.expect(b"AT+CSQ\r")
        peer.write(b'AT+CSQ\r\r\n+CSQ: 17,99\r\n\r\n+CMTI: "SM",4\r\n\r\nOK\r\n')
        response = await task
        assert response.lines == ("+CSQ: 17,99",)
        assert response.prefixed("+CSQ") == ["17,99"]
        assert [u.text for u in seen] == ['+CMTI: "SM",4']


async def test_error_results_are_typed() -> None:
    async with connected() as (peer, channel):
        task = asyncio.create_task(channel.command("AT+CPIN?"))
        await peer.expect(b"AT+CPIN?\r")
        peer.write(b"\r\n+CME ERROR: SIM busy\r\n")
        with pytest.raises(CmeError) as info:
            await task
        assert info.value.code == 14 and info.value.busy
        task = asyncio.create_task(channel.command("AT+CMGR=7"))
        await peer.expect(b"AT+CMGR=7\r")
        peer.write(b"\r\n+CMS ERROR: 321\r\n")
        with pytest.raises(CmsError) as cms:
            await task
        assert cms.value.code == 321 and cms.value.meaning == "invalid memory index"
        task = asyncio.create_task(channel.command("AT+FOO"))
        await peer.expect(b"AT+FOO\r")
        peer.write(b"\r\nERROR\r\n")
        with pytest.raises(CommandError):
            await task


async def test_timeout_then_recovery() -> None:
    async with connected(timeout=0.2) as (peer, channel):
        channel.quiet_period = 0.3
        with pytest.raises(CommandTimeout):
            await channel.command("AT")
        # The late answer is stray and must not satisfy the next command.
        peer.write(b"\r\nOK\r\n")
        task = asyncio.create_task(channel.command("AT+CGMI", timeout=5))
        await peer.expect(b"AT+CGMI\r")
        peer.write(b"\r\nhostsim\r\n\r\nOK\r\n")
        response = await task
        assert response.lines == ("hostsim",)


async def test_one_command_in_flight() -> None:
    async with connected() as (peer, channel):
        first = asyncio.create_task(channel.command("AT+CGMI"))
        second = asyncio.create_task(channel.command("AT+CGMM"))
        await peer.expect(b"AT+CGMI\r")
        assert b"AT+CGMM" not in peer.buf
        peer.write(b"\r\nmaker\r\n\r\nOK\r\n")
        await peer.expect(b"AT+CGMM\r")
        peer.write(b"\r\nmodel\r\n\r\nOK\r\n")
        assert (await first).lines == ("maker",)
        assert (await second).lines == ("model",)


async def test_sms_prompt_exchange_and_cancel() -> None:
    async with connected(timeout=0.3) as (peer, channel):
        task = asyncio.create_task(channel.command_with_body('AT+CMGS="000"', "pong"))
        await peer.expect(b'AT+CMGS="000"\r')
        peer.write(b"\r\n> ")
        await peer.expect(b"pong\x1a")
        peer.write(b"\r\n+CMGS: 12\r\n\r\nOK\r\n")
        response = await task
        assert response.prefixed("+CMGS") == ["12"]
        # No prompt: the channel gives up and sends ESC to leave the prompt state.
        with pytest.raises(CommandTimeout):
            await channel.command_with_body('AT+CMGS="000"', "pong")
        await peer.expect(b'AT+CMGS="000"\r')
        await peer.expect(b"\x1b")


async def test_error_instead_of_prompt() -> None:
    async with connected() as (peer, channel):
        task = asyncio.create_task(channel.command_with_body('AT+CMGS="123"', "x"))
        await peer.expect(b'AT+CMGS="123"\r')
        peer.write(b"\r\n+CMS ERROR: 302\r\n")
        with pytest.raises(CmsError):
            await task


async def test_listener_exception_does_not_break_the_reader(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with connected() as (peer, channel):

        def broken(urc: Urc) -> None:
            raise RuntimeError("listener bug")

        seen: list[str] = []
        channel.add_urc_listener(broken)
        remove = channel.add_urc_listener(lambda u: seen.append(u.name))
        peer.write(b"\r\nRING\r\n")
        task = asyncio.create_task(channel.command("AT"))
        await peer.expect(b"AT\r")
        peer.write(b"\r\nOK\r\n")
        await task
        assert seen == ["RING"]
        remove()
    assert "listener bug" in caplog.text


async def test_port_lost_fails_the_command_in_flight() -> None:
    peer = PtyPeer.pair()
    channel = await AtChannel.open(peer.path, default_timeout=5)
    try:
        task = asyncio.create_task(channel.command("AT"))
        await peer.expect(b"AT\r")
        peer.close()  # both ends gone: the reader sees EOF/EIO
        with pytest.raises((ConnectionLost, CommandTimeout)):
            await task
        await asyncio.wait_for(channel.closed.wait(), 5)
        with pytest.raises(ConnectionLost):
            await channel.command("AT")
    finally:
        await channel.close()


async def test_open_missing_port() -> None:
    with pytest.raises(ConnectionLost):
        await AtChannel.open("/dev/does-not-exist-smscmd")


class _Wire(asyncio.Transport):
    """A transport that keeps what the channel writes; the test plays the modem by
    calling the protocol's ``data_received`` itself, one call being one read."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.protocol: asyncio.Protocol | None = None
        self.wrote = asyncio.Event()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)
        self.wrote.set()

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        if self.protocol is not None:
            self.protocol.connection_lost(None)


async def on_wire() -> tuple[_Wire, AtChannel]:
    wire = _Wire()

    async def connect(
        factory: Callable[[], asyncio.Protocol],
    ) -> tuple[asyncio.BaseTransport, asyncio.BaseProtocol]:
        wire.protocol = factory()
        wire.protocol.connection_made(wire)
        return wire, wire.protocol

    return wire, await AtChannel.attach(connect, port="wire", default_timeout=2.0)


async def answer(wire: _Wire, channel: AtChannel, command: str, read: bytes) -> Response:
    """Run ``command`` and answer it with ``read``, in one ``data_received`` call."""
    task = asyncio.create_task(channel.command(command))
    await asyncio.wait_for(wire.wrote.wait(), 2.0)
    wire.wrote.clear()
    assert wire.protocol is not None
    wire.protocol.data_received(read)
    return await asyncio.wait_for(task, 2.0)


async def test_superscript_digit_in_an_error_code_keeps_the_rest_of_the_read() -> None:
    """``+CME ERROR: ²`` (bit 7 of ``2`` flipped on the line) after a command's ``OK``, in
    the same read: the ``OK`` counts, the stray error is logged. It used to raise
    ValueError out of ``data_received`` and take the ``OK`` with it (issue 12)."""
    wire, channel = await on_wire()
    try:
        response = await answer(
            wire, channel, "AT+CSQ", b"\r\n+CSQ: 17,99\r\n\r\nOK\r\n\r\n+CME ERROR: \xb2\r\n"
        )
        assert response.lines == ("+CSQ: 17,99",)
        task = asyncio.create_task(channel.command("AT+CPIN?"))
        await asyncio.wait_for(wire.wrote.wait(), 2.0)
        assert wire.protocol is not None
        wire.protocol.data_received(b"\r\n+CME ERROR: \xb3\r\n")
        with pytest.raises(CmeError) as info:
            await task
        assert info.value.code is None and info.value.meaning == "\xb3"
    finally:
        await channel.close()


async def test_a_codec_failure_on_one_line_keeps_the_other_events_of_the_read(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Defence in depth: whatever a classifier bug raises costs that one line."""
    real = AtCodec._classify_line

    def buggy(self: AtCodec, line: str, stripped: str) -> Event | None:
        if stripped == "+BOOM: 1":
            raise IndexError("a bug")
        return real(self, line, stripped)

    monkeypatch.setattr(AtCodec, "_classify_line", buggy)
    wire, channel = await on_wire()
    seen: list[Urc] = []
    channel.add_urc_listener(seen.append)
    try:
        response = await answer(
            wire,
            channel,
            "AT+CSQ",
            b'\r\n+CSQ: 17,99\r\n\r\n+BOOM: 1\r\n\r\n+CMTI: "SM",4\r\n\r\nOK\r\n',
        )
        assert response.lines == ("+CSQ: 17,99",)
        assert [u.name for u in seen] == ["+CMTI"]
        assert "AT codec failed on line '+BOOM: 1'" in caplog.text
        assert channel.garbage_count == 1
    finally:
        await channel.close()


async def test_a_failing_dispatch_keeps_the_other_events_of_the_read(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    wire, channel = await on_wire()
    real = channel._dispatch

    def dispatch(event: Event) -> None:
        if isinstance(event, Urc) and event.name == "+BOOM":
            raise RuntimeError("a bug")
        real(event)

    monkeypatch.setattr(channel, "_dispatch", dispatch)
    try:
        response = await answer(wire, channel, "AT", b"\r\n+BOOM: 1\r\n\r\nOK\r\n")
        assert response.final.ok
        assert "dispatching" in caplog.text
    finally:
        await channel.close()


async def test_an_overlong_line_damages_the_response_in_flight() -> None:
    """A body line over the bound: ``OK`` comes, but the command learns that a line of
    its answer was dropped, with what did arrive (never a header without its body)."""
    wire, channel = await on_wire()
    try:
        header = b'+CMGR: "REC UNREAD","003000300030",,"26/11/25,10:00:00+04"'
        with pytest.raises(ResponseDamaged) as info:
            await answer(
                wire, channel, "AT+CMGR=3", b"\r\n" + header + b"\r\n" + b"0" * 5000 + b"\r\nOK\r\n"
            )
        damaged = info.value
        assert isinstance(damaged, ResponseError)
        assert damaged.lines == (header.decode(),)
        assert damaged.dropped == (b"0" * GARBAGE_HEAD,)
        assert damaged.final == "OK"
        # The next command is not affected.
        assert (await answer(wire, channel, "AT", b"\r\nOK\r\n")).final.ok
        # An over-long line between commands damages nothing.
        assert wire.protocol is not None
        wire.protocol.data_received(b"x" * 5000 + b"\r\n")
        assert (await answer(wire, channel, "AT", b"\r\nOK\r\n")).final.ok
    finally:
        await channel.close()


async def test_an_overlong_line_in_a_send_keeps_its_reference() -> None:
    """The send's outcome is what counts: ``+CMGS: <mr>`` and ``OK`` arrived."""
    wire, channel = await on_wire()
    try:
        task = asyncio.create_task(channel.command_with_body('AT+CMGS="000"', "0070"))
        await asyncio.wait_for(wire.wrote.wait(), 2.0)
        wire.wrote.clear()
        assert wire.protocol is not None
        wire.protocol.data_received(b"\r\n> ")
        await asyncio.wait_for(wire.wrote.wait(), 2.0)
        wire.protocol.data_received(b"\r\n" + b"+" * 5000 + b"\r\n+CMGS: 7\r\n\r\nOK\r\n")
        response = await asyncio.wait_for(task, 2.0)
        assert response.prefixed("+CMGS") == ["7"]
    finally:
        await channel.close()


async def test_a_command_reaches_a_serial_port_before_the_loop_runs_again() -> None:
    """pyserial-asyncio's transport writes one loop iteration late (it waits for the
    descriptor to be reported writable); the channel writes to the port at once."""
    async with connected() as (peer, channel):
        task = asyncio.create_task(channel.command("AT+CSQ"))
        await asyncio.sleep(0)  # the command's first step ran (and wrote); the loop did not poll
        ready, _, _ = select.select([peer.fd], [], [], 2.0)  # blocks the loop: no writer runs
        assert ready and os.read(peer.fd, 100) == b"AT+CSQ\r"
        peer.write(b"\r\n+CSQ: 17,99\r\n\r\nOK\r\n")
        assert (await task).lines == ("+CSQ: 17,99",)


class _PortTransport(_Wire):
    """A transport with a ``serial`` port on the write end of a pipe, and a queue."""

    def __init__(self, fd: int, queued: int = 0) -> None:
        super().__init__()
        self.serial = self
        self._fd = fd
        self.queued = queued

    def fileno(self) -> int:
        return self._fd

    def get_write_buffer_size(self) -> int:
        return self.queued


def test_write_now_writes_to_the_port_only_when_nothing_is_queued_and_it_takes_bytes() -> None:
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    try:
        assert write_now(_PortTransport(write_end), b"AT\r") == 3
        assert os.read(read_end, 10) == b"AT\r"
        assert write_now(_PortTransport(write_end, queued=5), b"AT\r") == 0  # order kept
        assert write_now(_Wire(), b"AT\r") == 0  # not a serial transport
        with contextlib.suppress(BlockingIOError):
            while True:
                os.write(write_end, b"x" * 4096)
        assert write_now(_PortTransport(write_end), b"AT\r") == 0  # full: the transport's
    finally:
        os.close(read_end)
        os.close(write_end)
    assert write_now(_PortTransport(write_end), b"AT\r") == 0  # closed: the transport reports


async def test_a_cancelled_command_leaves_the_channel_usable() -> None:
    """Cancelling the caller ends its wait (and its timer: the next command is not
    timed out by the old one's)."""
    async with connected(timeout=0.3) as (peer, channel):
        task = asyncio.create_task(channel.command("AT+CGMI"))
        await peer.expect(b"AT+CGMI\r")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        task = asyncio.create_task(channel.command("AT+CGMM", timeout=5))
        await peer.expect(b"AT+CGMM\r")
        await asyncio.sleep(0.5)  # past the first command's limit
        peer.write(b"\r\nmodel\r\n\r\nOK\r\n")
        assert (await task).lines == ("model",)
