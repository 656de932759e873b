"""SIGHUP reloads the configuration of a running ``smscmd run`` (issue 13, "The service").

End to end with hostsim on a pty and the real agent process: a handler added to the file
answers after SIGHUP without the modem being reopened; a bad file is rejected (logged
with the file and the key) and the old configuration keeps working; the AT timeouts apply
in place (the next command runs under the new one, the modem is not reopened); a change
that needs a new agent (the serial speed) restarts it in the same process, and the
control socket survives every reload. Plus unit tests of :func:`device.config.config_changes`.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

from harness import AgentProcess, running_agent

from device.config import FIELD_NAMES, FIELD_OF_KEY, Change, Config, config_changes, load_config
from device.handlers import HandlerConfig
from device.service import HOT_FIELDS
from hostsim.pty import SimulatedModem
from hostsim.sim import HostSim

WAIT = 15.0
#: The lifecycle line of a modem that came up (device.modem.lifecycle).
READY = "-> ready ("


def write_config(path: Path, socket: Path, body: str = "") -> None:
    path.write_text(f'[agent]\ncontrol_socket = "{socket}"\n{body}')


def echo_handler(name: str, text: str) -> str:
    argv = json.dumps([sys.executable, "-c", f"print({text!r})"])
    return f'[handlers."{name}"]\nargv = {argv}\n'


async def logged(proc: AgentProcess, marker: str, count: int = 1) -> None:
    """Wait until the agent's stderr holds ``marker`` ``count`` times (bounded).

    The child's stderr goes to a file (tests/harness.py ``AgentProcess``), which gives no
    signal when it grows: it is re-read every 50 ms until ``WAIT``, and a child that
    exits meanwhile fails at once."""
    async with asyncio.timeout(WAIT):
        while proc.stderr().count(marker) < count:
            assert proc.proc is not None and proc.proc.returncode is None, proc.stderr()
            await asyncio.sleep(0.05)


async def answer(gw: SimulatedModem, text: str) -> str:
    before = len(gw.sent)
    gw.deliver("000", text)
    await gw.wait_until(lambda m: len(m.sent) > before, WAIT)
    return gw.sent[-1].text


async def test_sighup_adds_a_handler_and_rejects_a_bad_file(tmp_path: Path) -> None:
    conf, sock = tmp_path / "agent.toml", tmp_path / "control.sock"
    write_config(conf, sock)
    async with (
        HostSim() as sim,
        running_agent(
            tmp_path, sim.modems[0].path, "--config", str(conf), stop_timeout=WAIT
        ) as proc,
    ):
        gw = sim.modems[0]
        await logged(proc, READY)
        assert await answer(gw, "hello") == "error: unknown command 'hello'"
        write_config(conf, sock, 'log_level = "DEBUG"\n' + echo_handler("hello", "hi there"))
        assert proc.proc is not None
        proc.proc.send_signal(signal.SIGHUP)
        await logged(proc, 'reload: handlers."hello": added')
        assert "reload: agent.log_level: 'INFO' -> 'DEBUG'" in proc.stderr()
        assert await answer(gw, "hello") == "hi there"
        # A bad file: rejected with its file and key, the running configuration kept.
        conf.write_text(conf.read_text() + "[timeouts]\nhandler = -1\n")
        proc.proc.send_signal(signal.SIGHUP)
        await logged(proc, "reload rejected")
        log = proc.stderr()
        assert str(conf) in log and "timeouts.handler" in log
        assert await answer(gw, "hello") == "hi there"
        # A handler whose program is missing: rejected as at start (device.preflight).
        write_config(
            conf, sock, 'log_level = "DEBUG"\n[handlers."hello"]\nargv = ["/nonexistent/x"]\n'
        )
        proc.proc.send_signal(signal.SIGHUP)
        await logged(proc, "reload rejected", 2)
        assert "program '/nonexistent/x' does not exist" in proc.stderr()
        assert await answer(gw, "hello") == "hi there"
        assert sock.exists()
        # Neither reload reopened the modem or built a second agent.
        assert log.count(READY) == 1 and log.count(", journal ") == 1


async def test_sighup_with_a_cold_change_restarts_the_agent_in_process(tmp_path: Path) -> None:
    conf, sock = tmp_path / "agent.toml", tmp_path / "control.sock"
    write_config(conf, sock, echo_handler("hello", "one"))
    async with (
        HostSim() as sim,
        running_agent(
            tmp_path, sim.modems[0].path, "--config", str(conf), stop_timeout=WAIT
        ) as proc,
    ):
        gw = sim.modems[0]
        await logged(proc, READY)
        assert await answer(gw, "hello") == "one"
        write_config(conf, sock, "baudrate = 57600\n" + echo_handler("hello", "two"))
        assert proc.proc is not None
        proc.proc.send_signal(signal.SIGHUP)
        await logged(proc, "reload: agent.baudrate: 115200 -> 57600")
        await logged(proc, "agent.baudrate changed; restarting the agent")
        await logged(proc, READY, 2)
        assert await answer(gw, "hello") == "two"
        assert sock.exists()


async def test_sighup_applies_the_at_timeouts_in_place(tmp_path: Path) -> None:
    """[timeouts] command and send change on SIGHUP without a new agent or a reopened port
    (the log says so, the lifecycle never leaves ready), and commands keep being answered."""
    conf, sock = tmp_path / "agent.toml", tmp_path / "control.sock"
    write_config(conf, sock, echo_handler("hello", "hi"))
    async with (
        HostSim() as sim,
        running_agent(
            tmp_path, sim.modems[0].path, "--config", str(conf), stop_timeout=WAIT
        ) as proc,
    ):
        gw = sim.modems[0]
        await logged(proc, READY)
        body = echo_handler("hello", "hi")
        conf.write_text(conf.read_text() + "[timeouts]\ncommand = 7.0\nsend = 20.0\n")
        assert body in conf.read_text()
        assert proc.proc is not None
        proc.proc.send_signal(signal.SIGHUP)
        await logged(proc, "reload: timeouts.send: 60.0 -> 20.0")
        assert "reload: timeouts.command: 10.0 -> 7.0" in proc.stderr()
        assert await answer(gw, "hello") == "hi"
        log = proc.stderr()
        assert "restarting the agent" not in log
        assert log.count(READY) == 1 and log.count(", journal ") == 1


def test_config_changes_key_by_key() -> None:
    """Equal configurations differ in nothing; each changed field is one Change with its
    dotted file key; handlers are compared by name (added, removed, changed)."""
    old = Config(log_level="INFO", handlers=(HandlerConfig("a", ("x",)), HandlerConfig("b")))
    assert config_changes(old, old) == ()
    new = Config(
        log_level="DEBUG",
        handler_timeout=5.0,
        handlers=(HandlerConfig("b", enabled=False), HandlerConfig("c", ("y",))),
    )
    changes = config_changes(old, new)
    assert [c.key for c in changes] == [
        "agent.log_level", "timeouts.handler", 'handlers."a"', 'handlers."b"', 'handlers."c"',
    ]  # fmt: skip
    assert [str(c) for c in changes[:3]] == [
        "agent.log_level: 'INFO' -> 'DEBUG'",
        "timeouts.handler: 30.0 -> 5.0",
        'handlers."a": removed',
    ]
    assert str(changes[4]) == 'handlers."c": added'
    assert changes[3] == Change(
        'handlers."b"', HandlerConfig("b"), HandlerConfig("b", enabled=False)
    )


def test_config_changes_of_loaded_files(tmp_path: Path) -> None:
    """A file read twice gives no change; an edited key shows as its table.key."""
    conf = tmp_path / "agent.toml"
    conf.write_text('[agent]\nallowed_senders = ["000"]\n')
    first = load_config(conf)
    assert config_changes(first, load_config(conf)) == ()
    conf.write_text('[agent]\nallowed_senders = ["000", "+15550001"]\n')
    assert [str(c) for c in config_changes(first, load_config(conf))] == [
        "agent.allowed_senders: ('000',) -> ('000', '+15550001')"
    ]


def test_hot_fields_are_config_fields() -> None:
    """What a reload applies in place names real fields, never the ones the agent's parts
    fixed at construction (the port, the journal, the socket, the SMS mode), and all of
    ``[timeouts]`` (issue 13: "timeouts at once")."""
    assert set(FIELD_NAMES) >= HOT_FIELDS
    assert not HOT_FIELDS & {"port", "journal", "control_socket", "mode", "reply_to",
                             "baudrate", "storage", "profile"}  # fmt: skip
    timeouts = {FIELD_OF_KEY[key] for key in FIELD_OF_KEY if key.startswith("timeouts.")}
    assert timeouts <= HOT_FIELDS and "command_timeout" in timeouts


async def test_a_reload_changes_the_timeout_of_the_next_at_command(tmp_path: Path) -> None:
    """Agent.reconfigure (what SIGHUP calls for hot keys) on a ready modem: the next AT
    command times out after the new [timeouts] command, not the old one, on the same
    channel (no reopen); the send timeout and the reconnect backoff follow as well."""
    from dataclasses import replace

    from harness import Line
    from test_agent import rig
    from test_last_error import ErrorRecorder

    from device.commands import default_registry

    async with rig(tmp_path, Line.pty(), command_timeout=5.0, health_interval=0.1) as r:
        channel = r.agent.supervisor.modem.channel if r.agent.supervisor.modem else None
        assert channel is not None and channel.default_timeout == 5.0
        new = replace(r.agent.config, command_timeout=0.3, send_timeout=20.0, reconnect_max=0.4)
        r.agent.reconfigure(new, default_registry())
        assert r.agent.supervisor.modem is not None
        assert r.agent.supervisor.modem.channel is channel and channel.default_timeout == 0.3
        assert r.agent.outbox.send_timeout == 20.0
        recorder = ErrorRecorder()
        r.agent.observer = recorder
        # A command answered first: the start's storage drain (AT+CMGL, a longer timeout)
        # is over, and what the hang meets is the health check's AT+CSQ.
        r.gw.deliver("000", "ping: idle")
        await r.gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        r.gw.modem.hung = True  # the next health check's command gets no answer
        await asyncio.wait_for(recorder.until(lambda: bool(recorder.errors)), WAIT)
        assert recorder.errors[0].text.startswith("modem stopped answering: ")
        assert recorder.errors[0].text.endswith("no final result within 0.3 s")
        r.gw.modem.hung = False


async def test_a_reload_onto_another_agents_socket_keeps_its_own(tmp_path: Path) -> None:
    """agent.control_socket changed to a path another agent serves: logged, and the agent
    keeps serving its own socket (at start the same clash refuses to start, exit 2:
    tests/test_control.py)."""
    from device.control import ControlServer, request

    class Other:
        async def status_report(self) -> dict[str, object]:
            return {"state": "other agent"}

        async def queue_send(self, text: str, destination: str | None) -> dict[str, object]:
            raise AssertionError

    conf, own, taken = tmp_path / "agent.toml", tmp_path / "own.sock", tmp_path / "taken.sock"
    other = ControlServer(Other(), taken)
    await other.start()
    write_config(conf, own)
    try:
        async with (
            HostSim() as sim,
            running_agent(
                tmp_path, sim.modems[0].path, "--config", str(conf), stop_timeout=WAIT
            ) as proc,
        ):
            await logged(proc, READY)
            write_config(conf, taken)
            assert proc.proc is not None
            proc.proc.send_signal(signal.SIGHUP)
            await logged(proc, f"keeping the control socket {own}")
            assert f"another smscmd agent is serving the control socket {taken};" in proc.stderr()
            mine = await request(own, {"op": "status"})
            assert mine["ok"] and mine["status"]["state"] != "other agent"
            assert (await request(taken, {"op": "status"}))["status"] == {"state": "other agent"}
    finally:
        await other.close()
