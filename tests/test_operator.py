"""The operator's commands fail in one line, never with a traceback, for ordinary reasons.

A broken pipe (``smscmd journal | head``), a port that is not a terminal, a port
another process (or the running agent) holds, permission denied on the port.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from device import cli
from device.control import ControlServer
from device.journal import Journal
from device.journalcmd import parse_since
from device.portcheck import PortBusy, PortError, PortMissing, check_port

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def smscmd(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "device.cli", *argv],
        capture_output=True, text=True, timeout=30, check=False, env=ENV,
    )  # fmt: skip


class _Target:
    async def status_report(self) -> dict[str, Any]:
        return {"state": "ready"}

    async def queue_send(self, text: str, destination: str | None) -> dict[str, Any]:
        raise AssertionError("not used")


def test_journal_into_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    with Journal.open(path) as journal:
        for n in range(3000):  # well past a pipe buffer (64 KiB)
            journal.queue_outgoing("000", f"message number {n} with some padding text")
    result = subprocess.run(
        f"{sys.executable} -m device.cli journal --outbox --journal {path} | head -n 1",
        shell=True, capture_output=True, text=True, timeout=30, check=False, env=ENV,
    )  # fmt: skip
    assert result.stdout.count("\n") == 1
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr, result.stderr


@pytest.mark.parametrize("port", ["/dev/null", "regular-file"])
def test_probe_on_something_that_is_not_a_serial_port(tmp_path: Path, port: str) -> None:
    if port == "regular-file":
        (tmp_path / port).write_text("")
        port = str(tmp_path / port)
    result = smscmd("probe", "--port", port)
    assert result.returncode == 1
    assert "not a serial port" in result.stdout
    assert "Traceback" not in result.stderr


def test_run_on_something_that_is_not_a_serial_port(tmp_path: Path) -> None:
    result = smscmd("run", "--port", "/dev/null", "--journal", str(tmp_path / "j.sqlite3"),
                    "--socket", str(tmp_path / "c.sock"))  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "smscmd: cannot open /dev/null: not a serial port (not a terminal)"
    )


def test_send_directly_on_a_port_that_is_not_a_terminal(tmp_path: Path) -> None:
    result = smscmd("send", "hello", "--port", "/dev/null", "--socket", str(tmp_path / "c.sock"))
    assert result.returncode == 1
    assert "not a serial port" in result.stderr and "Traceback" not in result.stderr


def test_missing_port_is_its_own_error(tmp_path: Path) -> None:
    with pytest.raises(PortMissing, match="does not exist"):
        check_port(str(tmp_path / "ttyUSB9"))


def test_permission_denied_names_the_group_and_the_unit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As root the kernel never says EACCES, so the open is made to say it."""
    port = tmp_path / "ttyUSB2"
    port.write_text("")
    os.chmod(port, 0o660)

    def denied(path: str, flags: int) -> int:
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(PortError) as caught:
        check_port(str(port))
    text = str(caught.value)
    assert "permission denied" in text and "mode 0660" in text
    assert "dialout" in text and "DeviceAllow=" in text


def test_a_held_port_is_busy_and_a_running_agent_is_named(tmp_path: Path) -> None:
    master, slave = os.openpty()
    port = os.ttyname(slave)
    holder = os.open(port, os.O_RDWR | os.O_NOCTTY)
    fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
    sock = tmp_path / "control.sock"
    try:
        with pytest.raises(PortBusy, match="in use by another program"):
            asyncio.run(cli._check_port(port, sock))
        asyncio.run(cli._check_port(port, sock, busy_ok=True))  # run: its own lock checks say it

        async def with_agent() -> None:
            server = ControlServer(_Target(), sock)
            await server.start()
            try:
                with pytest.raises(PortBusy, match="the agent is running; use smscmd status"):
                    await cli._check_port(port, sock)
                with pytest.raises(PortBusy, match="the agent is running"):
                    await cli._check_port(port, sock, busy_ok=True)
            finally:
                await server.close()

        asyncio.run(with_agent())
    finally:
        for fd in (holder, slave, master):
            os.close(fd)


def test_a_free_pty_passes() -> None:
    master, slave = os.openpty()
    try:
        check_port(os.ttyname(slave))
    finally:
        os.close(slave)
        os.close(master)


# -- smscmd journal: which journal, filters, follow, permissions ------------------------


class _Reporting(_Target):
    def __init__(self, journal: Path) -> None:
        self.journal = journal

    async def status_report(self) -> dict[str, Any]:
        return {"state": "ready", "journal_path": str(self.journal)}


async def test_journal_is_found_through_the_agents_control_socket(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere" / "j.sqlite3"
    with Journal.open(path) as journal:
        journal.queue_outgoing("000", "found it")
    sock = tmp_path / "control.sock"
    server = ControlServer(_Reporting(path), sock)
    await server.start()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "device.cli", "journal", "--outbox", "--socket", str(sock),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=ENV,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        await server.close()
    assert proc.returncode == 0, err
    assert "'found it'" in out.decode()


def test_journal_without_an_agent_uses_the_configured_one(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    with Journal.open(path) as journal:
        journal.queue_outgoing("000", "from the config")
    config = tmp_path / "agent.toml"
    config.write_text(f'[agent]\njournal = "{path}"\ncontrol_socket = "{tmp_path / "none.sock"}"\n')
    result = smscmd("journal", "--outbox", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "'from the config'" in result.stdout


def test_state_and_since_filters(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    with Journal.open(path) as journal:
        for text in ("one", "two", "three"):
            journal.queue_outgoing("000", text)
    result = smscmd("journal", "--outbox", "--journal", str(path), "--state", "queued", "--json")
    assert [row["text"] for row in json.loads(result.stdout)] == ["one", "two", "three"]
    result = smscmd("journal", "--outbox", "--journal", str(path), "--state", "sent", "--json")
    assert json.loads(result.stdout) == []
    result = smscmd("journal", "--outbox", "--journal", str(path), "--since", "1h", "--json",
                    "--limit", "2")  # fmt: skip
    assert [row["text"] for row in json.loads(result.stdout)] == ["two", "three"]
    result = smscmd("journal", "--outbox", "--journal", str(path), "--since", "2999-01-01")
    assert result.returncode == 0 and result.stdout == ""
    result = smscmd("journal", "--journal", str(path), "--state", "sent")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "smscmd: --state sent: inbox states are received, running, done, failed, refused, "
        "undecodable, incomplete"
    )
    result = smscmd("journal", "--journal", str(path), "--since", "yesterday")
    assert result.returncode == 2 and "not an ISO 8601" in result.stderr


def test_parse_since() -> None:
    now = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
    assert parse_since("30m", now) == datetime(2026, 1, 31, 11, 30, tzinfo=UTC)
    assert parse_since("7d", now) == datetime(2026, 1, 24, 12, 0, tzinfo=UTC)
    assert parse_since("2026-01-31T08:00+01:00", now).utcoffset() == timedelta(hours=1)
    assert parse_since("2026-01-31", now).tzinfo is not None  # naive: local time


def test_follow_prints_new_rows_and_ends_on_ctrl_c(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    with Journal.open(path) as journal:
        journal.queue_outgoing("000", "before")
    proc = subprocess.Popen(
        [sys.executable, "-m", "device.cli", "journal", "--outbox", "--journal", str(path),
         "--follow", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline())["text"] == "before"
        with Journal.open(path) as journal:
            journal.queue_outgoing("000", "after")
        assert json.loads(proc.stdout.readline())["text"] == "after"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0 and "Traceback" not in err


def test_unreadable_journal_is_one_line_naming_the_permission(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Root reads anything, so os.access is made to answer as for a user outside the group."""
    path = tmp_path / "j.sqlite3"
    with Journal.open(path) as journal:
        journal.queue_outgoing("000", "secret")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != path and real_access(p, mode))
    assert cli.main(["journal", "--journal", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err.startswith(
        f"smscmd: journal error: cannot read the journal: no read permission on {path}"
    )
    assert "mode 0640" in err
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != tmp_path and real_access(p, mode))
    assert cli.main(["journal", "--journal", str(path)]) == 1
    assert f"no search (x) permission on the directory {tmp_path}" in capsys.readouterr().err
