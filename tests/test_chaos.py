"""Chaos: nothing lost, nothing run twice, with the agent killed at random moments.

hostsim (in-process: emulated network and modem on a real pty) delivers 200
SMS Commands to the real ``smscmd run`` process, while the test kills that
process with SIGKILL at least 20 times at seeded random moments and restarts
it. The commands go to a non-idempotent handler that counts its runs in a file
(fsync'd), installed as a plug-in through the ``smscmd.handlers`` entry point.

At the end, checked against the journal, the handler's count file and the
replies that reached the emulated network:

* every command is journaled exactly once, and finished;
* the counting handler ran at most once per command; a command that did not run
  is one whose run was interrupted by a kill (answered ``error: interrupted``);
* every reply reached hostsim; duplicates happen only in the documented window
  (the modem accepted the reply, the agent died before recording it), and are
  counted.

A second test stops the agent with SIGTERM in the middle of work: it exits 0,
and after a restart everything is answered, with nothing interrupted.

Waits are on what hostsim sees; the kill moments are chosen by a seeded
random generator (scheduling chaos, not synchronisation). ``pytest -s`` prints
the figures that RELIABILITY.md records.
"""

from __future__ import annotations

import asyncio
import collections
import os
import random
import signal
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import AgentProcess

from device.journal import InboxState, Journal, OutboxState
from hostsim.cloud.network import Direction, SmsCommand
from hostsim.modem.settings import ModemConfig
from hostsim.sim import HostSim

COMMANDS = 200
MIN_KILLS = 20
SEED = 20261125
WAIT = 60.0

PLUGIN = """
    import os
    from device.commands import Handler

    async def count(ctx):
        # Not idempotent: every run leaves a durable trace.
        with open(os.environ["CHAOS_COUNT_FILE"], "a", encoding="utf-8") as fh:
            fh.write(f"{ctx.argument}\\n")
            fh.flush()
            os.fsync(fh.fileno())
        return f"counted: {ctx.argument}"

    def handlers():
        return [Handler("count", count, idempotent=False, summary="chaos counter")]
"""


def install_plugin(root: Path) -> None:
    """A module and its dist-info on PYTHONPATH: discovered like an installed package."""
    (root / "chaos_plugin.py").write_text(textwrap.dedent(PLUGIN))
    info = root / "chaos_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: chaos-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[smscmd.handlers]\ncount = chaos_plugin:handlers\n")


def chaos_agent(tmp: Path, port: str) -> AgentProcess:
    """``smscmd run`` on ``port`` with the counting plugin on its path (not started)."""
    env = dict(os.environ, CHAOS_COUNT_FILE=str(tmp / "counts.txt"))
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(tmp / "plugin"), os.environ.get("PYTHONPATH", "")) if p
    )
    return AgentProcess(
        tmp, port, "--socket", str(tmp / "control.sock"), "--log-level", "INFO",
        env=env, stop_timeout=20.0,
    )  # fmt: skip


class Replies:
    """from_sim commands as the emulated network receives them; await a count."""

    def __init__(self, sim: HostSim) -> None:
        self.payloads: list[str] = []
        self._changed = asyncio.Event()
        sim.network.listeners.append(self._heard)

    def _heard(self, command: SmsCommand) -> None:
        if command.direction is Direction.FROM_SIM:
            self.payloads.append(command.payload)
            self._changed.set()

    async def at_least(self, count: int) -> None:
        while len(self.payloads) < count:
            self._changed.clear()
            await self._changed.wait()

    async def until(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            self._changed.clear()
            await self._changed.wait()

    def distinct_counted(self) -> int:
        return len({p for p in self.payloads if p.startswith("counted: c")})

    def answered(self) -> int:
        """Commands answered: each counted one once, and each ``error: interrupted``
        (a kill between the start of a run and its end: the handler may not have run).
        A duplicated ``error: interrupted`` could end the wait one command early; the
        checks of the journal afterwards would then fail, never pass wrongly."""
        return self.distinct_counted() + self.payloads.count("error: interrupted")

    async def heard(self, payload: str) -> None:
        while payload not in self.payloads:
            self._changed.clear()
            await self._changed.wait()


@pytest.mark.timeout(240)
@pytest.mark.async_timeout(200)
async def test_sigkill_chaos_loses_nothing_and_runs_nothing_twice(tmp_path: Path) -> None:
    (tmp_path / "plugin").mkdir()
    install_plugin(tmp_path / "plugin")
    rng = random.Random(SEED)
    figures: dict[str, object] = {}

    # A small storage (4 messages) keeps batches short, so that kills land in every
    # phase; the network holds the rest and retries as space frees.
    config = ModemConfig(storages=(("SM", 4), ("ME", 100)))
    async with HostSim(seed=SEED, retry_initial=0.2, config=config) as sim:
        gw, sim0 = sim.modems[0], sim.sims[0]
        replies = Replies(sim)
        runner = chaos_agent(tmp_path, gw.path)
        for n in range(COMMANDS):
            sim.network.create(sim0, f"count: c{n:03d}")
        # Each kill comes after the running agent has itself sent 1–6 new replies
        # (so it is up and working, never still importing), plus 0–10 ms, so that
        # kills land anywhere in the read/journal/run/send cycle.
        kills = 0
        await runner.start()
        try:
            for _ in range(MIN_KILLS + 4):
                target = len(replies.payloads) + rng.randint(1, 2)
                await asyncio.wait_for(
                    replies.until(
                        lambda t=target: (
                            len(replies.payloads) >= t  # type: ignore[misc]
                            or replies.answered() >= COMMANDS
                        )
                    ),
                    WAIT,
                )
                if replies.answered() >= COMMANDS:
                    break
                await asyncio.sleep(rng.uniform(0.0, 0.01))  # chaos timing, not a wait
                await runner.kill()
                kills += 1
                await runner.start()
            await asyncio.wait_for(
                replies.until(lambda: replies.answered() >= COMMANDS), WAIT
            )
            # A last command proves the last agent is up and working before the clean stop.
            sim.network.create(sim0, "count: final")
            await asyncio.wait_for(replies.heard("counted: final"), WAIT)
            assert await runner.terminate() == 0
        finally:
            await runner.cleanup()
        figures.update(kills=kills, starts=runner.starts, replies=list(replies.payloads))

    with Journal.open(tmp_path / "journal.sqlite3") as journal:
        inbox = journal.inbox(limit=None)
        outbox = journal.outbox(limit=10_000)
    texts = collections.Counter(row.text for row in inbox)
    expected = {f"count: c{n:03d}" for n in range(COMMANDS)} | {"count: final"}
    runs = collections.Counter((tmp_path / "counts.txt").read_text().split())
    lost = len(expected - set(texts))
    journaled_twice = sum(1 for v in texts.values() if v > 1)
    ran_twice = sum(1 for v in runs.values() if v > 1)
    print(f"\nCHAOS lost={lost} journaled_twice={journaled_twice} ran_twice={ran_twice}")
    assert set(texts) == expected, "a command is missing from the journal"
    assert all(v == 1 for v in texts.values()), "a command was journaled twice"
    assert all(row.state in (InboxState.DONE, InboxState.FAILED) for row in inbox)
    assert all(row.state is OutboxState.SENT for row in outbox)

    assert all(v == 1 for v in runs.values()), f"ran twice: {[k for k, v in runs.items() if v > 1]}"
    interrupted = {row.argument for row in inbox if row.reply == "error: interrupted"}
    not_run = {f"c{n:03d}" for n in range(COMMANDS)} | {"final"}
    not_run -= set(runs)
    assert not_run <= interrupted, f"not run and not reported interrupted: {not_run - interrupted}"
    for row in inbox:
        if row.reply != "error: interrupted":
            assert row.reply == f"counted: {row.argument}" and row.argument in runs

    received = collections.Counter(figures["replies"])  # type: ignore[arg-type]
    for row in inbox:
        assert received[row.reply] >= 1, f"reply {row.reply!r} never reached hostsim"
    assert received["error: interrupted"] >= len(interrupted)
    counted_replies = {k: v for k, v in received.items() if k != "error: interrupted"}
    duplicates = sum(v - 1 for v in counted_replies.values()) + max(
        0, received["error: interrupted"] - len(interrupted)
    )
    kills = figures["kills"]
    assert isinstance(kills, int) and kills >= MIN_KILLS
    # A duplicate needs a kill between the modem accepting a reply and its commit.
    assert duplicates <= kills, f"{duplicates} duplicate replies for {kills} kills"
    print(
        f"CHAOS commands={COMMANDS} kills={kills} starts={figures['starts']} "
        f"interrupted={len(interrupted)} "
        f"(of which not run: {len(not_run)}) duplicate_replies={duplicates}"
    )


@pytest.mark.timeout(120)
@pytest.mark.async_timeout(100)
async def test_sigterm_in_the_middle_of_work_loses_nothing(tmp_path: Path) -> None:
    (tmp_path / "plugin").mkdir()
    install_plugin(tmp_path / "plugin")
    total = 40

    async with HostSim(seed=1, retry_initial=0.2) as sim:
        gw, sim0 = sim.modems[0], sim.sims[0]
        replies = Replies(sim)
        runner = chaos_agent(tmp_path, gw.path)
        await runner.start()
        try:
            for n in range(total):
                sim.network.create(sim0, f"count: t{n:02d}")
            await asyncio.wait_for(replies.at_least(10), WAIT)
            assert await runner.terminate(timeout=10.0) == 0
            with Journal.open(runner.journal) as journal:
                assert not any(r.state is InboxState.RUNNING for r in journal.inbox(None))
            await runner.start()
            await asyncio.wait_for(replies.at_least(total), WAIT)
            assert await runner.terminate() == 0
        finally:
            await runner.cleanup()
        assert sorted(replies.payloads) == sorted(f"counted: t{n:02d}" for n in range(total))
    runs = collections.Counter((tmp_path / "counts.txt").read_text().split())
    assert sorted(runs) == [f"t{n:02d}" for n in range(total)]
    assert set(runs.values()) == {1}


# What a crash at each step must lead to, after a restart: handler runs, the reply
# that reaches the network, and how many times it does.
CRASH_OUTCOMES = {
    "after_read": (1, "counted: x", 1),  # not journaled yet: read again
    "after_commit": (1, "counted: x", 1),  # journaled, still on the modem: deduplicated
    "after_delete": (1, "counted: x", 1),  # deleted after the reply, before mark_deleted
    "after_start": (0, "error: interrupted", 1),  # running, handler not reached
    "after_handler": (1, "error: interrupted", 1),  # ran, outcome not committed
    "after_send": (1, "counted: x", 2),  # the documented window: the reply goes out twice
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("point", sorted(CRASH_OUTCOMES))
@pytest.mark.async_timeout(100)
async def test_crash_at_each_step(tmp_path: Path, point: str) -> None:
    from device.agent import CRASH_POINTS

    assert set(CRASH_POINTS) == set(CRASH_OUTCOMES)
    (tmp_path / "plugin").mkdir()
    install_plugin(tmp_path / "plugin")
    runs_expected, reply_expected, copies_expected = CRASH_OUTCOMES[point]

    async with HostSim(seed=2, retry_initial=0.2) as sim:
        gw, sim0 = sim.modems[0], sim.sims[0]
        replies = Replies(sim)
        runner = chaos_agent(tmp_path, gw.path)
        runner.env["SMSCMD_CRASH_AT"] = point
        await runner.start()
        try:
            sim.network.create(sim0, "count: x")
            assert runner.proc is not None
            assert await asyncio.wait_for(runner.proc.wait(), WAIT) == -signal.SIGKILL
            del runner.env["SMSCMD_CRASH_AT"]
            await runner.start()
            await asyncio.wait_for(replies.heard(reply_expected), WAIT)
            # One more command proves the agent went past the recovery.
            sim.network.create(sim0, "count: y")
            await asyncio.wait_for(replies.heard("counted: y"), WAIT)
            assert await runner.terminate() == 0
        finally:
            await runner.cleanup()
        assert replies.payloads.count(reply_expected) == copies_expected, replies.payloads
    counts = tmp_path / "counts.txt"
    runs = collections.Counter(counts.read_text().split() if counts.exists() else [])
    assert runs["x"] == runs_expected
    with Journal.open(tmp_path / "journal.sqlite3") as journal:
        texts = [row.text for row in journal.inbox(limit=None)]
    assert texts == ["count: x", "count: y"]
