"""device.systemd: the sd_notify protocol against a real AF_UNIX datagram socket."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import AgentProcess

from device.systemd import (
    MAX_STATUS,
    Notifier,
    run_watchdog,
    watchdog_interval,
    watchdog_period,
)


@pytest.fixture
def sock_path() -> Iterator[tuple[socket.socket, str]]:
    # AF_UNIX paths are limited to ~107 bytes: pytest's tmp_path can be longer.
    path = Path("/tmp") / f"smscmd-notify-{uuid.uuid4().hex[:12]}.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.settimeout(2.0)
    try:
        yield server, str(path)
    finally:
        server.close()
        path.unlink(missing_ok=True)


@pytest.fixture
def sock_abstract() -> Iterator[tuple[socket.socket, str]]:
    name = f"smscmd-test-{uuid.uuid4().hex}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind("\0" + name)
    server.settimeout(2.0)
    try:
        yield server, "@" + name
    finally:
        server.close()


def _recv(server: socket.socket) -> str:
    return server.recv(4096).decode()


def _pending(server: socket.socket) -> list[str]:
    out: list[str] = []
    server.setblocking(False)
    try:
        while True:
            out.append(server.recv(4096).decode())
    except BlockingIOError:
        pass
    finally:
        server.settimeout(2.0)
    return out


@pytest.mark.parametrize("kind", ["sock_path", "sock_abstract"])
def test_messages(kind: str, request: pytest.FixtureRequest) -> None:
    server, address = request.getfixturevalue(kind)
    notifier = Notifier.from_env({"NOTIFY_SOCKET": address})
    assert notifier.enabled
    assert notifier.ready()
    assert _recv(server) == "READY=1"
    assert notifier.ready("ready: Quectel BG96")
    assert _recv(server) == "READY=1\nSTATUS=ready: Quectel BG96"
    assert notifier.status("waiting_for_sim\nagain")
    assert _recv(server) == "STATUS=waiting_for_sim again"
    assert notifier.watchdog()
    assert _recv(server) == "WATCHDOG=1"
    assert notifier.stopping()
    assert _recv(server) == "STOPPING=1"
    notifier.close()


def test_status_is_cut(sock_path: tuple[socket.socket, str]) -> None:
    server, address = sock_path
    notifier = Notifier(address)
    notifier.status("x" * 1000)
    text = _recv(server)
    assert text.startswith("STATUS=x")
    assert len(text) == len("STATUS=") + MAX_STATUS


def test_noop_without_socket() -> None:
    notifier = Notifier.from_env({})
    assert not notifier.enabled
    assert not notifier.ready()
    assert not notifier.status("x")
    assert not notifier.watchdog()
    assert not notifier.stopping()


def test_invalid_address_is_ignored() -> None:
    notifier = Notifier("relative/path")
    assert not notifier.enabled
    assert not notifier.ready()


def test_unset_removes_the_variables(sock_path: tuple[socket.socket, str]) -> None:
    _, address = sock_path
    env = {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "1000", "OTHER": "1"}
    notifier = Notifier.from_env(env, unset=True)
    assert notifier.enabled
    assert env == {"OTHER": "1"}


def test_send_failure_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    notifier = Notifier(str(tmp_path / "nobody-listens.sock"))
    with caplog.at_level("DEBUG", logger="device.systemd"):
        assert not notifier.ready()
        assert not notifier.watchdog()
        assert not notifier.watchdog()
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "cannot notify systemd" in warnings[0].getMessage()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "60000000"}, 60.0),
        ({"WATCHDOG_USEC": "500000", "WATCHDOG_PID": str(os.getpid())}, 0.5),
        ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "x"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({"WATCHDOG_USEC": ""}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    assert watchdog_interval(env) == expected
    period = watchdog_period(env)
    assert period == (None if expected is None else expected / 2)


def test_watchdog_interval_from_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval() == 2.0
    assert watchdog_period() == 1.0


@pytest.mark.async_timeout(10)
async def test_run_watchdog_pings_only_while_healthy(
    sock_path: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, address = sock_path
    monkeypatch.setenv("WATCHDOG_USEC", "20000")  # 20 ms: ping every 10 ms
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    notifier = Notifier(address)
    stop = asyncio.Event()
    health = {"ok": True, "calls": 0}
    unhealthy_seen = asyncio.Event()
    healthy_again = asyncio.Event()

    def healthy() -> bool:
        health["calls"] += 1
        calls = health["calls"]
        if calls == 3:
            health["ok"] = False
        elif calls == 8:
            unhealthy_seen.set()
        elif calls == 9:
            health["ok"] = True
        elif calls == 11:
            healthy_again.set()
            stop.set()
        return bool(health["ok"])

    await run_watchdog(notifier, healthy, stop)
    assert unhealthy_seen.is_set()
    assert healthy_again.is_set()
    pings = _pending(server)
    # calls 1-2 and 9-11 are healthy: 5 pings; calls 3-8 withheld.
    assert pings == ["WATCHDOG=1"] * 5


@pytest.mark.async_timeout(10)
async def test_run_watchdog_counts_exceptions_as_unhealthy(
    sock_path: tuple[socket.socket, str],
) -> None:
    server, address = sock_path
    notifier = Notifier(address)
    stop = asyncio.Event()
    calls = 0

    def broken() -> bool:
        nonlocal calls
        calls += 1
        if calls >= 3:
            stop.set()
        raise RuntimeError("boom")

    await run_watchdog(notifier, broken, stop, period=0.01)
    assert calls == 3
    assert _pending(server) == []


@pytest.mark.async_timeout(10)
async def test_run_watchdog_stops_at_once(sock_path: tuple[socket.socket, str]) -> None:
    server, address = sock_path
    notifier = Notifier(address)

    stop = asyncio.Event()
    # An hour between pings: only the stop event can end the wait in time.
    task = asyncio.create_task(run_watchdog(notifier, lambda: True, stop, period=3600))
    await asyncio.sleep(0)
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert _pending(server) == ["WATCHDOG=1"]


@pytest.mark.async_timeout(10)
async def test_run_watchdog_returns_without_watchdog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    calls: list[int] = []

    def healthy() -> bool:
        calls.append(1)
        return True

    # No WATCHDOG_USEC: returns at once, never asks for health.
    await run_watchdog(Notifier("/nonexistent.sock"), healthy, asyncio.Event())
    # No notify socket at all: also returns at once, whatever the period.
    await run_watchdog(Notifier(None), healthy, asyncio.Event(), period=0.01)
    assert calls == []


@pytest.mark.async_timeout(60)
async def test_the_agent_speaks_sd_notify(tmp_path: Path) -> None:
    """`smscmd run` under a fake systemd: READY, STATUS per state, WATCHDOG, STOPPING."""
    import asyncio as aio
    import signal as sig
    import socket as so

    from hostsim.sim import HostSim

    sock_path = tmp_path / "notify"
    receiver = so.socket(so.AF_UNIX, so.SOCK_DGRAM)
    receiver.bind(str(sock_path))
    receiver.setblocking(False)
    seen: list[str] = []

    loop = aio.get_running_loop()
    got = aio.Event()

    def readable() -> None:
        while True:
            try:
                seen.extend(receiver.recv(4096).decode().splitlines())
            except BlockingIOError:
                break
        got.set()

    async def until(text: str) -> None:
        while not any(text in line for line in seen):
            got.clear()
            await got.wait()

    loop.add_reader(receiver.fileno(), readable)
    try:
        async with HostSim() as sim:
            env = {**os.environ, "NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "400000"}
            agent = AgentProcess(
                tmp_path, sim.modems[0].path, "--socket", str(tmp_path / "c"),
                journal=tmp_path / "j.sqlite3", env=env,
            )  # fmt: skip
            await agent.start()
            assert agent.proc is not None
            try:
                await aio.wait_for(until("READY=1"), 20)
                await aio.wait_for(until("STATUS=modem ready"), 20)
                await aio.wait_for(until("WATCHDOG=1"), 20)
                agent.proc.send_signal(sig.SIGTERM)
                await aio.wait_for(until("STOPPING=1"), 20)
                assert await aio.wait_for(agent.proc.wait(), 20) == 0
            finally:
                await agent.cleanup()
    finally:
        loop.remove_reader(receiver.fileno())
        receiver.close()


def test_log_lines_carry_journald_priorities(tmp_path: Path) -> None:
    import subprocess
    import sys as _sys

    env = {**os.environ, "JOURNAL_STREAM": "8:1234"}
    bad = tmp_path / "bad.toml"
    bad.write_text("[agent]\nport = 1\n")
    result = subprocess.run(
        [_sys.executable, "-c", "import logging, device.cli as c; c.setup_logging('DEBUG'); "
         "logging.getLogger('x').warning('careful'); logging.getLogger('y').debug('detail')"],
        env=env, capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert result.stderr.splitlines() == ["<4>x: careful", "<7>y: detail"]


def test_reloading_carries_the_monotonic_time(sock_path: tuple[socket.socket, str]) -> None:
    """sd_notify(3): ``RELOADING=1`` goes with ``MONOTONIC_USEC=`` (CLOCK_MONOTONIC, in
    microseconds) so that systemd can tell this reload from an earlier one."""
    server, address = sock_path
    notifier = Notifier(address)
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert notifier.reloading("reloading the configuration")
    reloading, usec, status = _recv(server).split("\n")
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert reloading == "RELOADING=1" and status == "STATUS=reloading the configuration"
    assert usec.startswith("MONOTONIC_USEC=") and before <= int(usec.split("=")[1]) <= after
    notifier.close()
