"""hostsim over a real pseudo-terminal, driven with plain pyserial."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
import serial

from hostsim.pty import PtyEndpoint
from hostsim.sim import HostSim

IO_TIMEOUT = 5.0


def exchange(port: str, command: bytes, until: bytes = b"\r\nOK\r\n") -> bytes:
    """Write ``command`` and read until ``until`` (bounded by the serial timeout)."""
    with serial.Serial(port, 115200, timeout=IO_TIMEOUT) as ser:
        ser.write(command)
        return bytes(ser.read_until(until))


async def test_at_over_pty_and_link(tmp_path: Path) -> None:
    link = tmp_path / "modem"

    async with HostSim(link=link) as sim:
        modem = sim.modems[0]
        assert modem.link == link
        assert await asyncio.to_thread(os.path.realpath, link) == modem.path
        assert modem.path.startswith("/dev/pts/")
        out = await asyncio.to_thread(exchange, str(link), b"AT\r")
        assert out == b"AT\r\r\nOK\r\n"
        out = await asyncio.to_thread(exchange, modem.path, b"ATE0;+CMGF=1\r")
        assert out == b"ATE0;+CMGF=1\r\r\nOK\r\n"
    assert not link.exists() and not link.is_symlink()


async def test_deliver_read_and_send_over_pty(tmp_path: Path) -> None:
    async with HostSim() as sim:
        modem = sim[0]
        assert modem.link is None
        await asyncio.to_thread(exchange, modem.path, b"ATE0;+CMGF=1\r")

        # pyserial flushes the input queue on open: open first, then deliver.
        ser = await asyncio.to_thread(serial.Serial, modem.path, timeout=IO_TIMEOUT)
        try:
            assert modem.deliver("000", "checkin: now") == 0
            urc = await asyncio.to_thread(ser.read_until, b'+CMTI: "SM",0\r\n')
        finally:
            ser.close()
        assert urc == b'\r\n+CMTI: "SM",0\r\n'
        out = await asyncio.to_thread(exchange, modem.path, b"AT+CMGR=0\r")
        assert b"\r\ncheckin: now\r\n\r\nOK\r\n" in out
        out = await asyncio.to_thread(exchange, modem.path, b'AT+CMGS="000"\rok\x1a', b"\r\nOK\r\n")
        assert out == b"\r\n> \r\n+CMGS: 0\r\n\r\nOK\r\n"
        assert [s.text for s in modem.sent] == ["ok"]


async def test_wait_until_wakes_on_change_and_times_out() -> None:
    async with HostSim() as sim:
        modem = sim[0]
        waiter = asyncio.create_task(
            modem.wait_until(lambda m: len(m.sent) == 1, timeout=IO_TIMEOUT)
        )
        send = asyncio.create_task(
            asyncio.to_thread(exchange, modem.path, b'AT+CMGF=1;+CMGS="000"\rpong\x1a')
        )
        await waiter
        assert modem.sent[0].text == "pong"
        await send
        await modem.wait_until(lambda m: True, timeout=0.01)
        with pytest.raises(TimeoutError):
            await modem.wait_until(lambda m: m.storages["SM"].used > 0, timeout=0.05)


async def test_several_modems_get_numbered_links(tmp_path: Path) -> None:
    async with HostSim(2, link=tmp_path / "m") as sim:
        assert [m.link for m in sim.modems] == [tmp_path / "m0", tmp_path / "m1"]
        assert sim[0].path != sim[1].path
        for m in sim.modems:
            assert await asyncio.to_thread(exchange, str(m.link), b"AT\r") == b"AT\r\r\nOK\r\n"
    assert await asyncio.to_thread(os.listdir, tmp_path) == []


async def test_existing_link_is_replaced(tmp_path: Path) -> None:
    link = tmp_path / "modem"
    link.symlink_to("/nonexistent")

    async with HostSim(link=link) as sim:
        assert os.readlink(link) == sim[0].path
    assert not link.is_symlink()


async def test_no_fd_leak_and_close_is_idempotent(tmp_path: Path) -> None:
    before = sorted(os.listdir("/proc/self/fd"))

    sim = HostSim(link=tmp_path / "modem")
    await sim.start()
    await asyncio.to_thread(exchange, sim[0].path, b"AT\r")
    await sim.close()
    await sim.close()
    sim[0].modem.feed(b"AT\r")  # output after close is dropped, not raised
    sim[0].deliver("000", "late")
    assert sorted(os.listdir("/proc/self/fd")) == before
    assert not (tmp_path / "modem").exists()


async def test_endpoint_buffers_when_nobody_reads() -> None:
    received: list[bytes] = []
    endpoint = PtyEndpoint(asyncio.get_running_loop(), received.append)
    try:
        endpoint.write(b"x" * 200_000)  # far more than the pty queue holds
        assert not endpoint.closed
    finally:
        endpoint.close()
    assert endpoint.closed
