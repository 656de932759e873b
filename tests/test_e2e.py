"""End to end: hostsim on a real pseudo-terminal, the real ``smscmd run`` process.

The test process hosts the emulated modem (in-process hostsim on a pty) and
starts the agent exactly as a user would, as a separate process. It waits on
what the modem sees (sends, deletions), never on time; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import communicate
from harness import AgentProcess, running_agent

from device.sms import gsm7
from device.sms.charset import Charset
from hostsim.modem import EmulatedModem
from hostsim.pty import SimulatedModem
from hostsim.sim import HostSim

WAIT = 15.0

#: Both SMS modes of the agent pass the same end-to-end tests.
MODES = pytest.mark.parametrize("mode", ["text", "pdu"])


def agent(
    tmp: Path, port: str, *extra: str, mode: str = "text"
) -> AbstractAsyncContextManager[AgentProcess]:
    """``smscmd run`` on ``port`` (DEBUG log, SMS ``mode``); on exit SIGTERM, exit 0 required."""
    return running_agent(
        tmp, port, "--log-level", "DEBUG", "--mode", mode, *extra, stop_timeout=WAIT
    )


async def journal_rows(path: Path) -> list[dict[str, Any]]:
    """The inbox as ``smscmd journal --json`` prints it."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "device.cli", "journal", "--journal", str(path), "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await communicate(proc, WAIT)
    assert proc.returncode == 0, err.decode()
    rows: list[dict[str, Any]] = json.loads(out)
    return rows


def sent_texts(gw: SimulatedModem) -> list[tuple[str, str]]:
    return [(s.destination, s.text) for s in gw.sent]


def storage_empty(m: EmulatedModem) -> bool:
    return all(s.used == 0 for s in m.storages.values())


async def ready_for_sms(gw: SimulatedModem) -> None:
    """The agent has the port open and configured (UCS2, header detail).

    From here on every byte the modem writes reaches the agent (pyserial
    flushes the input queue when it opens the port, so earlier bytes would not).
    """
    await gw.wait_until(lambda m: m.settings.cscs is Charset.UCS2 and m.settings.csdh, WAIT)


@MODES
async def test_receive_handle_reply(tmp_path: Path, mode: str) -> None:
    async with HostSim() as sim, agent(tmp_path, sim.modems[0].path, mode=mode) as proc:
        gw = sim.modems[0]
        await ready_for_sms(gw)
        stamp = datetime(2026, 11, 25, 9, 30, 5, tzinfo=timezone(timedelta(hours=1)))
        gw.deliver("000", "ping: 42", timestamp=stamp)
        await gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        gw.deliver("000", "PING")
        await gw.wait_until(lambda m: len(m.sent) >= 2, WAIT)
        await gw.wait_until(storage_empty, WAIT)
        assert sent_texts(gw) == [("000", "pong: 42"), ("000", "pong")]
        rows = await journal_rows(proc.journal)
        assert [(r["sender"], r["text"], r["state"], r["reply"]) for r in rows] == [
            ("000", "ping: 42", "done", "pong: 42"),
            ("000", "PING", "done", "pong"),
        ]
        # The SMSC time stamp, ISO 8601 with its offset, exactly as delivered.
        assert rows[0]["timestamp"] == "2026-11-25T09:30:05+01:00"
        assert datetime.fromisoformat(rows[0]["timestamp"]) == stamp


@MODES
async def test_whole_gsm_repertoire_arrives_exactly(tmp_path: Path, mode: str) -> None:
    # Every basic-table and extension-table character, padded to 160 septets.
    payload = gsm7.REPERTOIRE
    payload += "x" * (gsm7.SMS_SEPTETS - gsm7.septet_length(payload))
    assert gsm7.septet_length(payload) == 160
    assert "@" in payload and "€" in payload and "\n" in payload

    async with HostSim() as sim, agent(tmp_path, sim.modems[0].path, mode=mode) as proc:
        gw = sim.modems[0]
        await ready_for_sms(gw)
        gw.deliver("000", payload)
        await gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        rows = await journal_rows(proc.journal)
        assert rows[0]["text"] == payload
        assert rows[0]["state"] == "failed"  # not a known command name
        reply = gw.sent[0].text
        assert reply.startswith("error: unknown command '")
        assert gsm7.septet_length(reply) <= 160


@MODES
async def test_messages_stored_before_start_are_handled(tmp_path: Path, mode: str) -> None:
    async with HostSim() as sim:
        gw = sim.modems[0]
        for n in range(3):
            assert gw.deliver("000", f"ping: {n}") is not None
        async with agent(tmp_path, gw.path, mode=mode) as proc:
            await gw.wait_until(lambda m: len(m.sent) >= 3, WAIT)
            await gw.wait_until(storage_empty, WAIT)
            assert sorted(t for _, t in sent_texts(gw)) == ["pong: 0", "pong: 1", "pong: 2"]
            rows = await journal_rows(proc.journal)
            assert [r["state"] for r in rows] == ["done"] * 3


@MODES
async def test_refused_sender_is_journaled_deleted_not_answered(tmp_path: Path, mode: str) -> None:
    async with HostSim() as sim, agent(tmp_path, sim.modems[0].path, mode=mode) as proc:
        gw = sim.modems[0]
        await ready_for_sms(gw)
        gw.deliver("+447700900123", "ping: from a stranger")
        gw.deliver("000", "ping: from twilio")
        await gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        await gw.wait_until(storage_empty, WAIT)
        assert sent_texts(gw) == [("000", "pong: from twilio")]
        rows = await journal_rows(proc.journal)
        by_sender = {r["sender"]: r for r in rows}
        assert by_sender["+447700900123"]["state"] == "refused"
        assert by_sender["+447700900123"]["reply"] is None
        assert by_sender["000"]["state"] == "done"


@MODES
async def test_unknown_command(tmp_path: Path, mode: str) -> None:
    async with HostSim() as sim, agent(tmp_path, sim.modems[0].path, mode=mode):
        gw = sim.modems[0]
        await ready_for_sms(gw)
        gw.deliver("000", "Frobnicate: the widget")
        await gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        assert sent_texts(gw) == [("000", "error: unknown command 'frobnicate'")]


@MODES
async def test_status_and_help(tmp_path: Path, mode: str) -> None:
    async with HostSim() as sim, agent(tmp_path, sim.modems[0].path, mode=mode):
        gw = sim.modems[0]
        await ready_for_sms(gw)
        gw.deliver("000", "help")
        await gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        gw.deliver("000", "status")
        await gw.wait_until(lambda m: len(m.sent) >= 2, WAIT)
        assert gw.sent[0].text == "commands: help, ping, status"
        status = gw.sent[1].text
        assert status.startswith("status: ")
        assert "roaming" in status and "dBm" in status


@MODES
async def test_garbage_on_the_line_does_not_stop_the_agent(tmp_path: Path, mode: str) -> None:
    async with HostSim() as sim, agent(tmp_path, sim.modems[0].path, mode=mode) as proc:
        gw = sim.modems[0]
        await ready_for_sms(gw)
        gw.inject(b"\r\n\x00\xff\xfe#garbage#\r\n\r\n+WEIRD: 1\r\n" + b"z" * 9000 + b"\r\n")
        gw.deliver("000", "ping: still here")
        await gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        assert sent_texts(gw) == [("000", "pong: still here")]
        assert "dropped" in proc.stderr() or "unexpected line" in proc.stderr()


@MODES
async def test_long_reply_is_cut_visibly(tmp_path: Path, mode: str) -> None:
    async with HostSim() as sim, agent(tmp_path, sim.modems[0].path, mode=mode) as proc:
        gw = sim.modems[0]
        await ready_for_sms(gw)
        gw.deliver("000", "z" * 150)  # the error reply quotes the name: over 160 septets
        await gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        reply = gw.sent[0].text
        assert reply.endswith("...")
        assert gsm7.septet_length(reply) <= 160
        assert "cut" in proc.stderr() or "septets" in proc.stderr()


async def test_bad_config_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "agent.toml"
    bad.write_text('[agent]\nport = "/dev/null"\nfrobnicate = 1\n')

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "device.cli", "run", "--config", str(bad),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await communicate(proc, WAIT)
    assert proc.returncode == 2
    assert str(bad) in err.decode() and "frobnicate" in err.decode()


@pytest.mark.timeout(90)
@pytest.mark.async_timeout(80)
async def test_demo_runs_and_exits_0() -> None:
    env = dict(os.environ)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "device.cli", "demo",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await communicate(proc, 60)
    text = out.decode()
    assert proc.returncode == 0, text + err.decode()
    assert "received from 000: 'checkin: firmware update'" in text
    assert "received from 000: 'Report location: (52.520008, 13.404954)'" in text
    assert "location ok: 52.520008,13.404954" in text
    assert "'pong'" in text
