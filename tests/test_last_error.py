"""The last error, in the unit's STATUS= line and in ``smscmd status`` (issue 13, "The
operator's commands": "puts the last error in the systemd STATUS line").

What sd_notify(3) carries is checked on a real AF_UNIX datagram socket, as in
tests/test_systemd.py; the agent's own reports over the in-memory link (tests/test_agent.py
``rig``); the whole path through ``smscmd run`` and ``smscmd status`` with a missing port.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from harness import AgentProcess, Line
from test_agent import WAIT, Recorder, rig

from device import observer
from device.cli import status_lines
from device.journal import OutboxState
from device.modem import ModemState
from device.observer import MAX_ERROR_TEXT, ErrorNote, LastError
from device.service import SystemdStatus
from device.systemd import MAX_STATUS, Notifier


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket standing in for systemd's NOTIFY_SOCKET (non-blocking)."""
    path = Path("/tmp") / f"smscmd-notify-{uuid.uuid4().hex[:12]}.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.setblocking(False)
    try:
        yield server, str(path)
    finally:
        server.close()
        path.unlink(missing_ok=True)


async def received(server: socket.socket) -> str:
    loop = asyncio.get_running_loop()
    data = await asyncio.wait_for(loop.sock_recv(server, 4096), WAIT)
    return data.decode()


class Clock:
    """time.monotonic for device.observer, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_last_error_is_one_bounded_line_until_it_is_too_old(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    monkeypatch.setattr(observer.time, "monotonic", clock)
    last = LastError(shown_for=60.0)
    assert last.current() is None and last.expires_in() is None
    note = last.record("+CMS ERROR: 38\n  network   out of order")
    assert note.text == "+CMS ERROR: 38 network out of order"
    assert note.at.tzinfo is not None and last.current() == note
    clock.now += 59.0
    assert last.current() == note and last.expires_in() == pytest.approx(1.0)
    newer = last.record("x" * 500)  # a newer error replaces it, and starts its own time
    assert len(newer.text) == MAX_ERROR_TEXT and newer.text.endswith("…")
    clock.now += 59.0
    assert last.current() == newer
    clock.now += 1.0
    assert last.current() is None and last.expires_in() is None
    assert last.record("   ").text == "error"  # never an empty text


def test_status_shows_the_last_error_as_a_row() -> None:
    """``smscmd status``: a ``last error`` row with the time and the text; none without."""
    base = {
        "state": "ready", "state_since": "2026-12-02T12:00:00+00:00", "port": "/dev/ttyUSB2",
        "module": {"manufacturer": "Quectel", "model": "BG96", "revision": "R1", "imei": "1"},
        "registration": "home", "signal": "-71 dBm", "uptime_seconds": 5.0,
        "counters": {"received": 1}, "journal": {"inbox": 1},
    }  # fmt: skip
    assert not any(line.startswith("last error") for line in status_lines(base))
    note = {"at": "2026-12-02T12:03:04+00:00", "text": "send to 000 failed: +CMS ERROR: 38"}
    lines = status_lines({**base, "last_error": note})
    (row,) = [line for line in lines if line.startswith("last error")]
    assert row.split(None, 2)[2] == "2026-12-02T12:03:04+00:00 send to 000 failed: +CMS ERROR: 38"
    assert row.index("2026") == lines[0].index("ready")  # aligned with the other values


async def test_the_units_status_line_carries_the_last_error_then_drops_it(
    notify_socket: tuple[socket.socket, str],
) -> None:
    """sd_notify(3) STATUS=: the state, then ``last error HH:MM:SS text``; once the
    error is older than it is shown for, the line is sent again without it."""
    server, address = notify_socket
    notifier = Notifier(address)
    status = SystemdStatus(notifier, "/dev/ttyUSB2", LastError(shown_for=0.3))
    try:
        status.state_changed(ModemState.WAITING_FOR_NETWORK, ModemState.READY)
        assert await received(server) == "STATUS=modem ready on /dev/ttyUSB2"
        note = status.last_error.record("send to 000 failed: +CMS ERROR: 38")
        status.error(note)
        clock = note.at.astimezone().strftime("%H:%M:%S")
        assert await received(server) == (
            f"STATUS=modem ready on /dev/ttyUSB2; last error {clock} "
            "send to 000 failed: +CMS ERROR: 38"
        )
        assert await received(server) == "STATUS=modem ready on /dev/ttyUSB2"
    finally:
        status.close()
        notifier.close()


async def test_a_long_error_never_pushes_the_state_out_of_the_status_line(
    notify_socket: tuple[socket.socket, str],
) -> None:
    server, address = notify_socket
    notifier = Notifier(address)
    status = SystemdStatus(notifier, "/dev/ttyUSB2")
    try:
        status.state_changed(ModemState.PROBING, ModemState.DISCONNECTED)
        await received(server)
        status.error(status.last_error.record("port lost: " + "gone " * 200))
        status.trouble(("re-initialised 6 times in a row " * 10,))
        await received(server)
        line = await received(server)
        assert line.startswith("STATUS=modem disconnected on /dev/ttyUSB2; last error ")
        assert len(line) == len("STATUS=") + MAX_STATUS and line.endswith("…")
        assert "port lost: gone" in line and "\n" not in line
    finally:
        status.close()
        notifier.close()


class ErrorRecorder(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.errors: list[ErrorNote] = []

    def error(self, note: ErrorNote) -> None:
        self.errors.append(note)
        self._poke()


async def test_a_failed_send_is_the_agents_last_error(tmp_path: Path, line: Line) -> None:
    """+CMS ERROR 38 "network out of order" (27.005 §3.2.5) on a reply: logged, retried,
    and the agent's last error (the observer hears it, status_report carries it)."""
    async with rig(tmp_path, line, send_retry_initial=0.05) as r:
        recorder = ErrorRecorder()
        r.agent.observer = recorder  # the agent tells its observer of the time of the error
        assert (await r.agent.status_report())["last_error"] is None
        r.gw.modem.fail_next_send(38)
        r.gw.deliver("000", "ping: once")
        await asyncio.wait_for(recorder.until(lambda: bool(recorder.errors)), WAIT)
        # The retry went out (the outbox tells the rig's own recorder).
        await asyncio.wait_for(r.recorder.until(lambda: bool(r.recorder.sent_rows)), WAIT)
        (note,) = recorder.errors
        assert note.text.startswith("send to 000 failed: ") and "+CMS ERROR 38" in note.text
        report = (await r.agent.status_report())["last_error"]
        assert report == note.as_dict()
        assert datetime.fromisoformat(report["at"]) == note.at.replace(microsecond=0)
        assert r.journal.outbox()[0].state is OutboxState.SENT  # the error stays the last one
        assert (await r.agent.status_report())["last_error"] == report


async def test_a_lost_port_is_the_agents_last_error(tmp_path: Path) -> None:
    """A USB unplug (the pty goes away): ``port lost: ...`` is the last error."""
    async with rig(tmp_path, Line.pty()) as r:
        recorder = ErrorRecorder()
        r.agent.observer = recorder  # the agent tells its observer of the time of the error
        r.gw.unplug()
        await asyncio.wait_for(recorder.until(lambda: bool(recorder.errors)), WAIT)
        assert recorder.errors[0].text.startswith("port lost: ")
        assert (await r.agent.status_report())["last_error"]["text"].startswith("port lost: ")


async def test_smscmd_status_and_the_unit_show_why_the_port_cannot_be_opened(
    tmp_path: Path, notify_socket: tuple[socket.socket, str]
) -> None:
    """``smscmd run`` on a port that is not there yet keeps retrying; systemd's STATUS=
    and ``smscmd status`` both say so, with the time."""
    server, address = notify_socket
    port = Path("/tmp") / f"smscmd-no-tty-{uuid.uuid4().hex[:8]}"  # short: the text is bounded
    control = tmp_path / "c.sock"
    env = {**os.environ, "NOTIFY_SOCKET": address}
    agent = AgentProcess(tmp_path, str(port), "--socket", str(control), env=env)
    await agent.start()
    try:
        while "last error" not in (line := await received(server)):
            assert agent.proc is not None and agent.proc.returncode is None, agent.stderr()
        assert line.startswith(f"STATUS=modem disconnected on {port}; last error ")
        assert f"reconnecting: cannot open {port}" in line
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "device.cli", "status", "--socket", str(control)],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        (row,) = [r for r in result.stdout.splitlines() if r.startswith("last error")]
        assert f"reconnecting: cannot open {port}" in row
        as_json = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "device.cli", "status", "--json", "--socket", str(control)],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        note = json.loads(as_json.stdout)["last_error"]
        assert datetime.fromisoformat(note["at"]).tzinfo is not None
        assert note["text"].startswith(f"reconnecting: cannot open {port}")
    finally:
        assert await agent.terminate() == 0
        await agent.cleanup()
