"""hostsim's in-memory loopback link: the same exchange over every variant, and the
port semantics it shares with the pty (exclusive open, unplug, replug, close)."""

from __future__ import annotations

import asyncio

import pytest

from device.at.errors import ConnectionLost
from hostsim.link import BYTES, CHUNKED, GARBAGE, VARIANTS, LinkVariant, LoopbackPorts
from hostsim.sim import HostSim

WAIT = 5.0


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.name for v in VARIANTS])
async def test_one_exchange_over_every_variant(variant: LinkVariant) -> None:
    ports = LoopbackPorts(variant)
    async with HostSim(endpoint=ports.endpoint) as sim:
        gw = sim[0]
        assert gw.path.startswith("loopback:")
        channel = await ports.open(gw.path, default_timeout=WAIT)
        try:
            await channel.command("ATE0")
            await channel.command("AT+CMGF=1")
            assert gw.deliver("000", "checkin: now") == 0
            listing = await channel.command('AT+CMGL="ALL"', prefixes=("+CMGL",))
            assert listing.lines[1] == "checkin: now"
            sent = await channel.command_with_body('AT+CMGS="000"', "pong")
            assert sent.prefixed("+CMGS") == ["0"]
            assert [s.text for s in gw.sent] == ["pong"]
            # Noise only on the noisy variant, and only between commands.
            assert (channel.garbage_count > 0) == (variant is GARBAGE)
        finally:
            await channel.close()


@pytest.mark.parametrize(("variant", "most"), [(BYTES, 1), (CHUNKED, CHUNKED.chunk_size)])
async def test_pieces_arrive_in_order_and_apart(variant: LinkVariant, most: int) -> None:
    ports = LoopbackPorts(variant)
    pieces: list[bytes] = []
    async with HostSim(endpoint=ports.endpoint) as sim:
        channel = await ports.open(sim[0].path, default_timeout=WAIT)
        receive = channel._data_received

        whole = asyncio.Event()

        def spy(data: bytes) -> None:
            pieces.append(data)
            receive(data)
            if b"".join(pieces).endswith(b"OK\r\n"):
                whole.set()

        channel._data_received = spy  # type: ignore[method-assign]
        try:
            await channel.command("AT+CGMI")
            # The answer ends at "OK\r" (a bare CR ends a line): byte by byte, the "\n"
            # behind it may still be on its way when the command returns.
            await asyncio.wait_for(whole.wait(), WAIT)
        finally:
            await channel.close()
    assert b"".join(pieces) == b"AT+CGMI\r\r\nQuectel\r\n\r\nOK\r\n"
    assert max(len(p) for p in pieces) == most


async def test_open_unplug_replug_and_close() -> None:
    ports = LoopbackPorts()
    async with HostSim(link="gw", endpoint=ports.endpoint) as sim:
        gw = sim[0]
        with pytest.raises(ConnectionLost, match="no such loopback port"):
            await ports.open("elsewhere")
        channel = await ports.open("gw", default_timeout=WAIT)
        with pytest.raises(ConnectionLost, match="in use"):
            await ports.open(gw.path)
        await channel.command("AT")
        gw.unplug()
        await asyncio.wait_for(channel.closed.wait(), WAIT)
        with pytest.raises(ConnectionLost):
            await channel.command("AT")
        with pytest.raises(ConnectionLost, match="no such loopback port"):
            await ports.open("gw")
        gw.replug()
        again = await ports.open("gw", default_timeout=WAIT)
        try:
            assert (await again.command("AT+CGMR")).lines == ("BG96MAR02A07M1G",)
        finally:
            await again.close()
        await again.close()  # idempotent
        # Closed by the TE: the port can be opened again at once.
        third = await ports.open("gw", default_timeout=WAIT)
        await third.close()


def test_variants_are_checked() -> None:
    with pytest.raises(ValueError):
        LinkVariant("x", chunk_size=0)
    with pytest.raises(ValueError):
        LinkVariant("x", garbage_rate=2.0)
