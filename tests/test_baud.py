"""hostsim's line pace (``--baud``) and byte log (:mod:`hostsim.wire`), over a real pty.

A UART at N baud with 8N1 framing moves N/10 bytes a second (start bit, 8 data bits,
stop bit: the asynchronous framing of ITU-T V.250 §6.2.11 ``+ICF``, format 3 = 8 data
bits, 1 stop bit, no parity, the default of the Quectel BG96 AT manual's ``AT+ICF``).
The timings here are elapsed times of real transfers through the pty, bounded below
exactly (no byte arrives early) and above with room for a loaded machine.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import serial
from harness import running_hostsim
from hypothesis import given, settings
from hypothesis import strategies as st

from hostsim.sim import HostSim
from hostsim.wire import (
    MAX_SIMS_ON_SELECT,
    ByteLog,
    Direction,
    Pacer,
    byte_time,
    paced_loop_factory,
    precise_loop,
    read_log,
)

IO_TIMEOUT = 10.0
#: Extra time a loaded machine may add to a paced transfer.
SLACK = 0.35


def read_exactly(ser: serial.Serial, count: int) -> tuple[bytes, float]:
    """``count`` bytes from ``ser`` and the monotonic time the last one came."""
    data = bytes(ser.read(count))
    return data, time.monotonic()


async def inject_and_read(payload: bytes, baud: int | None = None) -> tuple[bytes, float, ByteLog]:
    """``payload`` from the module to a reader on its pty: what was read, the seconds
    from the injection to the last byte, and hostsim's byte log."""
    log = ByteLog()
    async with HostSim(baud=baud, byte_log=log) as sim:
        modem = sim[0]
        ser = await asyncio.to_thread(serial.Serial, modem.path, timeout=IO_TIMEOUT)
        try:
            reading = asyncio.create_task(asyncio.to_thread(read_exactly, ser, len(payload)))
            start = time.monotonic()
            modem.inject(payload)
            data, end = await reading
        finally:
            ser.close()
    return data, end - start, log


async def test_output_at_9600_takes_its_wire_time_and_is_logged() -> None:
    """480 bytes from the module at 9600 baud: 0.5 s on the wire (960 bytes/s)."""
    payload = bytes(range(32, 128)) * 5
    data, elapsed, log = await inject_and_read(payload, baud=9600)
    wire = len(payload) * byte_time(9600)
    assert data == payload
    assert wire - 0.005 <= elapsed <= wire + SLACK
    out = [c for c in log.chunks if c.direction is Direction.TO_TE]
    assert b"".join(c.data for c in out) == payload
    assert len(out) > 10, "paced output comes in many small chunks, not one write"
    first_byte = out[0].t - (len(out[0].data) - 1) * byte_time(9600)
    assert out[-1].t - first_byte == pytest.approx(wire - byte_time(9600), abs=SLACK)


async def test_exchange_at_9600_both_directions_paced_and_log_complete(tmp_path: Path) -> None:
    """A command line from the TE is consumed at the line rate too: ``ATE1E1…`` is 99
    bytes in; the echo of each byte runs alongside (full duplex), so after the last
    byte only its echo and ``\\r\\nOK\\r\\n`` are left: 106 byte times in all."""
    command = b"AT" + b"E1" * 48 + b"\r"
    path = tmp_path / "bytes.jsonl"
    log = ByteLog(path)
    async with HostSim(baud=9600, byte_log=log) as sim:
        modem = sim[0]
        with serial.Serial(modem.path, timeout=IO_TIMEOUT) as ser:
            start = time.monotonic()
            await asyncio.to_thread(ser.write, command)
            answer = await asyncio.to_thread(ser.read_until, b"\r\nOK\r\n")
            end = time.monotonic()
    log.close()
    assert answer == command + b"\r\nOK\r\n"
    wire = (len(command) + 1 + len(b"\r\nOK\r\n")) * byte_time(9600)
    assert wire - 0.005 <= end - start <= wire + SLACK
    chunks = read_log(path)
    assert b"".join(c.data for c in chunks if c.direction is Direction.TO_MODULE) == command
    assert b"".join(c.data for c in chunks if c.direction is Direction.TO_TE) == answer
    assert all(c.port == modem.path for c in chunks)
    assert [c.t for c in chunks] == sorted(c.t for c in chunks)
    line = json.loads(path.read_text().splitlines()[0])
    assert set(line) == {"t", "dir", "port", "hex"}


async def test_unpaced_by_default() -> None:
    """Without ``baud`` the same 480 bytes (0.5 s at 9600) come in well under that, in
    one chunk."""
    payload = bytes(range(32, 128)) * 5
    data, elapsed, log = await inject_and_read(payload)
    assert data == payload
    assert elapsed < 0.25
    assert [c.data for c in log.chunks] == [payload]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=40), max_size=8))
def test_pacer_keeps_order_whatever_the_chunking(pushes: list[bytes]) -> None:
    """Any split of the pushes hands on the same bytes in order, none before its time."""

    async def run() -> tuple[bytes, list[tuple[float, int]]]:
        loop = asyncio.get_running_loop()
        got: list[tuple[float, bytes]] = []
        done = asyncio.Event()
        total = sum(len(p) for p in pushes)

        def deliver(data: bytes) -> None:
            got.append((loop.time(), data))
            if sum(len(d) for _, d in got) == total:
                done.set()

        pacer = Pacer(loop, 1_000_000, deliver)
        start = loop.time()
        for data in pushes:
            pacer.push(data)
        if total:
            await asyncio.wait_for(done.wait(), IO_TIMEOUT)
        assert pacer.pending == 0
        seen = 0
        times = []
        for t, data in got:
            seen += len(data)
            times.append((t - start, seen))
        return b"".join(d for _, d in got), times

    out, times = asyncio.run(run())
    assert out == b"".join(pushes)
    for elapsed, seen in times:
        assert elapsed >= seen * byte_time(1_000_000) - 1e-6


def test_byte_time_rejects_a_bad_rate() -> None:
    assert byte_time(115200) == pytest.approx(10 / 115200)
    with pytest.raises(ValueError):
        byte_time(0)


async def test_hostsim_run_baud_and_byte_log(tmp_path: Path) -> None:
    """``hostsim run --baud 115200 --byte-log PATH``: an exchange is logged whole."""
    path = tmp_path / "bytes.jsonl"
    async with running_hostsim(tmp_path, "--baud", "115200", "--byte-log", str(path)) as ready:
        port = ready["sims"][0]["link"]
        with serial.Serial(port, timeout=IO_TIMEOUT) as ser:
            await asyncio.to_thread(ser.write, b"AT\r")
            answer = await asyncio.to_thread(ser.read_until, b"\r\nOK\r\n")
    assert answer == b"AT\r\r\nOK\r\n"
    chunks = read_log(path)
    assert b"".join(c.data for c in chunks if c.direction is Direction.TO_MODULE) == b"AT\r"
    assert b"".join(c.data for c in chunks if c.direction is Direction.TO_TE) == answer


def _transfer_end_lateness(loop_factory: Callable[[], asyncio.AbstractEventLoop]) -> list[float]:
    """40 runs of 3 to 41 bytes (lengths spread, so the run's end falls anywhere
    between two ticks) through a 115200-baud :class:`Pacer`, 5 ms apart: for each,
    how late its last byte was handed on."""

    async def run() -> list[float]:
        loop = asyncio.get_running_loop()
        late: list[float] = []
        for i in range(40):
            size = 3 + (i * 7) % 39
            done = asyncio.Event()
            got = bytearray()

            def deliver(
                data: bytes, got: bytearray = got, done: asyncio.Event = done, size: int = size
            ) -> None:
                got.extend(data)
                if len(got) == size:
                    done.set()

            pacer = Pacer(loop, 115200, deliver)
            start = loop.time()
            pacer.push(bytes(size))
            await asyncio.wait_for(done.wait(), IO_TIMEOUT)
            late.append(loop.time() - (start + size * byte_time(115200)))
            await asyncio.sleep(0.005)
        return late

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(run())


def test_a_paced_transfer_ends_on_time_on_the_precise_loop() -> None:
    """On :func:`precise_loop` (what ``hostsim run --baud`` runs on) a transfer's last
    byte is handed on when it is due: median lateness under 0.3 ms over 40 transfers
    (epoll's millisecond timeouts made it up to 1 ms), and never early."""
    late = _transfer_end_lateness(precise_loop)
    assert min(late) >= -1e-6
    assert statistics.median(late) < 0.0003


def test_paced_loop_factory() -> None:
    """Unpaced: the default loop; paced: select(2), unless too many modems for it."""
    assert paced_loop_factory(None, 1) is None
    assert paced_loop_factory(115200, 1) is precise_loop
    assert paced_loop_factory(115200, MAX_SIMS_ON_SELECT + 1) is None
