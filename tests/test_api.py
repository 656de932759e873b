"""hostsim's SmsCommands REST API over real HTTP, in-process with the emulated network.

Every wait is bounded and event-driven: network status changes through a
listener, modem changes through ``wait_until``, callbacks through the
receiver's own event.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import serial
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator
from yarl import URL

from hostsim.cloud.api.resource import PageSlice, payload_problem, select_page
from hostsim.cloud.api.server import ApiServer, create_app
from hostsim.cloud.callbacks import CALLBACK_FIELDS, Callback, CallbackSender, twilio_signature
from hostsim.cloud.network import Direction, Network, SidFactory, SmsCommand, Status
from hostsim.modem import EmulatedModem
from hostsim.modem.settings import ModemConfig, RegStat
from hostsim.sim import HostSim

WAIT = 10.0
RESOURCE_KEYS = {
    "sid",
    "account_sid",
    "sim_sid",
    "payload",
    "status",
    "direction",
    "date_created",
    "date_updated",
    "url",
}
META_KEYS = {
    "page",
    "page_size",
    "first_page_url",
    "previous_page_url",
    "url",
    "next_page_url",
    "key",
}
ERROR_KEYS = {"code", "message", "more_info", "status"}
HC = re.compile(r"^HC[0-9a-f]{32}$")
HS = re.compile(r"^HS[0-9a-f]{32}$")
AC = re.compile(r"^AC[0-9a-f]{32}$")
DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
IO_TIMEOUT = 5.0


def fleet(count: int = 2, **kwargs: Any) -> HostSim:
    kwargs.setdefault("retry_initial", 0.05)
    return HostSim(count, api="127.0.0.1:0", seed=1, **kwargs)


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


class Api:
    """A thin authenticated client of hostsim's API."""

    def __init__(self, sim: HostSim, session: aiohttp.ClientSession) -> None:
        assert sim.api_url is not None
        self.base = sim.api_url
        self.collection = sim.api_url + "/v1/SmsCommands"
        self.session = session
        self.auth = aiohttp.encode_basic_auth(sim.account_sid, sim.auth_token)

    async def request(
        self,
        method: str,
        url: str,
        *,
        data: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        auth: str | None = "default",
    ) -> Reply:
        headers = {}
        if auth == "default":
            headers["Authorization"] = self.auth
        elif auth is not None:
            headers["Authorization"] = auth
        async with self.session.request(
            method, url, data=data, params=params, headers=headers
        ) as response:
            body = await response.json()
            return Reply(response.status, body, dict(response.headers))

    async def create(self, **fields: str) -> Reply:
        return await self.request("POST", self.collection, data=fields)

    async def created(self, **fields: str) -> dict[str, Any]:
        reply = await self.create(**fields)
        assert reply.status == 201, reply.body
        return dict(reply.body)

    async def list(self, **params: str) -> Reply:
        return await self.request("GET", self.collection, params=params)

    async def fetch(self, sid: str) -> Reply:
        return await self.request("GET", f"{self.collection}/{sid}")


@asynccontextmanager
async def serving(count: int, **kwargs: Any) -> AsyncIterator[tuple[HostSim, Api]]:
    """A started fleet of ``count`` with its API, and a client for it."""
    async with fleet(count, **kwargs) as sim, aiohttp.ClientSession() as session:
        yield sim, Api(sim, session)


class Statuses:
    """Every status change the network announces; await one without polling."""

    def __init__(self, network: Network) -> None:
        self.seen: list[tuple[str, Status]] = []
        self._waiters: list[tuple[str, Status, asyncio.Future[None]]] = []
        network.listeners.append(self._heard)

    def _heard(self, command: SmsCommand) -> None:
        self.seen.append((command.sid, command.status))
        for sid, status, future in self._waiters:
            if sid == command.sid and status is command.status and not future.done():
                future.set_result(None)

    def of(self, sid: str) -> list[Status]:
        return [status for s, status in self.seen if s == sid]

    async def reached(self, sid: str, status: Status, timeout: float = WAIT) -> None:
        if status in self.of(sid):
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((sid, status, future))
        await asyncio.wait_for(future, timeout)


@dataclass(frozen=True, slots=True)
class Hit:
    method: str
    url: str
    params: dict[str, str]
    signature: str


class Receiver:
    """A local HTTP target recording callbacks; ``mode`` is ok, slow (answers only once
    released, at exit at the latest) or fail (500). ``hold`` paths are slow in any mode.
    """

    def __init__(self, mode: str = "ok", hold: frozenset[str] = frozenset()) -> None:
        self.mode = mode
        self.hold = hold
        self.hits: list[Hit] = []
        self.url = ""
        self._arrived = asyncio.Event()
        self._release = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)

    async def _handle(self, request: web.Request) -> web.Response:
        source = request.query if request.method == "GET" else await request.post()
        params = {name: str(value) for name, value in source.items()}
        signature = request.headers.get("X-Twilio-Signature", "")
        self.hits.append(Hit(request.method, str(request.url), params, signature))
        self._arrived.set()
        if self.mode == "slow" or request.path in self.hold:
            await self._release.wait()
        if self.mode == "fail":
            return web.Response(status=500, text="boom")
        return web.Response(text="")

    async def wait_for(self, count: int, timeout: float = WAIT) -> list[Hit]:
        async with asyncio.timeout(timeout):
            while len(self.hits) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.hits

    def release(self) -> None:
        self._release.set()

    async def __aenter__(self) -> Receiver:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._release.set()
        await self._runner.cleanup()


def signed_ok(token: str, hit: Hit) -> bool:
    params = hit.params if hit.method == "POST" else {}
    return bool(RequestValidator(token).validate(hit.url, params, hit.signature))


def check_resource(item: dict[str, Any], sim: HostSim) -> None:
    assert set(item) == RESOURCE_KEYS
    assert HC.match(item["sid"]) and HS.match(item["sim_sid"]) and AC.match(item["account_sid"])
    assert item["account_sid"] == sim.account_sid
    assert DATE.match(item["date_created"]) and DATE.match(item["date_updated"])
    assert item["url"] == f"{sim.api_url}/v1/SmsCommands/{item['sid']}"
    assert item["status"] in {s.value for s in Status}
    assert item["direction"] in {d.value for d in Direction}


def check_error(reply: Reply, status: int, code: int) -> None:
    assert reply.status == status, reply.body
    assert set(reply.body) == ERROR_KEYS
    assert reply.body["status"] == status and reply.body["code"] == code
    assert reply.body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    assert reply.body["message"]


def stored(index: int = 1) -> Callable[[EmulatedModem], bool]:
    return lambda m: m.storages["SM"].used >= index


def send_sms(port: str, number: str, text: str) -> bytes:
    """Text mode, then ``AT+CMGS`` through the pty like a TE; returns what the modem said."""
    with serial.Serial(port, 115200, timeout=IO_TIMEOUT) as ser:
        ser.write(b"ATE0;+CMGF=1\r")
        ser.read_until(b"OK\r\n")
        ser.write(f'AT+CMGS="{number}"\r'.encode())
        ser.read_until(b"> ")
        ser.write(text.encode() + b"\x1a")
        out = b""
        while b"OK\r\n" not in out and b"ERROR" not in out:
            chunk = ser.read_until(b"\r\n")
            if not chunk:
                break
            out += chunk
        return out


# -- create, fetch, delivery --------------------------------------------------------


async def test_create_by_name_is_delivered_with_exact_schema() -> None:
    async with serving(1) as (sim, api):
        created = await api.created(Sim="sim0", Payload="checkin: now")
        check_resource(created, sim)
        assert created["status"] == "queued" and created["direction"] == "to_sim"
        assert created["sim_sid"] == sim.sims[0].sid and created["payload"] == "checkin: now"
        await sim.modems[0].wait_until(stored(), WAIT)
        reply = await api.fetch(created["sid"])
        assert reply.status == 200
        check_resource(reply.body, sim)
        assert reply.body["status"] == "delivered"
        assert reply.body["date_created"] == created["date_created"]
        message = sim.modems[0].modem.storages["SM"].get(0)
        assert message is not None and message.address == "000"
        assert message.text == "checkin: now"


async def test_create_by_sid_reaches_only_that_modem() -> None:
    async with serving(2) as (sim, api):
        watch = Statuses(sim.network)
        by_sid = await api.created(Sim=sim.sims[1].sid, Payload="one")
        by_name = await api.created(Sim="sim1", Payload="two")
        for item in (by_sid, by_name):
            assert item["sim_sid"] == sim.sims[1].sid
            await watch.reached(item["sid"], Status.DELIVERED)
        await sim.modems[1].wait_until(stored(2), WAIT)
        assert sim.modems[0].modem.storages["SM"].used == 0
        assert watch.of(by_sid["sid"]) == [Status.SENT, Status.DELIVERED]


async def test_fetch_unknown_sid_is_404() -> None:
    async with serving(1) as (_sim, api):
        check_error(await api.fetch("HC" + "0" * 32), 404, 20404)
        check_error(await api.fetch("nonsense"), 404, 20404)


async def test_create_app_serves_without_a_server_and_uses_the_request_host() -> None:
    async with HostSim(seed=1) as sim:
        app = create_app(sim.network, sim.auth_token)
        async with TestServer(app) as server, TestClient(server) as client:
            auth = aiohttp.encode_basic_auth(sim.account_sid, sim.auth_token)
            headers = {"Authorization": auth, "Host": "gateway.test:8080"}
            response = await client.post(
                "/v1/SmsCommands", data={"Sim": "sim0", "Payload": "hi"}, headers=headers
            )
            assert response.status == 201
            body = await response.json()
            assert body["url"] == f"http://gateway.test:8080/v1/SmsCommands/{body['sid']}"
            response = await client.get("/v1/SmsCommands", headers=headers)
            meta = (await response.json())["meta"]
            assert meta["url"] == "http://gateway.test:8080/v1/SmsCommands?PageSize=50&Page=0"
        assert sim.network.listeners == []  # callbacks belong to ApiServer


# -- list, filters, paging --------------------------------------------------------


async def test_list_schema_and_filters() -> None:
    async with serving(2) as (sim, api):
        watch = Statuses(sim.network)
        a = await api.created(Sim="sim0", Payload="a")
        b = await api.created(Sim="sim1", Payload="b")
        await watch.reached(a["sid"], Status.DELIVERED)
        await watch.reached(b["sid"], Status.DELIVERED)
        out = await asyncio.to_thread(send_sms, sim.modems[1].path, "000", "reply")
        assert b"+CMGS:" in out and out.endswith(b"OK\r\n")
        sim.modems[0].modem.set_registration(RegStat.NOT_REGISTERED)
        c = await api.created(Sim="sim0", Payload="c")
        await watch.reached(c["sid"], Status.SENT)

        reply = await api.list()
        assert reply.status == 200 and set(reply.body) == {"sms_commands", "meta"}
        meta = reply.body["meta"]
        assert set(meta) == META_KEYS and meta["key"] == "sms_commands"
        assert meta["page"] == 0 and meta["page_size"] == 50
        assert meta["next_page_url"] is None and meta["previous_page_url"] is None
        assert meta["first_page_url"] == f"{api.collection}?PageSize=50&Page=0"
        items = reply.body["sms_commands"]
        for item in items:
            check_resource(item, sim)
        assert [i["payload"] for i in items] == ["c", "reply", "b", "a"]  # newest first

        async def payloads(**params: str) -> list[str]:
            got = await api.list(**params)
            assert got.status == 200, got.body
            for key, value in params.items():
                assert f"{key}={value}" in got.body["meta"]["url"]
            return [i["payload"] for i in got.body["sms_commands"]]

        assert await payloads(Sim="sim0") == ["c", "a"]
        assert await payloads(Sim=sim.sims[1].sid) == ["reply", "b"]
        assert await payloads(Direction="from_sim") == ["reply"]
        assert await payloads(Direction="to_sim") == ["c", "b", "a"]
        assert await payloads(Status="received") == ["reply"]
        assert await payloads(Status="sent") == ["c"]
        assert await payloads(Status="delivered", Sim="sim1") == ["b"]
        assert await payloads(Status="failed") == []
        assert await payloads(Sim="sim1", Direction="from_sim", Status="received") == ["reply"]


async def test_paging_follows_next_page_url_without_gaps_or_duplicates() -> None:
    async with serving(2) as (_sim, api):
        sids = [(await api.created(Sim="sim0", Payload=f"p{i}"))["sid"] for i in range(8)]
        await api.created(Sim="sim1", Payload="other sim")
        newest_first = sids[::-1]

        reply = await api.list(Sim="sim0", PageSize="3")
        pages = [reply.body]
        # A command arriving while paging shows on no page but the first: pages stay put.
        await api.created(Sim="sim0", Payload="late")
        while (url := pages[-1]["meta"]["next_page_url"]) is not None:
            assert url.startswith(api.collection + "?") and "Sim=sim0" in url
            assert "PageSize=3" in url
            got = await api.request("GET", url)
            assert got.status == 200
            pages.append(got.body)
        listed = [i["sid"] for page in pages for i in page["sms_commands"]]
        assert listed == newest_first
        assert [len(p["sms_commands"]) for p in pages] == [3, 3, 2]
        assert [p["meta"]["page"] for p in pages] == [0, 1, 2]
        assert pages[0]["meta"]["previous_page_url"] is None
        for page in pages:
            assert page["meta"]["page_size"] == 3
            assert page["meta"]["first_page_url"] == f"{api.collection}?Sim=sim0&PageSize=3&Page=0"

        # previous_page_url of the last page is the middle page again.
        back = await api.request("GET", pages[2]["meta"]["previous_page_url"])
        assert back.body["sms_commands"] == pages[1]["sms_commands"]
        assert back.body["meta"]["page"] == 1
        # meta.url reproduces its own page.
        again = await api.request("GET", pages[1]["meta"]["url"])
        assert again.body["sms_commands"] == pages[1]["sms_commands"]
        # Page without a token is an offset in pages; beyond the end is empty.
        offset = await api.list(Sim="sim0", PageSize="3", Page="1")
        # (the late command is now first: offsets shift, unlike tokens)
        assert [i["sid"] for i in offset.body["sms_commands"]] == newest_first[2:5]
        beyond = await api.list(Sim="sim0", PageSize="3", Page="9")
        assert beyond.body["sms_commands"] == []
        assert beyond.body["meta"]["next_page_url"] is None
        assert beyond.body["meta"]["previous_page_url"] is None


@given(
    total=st.integers(0, 40),
    page_size=st.integers(1, 12),
)
def test_select_page_partitions_any_listing(total: int, page_size: int) -> None:
    network = Network("AC" + "0" * 32, SidFactory(3))
    commands = [
        SmsCommand(
            network.sids.sid("HC"),
            network.account_sid,
            "HS" + "0" * 32,
            "x",
            Status.RECEIVED,
            Direction.FROM_SIM,
            network.clock(),
            network.clock(),
            seq=i,
        )
        for i in range(total)
    ][::-1]
    pages: list[PageSlice] = [select_page(commands, page_size)]
    assert not pages[0].has_previous
    while pages[-1].has_next:
        pages.append(select_page(commands, page_size, after=pages[-1].items[-1]))
        assert pages[-1].has_previous
    assert [c for page in pages for c in page.items] == commands
    assert all(len(page.items) == page_size for page in pages[:-1])
    for earlier, later in itertools.pairwise(pages):
        back = select_page(commands, page_size, before=later.items[0])
        assert back.items == earlier.items


# -- errors and auth ---------------------------------------------------------------

GOOD = {"Sim": "sim0", "Payload": "hello"}


@pytest.mark.parametrize(
    ("fields", "status", "code", "words"),
    [
        ({"Payload": "x"}, 400, 20001, "Missing required parameter Sim in the post body"),
        ({"Sim": "sim0"}, 400, 20001, "Missing required parameter Payload in the post body"),
        ({"Sim": "sim0", "Payload": ""}, 400, 20001, "Payload"),
        ({"Sim": "sim0", "Payload": "x" * 161}, 400, 20001, "160"),
        ({"Sim": "sim0", "Payload": "€" * 81}, 400, 20001, "160"),
        ({"Sim": "sim0", "Payload": "ж" * 71}, 400, 20001, "70"),
        ({**GOOD, "CallbackMethod": "PUT"}, 400, 20001, "CallbackMethod"),
        ({**GOOD, "CallbackUrl": "/relative"}, 400, 20001, "CallbackUrl"),
        ({**GOOD, "CallbackUrl": "ftp://example.com/x"}, 400, 20001, "CallbackUrl"),
        ({"Sim": "sim7", "Payload": "x"}, 404, 20404, "sim7"),
        ({"Sim": "HS" + "0" * 32, "Payload": "x"}, 404, 20404, "HS"),
    ],
)
async def test_create_errors(fields: dict[str, str], status: int, code: int, words: str) -> None:
    async with serving(1) as (_sim, api):
        reply = await api.create(**fields)
        check_error(reply, status, code)
        assert words in reply.body["message"]
        assert (await api.list()).body["sms_commands"] == []


@pytest.mark.parametrize(
    "payload",
    ["x" * 160, "€" * 80, "ж" * 70, "😀" * 35, "{[|]}" * 16, "line\nbreak"],
)
async def test_create_accepts_payloads_that_fit_one_sms(payload: str) -> None:
    assert payload_problem(payload) is None

    async with serving(1) as (sim, api):
        created = await api.created(Sim="sim0", Payload=payload)
        assert created["payload"] == payload
        await sim.modems[0].wait_until(stored(), WAIT)
        message = sim.modems[0].modem.storages["SM"].get(0)
        assert message is not None and message.text == payload


def test_payload_problem_edges() -> None:
    assert payload_problem("😀" * 36) is not None  # 72 UTF-16 units
    assert payload_problem("€" * 80 + "a") is not None  # 81 characters, 161 septets
    assert payload_problem("a" * 159 + "€") is not None  # 161 septets
    assert payload_problem("a" * 158 + "€") is None


@pytest.mark.parametrize(
    ("params", "status", "code", "words"),
    [
        ({"Status": "done"}, 400, 20001, "Status"),
        ({"Direction": "up"}, 400, 20001, "Direction"),
        ({"PageSize": "0"}, 400, 20001, "PageSize"),
        ({"PageSize": "many"}, 400, 20001, "PageSize"),
        ({"Page": "-1"}, 400, 20001, "Page"),
        ({"PageToken": "garbage"}, 400, 20001, "PageToken"),
        ({"PageToken": "PA" + "HC" + "0" * 32}, 400, 20001, "PageToken"),
        ({"PageToken": "PX" + "HC" + "0" * 32}, 400, 20001, "PageToken"),
        ({"Sim": "sim9"}, 404, 20404, "sim9"),
    ],
)
async def test_list_errors(params: dict[str, str], status: int, code: int, words: str) -> None:
    async with serving(1) as (_sim, api):
        reply = await api.list(**params)
        check_error(reply, status, code)
        assert words in reply.body["message"]


async def test_unknown_path_and_wrong_method() -> None:
    async with serving(1) as (_sim, api):
        check_error(await api.request("GET", api.base + "/v1/Sims"), 404, 20404)
        check_error(await api.request("GET", api.base + "/", auth=None), 404, 20404)
        for method, url in [
            ("DELETE", api.collection),
            ("PUT", api.collection),
            ("POST", api.collection + "/HC" + "0" * 32),
            ("DELETE", api.collection + "/HC" + "0" * 32),
        ]:
            reply = await api.request(method, url)
            check_error(reply, 405, 20004)
            assert "GET" in reply.headers["Allow"]


async def test_auth_failures_are_401() -> None:
    async with serving(1) as (sim, api):
        bad = [
            None,
            aiohttp.encode_basic_auth(sim.account_sid, "wrong"),
            aiohttp.encode_basic_auth("AC" + "1" * 32, sim.auth_token),
            "Basic !!!not-base64",
            "Bearer " + sim.auth_token,
        ]
        for auth in bad:
            for method, url, data in [
                ("GET", api.collection, None),
                ("POST", api.collection, GOOD),
                ("GET", api.collection + "/HC" + "0" * 32, None),
                ("GET", api.base + "/v1/Unknown", None),
            ]:
                reply = await api.request(method, url, data=data, auth=auth)
                check_error(reply, 401, 20003)
                assert reply.headers["WWW-Authenticate"] == 'Basic realm="Twilio API"'
        assert sim.network.commands() == []


async def test_bind_errors_and_bad_settings() -> None:
    network = Network("AC" + "0" * 32, SidFactory(1))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = ApiServer(network, "token")
        with pytest.raises(OSError, match=f"127.0.0.1:{port}"):
            await server.start(f"127.0.0.1:{port}")
        await server.close()
    server = ApiServer(network, "token")
    for address in ("nocolon", "127.0.0.1:x", ":80", "127.0.0.1:70000"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            await server.start(address)
    await server.close()
    await server.close()
    with pytest.raises(ValueError, match="method"):
        ApiServer(network, "token", commands_webhook_method="PATCH")
    with pytest.raises(ValueError, match="webhook"):
        ApiServer(network, "token", commands_webhook="not a url")
    assert network.listeners == []


# -- callbacks --------------------------------------------------------------------


def check_callback(hit: Hit, sim: HostSim, command: dict[str, Any], status: str) -> None:
    assert set(hit.params) == set(CALLBACK_FIELDS)
    assert hit.params["SmsCommandSid"] == command["sid"]
    assert hit.params["AccountSid"] == sim.account_sid
    assert hit.params["SimSid"] == command["sim_sid"]
    assert hit.params["SimUniqueName"] == "sim0"
    assert hit.params["Status"] == status
    assert hit.params["Direction"] == command["direction"]
    assert hit.params["Payload"] == command["payload"]
    assert hit.params["DateCreated"] == command["date_created"]
    assert DATE.match(hit.params["DateUpdated"])
    assert signed_ok(sim.auth_token, hit), hit
    assert not RequestValidator("other token").validate(hit.url, hit.params, hit.signature)


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_status_callbacks_each_change_in_order_signed(method: str) -> None:
    async with Receiver() as target, fleet(1) as sim, aiohttp.ClientSession() as session:
        api = Api(sim, session)
        url = target.url + "/status?tenant=a%20b"
        command = await api.created(
            Sim="sim0", Payload="ping & pong=1 €", CallbackUrl=url, CallbackMethod=method
        )
        hits = await target.wait_for(2)
        assert [h.method for h in hits] == [method, method]
        assert [h.params["Status"] for h in hits] == ["sent", "delivered"]
        for hit, status in zip(hits, ["sent", "delivered"], strict=True):
            if method == "GET":
                assert hit.params.pop("tenant") == "a b"
                assert signed_ok(sim.auth_token, hit)
                check_callback(hit, sim, command, status)
            else:
                assert hit.url == url
                check_callback(hit, sim, command, status)


def test_signature_matches_twilio_validator() -> None:
    params = {"b": "2", "a": "1 & €", "Payload": "x=y"}
    url = "https://example.com/cb?x=1"
    signature = twilio_signature("secret", url, params)
    assert RequestValidator("secret").validate(url, params, signature)
    assert not RequestValidator("secret").validate(url, {**params, "b": "3"}, signature)


async def test_sender_keeps_order_per_key_and_runs_keys_concurrently() -> None:
    async with Receiver(hold=frozenset({"/a1"})) as target:
        sender = CallbackSender("token", timeout=WAIT)
        assert not sender.submit(Callback("A", "POST", target.url + "/a0", {}))  # not started
        sender.start()
        try:
            for key, path in [("A", "/a1"), ("A", "/a2"), ("B", "/b1")]:
                assert sender.submit(Callback(key, "POST", target.url + path, {"k": key}))
            hits = await target.wait_for(2)
            # /a1 is held: /b1 went out meanwhile, /a2 waits behind /a1.
            assert sorted(URL(h.url).path for h in hits) == ["/a1", "/b1"]
            target.release()
            hits = await target.wait_for(3)
            assert URL(hits[2].url).path == "/a2"
        finally:
            await sender.close()
            await sender.close()
        assert not sender.submit(Callback("A", "POST", target.url + "/late", {}))


async def test_sender_drops_when_full(caplog: pytest.LogCaptureFixture) -> None:
    async with Receiver("slow") as target:
        sender = CallbackSender("token", max_pending=2, workers=1)
        sender.start()
        try:
            results = [
                sender.submit(Callback(str(i), "GET", target.url + f"/{i}", {})) for i in range(3)
            ]
            assert results == [True, True, False]
            await target.wait_for(1)
        finally:
            await sender.close()
    assert "callback queue full" in caplog.text


@pytest.mark.parametrize("mode", ["slow", "fail"])
async def test_bad_callback_target_blocks_nothing(mode: str) -> None:
    async with Receiver(mode) as target, fleet(1) as sim, aiohttp.ClientSession() as session:
        api = Api(sim, session)
        watch = Statuses(sim.network)
        sids = []
        for i in range(6):  # more than the sender's workers
            command = await api.created(
                Sim="sim0", Payload=f"c{i}", CallbackUrl=target.url + f"/{i}"
            )
            sids.append(command["sid"])
        for sid in sids:
            await watch.reached(sid, Status.DELIVERED, timeout=2.0)
        await sim.modems[0].wait_until(stored(6), 2.0)
        async with asyncio.timeout(2.0):
            listed = await api.list()
        assert {i["status"] for i in listed.body["sms_commands"]} == {"delivered"}
        await target.wait_for(1, timeout=2.0)
        if mode == "fail":
            hits = await target.wait_for(12)
            for i in range(6):
                mine = [h.params["Status"] for h in hits if h.url.endswith(f"/{i}")]
                assert mine == ["sent", "delivered"]


async def test_unreachable_callback_target_is_harmless() -> None:
    async with serving(1) as (sim, api):
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            port = closed.getsockname()[1]
        watch = Statuses(sim.network)
        command = await api.created(
            Sim="sim0", Payload="x", CallbackUrl=f"http://127.0.0.1:{port}/cb"
        )
        await watch.reached(command["sid"], Status.DELIVERED)


# -- undeliverable ----------------------------------------------------------------


async def test_unregistered_modem_keeps_sent_until_registration_returns() -> None:
    async with Receiver() as target, fleet(1) as sim, aiohttp.ClientSession() as session:
        api = Api(sim, session)
        watch = Statuses(sim.network)
        sim.modems[0].modem.reg_stat = RegStat.NOT_REGISTERED
        command = await api.created(Sim="sim0", Payload="later", CallbackUrl=target.url)
        await watch.reached(command["sid"], Status.SENT)
        assert (await target.wait_for(1))[0].params["Status"] == "sent"
        assert (await api.fetch(command["sid"])).body["status"] == "sent"
        assert sim.modems[0].modem.storages["SM"].used == 0
        sim.modems[0].modem.set_registration(RegStat.ROAMING)
        await watch.reached(command["sid"], Status.DELIVERED)
        await sim.modems[0].wait_until(stored(), WAIT)
        assert [h.params["Status"] for h in await target.wait_for(2)] == ["sent", "delivered"]
        assert (await api.fetch(command["sid"])).body["status"] == "delivered"


async def test_full_storage_holds_in_order_until_a_message_is_deleted() -> None:
    config = ModemConfig(storages=(("SM", 1), ("ME", 10)))

    async with serving(1, config=config) as (sim, api):
        watch = Statuses(sim.network)
        first = await api.created(Sim="sim0", Payload="first")
        second = await api.created(Sim="sim0", Payload="second")
        third = await api.created(Sim="sim0", Payload="third")
        await watch.reached(first["sid"], Status.DELIVERED)
        await watch.reached(second["sid"], Status.SENT)
        assert (await api.fetch(second["sid"])).body["status"] == "sent"
        assert (await api.fetch(third["sid"])).body["status"] == "queued"  # in order
        sim.modems[0].modem.feed(b"AT+CMGD=0\r")
        await watch.reached(second["sid"], Status.DELIVERED)
        message = sim.modems[0].modem.storages["SM"].get(0)
        assert message is not None and message.text == "second"
        assert (await api.fetch(third["sid"])).body["status"] == "sent"


async def test_retry_window_expiry_fails_the_command() -> None:
    async with serving(1, retry_window=0.3) as (sim, api):
        watch = Statuses(sim.network)
        sim.modems[0].modem.reg_stat = RegStat.NOT_REGISTERED
        command = await api.created(Sim="sim0", Payload="never")
        await watch.reached(command["sid"], Status.FAILED)
        assert watch.of(command["sid"]) == [Status.SENT, Status.FAILED]
        reply = await api.list(Status="failed")
        assert [i["sid"] for i in reply.body["sms_commands"]] == [command["sid"]]


# -- from_sim ----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_from_sim_is_listed_and_sent_to_fleet_webhook(method: str) -> None:
    async with Receiver() as target:
        hook = target.url + "/fleet"
        async with (
            fleet(2, commands_webhook=hook, commands_webhook_method=method) as sim,
            aiohttp.ClientSession() as session,
        ):
            api = Api(sim, session)
            out = await asyncio.to_thread(send_sms, sim.modems[0].path, "000", "ok: done")
            assert re.search(rb"\+CMGS: \d+\r\n\r\nOK\r\n$", out), out
            reply = await api.list(Direction="from_sim")
            [item] = reply.body["sms_commands"]
            check_resource(item, sim)
            assert item["status"] == "received" and item["payload"] == "ok: done"
            assert item["sim_sid"] == sim.sims[0].sid
            [hit] = await target.wait_for(1)
            assert hit.method == method and hit.url.startswith(hook)
            check_callback(hit, sim, item, "received")
            fetched = await api.fetch(item["sid"])
            assert fetched.body == item


async def test_sms_to_another_number_is_refused_with_cms_21() -> None:
    async with serving(1) as (sim, api):
        out = await asyncio.to_thread(send_sms, sim.modems[0].path, "+15551234567", "hi")
        assert b"+CMS ERROR: 21\r\n" in out, out
        assert sim.network.commands() == []
        assert (await api.list()).body["sms_commands"] == []


async def test_page_size_above_the_maximum_is_served_as_the_maximum() -> None:
    async with serving(1) as (_sim, api):
        reply = await api.list(PageSize="5000")
        assert reply.status == 200
        assert reply.body["meta"]["page_size"] == 1000


# -- review follow-ups: no busy retry, sent-anyway replies, fairness, failed callbacks, unplug --


async def test_full_storage_is_retried_without_spinning() -> None:
    """A full storage holds the command; the network does not retry on every loop turn."""

    async with serving(1, retry_initial=60.0) as (sim, api):
        gw = sim.modems[0]
        statuses = Statuses(sim.network)
        for n in range(30):
            assert gw.deliver("+15550000000", f"filler {n}") is not None
        attempts = 0
        deliver = gw.deliver

        def counting(sender: str, text: str, timestamp: Any = None) -> int | None:
            nonlocal attempts
            attempts += 1
            return deliver(sender, text, timestamp)

        gw.deliver = counting  # type: ignore[method-assign]
        held = await api.created(Sim="sim0", Payload="ping: held")
        await statuses.reached(held["sid"], Status.SENT)
        for _ in range(2000):  # two thousand loop turns: a busy retry would attempt each time
            await asyncio.sleep(0)
        assert attempts <= 3, attempts
        gw.modem.feed(b"ATE0\r")
        gw.modem.feed(b"AT+CMGD=0\r")  # space again: delivered at once, no timer needed
        await statuses.reached(held["sid"], Status.DELIVERED)


async def test_a_reply_sent_despite_an_error_reaches_the_cloud() -> None:
    async with serving(1) as (sim, api):
        modem = sim.modems[0].modem
        modem.fail_next_send(500, sent_anyway=True)
        for line in (b"ATE0\r", b"AT+CMGF=1\r", b'AT+CMGS="000"\r'):
            modem.feed(line)
        modem.feed(b"pong\x1a")
        assert [s.text for s in modem.sent] == ["pong"]  # answered +CMS ERROR: 500, yet sent
        reply = await api.list(Direction="from_sim")
        assert [c["payload"] for c in reply.body["sms_commands"]] == ["pong"]


async def test_a_slow_callback_target_does_not_delay_others() -> None:
    async with (
        Receiver("slow") as slow,
        Receiver() as fast,
        fleet(1) as sim,
        aiohttp.ClientSession() as session,
    ):
        api = Api(sim, session)
        for n in range(20):
            await api.created(Sim="sim0", Payload=f"p{n}", CallbackUrl=slow.url + "/s")
        await api.created(Sim="sim0", Payload="quick", CallbackUrl=fast.url + "/f")
        # Well inside the 5 s callback timeout the slow target is still holding.
        hits = await fast.wait_for(2, timeout=3.0)
        assert [h.params["Status"] for h in hits] == ["sent", "delivered"]
        slow.release()


async def test_failed_status_is_called_back_on_expiry_and_at_shutdown() -> None:
    async with Receiver() as target:
        async with fleet(1, retry_window=0.3) as sim, aiohttp.ClientSession() as session:
            api = Api(sim, session)
            sim.modems[0].modem.set_registration(RegStat.NOT_REGISTERED)
            await api.created(Sim="sim0", Payload="never", CallbackUrl=target.url + "/a")
            hits = await target.wait_for(2)
            assert [h.params["Status"] for h in hits] == ["sent", "failed"]
        async with fleet(1) as sim, aiohttp.ClientSession() as session:
            api = Api(sim, session)
            sim.modems[0].modem.set_registration(RegStat.NOT_REGISTERED)
            await api.created(Sim="sim0", Payload="pending", CallbackUrl=target.url + "/b")
            await target.wait_for(3)
        # hostsim closed: the pending command failed, and its callback went out.
        hits = await target.wait_for(4)
        assert [h.params["Status"] for h in hits[2:]] == ["sent", "failed"]


async def test_unplugged_modem_holds_commands_until_replugged(tmp_path: Any) -> None:
    async with serving(1, link=tmp_path / "gw") as (sim, api):
        gw = sim.modems[0]
        statuses = Statuses(sim.network)
        first_pty = gw.path
        gw.unplug()
        assert not gw.attached and gw.link is not None and not gw.link.exists()
        held = await api.created(Sim="sim0", Payload="ping: after replug")
        await statuses.reached(held["sid"], Status.SENT)
        gw.replug()
        await statuses.reached(held["sid"], Status.DELIVERED)
        assert gw.attached and gw.link.exists()
        assert gw.modem.storages["SM"].used == 1
        assert first_pty  # the new pty may or may not reuse the number; the link is stable


# -- the hostsim-only SMS route -------------------------------------------------------

LONG_BODY = "The quick brown fox jumps over the lazy dog. " * 9  # 3 GSM 7-bit parts


def hostsim_sms_url(api: Api, sim_key: str) -> str:
    return f"{api.base}/_hostsim/sims/{sim_key}/sms"


async def test_hostsim_sms_route_delivers_one_message() -> None:
    async with serving(2) as (sim, api):
        reply = await api.request("POST", hostsim_sms_url(api, "sim1"), data={"Body": "hi"})
        assert reply.status == 201 and reply.body == {"indexes": [0]}
        message = sim.modems[1].modem.storages["SM"].get(0)
        assert message is not None and (message.address, message.text) == ("000", "hi")
        assert message.concat is None and sim.modems[0].modem.storages["SM"].used == 0
        url = hostsim_sms_url(api, sim.sims[1].sid)
        reply = await api.request("POST", url, data={"Body": "yo", "From": "+447700900123"})
        assert reply.status == 201 and reply.body == {"indexes": [1]}
        message = sim.modems[1].modem.storages["SM"].get(1)
        assert message is not None and message.address == "+447700900123"
        assert sim.network.commands() == []  # no SmsCommand: it bypassed the network


async def test_hostsim_sms_route_delivers_parts_in_the_given_order() -> None:
    async with serving(1) as (sim, api):
        modem = sim.modems[0].modem
        data = {"Body": LONG_BODY, "Parts": "2, 0,1,1"}
        reply = await api.request("POST", hostsim_sms_url(api, "sim0"), data=data)
        assert reply.status == 201 and reply.body == {"indexes": [0, 1, 2, 3]}
        parts = [modem.storages["SM"].get(i) for i in range(4)]
        concats = [p.concat for p in parts if p is not None and p.concat is not None]
        assert [c.sequence for c in concats] == [3, 1, 2, 2]
        assert len({c.reference for c in concats}) == 1 and {c.total for c in concats} == {3}
        by_sequence = {p.concat.sequence: p.text for p in parts if p and p.concat}
        assert "".join(by_sequence[n] for n in (1, 2, 3)) == LONG_BODY
        # Too long for one SMS and no Parts: concatenated, in order.
        reply = await api.request("POST", hostsim_sms_url(api, "sim0"), data={"Body": LONG_BODY})
        assert reply.status == 201 and reply.body == {"indexes": [4, 5, 6]}


async def test_hostsim_sms_route_reaches_the_te_as_cmti() -> None:
    async with serving(1) as (sim, api):
        with serial.Serial(sim.modems[0].path, 115200, timeout=IO_TIMEOUT) as ser:
            data = {"Body": LONG_BODY, "Parts": "1,0"}
            reply = await api.request("POST", hostsim_sms_url(api, "sim0"), data=data)
            assert reply.status == 201 and reply.body == {"indexes": [0, 1]}
            out = await asyncio.to_thread(ser.read_until, b'+CMTI: "SM",1\r\n')
            assert out == b'\r\n+CMTI: "SM",0\r\n\r\n+CMTI: "SM",1\r\n'


@pytest.mark.parametrize(
    ("sim_key", "data", "status", "code"),
    [
        ("sim0", {}, 400, 20001),
        ("sim0", {"Body": ""}, 400, 20001),
        ("sim0", {"Body": "x", "Parts": "a,b"}, 400, 20001),
        ("sim0", {"Body": "x", "Parts": "0,"}, 400, 20001),
        ("sim0", {"Body": LONG_BODY, "Parts": "0,3"}, 400, 20001),
        ("sim0", {"Body": "x", "From": "Far too long a sender"}, 400, 20001),
        ("sim0", {"Body": LONG_BODY, "From": "Far too long a sender"}, 400, 20001),
        ("sim9", {"Body": "x"}, 404, 20404),
        ("HS" + "0" * 32, {"Body": "x"}, 404, 20404),
    ],
)
async def test_hostsim_sms_route_errors(
    sim_key: str, data: dict[str, str], status: int, code: int
) -> None:
    async with serving(1) as (sim, api):
        check_error(
            await api.request("POST", hostsim_sms_url(api, sim_key), data=data), status, code
        )
        assert sim.modems[0].modem.storages["SM"].used == 0


async def test_hostsim_sms_route_auth_method_and_unplugged() -> None:
    async with serving(1) as (sim, api):
        url = hostsim_sms_url(api, "sim0")
        for auth in (None, aiohttp.encode_basic_auth(sim.account_sid, "wrong")):
            reply = await api.request("POST", url, data={"Body": "x"}, auth=auth)
            check_error(reply, 401, 20003)
        check_error(await api.request("GET", url), 405, 20004)
        check_error(await api.request("GET", api.base + "/_hostsim/other"), 404, 20404)
        sim.modems[0].unplug()
        check_error(await api.request("POST", url, data={"Body": "x"}), 409, 20409)
        assert sim.modems[0].modem.storages["SM"].used == 0
