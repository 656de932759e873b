"""The control socket and the ``smscmd send`` / ``smscmd status`` commands."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import sys
from pathlib import Path

import pytest
from conftest import communicate
from harness import AgentProcess

from device.agent import Agent
from device.commands import default_registry
from device.config import Config
from device.control import AgentNotRunning, ControlServer, SocketInUse, request
from device.errors import ConfigError
from device.journal import Journal
from hostsim.sim import HostSim

WAIT = 10.0


async def cli(*argv: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "device.cli", *argv,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await communicate(proc, WAIT)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.async_timeout(40)
async def test_status_and_send_through_a_running_agent(tmp_path: Path) -> None:
    sock = tmp_path / "run" / "control.sock"

    async with HostSim() as sim:
        gw = sim.modems[0]
        config = Config(port=gw.path, journal=tmp_path / "j.sqlite3", control_socket=sock)
        with Journal.open(config.journal) as journal:
            agent = Agent(config, journal, default_registry())
            server = ControlServer(agent, sock)
            await server.start()
            task = asyncio.create_task(agent.run())
            try:
                assert stat.S_IMODE(sock.stat().st_mode) == 0o660
                await gw.wait_until(lambda m: m.settings.csdh, WAIT)
                code, out, err = await cli("send", "hello from the gateway", "--socket", str(sock))
                assert code == 0, err
                assert "queued as outbox #1 for 000" in out
                await gw.wait_until(lambda m: len(m.sent) == 1, WAIT)
                assert gw.sent[0].text == "hello from the gateway"
                code, out, err = await cli("status", "--json", "--socket", str(sock))
                assert code == 0, err
                status = json.loads(out)
                assert status["state"] == "ready"
                assert status["module"]["model"] == "BG96"
                assert status["registration"] == "registered (roaming)"
                assert status["signal"].endswith("dBm")
                assert status["uptime_seconds"] >= 0
                assert status["journal"]["outbox.sent"] == 1
                code, out, err = await cli("status", "--socket", str(sock))
                assert code == 0, err
                lines = out.splitlines()
                assert lines[0].startswith("state ") and " ready (since " in lines[0]
                # Aligned: every value starts in the same column (issue 13).
                starts = {len(line) - len(line.split(None, 1)[1]) for line in lines}
                assert len(starts) == 1, out
                assert status["module"]["iccid"] == gw.modem.config.iccid
                assert any(line.split() == ["iccid", gw.modem.config.iccid] for line in lines), out
                # The README's `smscmd journal --outbox`: the journal is the agent's own.
                assert status["journal_path"] == str(config.journal.resolve())
                code, out, err = await cli("journal", "--outbox", "--socket", str(sock))
                assert code == 0, err
                assert "'hello from the gateway'" in out and " sent " in out
                # Refused, not cut: too long, or outside GSM 03.38.
                code, _, err = await cli("send", "x" * 161, "--socket", str(sock))
                assert code == 1 and "161 septets" in err
                code, _, err = await cli("send", "snow ☃", "--socket", str(sock))
                assert code == 1 and "not in GSM 03.38" in err
            finally:
                agent.stop()
                await asyncio.wait_for(task, WAIT)
                await server.close()
        assert not sock.exists()


async def test_bad_requests_get_errors(tmp_path: Path) -> None:
    sock = tmp_path / "c.sock"

    class Target:
        async def status_report(self) -> dict[str, object]:
            return {"state": "ready"}

        async def queue_send(self, text: str, destination: str | None) -> dict[str, object]:
            return {"id": 1, "destination": destination or "000", "text": text}

    async def raw(line: bytes) -> dict[str, object]:
        reader, writer = await asyncio.open_unix_connection(str(sock))
        writer.write(line)
        await writer.drain()
        answer = json.loads(await asyncio.wait_for(reader.readline(), WAIT))
        writer.close()
        await writer.wait_closed()
        assert isinstance(answer, dict)
        return answer

    server = ControlServer(Target(), sock)
    await server.start()
    try:
        assert (await raw(b"not json\n"))["ok"] is False
        assert (await raw(b"[1, 2]\n"))["ok"] is False
        assert "unknown op" in str((await raw(b'{"op": "reboot"}\n'))["error"])
        assert (await raw(b'{"op": "send"}\n'))["ok"] is False
        assert (await raw(b'{"op": "send", "text": "hi", "to": "x y"}\n'))["ok"] is False
        answer = await request(sock, {"op": "send", "text": "hi", "to": "+15551234567"})
        assert answer == {"ok": True, "outbox": {"id": 1, "destination": "+15551234567",
                                                 "text": "hi"}}  # fmt: skip
        # A second server on the same live socket is refused, saying how to fix it.
        with pytest.raises(SocketInUse, match="another smscmd agent is serving") as refused:
            await ControlServer(Target(), sock).start()
        assert f"control socket {sock};" in str(refused.value)
        assert "--socket or agent.control_socket" in str(refused.value)
        assert isinstance(refused.value, ConfigError)  # exit status 2 in the CLI
    finally:
        await server.close()


async def test_stale_socket_is_replaced_and_missing_agent_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sock = tmp_path / "c.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(sock))
    stale.close()  # bound, never listening: what a killed agent leaves behind

    with pytest.raises(AgentNotRunning):
        await request(sock, {"op": "status"})
    code, _, err = await cli("status", "--socket", str(sock))
    assert code == 1 and "no agent is running" in err

    class Target:
        async def status_report(self) -> dict[str, object]:
            return {"state": "ready"}

        async def queue_send(self, text: str, destination: str | None) -> dict[str, object]:
            raise AssertionError

    server = ControlServer(Target(), sock)
    with caplog.at_level("WARNING", logger="device.control"):
        await server.start()
    try:
        assert (await request(sock, {"op": "status"}))["status"] == {"state": "ready"}
        assert [r.getMessage() for r in caplog.records] == [
            f"control socket {sock}: replaced a stale socket file (nobody listened on it: "
            "an agent was killed?)"
        ]
    finally:
        await server.close()


@pytest.mark.async_timeout(40)
async def test_send_to_another_number_warns_and_sends(tmp_path: Path) -> None:
    """``smscmd send --to`` a number other than 000: one warning line on stderr, exit 0,
    and the reply is sent; the Super SIM network refuses it with +CMS ERROR 21 (short
    message transfer rejected, TS 24.011 Annex E.2), a permanent cause: FAILED at the
    first attempt. ``--to 000`` gives no warning."""
    sock = tmp_path / "control.sock"
    async with HostSim() as sim:
        gw = sim.modems[0]
        config = Config(port=gw.path, journal=tmp_path / "j.sqlite3", control_socket=sock,
                        send_retry_initial=0.05)  # fmt: skip
        with Journal.open(config.journal) as journal:
            agent = Agent(config, journal, default_registry())
            server = ControlServer(agent, sock)
            await server.start()
            task = asyncio.create_task(agent.run())
            try:
                await gw.wait_until(lambda m: m.settings.csdh, WAIT)
                code, out, err = await cli("send", "hi", "--to", "+15551234567", "--socket",
                                           str(sock))  # fmt: skip
                assert code == 0, err
                assert "queued as outbox #1 for +15551234567" in out
                assert err.splitlines() == [
                    "smscmd: warning: a Super SIM reaches only 000 by SMS; +15551234567 will "
                    "most likely be refused by the network"
                ]
                code, out, err = await cli("send", "to 000", "--to", "000", "--socket", str(sock))
                assert code == 0 and err == "", err
                await gw.wait_until(lambda m: len(m.sent) == 1, WAIT)
                assert [s.text for s in gw.sent] == ["to 000"]  # the first was refused
                refused = journal.outbox()[0]
                assert refused.state.value == "failed" and refused.attempts == 1
                assert "short message transfer rejected" in (refused.last_error or "").lower()
                assert '"+15551234567"' in (refused.last_error or "")  # decoded, not UCS2 hex
            finally:
                agent.stop()
                await asyncio.wait_for(task, WAIT)
                await server.close()


async def test_send_directly_when_no_agent_runs(tmp_path: Path) -> None:
    async with HostSim() as sim:
        gw = sim.modems[0]
        code, out, err = await cli(
            "send", "direct €", "--socket", str(tmp_path / "none.sock"), "--port", gw.path
        )
        assert code == 0, err
        assert "sent directly to 000" in out
        assert [(s.destination, s.text) for s in gw.sent] == [("000", "direct €")]
        # Without --port there is nothing to fall back on.
        code, _, err = await cli("send", "x", "--socket", str(tmp_path / "none.sock"))
        assert code == 1 and "no agent is running" in err


@pytest.mark.async_timeout(40)
async def test_control_socket_unavailable_does_not_stop_the_agent(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")

    async with HostSim() as sim:
        gw = sim.modems[0]
        agent = AgentProcess(
            tmp_path, gw.path, "--socket", str(blocker / "c.sock"), journal=tmp_path / "j.sqlite3"
        )
        await agent.start()
        try:
            await gw.wait_until(lambda m: m.settings.csdh, WAIT)
            gw.deliver("000", "ping")
            await gw.wait_until(lambda m: len(m.sent) == 1, WAIT)
        finally:
            code = await agent.terminate(WAIT)
        assert code == 0
        assert "running without a control socket" in agent.stderr()


async def test_socket_file_mode_survives_umask(tmp_path: Path) -> None:
    sock = tmp_path / "c.sock"

    class Target:
        async def status_report(self) -> dict[str, object]:
            return {}

        async def queue_send(self, text: str, destination: str | None) -> dict[str, object]:
            return {}

    old = os.umask(0o077)
    try:
        server = ControlServer(Target(), sock)
        await server.start()
    finally:
        os.umask(old)
    try:
        assert stat.S_IMODE(sock.stat().st_mode) == 0o660
    finally:
        await server.close()


@pytest.mark.async_timeout(40)
async def test_a_second_agent_on_the_same_journal_or_port_is_refused(tmp_path: Path) -> None:
    journal = tmp_path / "j.sqlite3"

    async with HostSim() as sim:
        gw = sim.modems[0]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "device.cli", "run", "--port", gw.path,
            "--journal", str(journal), "--socket", str(tmp_path / "a.sock"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            # Configured by the agent (the default CNMI would not prove it is up).
            await gw.wait_until(lambda m: m.settings.csdh, WAIT)
            code, _, err = await cli(
                "run", "--port", gw.path, "--journal", str(journal),
                "--socket", str(tmp_path / "b.sock"),
            )  # fmt: skip
            # A configuration error (exit 2: RestartPreventExitStatus=2 in the unit), in
            # one line that says what to change.
            assert code == 2 and err.count("\n") == 1, err
            assert f"another smscmd agent is using the journal {journal} " in err
            assert "--journal or agent.journal" in err
            # The port is held exclusively: a direct send cannot interleave with it.
            code, _, err = await cli(
                "send", "x", "--socket", str(tmp_path / "none.sock"), "--port", gw.path
            )
            assert code == 1 and "cannot open" in err
            # Reading the journal beside the running agent is fine (read-only).
            code, out, err = await cli("journal", "--journal", str(journal), "--json")
            assert code == 0 and json.loads(out) == []
        finally:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), WAIT)
        assert proc.returncode == 0


@pytest.mark.async_timeout(60)
async def test_a_second_agent_on_the_same_control_socket_refuses_to_start(tmp_path: Path) -> None:
    """The README's fleet: one agent per modem, each with its own journal and socket. Two
    given one socket: the second stops at once (exit 2, one line naming the path and the
    flag), the first keeps serving it; nothing was left socket-less."""
    sock = tmp_path / "c.sock"
    async with HostSim(2) as sim:
        first, second = sim.modems
        agent = AgentProcess(
            tmp_path, first.path, "--socket", str(sock), journal=tmp_path / "a.sqlite3"
        )
        await agent.start()
        try:
            await first.wait_until(lambda m: m.settings.csdh, WAIT)
            code, _, err = await cli(
                "run", "--port", second.path, "--journal", str(tmp_path / "b.sqlite3"),
                "--socket", str(sock),
            )  # fmt: skip
            assert code == 2 and err.count("\n") == 1, err
            assert err == (
                f"smscmd: configuration error: another smscmd agent is serving the control "
                f"socket {sock}; give each agent its own with --socket or agent.control_socket\n"
            )
            assert not second.modem.settings.csdh  # it never brought its modem up
            code, out, err = await cli("status", "--socket", str(sock), "--json")
            assert code == 0 and json.loads(out)["port"] == first.path
        finally:
            assert await agent.terminate(WAIT) == 0
