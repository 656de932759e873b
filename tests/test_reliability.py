"""Reliability suite: the agent rides through the failures gateways see in the field.

Each fault alone, then a mixed storm, then random fault schedules (a hypothesis
``RuleBasedStateMachine`` builds them). Commands go through the emulated
network (``to_sim``), replies come back as ``from_sim`` commands; every command
must be executed exactly once and answered, and no exception may escape the
agent. Recovery time (fault → first reply to a command sent after it) is
measured; ``pytest -s`` prints a line per fault (RELIABILITY.md records them).

The agent runs in-process against hostsim. Each fault alone goes over the
in-memory link (``hostsim.link``, its variants in turn); the USB unplug, the
storm and the schedules go over a real pty, reached through the stable symlink
(so an unplugged modem comes back as a new pty behind it).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import run_async
from harness import Line
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule

from device.agent import Agent
from device.commands import default_registry
from device.config import Config
from device.journal import InboxState, Journal
from hostsim.cloud.network import Direction, SmsCommand
from hostsim.link import VARIANTS
from hostsim.modem.faults import FaultPlan
from hostsim.modem.personas import persona
from hostsim.modem.settings import ModemConfig, RegStat
from hostsim.pty import SimulatedModem
from hostsim.sim import HostSim

WAIT = 30.0

VARIANTS_BY_NAME = {v.name: v for v in VARIANTS}

FAULT_FIGURES: list[str] = []


@dataclass
class Fleet:
    sim: HostSim
    gw: SimulatedModem
    agent: Agent
    journal: Journal
    replies: list[SmsCommand] = field(default_factory=list)
    reply_times: list[float] = field(default_factory=list)
    sent_payloads: list[str] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def send(self, payload: str) -> None:
        self.sent_payloads.append(payload)
        self.sim.network.create(self.sim.sims[0], payload)

    def heard(self, command: SmsCommand) -> None:
        if command.direction is Direction.FROM_SIM:
            self.replies.append(command)
            self.reply_times.append(time.monotonic())
            self.changed.set()

    async def replies_for(self, payloads: list[str]) -> None:
        wanted = {"pong: " + p.removeprefix("ping: ") for p in payloads}
        while not wanted <= {r.payload for r in self.replies}:
            self.changed.clear()
            await self.changed.wait()


async def start_fleet(
    tmp: Path,
    config: ModemConfig | None = None,
    *,
    command_timeout: float = 0.5,
    line: Line | None = None,
) -> tuple[Fleet, Any]:
    """The agent and hostsim joined by ``line`` (default: a pty behind a symlink)."""
    line = Line.pty() if line is None else line
    sim = line.hostsim(link=tmp / "modem", seed=6, retry_initial=0.05, config=config)
    await sim.start()
    gw = sim.modems[0]
    agent_config = Config(
        port=str(tmp / "modem"),
        journal=tmp / "journal.sqlite3",
        command_timeout=command_timeout,
        health_interval=0.3,
        sweep_interval=1.0,
        reconnect_initial=0.05,
        reconnect_max=0.3,
        send_retry_initial=0.05,
        send_retry_max=0.3,
    )
    journal = Journal.open(agent_config.journal)
    agent = Agent(
        agent_config,
        journal,
        default_registry(),
        open_channel=line.open_channel(gw, default_timeout=command_timeout),
    )
    fleet = Fleet(sim, gw, agent, journal)
    sim.network.listeners.append(fleet.heard)
    task = asyncio.create_task(agent.run())
    return fleet, task


async def stop_fleet(fleet: Fleet, task: Any) -> None:
    fleet.agent.stop()
    try:
        await asyncio.wait_for(task, WAIT)  # re-raises anything that escaped the agent
    finally:
        await fleet.sim.close()


def check_exactly_once(fleet: Fleet, *, unreadable: int = 0) -> int:
    """Every command journaled once, done, answered; returns the duplicate replies.

    ``unreadable``: that many rows are messages given up as unreadable (a poison
    message), which are no command and are checked apart."""
    try:
        rows = fleet.journal.inbox(limit=None)
    finally:
        fleet.journal.close()
    given_up = [r for r in rows if (r.error or "").startswith("unreadable after")]
    assert len(given_up) == unreadable, given_up
    assert all(r.state is InboxState.UNDECODABLE for r in given_up)
    rows = [r for r in rows if r not in given_up]
    texts = collections.Counter(r.text for r in rows)
    assert set(texts) == set(fleet.sent_payloads), "a command is missing from the journal"
    assert max(texts.values()) == 1, "a command was journaled twice"
    assert all(r.state is InboxState.DONE for r in rows), [
        r for r in rows if r.state.value != "done"
    ]
    replies = collections.Counter(r.payload for r in fleet.replies)
    for payload in fleet.sent_payloads:
        assert replies["pong: " + payload.removeprefix("ping: ")] >= 1
    return sum(v - 1 for v in replies.values())


Fault = Callable[[Fleet], Awaitable[None]]


async def _garbage(f: Fleet) -> None:
    f.gw.inject(bytes(random.Random(1).randrange(256) for _ in range(300)) + b"\r\n")


async def _reboot(f: Fleet) -> None:
    f.gw.reboot()


async def _silent_reset(f: Fleet) -> None:
    f.gw.modem.reset_settings()


async def _sim_busy_reboot(f: Fleet) -> None:
    f.gw.modem.sim_ready = False
    f.gw.reboot()
    # The fault lasts 0.3 s: hostsim's loop timer ends it, the test does not wait.
    asyncio.get_running_loop().call_later(0.3, setattr, f.gw.modem, "sim_ready", True)


async def _unplug(f: Fleet) -> None:
    f.gw.unplug_for(0.3)  # replugged by hostsim after 0.3 s, as a new pty behind the link


async def _hang(f: Fleet) -> None:
    f.gw.hang(1.0)  # hostsim answers again after 1 s


async def _echo_on(f: Fleet) -> None:
    # Echo silently back on, as after a reset that kept every other setting.
    f.gw.modem.settings = dataclasses.replace(f.gw.modem.settings, echo=True)


async def _deregistered(f: Fleet) -> None:
    f.gw.modem.set_registration(RegStat.NOT_REGISTERED)
    # Back in coverage after 0.5 s (a loop timer; the test does not wait for it).
    asyncio.get_running_loop().call_later(0.5, f.gw.modem.set_registration, RegStat.ROAMING)


async def _cms_on_send(f: Fleet) -> None:
    f.gw.modem.fail_next_send(331)
    f.gw.modem.fail_next_send(500, sent_anyway=True)


async def _invalid_cmti(f: Fleet) -> None:
    f.gw.inject(b'\r\n+CMTI: "SM",-1\r\n\r\n+CMTI: "ME",7\r\n\r\n+CMTI: "SM",29\r\n')


async def _urc_flood(f: Fleet) -> None:
    f.gw.inject(b"".join(b'\r\n+QIND: "csq",20,99\r\n' for _ in range(200)))


async def _reset_not_ready(f: Fleet) -> None:
    f.gw.reset(not_ready_seconds=0.3)


async def _slow_chunks(f: Fleet) -> None:
    f.gw.set_faults(chunk_size=3, chunk_delay=0.002)


async def _flood_inside(f: Fleet) -> None:
    f.gw.set_faults(urc_flood=3)


async def _bare_lf(f: Fleet) -> None:
    f.gw.set_faults(bare_lf=True)


async def _echo_stuck(f: Fleet) -> None:
    f.gw.set_faults(echo_stuck=True)
    f.gw.modem.reset_settings()  # echo on again, and ATE0 will not turn it off


async def _random_cms(f: Fleet) -> None:
    f.gw.set_faults(cms_on_send=0.3, sent_anyway=0.5)


async def _bogus_cmti(f: Fleet) -> None:
    f.gw.set_faults(invalid_cmti=True)


async def _seeded_garbage(f: Fleet) -> None:
    f.gw.garbage(2000)


FAULTS: dict[str, Fault] = {
    "reset mid-work, not ready 0.3 s": _reset_not_ready,
    "output in 3-byte chunks, 2 ms apart": _slow_chunks,
    "3 vendor URCs before every response line": _flood_inside,
    "bare LF line endings": _bare_lf,
    "echo stuck on": _echo_stuck,
    "random +CMS ERROR 500 on 30 % of sends": _random_cms,
    "bogus +CMTI after each real one": _bogus_cmti,
    "2000 bytes of line noise": _seeded_garbage,
    "garbage bytes": _garbage,
    "reboot with banner": _reboot,
    "silent reset (no banner)": _silent_reset,
    "reboot, SIM busy 0.3 s": _sim_busy_reboot,
    "USB unplug 0.3 s, new pty": _unplug,
    "hung module 1 s": _hang,
    "echo back on": _echo_on,
    "no network 0.5 s": _deregistered,
    "+CMS ERROR on send (331, 500 sent anyway)": _cms_on_send,
    "invalid +CMTI indexes": _invalid_cmti,
    "URC flood (200)": _urc_flood,
}


#: Each fault alone runs over the in-memory link, the variants taken in turn (so each
#: meets several faults without multiplying the run); the unplug over the pty, where
#: a new device file appears behind the symlink.
FAULT_LINES = [
    (name, "pty" if name.startswith("USB unplug") else VARIANTS[i % len(VARIANTS)].name)
    for i, name in enumerate(FAULTS)
]


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    ("name", "over"), FAULT_LINES, ids=[f"{name}-{over}" for name, over in FAULT_LINES]
)
@pytest.mark.async_timeout(80)
async def test_each_fault_alone(tmp_path: Path, name: str, over: str) -> None:
    line = Line.pty() if over == "pty" else Line.loopback(VARIANTS_BY_NAME[over])
    fleet, task = await start_fleet(tmp_path, line=line)
    try:
        before = [f"ping: b{n}" for n in range(3)]
        for p in before:
            fleet.send(p)
        await asyncio.wait_for(fleet.replies_for(before), WAIT)
        t0 = time.monotonic()
        await FAULTS[name](fleet)
        after = [f"ping: a{n}" for n in range(5)]
        for p in after:
            fleet.send(p)
        await asyncio.wait_for(fleet.replies_for(after), WAIT)
        first = min(
            t
            for r, t in zip(fleet.replies, fleet.reply_times, strict=True)
            if r.payload.startswith("pong: a")
        )
    finally:
        await stop_fleet(fleet, task)
    duplicates = check_exactly_once(fleet)
    FAULT_FIGURES.append(
        f"FAULT {name}: commands=8 lost=0 duplicates={duplicates} "
        f"recovery={(first - t0) * 1000:.0f} ms"
    )
    print(f"\n{FAULT_FIGURES[-1]}")


@pytest.mark.timeout(120)
@pytest.mark.async_timeout(110)
async def test_burst_of_100_back_to_back(tmp_path: Path) -> None:
    """Each +CMTI lands while the agent still reads the previous one; storage holds 30."""

    fleet, task = await start_fleet(tmp_path)
    try:
        burst = [f"ping: {n:03d}" for n in range(100)]
        for p in burst:
            fleet.send(p)
        await asyncio.wait_for(fleet.replies_for(burst), WAIT * 2)
    finally:
        await stop_fleet(fleet, task)
    assert check_exactly_once(fleet) == 0
    print("\nFAULT burst of 100: commands=100 lost=0 duplicates=0")


@pytest.mark.timeout(150)
@pytest.mark.async_timeout(140)
async def test_mixed_storm(tmp_path: Path) -> None:
    rng = random.Random(20261125)

    # Slow output (3-byte chunks) makes long listings take seconds: timeouts as on a
    # real gateway, not the tight ones of the single-fault tests.
    fleet, task = await start_fleet(tmp_path, command_timeout=2.0)
    try:
        sent: list[str] = []
        for wave in range(12):
            batch = [f"ping: w{wave}-{n}" for n in range(rng.randint(2, 6))]
            for p in batch:
                fleet.send(p)
            sent += batch
            fleet.gw.set_faults(FaultPlan())  # one lasting fault at a time
            await FAULTS[rng.choice(list(FAULTS))](fleet)
        await asyncio.wait_for(fleet.replies_for(sent), WAIT * 3)
    finally:
        await stop_fleet(fleet, task)
    duplicates = check_exactly_once(fleet)
    print(f"\nFAULT mixed storm: commands={len(fleet.sent_payloads)} lost=0 "
          f"duplicates={duplicates}")  # fmt: skip


class FaultSchedules(RuleBasedStateMachine):
    """Rules build a schedule of commands and faults; teardown runs it against the real
    agent and hostsim and checks that every command ran once and was answered."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[tuple[str, str]] = []

    @rule(n=st.integers(min_value=1, max_value=4))
    def commands(self, n: int) -> None:
        start = sum(1 for kind, _ in self.steps if kind == "cmd")
        self.steps += [("cmd", f"ping: s{start + i}") for i in range(n)]

    @rule(fault=st.sampled_from(sorted(FAULTS)))
    def fault(self, fault: str) -> None:
        self.steps.append(("fault", fault))

    def teardown(self) -> None:
        steps = [*self.steps, ("cmd", "ping: last")]

        async def scenario(tmp: Path) -> None:
            fleet, task = await start_fleet(tmp, command_timeout=2.0)
            try:
                for kind, value in steps:
                    if kind == "cmd":
                        fleet.send(value)
                    else:
                        fleet.gw.set_faults(FaultPlan())
                        await FAULTS[value](fleet)
                await asyncio.wait_for(fleet.replies_for(fleet.sent_payloads), WAIT * 2)
            finally:
                await stop_fleet(fleet, task)
            check_exactly_once(fleet)

        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            run_async(scenario(Path(tmp)), timeout=100)


FaultSchedules.TestCase.settings = settings(
    max_examples=3,
    stateful_step_count=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_random_fault_schedules = pytest.mark.timeout(400)(FaultSchedules.TestCase)


# -- issue 12: one odd answer never stalls the agent or makes it loop ----------------


async def _poison(f: Fleet) -> None:
    # A corrupt record: its AT+CMGR and the listing answer +CMS ERROR: 320.
    index = f.gw.deliver("+447700900123", "corrupt record")
    assert index is not None
    f.gw.set_faults(unreadable_index=index)


async def _sticky_cscs(f: Fleet) -> None:
    f.gw.set_faults(cscs_reads_ira=True)


async def _double_reset(f: Fleet) -> None:
    # RDY now, the rest of the banner (SMS DONE, PB DONE …) 0.3 s later: one boot.
    f.gw.reset(not_ready_seconds=0.3)


@dataclass(frozen=True)
class OddAnswer:
    """A fault of issue 12: injected before the bring-up (``at_start``) or after three
    answered commands; what the run must end with."""

    inject: Fault
    at_start: bool
    reinitialisations: int
    unreadable: int = 0
    persona: str | None = None


ODD_ANSWERS: dict[str, OddAnswer] = {
    "a poison message": OddAnswer(_poison, False, 0, unreadable=1),
    "settings that will not stick (CSCS reads back IRA)": OddAnswer(_sticky_cscs, True, 0),
    "settings that stop sticking mid-run": OddAnswer(_sticky_cscs, False, 1),
    "a double reset (Quectel RDY … +QIND: SMS DONE)": OddAnswer(_double_reset, False, 1),
    "a double reset (SIMCom RDY … SMS DONE, PB DONE)": OddAnswer(
        _double_reset, False, 1, persona="simcom-sim7600"
    ),
}
ODD_LINES = [(name, VARIANTS[i % len(VARIANTS)].name) for i, name in enumerate(ODD_ANSWERS)]


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    ("name", "over"), ODD_LINES, ids=[f"{name}-{over}" for name, over in ODD_LINES]
)
@pytest.mark.async_timeout(80)
async def test_one_odd_answer_never_stalls_or_loops(tmp_path: Path, name: str, over: str) -> None:
    """Issue 12: a poison message (a read and listing that answer an error) is given up
    after a bounded number of tries and blocks nothing; a setting that will not stick is
    reported and run with; one reset seen twice is one re-initialisation. Measured over
    2 s of health checks (every 0.3 s) and safety sweeps (every 1 s) after the commands."""
    case = ODD_ANSWERS[name]
    config = persona(case.persona) if case.persona is not None else None
    fleet, task = await start_fleet(tmp_path, config, line=Line.loopback(VARIANTS_BY_NAME[over]))
    try:
        if case.at_start:
            await case.inject(fleet)  # the agent's task has not run yet
        before = [f"ping: b{n}" for n in range(3)]
        for p in before:
            fleet.send(p)
        await asyncio.wait_for(fleet.replies_for(before), WAIT)
        reinitialised = fleet.agent.counters.reinitialisations
        if not case.at_start:
            await case.inject(fleet)
        after = [f"ping: a{n}" for n in range(5)]
        for p in after:
            fleet.send(p)
        await asyncio.wait_for(fleet.replies_for(after), WAIT)
        await asyncio.sleep(2.0)
        counters = fleet.agent.counters
        reinitialised = counters.reinitialisations - reinitialised
        status = await fleet.agent.status_report()
        assert counters.unreadable == case.unreadable
        assert reinitialised == case.reinitialisations, status
        if case.inject is _sticky_cscs:
            assert status["settings_not_sticking"] == {"CSCS": "IRA"}
            assert any("AT+CSCS reads back IRA" in t for t in status["trouble"])
        else:
            assert status["trouble"] == []
    finally:
        await stop_fleet(fleet, task)
    duplicates = check_exactly_once(fleet, unreadable=case.unreadable)
    assert duplicates == 0
    FAULT_FIGURES.append(
        f"ODD {name}: commands=8 lost=0 duplicates={duplicates} "
        f"reinitialisations={reinitialised} unreadable={case.unreadable}"
    )
    print(f"\n{FAULT_FIGURES[-1]}")
