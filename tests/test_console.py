"""The hostsim console's server side: the page, the event stream, the hub's model.

The stream is read by a plain aiohttp client against a real :class:`HostSim` with
``console=True`` (the API server as ``hostsim run --console`` runs it); the browser
side is tests/test_console_browser.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from harness import running_hostsim
from hypothesis import given
from hypothesis import strategies as st

from hostsim.cloud.api.control import CONTROLS
from hostsim.console.hub import CONTROL_FORMS, Subscription
from hostsim.console.routes import EVENTS_PATH
from hostsim.console.traffic import MAX_LINE_BYTES, LineTraffic, escape
from hostsim.modem.faults import fault_fields
from hostsim.sim import HostSim
from hostsim.wire import Direction

WAIT = 5.0


def _auth(sim: HostSim) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(sim.account_sid, sim.auth_token)}


class Events:
    """A reader of one ``text/event-stream``: each event as (kind, data)."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def next(self) -> tuple[str, Any]:
        kind, data = "", ""
        async with asyncio.timeout(WAIT):
            while True:
                line = (await self.response.content.readline()).decode()
                if not line:
                    raise EOFError("stream ended")
                line = line.rstrip("\n")
                if line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    data = line.removeprefix("data: ")
                elif line == "" and kind:
                    return kind, json.loads(data)

    async def until(self, kind: str, match: Any) -> Any:
        """The next event of ``kind`` whose data ``match(data)`` accepts."""
        while True:
            got, data = await self.next()
            if got == kind and match(data):
                return data


@asynccontextmanager
async def console(count: int = 1) -> AsyncIterator[tuple[HostSim, aiohttp.ClientSession]]:
    async with (
        HostSim(count, api="127.0.0.1:0", console=True, seed=5) as sim,
        aiohttp.ClientSession(headers=_auth(sim)) as session,
    ):
        yield sim, session


@asynccontextmanager
async def events(sim: HostSim, session: aiohttp.ClientSession) -> AsyncIterator[Events]:
    assert sim.api_url is not None
    async with session.get(sim.api_url + EVENTS_PATH) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/event-stream"
        yield Events(response)


async def test_the_stream_starts_with_a_snapshot_of_the_fleet() -> None:
    async with console(2) as (sim, session), events(sim, session) as stream:
        kind, snap = await stream.next()
        assert kind == "snapshot"
        assert [s["unique_name"] for s in snap["sims"]] == ["sim0", "sim1"]
        first = snap["sims"][0]
        assert first["state"] == "ready" and first["registration"] == "roaming"
        assert first["signal"] == {"rssi": 20, "dbm": -73}  # 27.007 §8.5: -113 + 2 * 20
        assert first["storage"][0] == {"name": "SM", "used": 0, "total": 30}
        assert [f["name"] for f in snap["faults"]] == [f.name for f in fault_fields()]
        assert snap["commands"] == [] and snap["traffic"] == {"sim0": [], "sim1": []}


async def test_a_command_posted_to_the_api_is_streamed_queued_sent_delivered() -> None:
    async with console() as (sim, session), events(sim, session) as stream:
        await stream.next()
        answer = await session.post(
            f"{sim.api_url}/v1/SmsCommands", data={"Sim": "sim0", "Payload": "ping: a"}
        )
        sid = (await answer.json())["sid"]
        statuses: list[str] = []
        lines: list[dict[str, Any]] = []
        while not statuses or statuses[-1] != "delivered":
            kind, data = await stream.next()
            if kind == "command" and data["sid"] == sid:
                statuses.append(data["status"])
                command = data
            elif kind == "traffic":
                lines.append(data)
        assert statuses == ["queued", "sent", "delivered"]
        assert [h["status"] for h in command["history"]] == statuses
        assert command["sim"] == "sim0" and command["payload"] == "ping: a"
        # The +CMTI went out while the modem took the SMS, before it counted as delivered.
        assert [(x["sim"], x["dir"], x["text"]) for x in lines] == [
            ("sim0", "out", '+CMTI: "SM",0')
        ]
        # A new stream's snapshot has the command with its history, the line, the storage.
        async with events(sim, session) as again:
            _, snap = await again.next()
        assert [h["status"] for h in snap["commands"][0]["history"]] == statuses
        assert snap["traffic"]["sim0"][-1]["text"] == '+CMTI: "SM",0'
        assert snap["sims"][0]["storage"][0]["used"] == 1


async def test_a_reset_and_a_fault_plan_change_are_streamed_as_sim_views() -> None:
    async with console() as (sim, session), events(sim, session) as stream:
        await stream.next()
        base = f"{sim.api_url}/_hostsim/sims/sim0"
        assert (await session.post(base + "/reset", data={"not_ready_seconds": "0.2"})).ok
        assert (await stream.until("sim", lambda d: True))["state"] == "booting"
        assert (await stream.until("sim", lambda d: d["state"] != "booting"))["state"] == "ready"
        assert (await session.post(base + "/faults", data={"bare_lf": "true"})).ok
        view = await stream.until("sim", lambda d: d["faults"]["bare_lf"])
        assert view["faults"]["urc_flood"] == 0
        assert (await session.post(base + "/hang")).ok
        assert (await stream.until("sim", lambda d: True))["state"] == "hung"
        assert (await session.post(base + "/unplug")).ok
        assert (await stream.until("sim", lambda d: True))["state"] == "unplugged"


async def test_a_client_that_goes_away_leaves_no_task_and_no_subscriber() -> None:
    async with console() as (sim, session):
        assert sim.hub is not None
        before = len(asyncio.all_tasks())
        for _ in range(3):
            async with events(sim, session) as stream:
                await stream.next()
                assert sim.hub.subscribers == 1
        # The server cancels the handler when its client goes: bounded wait on that.
        async with asyncio.timeout(WAIT):
            while sim.hub.subscribers or len(asyncio.all_tasks()) > before:  # noqa: ASYNC110
                await asyncio.sleep(0.01)  # nothing to wait on: the handler task just ends


async def test_closing_hostsim_ends_open_streams() -> None:
    async with HostSim(api="127.0.0.1:0", console=True) as sim:
        session = aiohttp.ClientSession(headers=_auth(sim))
        response = await session.get(f"{sim.api_url}{EVENTS_PATH}")
        stream = Events(response)
        await stream.next()
        await sim.close()
        with pytest.raises(EOFError):
            await stream.next()
        response.release()
        await session.close()


async def test_the_page_needs_the_credentials_and_exists_only_with_the_console() -> None:
    async with console() as (sim, session):
        async with aiohttp.ClientSession() as anonymous:
            for path in ("/", "/console/console.js", EVENTS_PATH):
                response = await anonymous.get(f"{sim.api_url}{path}")
                assert response.status == 401, path
                assert response.headers["WWW-Authenticate"].startswith("Basic")
        page = await session.get(f"{sim.api_url}/")
        assert page.status == 200 and page.content_type == "text/html"
        assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
        html = await page.text()
        assert '<script src="/console/console.js"' in html and "http" not in html.lower()
        for name in ("console.js", "console.css"):
            response = await session.get(f"{sim.api_url}/console/{name}")
            assert response.status == 200
        assert (await session.get(f"{sim.api_url}/console/nothing.js")).status == 404
    async with HostSim(api="127.0.0.1:0") as plain, aiohttp.ClientSession() as anonymous:
        response = await anonymous.get(f"{plain.api_url}/", headers=_auth(plain))
        assert response.status == 404 and (await response.json())["code"] == 20404
        assert plain.ready_info()["console"] is None


async def test_a_cross_origin_post_is_refused_even_with_the_credentials() -> None:
    async with console() as (sim, session):
        response = await session.post(
            f"{sim.api_url}/v1/SmsCommands",
            data={"Sim": "sim0", "Payload": "ping: csrf"},
            headers={"Origin": "http://evil.example"},
        )
        assert response.status == 403 and (await response.json())["code"] == 20403
        assert sim.network.commands() == []
        same = await session.post(
            f"{sim.api_url}/v1/SmsCommands",
            data={"Sim": "sim0", "Payload": "ping: same"},
            headers={"Origin": sim.api_url or ""},
        )
        assert same.status == 201


def test_every_one_shot_control_and_every_fault_has_a_trigger_on_the_page() -> None:
    assert {form.name for form in CONTROL_FORMS} == {c.name for c in CONTROLS} - {"faults"}


async def test_every_control_form_is_accepted_by_its_route() -> None:
    values = {"not_ready_seconds": "0", "seconds": "", "bytes": "3"}
    async with console() as (sim, session):
        for form in CONTROL_FORMS:
            data = {form.param: values[form.param]} if form.param and values[form.param] else {}
            response = await session.post(
                f"{sim.api_url}/_hostsim/sims/sim0/{form.name}", data=data
            )
            assert response.status == 200, (form.name, await response.text())


def test_a_slow_stream_is_dropped_not_grown() -> None:
    async def body() -> None:
        subscription = Subscription(3)
        for n in range(5):
            subscription.put(b"%d" % n)
        assert subscription.dropped
        assert subscription.queue.get_nowait() is None  # the stream ends at once

    asyncio.run(body())


# -- the traffic as lines ----------------------------------------------------------------

EXCHANGE = [
    (Direction.TO_MODULE, b'AT+CMGS="000"\r'),
    (Direction.TO_TE, b'AT+CMGS="000"\r\r\n> '),
    (Direction.TO_MODULE, b"pong: a\x1a"),
    (Direction.TO_TE, b"pong: a\x1a\r\n+CMGS: 7\r\n\r\nOK\r\n"),
]


def _lines(chunks: list[tuple[Direction, bytes]]) -> list[tuple[str, str]]:
    traffic = LineTraffic(clock=lambda: 0.0)
    for direction, data in chunks:
        traffic.feed(direction, data)
    return [(line.direction.value, line.text) for line in traffic.lines]


def test_lines_without_an_end_show_once_the_other_side_speaks() -> None:
    assert _lines(EXCHANGE) == [
        ("in", 'AT+CMGS="000"'),
        ("out", 'AT+CMGS="000"'),
        ("out", "> "),
        ("in", "pong: a\\x1a"),
        ("out", "pong: a\\x1a"),
        ("out", "+CMGS: 7"),
        ("out", "OK"),
    ]


@given(st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=20))
def test_any_chunking_of_one_direction_gives_the_same_lines(cuts: list[int]) -> None:
    data = b"\r\nRDY\r\n\r\n+CFUN: 1\r\n" + bytes(range(256)) + b"\r\nOK\r\n" + b"x" * 600 + b"\n"
    chunks, start = [], 0
    for cut in cuts * 200:
        if start >= len(data):
            break
        chunks.append((Direction.TO_TE, data[start : start + cut]))
        start += cut
    chunks.append((Direction.TO_TE, data[start:]))
    assert _lines(chunks) == _lines([(Direction.TO_TE, data)])


def test_long_lines_are_cut_and_the_buffer_is_bounded() -> None:
    traffic = LineTraffic(max_lines=4)
    traffic.feed(Direction.TO_TE, b"A" * (MAX_LINE_BYTES * 3 + 1) + b"\r\n")
    assert [len(line.text) for line in traffic.lines] == [MAX_LINE_BYTES] * 3 + [1]
    traffic.feed(Direction.TO_TE, b"OK\r\n")
    assert len(traffic.lines) == 4 and traffic.lines[-1].text == "OK"


def test_escaping_reads_back_unambiguously() -> None:
    assert escape(b"a\\x1a\x1a\xff ~") == "a\\\\x1a\\x1a\\xff ~"


async def test_hostsim_run_console_prints_the_page_url(tmp_path: Path) -> None:
    async with running_hostsim(tmp_path, "--console") as ready:
        assert ready["console"] == ready["api"] + "/"
        headers = {"Authorization": aiohttp.encode_basic_auth(ready["account_sid"],
                                                              ready["auth_token"])}  # fmt: skip
        async with aiohttp.ClientSession(headers=headers) as session:
            page = await session.get(ready["console"])
            assert page.status == 200 and "hostsim console" in await page.text()
