"""The asyncio AT channel over a real pseudo-terminal, against a scripted peer.

The peer is the pty master, driven by the test: it reads what the channel
wrote and answers byte for byte, so timeouts, lost ports, URCs inside
responses and the SMS prompt are exercised exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from harness import PtyPeer

from device.at.channel import AtChannel
from device.at.codec import Urc
from device.at.errors import CmeError, CmsError, CommandError, CommandTimeout, ConnectionLost


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
