"""hostsim's fault injection: each fault at the byte level (sans-IO modem or a pty
client), the hostsim-only fault routes over HTTP, and reproducibility by seed.

No sleeps: waits are on modem changes (``wait_until``), on bytes arriving at the
pty client, or on futures; every one is bounded.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from harness import PtyPeer

from hostsim.cli import _parser, fault_plan, main
from hostsim.cloud.api.control import CONTROLS, route_docs
from hostsim.modem import EmulatedModem
from hostsim.modem.faults import (
    OVERLONG_BYTES,
    ChunkedWriter,
    FaultPlan,
    fault_fields,
    garbage,
)
from hostsim.sim import HostSim

WAIT = 5.0
FLOOD_PREFIX = "+QIND: "


def modem(plan: FaultPlan, seed: int = 1) -> EmulatedModem:
    return EmulatedModem(faults=plan, rng=random.Random(seed))


def at(m: EmulatedModem, line: str) -> bytes:
    m.data_to_send()
    m.feed(line.encode() + b"\r")
    return m.data_to_send()


def lines(data: bytes) -> list[str]:
    return [part for part in data.decode("latin-1").replace("\r", "").split("\n") if part]


# -- the plan ---------------------------------------------------------------------------


def test_plan_defaults_validation_and_string_updates() -> None:
    assert not FaultPlan().active
    for bad in (
        {"chunk_size": -1},
        {"chunk_delay": -0.1},
        {"urc_flood": -2},
        {"cms_on_send": 1.5},
        {"sent_anyway": -0.5},
    ):
        with pytest.raises(ValueError):
            FaultPlan(**bad)
    with pytest.raises(ValueError, match="unknown"):
        FaultPlan().replace(nonsense=1)
    plan = FaultPlan().updated_from_strings(
        {"chunk_size": "4", "bare_lf": "true", "cms_on_send": "0.25", "echo_stuck": "off"}
    )
    assert plan == FaultPlan(chunk_size=4, bare_lf=True, cms_on_send=0.25)
    assert plan.active and plan.as_dict()["chunk_size"] == 4
    for fields in ({"bare_lf": "maybe"}, {"chunk_size": "x"}, {"what": "1"}):
        with pytest.raises(ValueError):
            FaultPlan().updated_from_strings(fields)


# -- sans-IO byte-level faults -----------------------------------------------------------


def test_each_fault_is_declared_once_and_feeds_the_cli_and_the_route_docs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    fields = fault_fields()
    assert [f.name for f in fields] == list(FaultPlan().as_dict())
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    usage = " ".join(capsys.readouterr().out.split())
    docs = route_docs()
    for field in fields:
        flag = "--fault-" + field.name.replace("_", "-")
        assert f"{flag} " in usage and field.metadata["help"] in usage
        assert f"``{field.name}``" in docs and field.metadata["help"] in docs
        value = True if isinstance(field.default, bool) else type(field.default)(1)
        argv = ["run", flag] if value is True else ["run", flag, str(value)]
        assert fault_plan(_parser().parse_args(argv)) == FaultPlan(**{field.name: value})
    for control in CONTROLS:
        assert f"/_hostsim/sims/{{Sim}}/{control.name}" in docs


def test_no_fault_keeps_the_exact_framing() -> None:
    assert at(modem(FaultPlan()), "AT+CGMI") == b"AT+CGMI\r\r\nQuectel\r\n\r\nOK\r\n"


def test_bare_lf_line_endings() -> None:
    m = modem(FaultPlan(bare_lf=True))
    assert at(m, "AT+CGMI") == b"AT+CGMI\r\nQuectel\n\nOK\n"  # echo keeps the TE's \r
    assert at(m, "AT+NOPE") == b"AT+NOPE\r\nERROR\n"
    assert at(m, 'AT+CMGF=1;+CMGS="+15550100"').endswith(b"\n> ")
    assert b"\r\n" not in at(m, "AT+CGMI")


def test_urc_flood_around_and_between_response_lines() -> None:
    m = modem(FaultPlan(urc_flood=2))
    at(m, "ATE0")
    out = at(m, "AT+CGMI;+CGMM")
    got = lines(out)
    # each response line (Quectel, BG96, OK) is preceded by two vendor URCs
    assert [line.startswith(FLOOD_PREFIX) for line in got] == [
        True, True, False, True, True, False, True, True, False,
    ]  # fmt: skip
    assert [line for line in got if not line.startswith(FLOOD_PREFIX)] == ["Quectel", "BG96", "OK"]
    # reproducible from the seed
    assert at(modem(FaultPlan(urc_flood=2), seed=9), "AT+CGMI") == at(
        modem(FaultPlan(urc_flood=2), seed=9), "AT+CGMI"
    )


def test_echo_stuck_ate0_answers_ok_but_echo_stays() -> None:
    m = modem(FaultPlan(echo_stuck=True))
    assert at(m, "ATE0") == b"ATE0\r\r\nOK\r\n"
    assert m.settings.echo is False
    assert at(m, "AT") == b"AT\r\r\nOK\r\n"
    m.faults = FaultPlan()  # replaceable at runtime: the setting rules again
    assert at(m, "AT") == b"\r\nOK\r\n"


def send(m: EmulatedModem, text: str = "hi") -> bytes:
    at(m, "AT+CMGF=1")
    assert at(m, 'AT+CMGS="+15550100"').endswith(b"> ")
    m.feed(text.encode() + b"\x1a")
    return m.data_to_send()


@pytest.mark.parametrize(("sent_anyway", "recorded"), [(1.0, 1), (0.0, 0)])
def test_cms_on_send_with_and_without_sent_anyway(sent_anyway: float, recorded: int) -> None:
    m = modem(FaultPlan(cms_on_send=1.0, sent_anyway=sent_anyway, echo_stuck=False))
    out = send(m)
    assert out.endswith(b"\r\n+CMS ERROR: 500\r\n")
    assert len(m.sent) == recorded


def test_cms_on_send_answers_the_chosen_code() -> None:
    """``cms_on_send_code`` 21: +CMS ERROR 21, short message transfer rejected (an RP-cause,
    27.005 §3.2.5 -> 24.011 Annex E.2), printed as text under AT+CMEE=2; nothing sent."""
    m = modem(FaultPlan(cms_on_send=1.0, cms_on_send_code=21, echo_stuck=False))
    assert send(m).endswith(b"\r\n+CMS ERROR: 21\r\n")
    assert at(m, "AT+CMEE=2").endswith(b"OK\r\n")
    assert send(m).endswith(b"\r\n+CMS ERROR: Short message transfer rejected\r\n")
    assert m.sent == []
    with pytest.raises(ValueError, match="between 0 and 511"):
        FaultPlan(cms_on_send_code=600)


def test_cms_on_send_probability_is_seeded() -> None:
    def outcomes(seed: int) -> list[bool]:
        m = modem(FaultPlan(cms_on_send=0.5), seed=seed)
        return [b"+CMS ERROR: 500" in send(m, f"n{i}") for i in range(40)]

    first = outcomes(3)
    assert first == outcomes(3)
    assert any(first) and not all(first)
    # a queued fail_next_send still wins and draws nothing
    m = modem(FaultPlan(cms_on_send=0.0))
    m.fail_next_send(302)
    assert send(m).endswith(b"+CMS ERROR: 302\r\n")
    assert send(m).endswith(b"OK\r\n")


def test_invalid_cmti_follows_every_real_one_with_a_bogus_one() -> None:
    kinds: set[str] = set()
    for seed in range(12):
        m = modem(FaultPlan(invalid_cmti=True), seed=seed)
        at(m, "ATE0;+CNMI=2,1,0,0,0")
        for round_ in range(3):
            index = m.deliver_sms("+15550100", f"msg {round_}")
            assert index is not None
            got = lines(m.data_to_send())
            assert got[0] == f'+CMTI: "SM",{index}'
            assert len(got) == 2 and got[1].startswith("+CMTI: ")
            mem, _, number = got[1].removeprefix("+CMTI: ").partition(",")
            bogus = int(number)
            if bogus == -1:
                kinds.add("negative")
            elif mem != '"SM"':
                kinds.add("other-memory")
            else:
                assert m.storages["SM"].get(bogus) is None  # points at nothing
                kinds.add("deleted")
            at(m, f"AT+CMGD={index}")  # now an already-deleted index
    assert kinds == {"negative", "other-memory", "deleted"}


def test_overlong_line_prints_the_next_bodies_over_long_and_counts_down() -> None:
    m = modem(FaultPlan(overlong_line=2))
    at(m, "ATE0;+CMGF=1")
    first = m.deliver_sms("+15550100", "one")
    m.deliver_sms("+15550100", "two")
    read = lines(at(m, f"AT+CMGR={first}"))
    assert read[0].startswith("+CMGR: ") and len(read[1]) >= OVERLONG_BYTES
    assert read[2] == "OK" and m.faults.overlong_line == 1
    listing = lines(at(m, 'AT+CMGL="ALL"'))
    assert [len(x) >= OVERLONG_BYTES for x in listing] == [False, True, False, False, False]
    assert m.faults.overlong_line == 0
    assert lines(at(m, f"AT+CMGR={first}"))[1] == "one"


def test_unreadable_index_fails_its_read_and_any_listing_until_deleted() -> None:
    """A corrupt SIM record: 27.005 §3.2.5 <err> 320 "memory failure" on AT+CMGR of it
    and on AT+CMGL (which would list it); the other indices read; AT+CMGD ends it."""
    m = modem(FaultPlan())
    at(m, "ATE0;+CMGF=1;+CNMI=2,1,0,0,0")
    bad = m.deliver_sms("+15550100", "corrupt")
    good = m.deliver_sms("+15550100", "fine")
    assert bad is not None and good is not None
    m.faults = m.faults.replace(unreadable_index=bad)
    assert lines(at(m, f"AT+CMGR={bad}")) == ["+CMS ERROR: 320"]
    assert lines(at(m, 'AT+CMGL="ALL"')) == ["+CMS ERROR: 320"]
    assert lines(at(m, f"AT+CMGR={good}"))[-2:] == ["fine", "OK"]
    # A listing that does not reach it (the corrupt one is still unread) answers.
    assert lines(at(m, 'AT+CMGL="REC READ"'))[-2:] == ["fine", "OK"]
    assert lines(at(m, f"AT+CMGD={bad},0")) == ["OK"]
    assert m.faults.unreadable_index == -1
    assert lines(at(m, 'AT+CMGL="ALL"'))[-2:] == ["fine", "OK"]
    with pytest.raises(ValueError):
        FaultPlan(unreadable_index=-2)


def test_cscs_reads_ira_whatever_was_set_and_the_set_one_is_used() -> None:
    """The "setting will not stick" module of issue 12: AT+CSCS="UCS2" is OK, AT+CSCS?
    shows "IRA" (27.007 §5.5 read form), text-mode strings are UCS2 all the same."""
    m = modem(FaultPlan(cscs_reads_ira=True))
    at(m, "ATE0;+CMGF=1;+CSDH=0")
    assert lines(at(m, 'AT+CSCS="UCS2"')) == ["OK"]
    assert lines(at(m, "AT+CSCS?")) == ['+CSCS: "IRA"', "OK"]
    index = m.deliver_sms("+15550100", "hi")
    assert lines(at(m, f"AT+CMGR={index}"))[-2] == "00680069"  # "hi" in UCS2


def test_reboot_not_ready_then_ready() -> None:
    m = modem(FaultPlan())
    m.data_to_send()
    m.reboot(not_ready=True)
    assert m.data_to_send() == b"\r\nRDY\r\n"
    assert at(m, "AT+CPIN?") == b"AT+CPIN?\r\r\n+CME ERROR: 14\r\n"
    assert at(m, "AT+CMGL=4") == b"AT+CMGL=4\r\r\n+CMS ERROR: 314\r\n"
    m.become_ready()
    assert lines(m.data_to_send()) == ["+CPIN: READY", "+QIND: PB DONE", "+QIND: SMS DONE"]
    assert at(m, "AT+CPIN?").endswith(b"+CPIN: READY\r\n\r\nOK\r\n")
    m.become_ready()  # already ready: nothing
    assert m.data_to_send() == b""


async def test_chunked_writer_schedules_chunks_and_never_blocks() -> None:
    loop = asyncio.get_running_loop()
    writes: list[bytes] = []
    done: asyncio.Future[None] = loop.create_future()
    plan = FaultPlan(chunk_size=3, chunk_delay=0.01)

    def write(data: bytes) -> None:
        writes.append(data)
        if sum(map(len, writes)) == 11 and not done.done():
            done.set_result(None)

    writer = ChunkedWriter(loop, write, lambda: plan)
    writer.write(b"abcdefgh")
    assert writes == [b"abc"] and writer.pending == 5  # the rest is scheduled
    writer.write(b"ijk")
    await asyncio.wait_for(done, WAIT)
    assert writes == [b"abc", b"def", b"gh", b"ijk"]
    # chunking off: straight through; clear drops what is queued
    plan = FaultPlan()
    writer.write(b"xyz")
    assert writes[-1] == b"xyz"
    plan = FaultPlan(chunk_size=1, chunk_delay=10)
    writer.write(b"12")
    writer.clear()
    assert writer.pending == 0 and writes[-1] == b"1"


# -- through a pty client ---------------------------------------------------------------


async def test_chunks_with_delay_reach_the_pty_in_pieces(tmp_path: Path) -> None:
    plan = FaultPlan(chunk_size=2, chunk_delay=0.02)
    async with HostSim(link=tmp_path / "m", faults=plan, seed=1) as sim:
        port = PtyPeer.open(tmp_path / "m")
        try:
            start = asyncio.get_running_loop().time()
            port.write(b"AT+CGMI\r")
            out = await port.expect(b"OK\r\n")
            elapsed = asyncio.get_running_loop().time() - start
            assert out.endswith(b"Quectel\r\n\r\nOK\r\n")
            assert len(port.reads) >= 5  # 17 chunks, 20 ms apart: not in one read
            assert elapsed >= 0.1
            sim[0].inject(b"0123456789")
            assert sim[0].output_pending == 8  # queued, the call did not block
            assert await port.exactly(10) == b"0123456789"
        finally:
            port.close()


async def test_unplug_for_seconds_replugs_behind_the_same_link(tmp_path: Path) -> None:
    link = tmp_path / "m"
    async with HostSim(link=link, seed=1) as sim:
        gateway = sim[0]
        gateway.unplug_for(0.05)
        assert not gateway.attached and not link.exists()
        await gateway.wait_until(lambda _: gateway.attached, WAIT)
        assert os.readlink(link) == gateway.path
        port = PtyPeer.open(link)
        try:
            port.write(b"AT+CGMR\r")
            assert (await port.expect(b"OK\r\n")).endswith(b"BG96MAR02A07M1G\r\n\r\nOK\r\n")
        finally:
            port.close()
        gateway.unplug_for(None)
        assert not gateway.attached
        gateway.replug()
        assert gateway.attached


async def test_reset_and_hang_timers_and_seeded_garbage(tmp_path: Path) -> None:
    async with HostSim(link=tmp_path / "m", seed=5) as sim:
        gateway = sim[0]
        gateway.reset(0.05)
        assert not gateway.modem.sim_ready
        await gateway.wait_until(lambda m: m.sim_ready, WAIT)
        gateway.hang(0.05)
        assert gateway.modem.hung
        await gateway.wait_until(lambda m: not m.hung, WAIT)
        assert gateway.garbage(32) == garbage(sim.rng_for(0), 32)
        with pytest.raises(ValueError):
            gateway.garbage(-1)
        with pytest.raises(ValueError):
            gateway.reset(-1)


# -- HTTP routes --------------------------------------------------------------------------


class Client:
    def __init__(self, sim: HostSim, session: aiohttp.ClientSession) -> None:
        assert sim.api_url is not None
        self.base = sim.api_url + "/_hostsim/sims/"
        self.session = session
        self.auth = aiohttp.encode_basic_auth(sim.account_sid, sim.auth_token)

    async def call(
        self,
        sim: str,
        action: str,
        *,
        params: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
        method: str = "POST",
        auth: bool = True,
    ) -> tuple[int, Any]:
        headers = {"Authorization": self.auth} if auth else {}
        async with self.session.request(
            method, self.base + f"{sim}/{action}", params=params, data=data, headers=headers
        ) as response:
            return response.status, await response.json()


@asynccontextmanager
async def serving(tmp_path: Path, **kwargs: Any) -> AsyncIterator[tuple[HostSim, Client]]:
    """Two gateways behind links in ``tmp_path`` with the API, and a client for it."""
    async with (
        HostSim(2, link=tmp_path / "gw", api="127.0.0.1:0", seed=1, **kwargs) as sim,
        aiohttp.ClientSession() as session,
    ):
        yield sim, Client(sim, session)


ACTIONS = ("reset", "unplug", "replug", "garbage", "hang", "resume", "faults")


async def test_routes_need_auth_and_a_known_sim(tmp_path: Path) -> None:
    async with serving(tmp_path) as (sim, client):
        for action in ACTIONS:
            status, body = await client.call("sim0", action, auth=False)
            assert status == 401 and body["code"] == 20003
            status, body = await client.call("nosuch", action, params={"bytes": "1"})
            assert status == 404 and body["code"] == 20404
        assert sim[0].attached and not sim[0].modem.hung


@pytest.mark.parametrize(
    ("action", "params"),
    [
        ("reset", {"not_ready_seconds": "-1"}),
        ("reset", {"not_ready_seconds": "soon"}),
        ("unplug", {"seconds": "nan"}),
        ("unplug", {"seconds": "1e9"}),
        ("garbage", {}),
        ("garbage", {"bytes": "0"}),
        ("garbage", {"bytes": "many"}),
        ("garbage", {"bytes": "70000"}),
        ("hang", {"seconds": "-3"}),
        ("faults", {"chunk_size": "-1"}),
        ("faults", {"bare_lf": "perhaps"}),
        ("faults", {"cms_on_send": "2"}),
        ("faults", {"unknown_fault": "1"}),
    ],
)
async def test_routes_refuse_bad_values(
    tmp_path: Path, action: str, params: dict[str, str]
) -> None:
    async with serving(tmp_path) as (sim, client):
        status, body = await client.call("sim0", action, params=params)
        assert status == 400 and body["code"] == 20001, body
        assert sim[0].attached and not sim[0].modem.hung and not sim[0].faults.active


async def test_reset_route_reboots_into_not_ready(tmp_path: Path) -> None:
    async with serving(tmp_path) as (sim, client):
        port = PtyPeer.open(tmp_path / "gw1")
        try:
            port.write(b"ATE0\r")
            await port.expect(b"OK\r\n")
            status, body = await client.call(
                sim.sims[1].sid, "reset", params={"not_ready_seconds": "60"}
            )
            assert status == 200 and body["sim_ready"] is False
            assert body["not_ready_seconds"] == 60
            assert await port.expect(b"RDY\r\n") == b"\r\nRDY\r\n"
            port.write(b"AT+CPIN?\r")  # echo is back on: settings at defaults
            assert await port.expect(b"\r\n+CME ERROR: 14\r\n") == (
                b"AT+CPIN?\r\r\n+CME ERROR: 14\r\n"
            )
            status, body = await client.call("sim1", "reset", data={})  # ready at once
            assert status == 200 and body["sim_ready"] is True
            assert (await port.expect(b"SMS DONE\r\n")).endswith(
                b"\r\nRDY\r\n\r\n+CPIN: READY\r\n\r\n+QIND: PB DONE\r\n\r\n+QIND: SMS DONE\r\n"
            )
            assert sim[0].modem.sim_ready
        finally:
            port.close()


async def test_unplug_route_with_seconds_replugs_and_without_waits(tmp_path: Path) -> None:
    async with serving(tmp_path) as (sim, client):
        gateway, link = sim[0], tmp_path / "gw0"
        status, body = await client.call("sim0", "unplug", params={"seconds": "0.05"})
        assert status == 200 and body["attached"] is False and body["replug_in"] == 0.05
        await gateway.wait_until(lambda _: gateway.attached, WAIT)
        assert os.readlink(link) == gateway.path
        status, body = await client.call("sim0", "unplug")
        assert status == 200 and body["replug_in"] is None and not link.exists()
        status, body = await client.call("sim0", "garbage", params={"bytes": "3"})
        assert status == 409 and body["code"] == 20409
        status, body = await client.call("sim0", "replug")
        assert status == 200 and body["attached"] is True and body["pty"] == gateway.path
        assert os.readlink(link) == gateway.path


async def test_garbage_route_puts_seeded_noise_on_the_line(tmp_path: Path) -> None:
    async with serving(tmp_path) as (sim, client):
        port = PtyPeer.open(tmp_path / "gw0")
        try:
            status, body = await client.call("sim0", "garbage", data={"bytes": "64"})
            assert status == 200 and body["bytes"] == 64
            assert await port.exactly(64) == garbage(sim.rng_for(0), 64)
        finally:
            port.close()


async def test_hang_route_swallows_input_until_resumed(tmp_path: Path) -> None:
    async with serving(tmp_path) as (sim, client):
        gateway = sim[0]
        port = PtyPeer.open(tmp_path / "gw0")
        try:
            status, body = await client.call("sim0", "hang")
            assert status == 200 and body["hung"] is True and body["resume_in"] is None
            port.write(b"AT+CGMI\r")
            await gateway.wait_until(lambda m: m.swallowed == 8, WAIT)
            status, body = await client.call("sim0", "resume")
            assert status == 200 and body["hung"] is False
            port.write(b"AT\r")
            assert await port.expect(b"OK\r\n") == b"AT\r\r\nOK\r\n"  # AT+CGMI was lost
            status, _ = await client.call("sim0", "hang", params={"seconds": "0.05"})
            assert status == 200 and gateway.modem.hung
            await gateway.wait_until(lambda m: not m.hung, WAIT)
        finally:
            port.close()


async def test_faults_route_sets_the_plan_live(tmp_path: Path) -> None:
    async with serving(tmp_path) as (sim, client):
        port = PtyPeer.open(tmp_path / "gw0")
        try:
            status, body = await client.call(
                "sim0", "faults", data={"bare_lf": "true", "urc_flood": "1"}
            )
            assert status == 200
            assert body["faults"] == FaultPlan(bare_lf=True, urc_flood=1).as_dict()
            assert not sim[1].faults.active  # one modem only
            port.write(b"AT+CGMI\r")
            out = await port.expect(b"\nOK\n")
            assert b"\r\n" not in out.removeprefix(b"AT+CGMI\r")
            assert [line.startswith(FLOOD_PREFIX) for line in lines(out)[1:]] == [
                True, False, True, False,
            ]  # fmt: skip
            status, body = await client.call("sim0", "faults", data={"chunk_size": "3"})
            assert body["faults"]["bare_lf"] is True and body["faults"]["chunk_size"] == 3
            status, body = await client.call("sim0", "faults", method="GET")
            assert status == 200 and body["faults"]["chunk_size"] == 3
            status, body = await client.call("sim0", "faults", data={"reset": "true"})
            assert status == 200 and body["faults"] == FaultPlan().as_dict()
        finally:
            port.close()


async def test_hostsim_faults_apply_to_every_modem(tmp_path: Path) -> None:
    async with serving(tmp_path, faults=FaultPlan(echo_stuck=True)) as (sim, client):
        assert all(gateway.faults == FaultPlan(echo_stuck=True) for gateway in sim.modems)
        status, body = await client.call("sim1", "faults", method="GET")
        assert status == 200 and body["faults"]["echo_stuck"] is True
