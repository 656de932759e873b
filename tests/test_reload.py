"""SIGHUP reloads the configuration of a running ``smscmd run`` (issue 13, "The service").

End to end with hostsim on a pty and the real agent process: a handler added to the file
answers after SIGHUP without the modem being reopened; a bad file is rejected (logged
with the file and the key) and the old configuration keeps working; a change that needs a
new agent (an AT timeout) restarts it in the same process, and the control socket
survives every reload. Plus unit tests of :func:`device.config.config_changes`.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

from harness import AgentProcess, running_agent

from device.config import FIELD_NAMES, Change, Config, config_changes, load_config
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
        write_config(conf, sock, "[timeouts]\ncommand = 7.0\n" + echo_handler("hello", "two"))
        assert proc.proc is not None
        proc.proc.send_signal(signal.SIGHUP)
        await logged(proc, "reload: timeouts.command: 10.0 -> 7.0")
        await logged(proc, "restarting the agent")
        await logged(proc, READY, 2)
        assert await answer(gw, "hello") == "two"
        assert sock.exists()


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
    """What a reload applies in place names real fields, and never the ones the agent's
    parts fixed at construction (the port, the journal, the AT timeouts, health_interval
    in the supervisor's backoff)."""
    assert set(FIELD_NAMES) >= HOT_FIELDS
    assert not HOT_FIELDS & {"port", "journal", "control_socket", "command_timeout",
                             "send_timeout", "health_interval", "mode", "reply_to"}  # fmt: skip
