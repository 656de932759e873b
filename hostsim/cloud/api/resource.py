"""The SmsCommands resource: ``POST``/``GET /v1/SmsCommands`` and ``GET /v1/SmsCommands/{Sid}``.

* ``POST /v1/SmsCommands`` — form fields ``Sim`` (sid or unique name),
  ``Payload``, ``CallbackUrl``, ``CallbackMethod`` → 201 and the resource.
* ``GET /v1/SmsCommands`` — filters ``Sim``, ``Status``, ``Direction``; paging
  ``PageSize`` (default 50; above 1000 served as 1000), ``Page`` (0-based),
  ``PageToken`` →
  ``{"sms_commands": [...], "meta": {...}}``, newest first.
* ``GET /v1/SmsCommands/{Sid}`` → the bare resource.

Paging is by key (:func:`select_page`): ``PageToken=PA<sid>`` is the page
right after (older than) command ``<sid>``, ``PB<sid>`` the page right before
it (newer), so pages stay consistent while commands arrive. Without a token
``Page`` is an offset in pages; with one it is only echoed in ``meta.page``.
``next_page_url`` is null when nothing follows the page, ``previous_page_url``
when nothing precedes it or the page is empty. Empty filter values count as
absent. Meta URLs keep the filters as given.

400/20001 for a missing or invalid parameter (including an empty or too long
``Payload``, a bad ``PageToken``), 404/20404 for an unknown command or Sim.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from yarl import URL

from device.sms import gsm7
from hostsim.cloud.api.middleware import (
    NETWORK_KEY,
    ApiError,
    base_url,
    form_value,
    invalid,
    read_form,
    required,
)
from hostsim.cloud.network import CallbackMethod, Direction, Network, SmsCommand, Status

COLLECTION_PATH = "/v1/SmsCommands"
LIST_KEY = "sms_commands"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
#: Characters of one SMS Command (Super SIM docs) and of one UCS-2 SMS.
MAX_PAYLOAD = 160
MAX_UCS2_UNITS = 70
DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_COMMAND_SID = re.compile(r"HC[0-9a-fA-F]{32}")


def format_date(when: datetime) -> str:
    """``2015-07-30T20:00:00Z``; a naive datetime is taken as UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime(DATE_FORMAT)


def resource(command: SmsCommand, base: str) -> dict[str, Any]:
    """The public JSON of ``command``; ``base`` is ``scheme://host`` of the API."""
    return {
        "sid": command.sid,
        "account_sid": command.account_sid,
        "sim_sid": command.sim_sid,
        "payload": command.payload,
        "status": command.status.value,
        "direction": command.direction.value,
        "date_created": format_date(command.date_created),
        "date_updated": format_date(command.date_updated),
        "url": f"{base}{COLLECTION_PATH}/{command.sid}",
    }


def payload_problem(payload: str) -> str | None:
    """Why ``payload`` cannot be one SMS Command, or None when it can.

    Empty is refused. GSM 03.38 text may take 160 septets (extension
    characters such as ``€`` take two); anything else is sent as UCS-2 and may
    take 70 UTF-16 code units (a character outside the BMP takes two).
    """
    if not payload:
        return "Payload must not be empty"
    if len(payload) > MAX_PAYLOAD:
        return (
            f"Payload is too long: {len(payload)} characters, "
            f"an SMS Command holds at most {MAX_PAYLOAD}"
        )
    if all(gsm7.is_gsm(ch) for ch in payload):
        septets = gsm7.septet_length(payload)
        if septets > gsm7.SMS_SEPTETS:
            return (
                f"Payload is too long: {septets} GSM 03.38 septets (extension characters such "
                f"as € count 2), one SMS holds at most {gsm7.SMS_SEPTETS}"
            )
        return None
    units = len(payload.encode("utf-16-le", "surrogatepass")) // 2
    if units > MAX_UCS2_UNITS:
        odd = next(ch for ch in payload if not gsm7.is_gsm(ch))
        return (
            f"Payload is too long: {odd!r} is outside GSM 03.38, so it is sent as UCS-2, "
            f"which holds at most {MAX_UCS2_UNITS} characters in one SMS (this one has {units})"
        )
    return None


def valid_callback_url(url: str) -> bool:
    """An absolute ``http``/``https`` URL with a host."""
    try:
        parsed = URL(url)
    except ValueError:
        return False
    return parsed.scheme in ("http", "https") and bool(parsed.host)


def parse_method(value: str) -> CallbackMethod:
    """``GET`` or ``POST``, any case; ValueError otherwise."""
    return CallbackMethod(value.upper())


# -- paging -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PageSlice:
    """One page of a newest-first listing, and whether anything precedes / follows it."""

    items: list[SmsCommand]
    has_previous: bool
    has_next: bool


def _order(command: SmsCommand) -> tuple[datetime, int]:
    return (command.date_created, command.seq)


def select_page(
    commands: Sequence[SmsCommand],
    page_size: int,
    page: int = 0,
    after: SmsCommand | None = None,
    before: SmsCommand | None = None,
) -> PageSlice:
    """Slice newest-first ``commands``: after/before an anchor command (which need not
    be in ``commands``: filters may exclude it), else at offset ``page * page_size``.
    """
    if after is not None:
        anchor = _order(after)
        start = sum(1 for c in commands if _order(c) >= anchor)
    elif before is not None:
        anchor = _order(before)
        end = sum(1 for c in commands if _order(c) > anchor)
        start = max(0, end - page_size)
        items = list(commands[start:end])
        return PageSlice(items, bool(items) and start > 0, bool(items) and end < len(commands))
    else:
        start = page * page_size
    items = list(commands[start : start + page_size])
    return PageSlice(items, bool(items) and start > 0, start + page_size < len(commands))


async def create_command(request: web.Request) -> web.Response:
    """``POST /v1/SmsCommands``: 201 and the new ``queued`` command."""
    network = request.app[NETWORK_KEY]
    form = await read_form(request)
    sim_key = required(form, "Sim")
    payload = required(form, "Payload")
    callback_url = form_value(form, "CallbackUrl")
    method_text = form_value(form, "CallbackMethod") or "POST"
    try:
        method = parse_method(method_text)
    except ValueError:
        invalid(f"CallbackMethod must be GET or POST, not {method_text!r}")
    if callback_url is not None and not valid_callback_url(callback_url):
        invalid(f"CallbackUrl must be an absolute http or https URL, not {callback_url!r}")
    problem = payload_problem(payload)
    if problem is not None:
        invalid(problem)
    sim = network.find_sim(sim_key)
    if sim is None:
        raise ApiError(404, 20404, f"The requested resource /Sims/{sim_key} was not found")
    command = network.create(sim, payload, callback_url=callback_url, callback_method=method)
    return web.json_response(resource(command, base_url(request)), status=201)


def _int_param(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = query.get(name) or ""
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        invalid(f"{name} must be an integer from {low} to {high}, not {text!r}")
    return value


def _anchor(network: Network[Any], token: str) -> tuple[SmsCommand | None, SmsCommand | None]:
    """(after, before) from ``PA<sid>`` / ``PB<sid>``; 400 when malformed or unknown."""
    command = network.get(token[2:]) if _COMMAND_SID.fullmatch(token[2:]) else None
    if token[:2] not in ("PA", "PB") or command is None:
        invalid(f"Invalid PageToken {token!r}")
    return (command, None) if token.startswith("PA") else (None, command)


async def list_commands(request: web.Request) -> web.Response:
    """``GET /v1/SmsCommands``: one page, newest first (see the module docstring)."""
    network = request.app[NETWORK_KEY]
    query = request.query
    filters: list[tuple[str, str]] = []
    sim_sid = status = direction = None
    if sim_key := query.get("Sim"):
        sim = network.find_sim(sim_key)
        if sim is None:
            raise ApiError(404, 20404, f"The requested resource /Sims/{sim_key} was not found")
        sim_sid = sim.sid
        filters.append(("Sim", sim_key))
    if text := query.get("Status"):
        try:
            status = Status(text)
        except ValueError:
            names = ", ".join(s.value for s in Status)
            invalid(f"Status must be one of {names}, not {text!r}")
        filters.append(("Status", text))
    if text := query.get("Direction"):
        try:
            direction = Direction(text)
        except ValueError:
            invalid(f"Direction must be to_sim or from_sim, not {text!r}")
        filters.append(("Direction", text))
    # Above the maximum the page is cut to it rather than refused: the SDK asks for
    # PageSize=<limit> when a list is given only a limit.
    page_size = min(_int_param(query, "PageSize", DEFAULT_PAGE_SIZE, 1, 10**9), MAX_PAGE_SIZE)
    page = _int_param(query, "Page", 0, 0, 10**9)
    token = query.get("PageToken") or None
    after, before = _anchor(network, token) if token else (None, None)
    commands = network.commands(sim_sid=sim_sid, status=status, direction=direction)
    chosen = select_page(commands, page_size, page, after, before)

    base = base_url(request)

    def page_url(number: int, page_token: str | None) -> str:
        params = [*filters, ("PageSize", str(page_size)), ("Page", str(number))]
        if page_token is not None:
            params.append(("PageToken", page_token))
        return f"{base}{COLLECTION_PATH}?{urlencode(params)}"

    items = chosen.items
    meta = {
        "page": page,
        "page_size": page_size,
        "first_page_url": page_url(0, None),
        "previous_page_url": (
            page_url(max(0, page - 1), "PB" + items[0].sid) if chosen.has_previous else None
        ),
        "url": page_url(page, token),
        "next_page_url": page_url(page + 1, "PA" + items[-1].sid) if chosen.has_next else None,
        "key": LIST_KEY,
    }
    return web.json_response({LIST_KEY: [resource(c, base) for c in items], "meta": meta})


async def fetch_command(request: web.Request) -> web.Response:
    """``GET /v1/SmsCommands/{Sid}``: the bare resource, 404 when unknown."""
    sid = request.match_info["sid"]
    command = request.app[NETWORK_KEY].get(sid)
    if command is None:
        raise ApiError(404, 20404, f"The requested resource {COLLECTION_PATH}/{sid} was not found")
    return web.json_response(resource(command, base_url(request)))


def add_routes(app: web.Application) -> None:
    """Serve the SmsCommands resource on ``app``."""
    app.router.add_post(COLLECTION_PATH, create_command)
    app.router.add_get(COLLECTION_PATH, list_commands)
    app.router.add_get(COLLECTION_PATH + "/{sid}", fetch_command)
