"""Handlers from the configuration: programs run without a shell, and per-handler settings."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import run_async
from harness import Line
from test_agent import WAIT, rig

from device.commands import (
    CommandContext,
    Dispatcher,
    Handler,
    Outcome,
    Registry,
    StatusSnapshot,
    default_registry,
)
from device.config import load_config
from device.errors import ConfigError
from device.handlers import HandlerConfig, apply_config, exec_handler
from device.journal import InboxState, Journal

PY = sys.executable


def ctx(name: str, argument: str | None) -> CommandContext:
    return CommandContext(
        name=name,
        argument=argument,
        sender="000",
        timestamp=datetime(2026, 11, 25, 10, 0, tzinfo=UTC),
        journal_id=42,
        status=lambda: StatusSnapshot("m", "r", "s"),
    )


def run_handler(cfg: HandlerConfig, argument: str | None) -> str | None:
    handler = exec_handler(cfg)
    return run_async(handler.func(ctx(cfg.name, argument)))


def test_argument_is_one_argv_element_never_a_shell(tmp_path: Path) -> None:
    script = "import sys; print(repr(sys.argv[1:]))"
    cfg = HandlerConfig("echo", argv=(PY, "-c", script))
    evil = "x; touch " + str(tmp_path / "pwned") + " && $(id)"
    assert run_handler(cfg, evil) == repr([evil])
    assert not (tmp_path / "pwned").exists()
    assert run_handler(cfg, None) == "[]"


def test_argument_on_stdin_and_metadata_in_the_environment(tmp_path: Path) -> None:
    script = (
        "import os, sys; data = sys.stdin.read(); "
        "print(data, os.environ['SMSCMD_SENDER'], os.environ['SMSCMD_JOURNAL_ID'], "
        "os.environ['SMSCMD_TIMESTAMP'], os.environ['GREETING'], os.getcwd())"
    )
    cfg = HandlerConfig(
        "meta", argv=(PY, "-c", script), argument="stdin", env=(("GREETING", "hi"),), cwd=tmp_path
    )
    assert run_handler(cfg, "firmware update") == (
        f"firmware update 000 42 2026-11-25T10:00:00+00:00 hi {tmp_path}"
    )


def outcome(cfg: HandlerConfig, argument: str | None = None) -> Outcome:
    registry = Registry()
    registry.register(exec_handler(cfg))
    return run_async(Dispatcher(registry).dispatch(ctx(cfg.name, argument)))


def test_failures_are_failed_with_the_reason_and_keep_their_reply() -> None:
    """Issue 13: a non-zero exit, a timeout or a program that cannot start is ``failed``
    with the reason as the journal's error; the reply text is what it always was."""
    status = outcome(HandlerConfig("f", argv=(PY, "-c", "import sys; sys.exit('broken disk')")))
    assert (status.reply, status.ok) == ("error: f exited with status 1", False)
    assert status.error == "exited with status 1: broken disk"
    # The *program* sleeps (it must be killed by the 0.3 s handler timeout); the test does not.
    slow = outcome(
        HandlerConfig("slow", argv=(PY, "-c", "import time; time.sleep(30)"), timeout=0.3)
    )
    assert (slow.reply, slow.ok, slow.error) == (
        "error: slow timed out",
        False,
        "killed after 0.3 s (timeout)",
    )
    missing = outcome(HandlerConfig("gone", argv=("/nonexistent/program",)))
    assert (missing.reply, missing.ok) == ("error: gone cannot start", False)
    assert missing.error is not None and "/nonexistent/program" in missing.error
    signalled = outcome(
        HandlerConfig("sig", argv=(PY, "-c", "import os; os.kill(os.getpid(), 15)"))
    )
    assert (signalled.reply, signalled.error) == (
        "error: sig exited with status -15",
        "killed by signal SIGTERM",
    )
    chatty = outcome(
        HandlerConfig("chatty", argv=(PY, "-c", "print('y' * 100000)"), output_limit=10)
    )
    assert (chatty.reply, chatty.ok, chatty.error) == ("y" * 10, True, None)


def test_empty_stdout_is_no_reply_and_done() -> None:
    quiet = outcome(HandlerConfig("quiet", argv=(PY, "-c", "print('  ')")))
    assert (quiet.reply, quiet.ok, quiet.error) == (None, True, None)


def test_timeout_with_an_escaped_grandchild_on_stdout_neither_hangs_nor_leaks() -> None:
    """A grandchild that left the process group (``setsid``, as a daemonising script
    does) keeps stdout open after the group is killed: asyncio's ``wait()`` would wait
    for its EOF (CPython 3.11 waits for the pipes too). The handler closes its pipe ends."""
    script = (
        "import os, subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(5)'], "
        "start_new_session=True); print('partial', flush=True); time.sleep(30)"
    )
    cfg = HandlerConfig("held", argv=(PY, "-c", script), timeout=0.5)
    before = len(os.listdir("/proc/self/fd"))
    started = time.monotonic()
    result = outcome(cfg)
    elapsed = time.monotonic() - started
    assert (result.reply, result.ok) == ("error: held timed out", False)
    assert elapsed < 4.0, elapsed
    assert len(os.listdir("/proc/self/fd")) == before


def test_rate_limit_and_disabling_a_builtin() -> None:
    registry = default_registry()
    apply_config(
        registry,
        (
            HandlerConfig("ping", rate=2, per=3600.0),
            HandlerConfig("status", enabled=False),
            HandlerConfig("hello", argv=(PY, "-c", "print('hi')"), idempotent=True),
        ),
    )
    dispatcher = Dispatcher(registry)

    async def go() -> list[str | None]:
        out = []
        for name in ("ping", "ping", "ping", "status", "hello", "help"):
            out.append((await dispatcher.dispatch(ctx(name, None))).reply)
        return out

    assert run_async(go()) == [
        "pong",
        "pong",
        "error: ping rate limited",
        "error: command 'status' is disabled",
        "hi",
        "commands: hello, help, ping",
    ]
    handler = registry.get("hello")
    assert handler is not None and handler.idempotent


def test_apply_config_errors() -> None:
    with pytest.raises(ConfigError, match="no such handler"):
        apply_config(default_registry(), (HandlerConfig("nope", enabled=False),))
    with pytest.raises(ConfigError, match="exists already"):
        apply_config(default_registry(), (HandlerConfig("ping", argv=("/bin/true",)),))


def test_handler_tables_in_the_config_file(tmp_path: Path) -> None:
    good = tmp_path / "ok.toml"
    good.write_text(
        '[handlers."Report Location"]\nargv = ["/usr/local/bin/report", "--json"]\n'
        'argument = "stdin"\ncwd = "work"\ntimeout = 5\nrate = 3\nper = 60\n'
        'env = { MODE = "live" }\n\n[handlers.ping]\nenabled = false\n'
    )
    config = load_config(good)
    report, ping = config.handlers
    assert report.name == "report location" and report.argv == ("/usr/local/bin/report", "--json")
    assert report.cwd == tmp_path / "work" and report.env == (("MODE", "live"),)
    assert (report.timeout, report.rate, report.per) == (5.0, 3, 60.0)
    assert ping.enabled is False and ping.argv is None
    for text, key in (
        ('[handlers.x]\nargv = "echo hi"\n', 'handlers."x".argv'),
        ("[handlers.x]\nargv = []\n", 'handlers."x".argv'),
        ('[handlers.x]\nargv = ["a"]\nargument = "shell"\n', 'handlers."x".argument'),
        ('[handlers.x]\nargv = ["a"]\nshell = true\n', 'handlers."x".shell'),
        ('[handlers.x]\nargv = ["a"]\ntimeout = -1\n', 'handlers."x".timeout'),
        ("[handlers.x]\ntimeout = 3\n", 'handlers."x"'),
    ):
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(ConfigError) as info:
            load_config(bad)
        assert str(bad) in str(info.value) and key in str(info.value), str(info.value)


def test_catch_all_runs_every_command_without_a_handler_of_its_own(tmp_path: Path) -> None:
    """Issue 13: ``[handlers."*"]`` is the catch-all, like gammu-smsd's RunOnReceive
    (gammu docs, smsd "RunOnReceive": a program run for every received message). It gets
    the command name then the argument; built-ins, disabled ones and ``help`` are unaffected."""
    config_file = tmp_path / "agent.toml"
    script = "import sys; print('got', sys.argv[1:])"
    config_file.write_text(
        f'[handlers."*"]\nargv = ["{PY}", "-c", "{script}"]\n\n[handlers.status]\nenabled = false\n'
    )
    registry = default_registry()
    apply_config(registry, load_config(config_file).handlers)
    dispatcher = Dispatcher(registry)

    def reply(name: str, argument: str | None = None) -> str | None:
        return run_async(dispatcher.dispatch(ctx(name, argument))).reply

    assert reply("checkin", "firmware update") == "got ['checkin', 'firmware update']"
    assert reply("report location") == "got ['report location']"
    assert reply("ping") == "pong"
    assert reply("status") == "error: command 'status' is disabled"
    assert reply("help") == "commands: help, ping"
    assert reply("") == "error: empty command"
    apply_config(registry, (HandlerConfig("*", enabled=False),))
    assert reply("checkin") == "error: unknown command 'checkin'"


@dataclass
class Gate:
    """``slow``'s runs: the arguments it started with; it waits until :attr:`opened`."""

    started: list[str] = field(default_factory=list)
    opened: asyncio.Event = field(default_factory=asyncio.Event)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def slow(self, c: CommandContext) -> str:
        self.started.append(c.argument or "")
        self._changed.set()
        await self.opened.wait()
        return f"slow {c.argument}"

    async def until_started(self, count: int) -> None:
        async def wait() -> None:
            while len(self.started) < count:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), WAIT)


def gate_registry(concurrency: int) -> tuple[Registry, Gate]:
    gate = Gate()
    registry = default_registry()
    registry.register(Handler("slow", gate.slow, idempotent=False, summary="waits"))
    apply_config(registry, (HandlerConfig("slow", concurrency=concurrency),))
    return registry, gate


async def test_a_slow_handler_holds_neither_the_loop_nor_other_commands(
    tmp_path: Path, line: Line
) -> None:
    """Issue 13: one slow handler need not hold every command behind it. With the
    default concurrency 1 its second command waits (RECEIVED, not RUNNING: the
    "never twice" rule journals RUNNING only as its run starts), while ``ping`` is
    answered; released, both slow ones are answered in order."""
    registry, gate = gate_registry(1)
    async with rig(tmp_path, line, registry) as r:
        r.gw.deliver("000", "slow: 1")
        await gate.until_started(1)
        r.gw.deliver("000", "slow: 2")
        r.gw.deliver("000", "ping: meanwhile")
        await r.gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        assert [m.text for m in r.gw.sent] == ["pong: meanwhile"]
        assert gate.started == ["1"]
        states = {row.text: row.state for row in r.journal.inbox()}
        assert states["slow: 1"] is InboxState.RUNNING
        assert states["slow: 2"] is InboxState.RECEIVED
        gate.opened.set()
        await r.gw.wait_until(lambda m: len(m.sent) >= 3, WAIT)
        assert [m.text for m in r.gw.sent][1:] == ["slow 1", "slow 2"]
        assert gate.started == ["1", "2"]


async def test_concurrency_lets_one_handler_run_several_at_once(tmp_path: Path, line: Line) -> None:
    registry, gate = gate_registry(2)
    async with rig(tmp_path, line, registry) as r:
        for n in range(3):
            r.gw.deliver("000", f"slow: {n}")
        await gate.until_started(2)
        # All three journaled (reply before delete, issue 14: they stay on the modem
        # until answered): the agent reports each received row.
        await asyncio.wait_for(r.recorder.until(lambda: len(r.recorder.rows) == 3), WAIT)
        assert r.gw.modem.storages["SM"].used == 3
        assert sorted(gate.started) == ["0", "1"]
        assert r.agent.executor.in_flight == 2
        (third,) = [row for row in r.journal.inbox() if row.text == "slow: 2"]
        assert third.state is InboxState.RECEIVED
        gate.opened.set()
        await r.gw.wait_until(lambda m: len(m.sent) >= 3 and m.storages["SM"].used == 0, WAIT)
        assert sorted(m.text for m in r.gw.sent) == ["slow 0", "slow 1", "slow 2"]
        assert all(row.state is InboxState.DONE for row in r.journal.inbox())


async def test_a_run_in_flight_at_stop_is_finished_and_its_reply_kept(
    tmp_path: Path, line: Line
) -> None:
    """Stopping waits for a run in flight (bounded by its timeout): its outcome is
    journaled and its reply queued, never left RUNNING to be called interrupted."""
    registry, gate = gate_registry(1)
    async with rig(tmp_path, line, registry) as r:
        r.gw.deliver("000", "slow: last")
        await gate.until_started(1)
        asyncio.get_running_loop().call_later(0.2, gate.opened.set)
    with Journal.open(tmp_path / "journal.sqlite3") as journal:
        (row,) = journal.inbox()
    assert (row.state, row.reply) == (InboxState.DONE, "slow last")


def test_concurrency_key(tmp_path: Path) -> None:
    good = tmp_path / "ok.toml"
    good.write_text(
        '[handlers.upload]\nargv = ["/bin/true"]\nconcurrency = 3\n\n'
        "[handlers.ping]\nconcurrency = 2\n"
    )
    upload, ping = load_config(good).handlers
    assert (upload.concurrency, ping.concurrency, ping.argv) == (3, 2, None)
    registry = default_registry()
    apply_config(registry, load_config(good).handlers)
    assert [registry.get(n).concurrency for n in ("upload", "ping", "help")] == [3, 2, 1]  # type: ignore[union-attr]
    for value in ("0", "1.5", "true"):
        bad = tmp_path / "bad.toml"
        bad.write_text(f'[handlers.x]\nargv = ["a"]\nconcurrency = {value}\n')
        with pytest.raises(ConfigError, match=r'handlers\."x"\.concurrency'):
            load_config(bad)
    with pytest.raises(ValueError, match="concurrency"):
        Handler(
            "x", gate_registry(1)[0].get("ping").func, idempotent=True, summary="", concurrency=0
        )  # type: ignore[union-attr]


HANDLERS = Path(__file__).resolve().parent.parent / "hardware" / "handlers"
EXAMPLE = HANDLERS.parent / "agent.toml.example"


def example_tables(tmp_path: Path) -> Path:
    """The commented ``checkin`` / ``report location`` tables of agent.toml.example,
    uncommented and pointed at hardware/handlers/ (as an operator installs them)."""
    text = EXAMPLE.read_text()
    block = text[text.index('# [handlers."checkin"]') : text.index("# A catch-all")]
    lines = [line.removeprefix("# ").removeprefix("#") for line in block.splitlines()]
    toml = "\n".join(lines).replace("/usr/local/lib/smscmd/handlers", str(HANDLERS))
    toml = toml.replace('"/var/lib/smscmd"', f'"{tmp_path}"')
    toml = toml.replace('"/etc/smscmd/firmware"', f'"{tmp_path / "firmware"}"')
    config_file = tmp_path / "agent.toml"
    config_file.write_text(toml)
    return config_file


async def test_example_handlers_through_the_agent(tmp_path: Path, line: Line) -> None:
    """Issue 13: the README's ``checkin: firmware update`` and ``report location``
    are answered by the shipped example handlers, not ``unknown command``."""
    (tmp_path / "firmware").write_text("gw-2.4.1\n")
    registry = default_registry()
    apply_config(registry, load_config(example_tables(tmp_path)).handlers)
    async with rig(tmp_path, line, registry) as r:
        r.gw.deliver("000", "checkin: firmware update")
        await r.gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        r.gw.deliver("000", "Report location: (52.520008, 13.404954)")
        await r.gw.wait_until(lambda m: len(m.sent) >= 2, WAIT)
        r.gw.deliver("000", "report location: somewhere")
        await r.gw.wait_until(lambda m: len(m.sent) >= 3, WAIT)
        checkin, recorded, refused = (m.text for m in r.gw.sent)
        rows = r.journal.inbox()
    assert checkin.startswith("checkin: up ") and checkin.endswith(
        ", firmware gw-2.4.1 (firmware update)"
    )
    assert recorded == "location recorded: 52.520008,13.404954"
    assert refused == "error: report location exited with status 2"
    assert [row.state for row in rows] == [InboxState.DONE, InboxState.DONE, InboxState.FAILED]
    assert "expected '(<latitude>, <longitude>)'" in (rows[2].error or "")
    (entry,) = (tmp_path / "locations.csv").read_text().splitlines()
    assert entry.endswith(",000,52.520008,13.404954")
