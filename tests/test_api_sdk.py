"""The official ``twilio`` SDK, unchanged, against hostsim's SmsCommands API.

The SDK is synchronous (requests): its calls run in a thread while hostsim
serves on the test's event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar

import pytest
from test_api import HC, HS, WAIT, Receiver, Statuses, fleet, send_sms
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from hostsim.cloud.network import Status
from hostsim.sim import HostSim

T = TypeVar("T")


@pytest.fixture(autouse=True)
def _no_edge(monkeypatch: pytest.MonkeyPatch) -> None:
    """TWILIO_EDGE / TWILIO_REGION would rewrite the base URL's host."""
    monkeypatch.delenv("TWILIO_EDGE", raising=False)
    monkeypatch.delenv("TWILIO_REGION", raising=False)


def make_client(sim: HostSim, auth_token: str | None = None) -> Client:
    assert sim.api_url is not None
    client = Client(sim.account_sid, auth_token or sim.auth_token)
    client.supersim.base_url = sim.api_url
    return client


@asynccontextmanager
async def sdk(count: int = 2, **kwargs: Any) -> AsyncIterator[tuple[HostSim, Client]]:
    async with fleet(count, **kwargs) as sim:
        client = make_client(sim)
        try:
            yield sim, client
        finally:
            close_client(client)


def close_client(client: Client) -> None:
    session = getattr(client.http_client, "session", None)
    if session is not None:
        session.close()


async def call(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking SDK call off the loop, bounded."""
    return await asyncio.wait_for(asyncio.to_thread(func, *args, **kwargs), WAIT)


async def test_create_by_unique_name_and_sid_with_callback() -> None:
    async with Receiver() as target, sdk() as (sim, client):
        watch = Statuses(sim.network)
        commands = client.supersim.v1.sms_commands
        by_name = await call(
            commands.create,
            sim="sim0",
            payload="checkin: now",
            callback_url=target.url + "/cb",
            callback_method="GET",
        )
        assert HC.match(by_name.sid) and HS.match(by_name.sim_sid)
        assert by_name.sim_sid == sim.sims[0].sid
        assert by_name.account_sid == sim.account_sid
        assert by_name.payload == "checkin: now"
        assert by_name.status == "queued" and by_name.direction == "to_sim"
        assert isinstance(by_name.date_created, datetime)
        assert isinstance(by_name.date_updated, datetime)
        assert by_name.url == f"{sim.api_url}/v1/SmsCommands/{by_name.sid}"
        hits = await target.wait_for(2)
        assert [(h.method, h.params["Status"]) for h in hits] == [
            ("GET", "sent"),
            ("GET", "delivered"),
        ]

        by_sid = await call(
            commands.create,
            sim=sim.sims[1].sid,
            payload="second",
            callback_url=target.url + "/cb",
            callback_method="POST",
        )
        assert by_sid.sim_sid == sim.sims[1].sid
        await watch.reached(by_sid.sid, Status.DELIVERED)
        await sim.modems[1].wait_until(lambda m: m.storages["SM"].used == 1, WAIT)
        hits = await target.wait_for(4)
        assert [(h.method, h.params["Status"]) for h in hits[2:]] == [
            ("POST", "sent"),
            ("POST", "delivered"),
        ]

        fetched = await call(commands(by_name.sid).fetch)
        assert fetched.sid == by_name.sid and fetched.status == "delivered"
        assert fetched.date_created == by_name.date_created


async def test_list_with_filters_and_across_pages() -> None:
    async with sdk() as (sim, client):
        commands = client.supersim.v1.sms_commands
        watch = Statuses(sim.network)
        created = [await call(commands.create, sim="sim0", payload=f"p{i}") for i in range(7)]
        other = await call(commands.create, sim="sim1", payload="other")
        for command in [*created, other]:
            await watch.reached(command.sid, Status.DELIVERED)
        await call(send_sms, sim.modems[1].path, "000", "reply")
        newest_first = [c.sid for c in reversed(created)]

        everything = await call(commands.list, sim="sim0", page_size=3)
        assert [c.sid for c in everything] == newest_first
        limited = await call(commands.list, sim="sim0", limit=5, page_size=2)
        assert [c.sid for c in limited] == newest_first[:5]
        streamed = await call(lambda: list(commands.stream(sim="sim0", page_size=2)))
        assert [c.sid for c in streamed] == newest_first

        page = await call(commands.page, sim="sim0", page_size=3)
        seen = [c.sid for c in page]
        while (page := await call(page.next_page)) is not None:
            seen += [c.sid for c in page]
        assert seen == newest_first

        by_sid = await call(commands.list, sim=sim.sims[1].sid)
        assert [c.payload for c in by_sid] == ["reply", "other"]
        received = await call(commands.list, status="received")
        assert [(c.payload, c.direction) for c in received] == [("reply", "from_sim")]
        from_sim = await call(commands.list, direction="from_sim", sim="sim1")
        assert [c.sid for c in from_sim] == [received[0].sid]
        delivered = await call(commands.list, status="delivered", direction="to_sim")
        assert len(delivered) == 8
        assert await call(commands.list, status="failed") == []


def rest_error(exc: pytest.ExceptionInfo[TwilioRestException], status: int, code: int) -> None:
    assert exc.value.status == status
    assert exc.value.code == code
    assert exc.value.msg


async def test_errors_surface_as_twilio_rest_exception() -> None:
    async with sdk(1) as (sim, client):
        commands = client.supersim.v1.sms_commands
        with pytest.raises(TwilioRestException) as unknown_sim:
            await call(commands.create, sim="sim9", payload="x")
        rest_error(unknown_sim, 404, 20404)
        with pytest.raises(TwilioRestException) as too_long:
            await call(commands.create, sim="sim0", payload="x" * 161)
        rest_error(too_long, 400, 20001)
        assert "160" in too_long.value.msg
        with pytest.raises(TwilioRestException) as bad_method:
            await call(
                commands.create,
                sim="sim0",
                payload="x",
                callback_url="http://127.0.0.1:1/cb",
                callback_method="PATCH",
            )
        rest_error(bad_method, 400, 20001)
        with pytest.raises(TwilioRestException) as unknown_sid:
            await call(commands("HC" + "0" * 32).fetch)
        rest_error(unknown_sid, 404, 20404)
        # A list page that is not 200 is a plain TwilioException in the SDK.
        with pytest.raises(TwilioException):
            await call(commands.list, sim="sim9")

        for account, token in [
            (sim.account_sid, "wrong-token"),
            ("AC" + "1" * 32, sim.auth_token),
        ]:
            stranger = Client(account, token)
            stranger.supersim.base_url = sim.api_url
            try:
                with pytest.raises(TwilioRestException) as denied:
                    await call(stranger.supersim.v1.sms_commands.create, sim="sim0", payload="x")
                rest_error(denied, 401, 20003)
                with pytest.raises(TwilioRestException) as denied_fetch:
                    await call(stranger.supersim.v1.sms_commands("HC" + "0" * 32).fetch)
                rest_error(denied_fetch, 401, 20003)
            finally:
                close_client(stranger)
        assert sim.network.commands() == []
