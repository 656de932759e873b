"""The Super SIM SmsCommands REST API, emulated over HTTP (aiohttp) on hostsim's loop.

Routes (HTTP Basic auth ``AccountSid:AuthToken`` on everything under ``/v1``):

* ``POST /v1/SmsCommands`` — form fields ``Sim`` (sid or unique name),
  ``Payload``, ``CallbackUrl``, ``CallbackMethod`` → 201 and the resource.
* ``GET /v1/SmsCommands`` — filters ``Sim``, ``Status``, ``Direction``; paging
  ``PageSize`` (default 50; above 1000 served as 1000), ``Page`` (0-based),
  ``PageToken`` →
  ``{"sms_commands": [...], "meta": {...}}``, newest first.
* ``GET /v1/SmsCommands/{Sid}`` → the bare resource.

And one hostsim-only route (same auth), no part of Twilio's API:

* ``POST /_hostsim/sims/{Sim}/sms`` (``{Sim}``: sid or unique name) — form
  fields ``Body`` (required), ``From`` (default ``000``), ``Parts`` (optional,
  e.g. ``2,0,1``) → 201 ``{"indexes": [...]}``. An SMS from ``From`` reaches
  the Sim's modem at once, bypassing the SmsCommands network (no command
  record, registration ignored). Without ``Parts`` a ``Body`` that fits one
  SMS is one message, a longer one is delivered as concatenated parts in
  order; with ``Parts`` it is always concatenated and the parts (0-based, a
  repeat is a duplicate part) arrive in that order. ``indexes`` holds each
  delivery's storage index, ``-1`` for a ``+CMT`` direct delivery, ``null``
  when the memory was full (the message is lost). 400/20001 for a missing
  ``Body``, malformed ``Parts`` or a part that does not exist, or a ``From``
  that cannot be an SMS originator; 404/20404 for an unknown Sim; 409/20409
  when its modem is unplugged.

Fault routes (hostsim-only, same auth; ``{Sim}`` as above; numbers come from
the query string or form fields; JSON answers, 404/20404 for an unknown Sim,
400/20001 for a bad value, 409/20409 where the modem must be plugged in):

* ``POST /_hostsim/sims/{Sim}/reset[?not_ready_seconds=S]`` — a reboot:
  settings to defaults, boot banner, SIM/SMS not ready for S seconds (409
  when unplugged);
* ``POST /_hostsim/sims/{Sim}/unplug[?seconds=N]`` — unplug now; replug (a
  new pty behind the same link) after N seconds, or on
  ``POST /_hostsim/sims/{Sim}/replug``;
* ``POST /_hostsim/sims/{Sim}/garbage?bytes=N`` — N seeded random bytes on
  the line (409 when unplugged);
* ``POST /_hostsim/sims/{Sim}/hang[?seconds=N]`` — stop answering; resume
  after N seconds or on ``POST /_hostsim/sims/{Sim}/resume``;
* ``POST /_hostsim/sims/{Sim}/faults`` — form fields of
  :class:`hostsim.faults.FaultPlan` (``chunk_size``, ``chunk_delay``,
  ``urc_flood``, ``bare_lf``, ``echo_stuck``, ``cms_on_send``,
  ``sent_anyway``, ``invalid_cmti``) change the persistent faults
  (``reset=true`` starts from none); ``GET`` shows them.

Paging is by key (:func:`select_page`): ``PageToken=PA<sid>`` is the page
right after (older than) command ``<sid>``, ``PB<sid>`` the page right before
it (newer), so pages stay consistent while commands arrive. Without a token
``Page`` is an offset in pages; with one it is only echoed in ``meta.page``.
``next_page_url`` is null when nothing follows the page, ``previous_page_url``
when nothing precedes it or the page is empty. Empty filter values count as
absent. Meta URLs keep the filters as given.

Errors are Twilio-shaped JSON ``{code, message, more_info, status}``: 400/20001
for a missing or invalid parameter (including an empty or too long
``Payload``, a bad ``PageToken``), 401/20003 for missing or wrong credentials
(with ``WWW-Authenticate``), 404/20404 for an unknown command, Sim or path,
405/20004 for a wrong method (with ``Allow``), 500/20500 for a bug.

Callbacks (see :class:`CommandNotifier`): a ``to_sim`` command with a
``CallbackUrl`` gets one request per announced status change (``sent``,
``delivered``, ``failed``; ``queued`` is not a change); every ``from_sim``
command goes to the fleet webhook. Both carry :data:`CALLBACK_FIELDS`, signed
with ``X-Twilio-Signature``.
"""

from __future__ import annotations

import base64
import hmac
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn
from urllib.parse import urlencode

from aiohttp import web
from aiohttp.typedefs import Handler
from yarl import URL

from device.sms import gsm7
from device.sms.pdu import encode_deliver
from hostsim.callbacks import DEFAULT_TIMEOUT, Callback, CallbackSender
from hostsim.faults import MAX_GARBAGE, FaultPlan
from hostsim.network import (
    COMMANDS_NUMBER,
    CallbackMethod,
    Direction,
    Network,
    Sim,
    SmsCommand,
    Status,
)
from hostsim.pdumode import fits_one_sms

LOGGER = logging.getLogger(__name__)

COLLECTION_PATH = "/v1/SmsCommands"
#: Routes of hostsim's own (non-Twilio) controls live under this prefix.
HOSTSIM_PREFIX = "/_hostsim"
HOSTSIM_SMS_PATH = HOSTSIM_PREFIX + "/sims/{sim}/sms"
LIST_KEY = "sms_commands"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
#: Characters of one SMS Command (Super SIM docs) and of one UCS-2 SMS.
MAX_PAYLOAD = 160
MAX_UCS2_UNITS = 70
DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
REALM = 'Basic realm="Twilio API"'
#: Fields of every callback and webhook request, in Twilio's PascalCase convention.
CALLBACK_FIELDS = (
    "SmsCommandSid",
    "AccountSid",
    "SimSid",
    "SimUniqueName",
    "Status",
    "Direction",
    "Payload",
    "DateCreated",
    "DateUpdated",
)
_COMMAND_SID = re.compile(r"HC[0-9a-fA-F]{32}")
_CODE_BY_STATUS = {401: 20003, 403: 20403, 404: 20404, 405: 20004, 409: 20409, 429: 20429}

NETWORK_KEY = web.AppKey("network", Network)
TOKEN_KEY = web.AppKey("auth_token", str)


class ApiError(Exception):
    """An API failure, answered as Twilio-shaped JSON by the middleware."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _invalid(message: str) -> NoReturn:
    raise ApiError(400, 20001, message)


def error_response(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    """The JSON error body Twilio sends: exactly ``code, message, more_info, status``."""
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return web.json_response(body, status=status, headers=headers)


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


# -- handlers -------------------------------------------------------------------


def _base(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _form_value(form: Mapping[str, object], name: str) -> str | None:
    value = form.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        _invalid(f"{name} must be a plain form field")
    return value


def _required(form: Mapping[str, object], name: str) -> str:
    if form.get(name) is None:
        _invalid(f"Missing required parameter {name} in the post body")
    value = _form_value(form, name)
    if value is None:
        _invalid(f"{name} must not be empty")
    return value


async def create_command(request: web.Request) -> web.Response:
    """``POST /v1/SmsCommands``: 201 and the new ``queued`` command."""
    network = request.app[NETWORK_KEY]
    try:
        form = await request.post()
    except ValueError as exc:
        _invalid(f"Unreadable post body: {exc}")
    sim_key = _required(form, "Sim")
    payload = _required(form, "Payload")
    callback_url = _form_value(form, "CallbackUrl")
    method_text = _form_value(form, "CallbackMethod") or "POST"
    try:
        method = parse_method(method_text)
    except ValueError:
        _invalid(f"CallbackMethod must be GET or POST, not {method_text!r}")
    if callback_url is not None and not valid_callback_url(callback_url):
        _invalid(f"CallbackUrl must be an absolute http or https URL, not {callback_url!r}")
    problem = payload_problem(payload)
    if problem is not None:
        _invalid(problem)
    sim = network.find_sim(sim_key)
    if sim is None:
        raise ApiError(404, 20404, f"The requested resource /Sims/{sim_key} was not found")
    command = network.create(sim, payload, callback_url=callback_url, callback_method=method)
    return web.json_response(resource(command, _base(request)), status=201)


def _int_param(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = query.get(name) or ""
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        _invalid(f"{name} must be an integer from {low} to {high}, not {text!r}")
    return value


def _anchor(network: Network, token: str) -> tuple[SmsCommand | None, SmsCommand | None]:
    """(after, before) from ``PA<sid>`` / ``PB<sid>``; 400 when malformed or unknown."""
    command = network.get(token[2:]) if _COMMAND_SID.fullmatch(token[2:]) else None
    if token[:2] not in ("PA", "PB") or command is None:
        _invalid(f"Invalid PageToken {token!r}")
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
            _invalid(f"Status must be one of {names}, not {text!r}")
        filters.append(("Status", text))
    if text := query.get("Direction"):
        try:
            direction = Direction(text)
        except ValueError:
            _invalid(f"Direction must be to_sim or from_sim, not {text!r}")
        filters.append(("Direction", text))
    # Above the maximum the page is cut to it rather than refused: the SDK asks for
    # PageSize=<limit> when a list is given only a limit.
    page_size = min(_int_param(query, "PageSize", DEFAULT_PAGE_SIZE, 1, 10**9), MAX_PAGE_SIZE)
    page = _int_param(query, "Page", 0, 0, 10**9)
    token = query.get("PageToken") or None
    after, before = _anchor(network, token) if token else (None, None)
    commands = network.commands(sim_sid=sim_sid, status=status, direction=direction)
    chosen = select_page(commands, page_size, page, after, before)

    base = _base(request)

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
    return web.json_response(resource(command, _base(request)))


def parse_parts(text: str) -> list[int]:
    """``Parts`` of the hostsim SMS route: comma-separated 0-based part numbers; ValueError."""
    numbers: list[int] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item.isdigit() or len(item) > 3:
            raise ValueError(f"Parts must be comma-separated part numbers, not {text!r}")
        numbers.append(int(item))
    return numbers


async def hostsim_deliver_sms(request: web.Request) -> web.Response:
    """``POST /_hostsim/sims/{sim}/sms``: an SMS straight into a modem (module docstring)."""
    network = request.app[NETWORK_KEY]
    try:
        form = await request.post()
    except ValueError as exc:
        _invalid(f"Unreadable post body: {exc}")
    body = _required(form, "Body")
    sender = _form_value(form, "From") or COMMANDS_NUMBER
    parts_text = _form_value(form, "Parts")
    order: list[int] | None = None
    if parts_text is not None:
        try:
            order = parse_parts(parts_text)
        except ValueError as exc:
            _invalid(str(exc))
    sim_key = request.match_info["sim"]
    sim = network.find_sim(sim_key)
    if sim is None:
        raise ApiError(404, 20404, f"The requested resource /Sims/{sim_key} was not found")
    gateway = sim.gateway
    if not gateway.attached:
        raise ApiError(409, 20409, f"The modem of Sim {sim.unique_name} is unplugged")
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        if order is None and fits_one_sms(body):
            encode_deliver(sender, body, timestamp=now)  # ValueError when it is no SMS
            indexes = [gateway.deliver(sender, body, timestamp=now)]
        else:
            indexes = gateway.deliver_concatenated(sender, body, order=order, timestamp=now)
    except ValueError as exc:
        _invalid(f"Cannot deliver this SMS: {exc}")
    return web.json_response({"indexes": indexes}, status=201)


# -- the hostsim-only fault routes ----------------------------------------------------

#: Longest delay a fault route accepts, in seconds (one day).
MAX_FAULT_SECONDS = 86400.0


def _find_sim(request: web.Request) -> Sim:
    sim_key = request.match_info["sim"]
    sim = request.app[NETWORK_KEY].find_sim(sim_key)
    if sim is None:
        raise ApiError(404, 20404, f"The requested resource /Sims/{sim_key} was not found")
    return sim


def _plugged(sim: Sim) -> None:
    if not sim.gateway.attached:
        raise ApiError(409, 20409, f"The modem of Sim {sim.unique_name} is unplugged")


async def _params(request: web.Request) -> dict[str, str]:
    """Query parameters and plain form fields (the form wins), empty ones left out."""
    params = {name: value for name, value in request.query.items() if value != ""}
    try:
        form = await request.post()
    except ValueError as exc:
        _invalid(f"Unreadable post body: {exc}")
    for name in form:
        value = _form_value(form, name)
        if value is not None:
            params[name] = value
    return params


def _seconds(params: Mapping[str, str], name: str) -> float | None:
    text = params.get(name)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        _invalid(f"{name} must be a number of seconds, got {text!r}")
    if not 0 <= value <= MAX_FAULT_SECONDS:  # also refuses nan
        _invalid(f"{name} must be between 0 and {MAX_FAULT_SECONDS:g}")
    return value


def _sim_info(sim: Sim) -> dict[str, Any]:
    gateway = sim.gateway
    return {
        "sim_sid": sim.sid,
        "unique_name": sim.unique_name,
        "attached": gateway.attached,
        "pty": gateway.path if gateway.attached else None,
        "hung": gateway.modem.hung,
        "sim_ready": gateway.modem.sim_ready,
        "faults": gateway.faults.as_dict(),
    }


async def hostsim_reset(request: web.Request) -> web.Response:
    """``POST /_hostsim/sims/{sim}/reset[?not_ready_seconds=S]``: reboot the module."""
    sim = _find_sim(request)
    not_ready = _seconds(await _params(request), "not_ready_seconds") or 0.0
    _plugged(sim)
    sim.gateway.reset(not_ready)
    return web.json_response({**_sim_info(sim), "not_ready_seconds": not_ready})


async def hostsim_unplug(request: web.Request) -> web.Response:
    """``POST /_hostsim/sims/{sim}/unplug[?seconds=N]``: unplug, replug after N seconds."""
    sim = _find_sim(request)
    seconds = _seconds(await _params(request), "seconds")
    sim.gateway.unplug_for(seconds)
    return web.json_response({**_sim_info(sim), "replug_in": seconds})


async def hostsim_replug(request: web.Request) -> web.Response:
    """``POST /_hostsim/sims/{sim}/replug``: plug the modem back in (a new pty)."""
    sim = _find_sim(request)
    sim.gateway.replug()
    return web.json_response(_sim_info(sim))


async def hostsim_garbage(request: web.Request) -> web.Response:
    """``POST /_hostsim/sims/{sim}/garbage?bytes=N``: N seeded random bytes on the line."""
    sim = _find_sim(request)
    text = (await _params(request)).get("bytes")
    if text is None:
        _invalid("Missing required parameter bytes")
    try:
        count = int(text)
    except ValueError:
        _invalid(f"bytes must be an integer, got {text!r}")
    if not 1 <= count <= MAX_GARBAGE:
        _invalid(f"bytes must be between 1 and {MAX_GARBAGE}")
    _plugged(sim)
    sim.gateway.garbage(count)
    return web.json_response({**_sim_info(sim), "bytes": count})


async def hostsim_hang(request: web.Request) -> web.Response:
    """``POST /_hostsim/sims/{sim}/hang[?seconds=N]``: stop answering, resume after N."""
    sim = _find_sim(request)
    seconds = _seconds(await _params(request), "seconds")
    sim.gateway.hang(seconds)
    return web.json_response({**_sim_info(sim), "resume_in": seconds})


async def hostsim_resume(request: web.Request) -> web.Response:
    """``POST /_hostsim/sims/{sim}/resume``: answer again after a hang."""
    sim = _find_sim(request)
    sim.gateway.resume()
    return web.json_response(_sim_info(sim))


async def hostsim_set_faults(request: web.Request) -> web.Response:
    """``POST /_hostsim/sims/{sim}/faults``: change the persistent faults (form fields)."""
    sim = _find_sim(request)
    params = await _params(request)
    reset = params.pop("reset", "false").strip().lower() in ("1", "true", "yes", "on")
    base = FaultPlan() if reset else sim.gateway.faults
    try:
        plan = base.updated_from_strings(params)
    except ValueError as exc:
        _invalid(str(exc))
    sim.gateway.set_faults(plan)
    return web.json_response(_sim_info(sim))


async def hostsim_get_faults(request: web.Request) -> web.Response:
    """``GET /_hostsim/sims/{sim}/faults``: the Sim's modem state and faults."""
    return web.json_response(_sim_info(_find_sim(request)))


# -- middleware and app ---------------------------------------------------------


def _authorized(request: web.Request) -> bool:
    header = request.headers.get("Authorization")
    if header is None:
        raise ApiError(401, 20003, "Authentication Error - No credentials provided")
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        login, sep, password = base64.b64decode(encoded.strip(), validate=True).partition(b":")
    except ValueError:  # binascii.Error is a ValueError
        return False
    if not sep:
        return False
    account = request.app[NETWORK_KEY].account_sid.encode()
    token = request.app[TOKEN_KEY].encode()
    # Both compared, always: no early exit that would time the account sid.
    ok_account = hmac.compare_digest(login, account)
    ok_token = hmac.compare_digest(password, token)
    return ok_account and ok_token


@web.middleware
async def twilio_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Auth on ``/v1`` and ``/_hostsim``, and every error (ours or aiohttp's) as Twilio JSON."""
    challenge = {"WWW-Authenticate": REALM}
    try:
        protected = any(
            request.path == prefix or request.path.startswith(prefix + "/")
            for prefix in ("/v1", HOSTSIM_PREFIX)
        )
        if protected and not _authorized(request):
            raise ApiError(401, 20003, "Authenticate: the AccountSid or AuthToken is incorrect")
        return await handler(request)
    except ApiError as exc:
        headers = challenge if exc.status == 401 else None
        return error_response(exc.status, exc.code, exc.message, headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _CODE_BY_STATUS.get(exc.status, 20001 if exc.status < 500 else 20500)
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        if exc.status == 404:
            message = f"The requested resource {request.path} was not found"
        elif exc.status == 405:
            message = f"Method {request.method} not allowed on {request.path}"
        else:
            message = exc.reason
        return error_response(exc.status, code, message, headers)
    except Exception:
        LOGGER.exception("API request %s %s failed", request.method, request.path)
        return error_response(500, 20500, "Internal Server Error")


def create_app(network: Network, auth_token: str) -> web.Application:
    """The aiohttp application serving ``network``'s SmsCommands (no callbacks: see ApiServer)."""
    app = web.Application(middlewares=[twilio_errors])
    app[NETWORK_KEY] = network
    app[TOKEN_KEY] = auth_token
    app.router.add_post(COLLECTION_PATH, create_command)
    app.router.add_get(COLLECTION_PATH, list_commands)
    app.router.add_get(COLLECTION_PATH + "/{sid}", fetch_command)
    app.router.add_post(HOSTSIM_SMS_PATH, hostsim_deliver_sms)
    sim_path = HOSTSIM_PREFIX + "/sims/{sim}/"
    app.router.add_post(sim_path + "reset", hostsim_reset)
    app.router.add_post(sim_path + "unplug", hostsim_unplug)
    app.router.add_post(sim_path + "replug", hostsim_replug)
    app.router.add_post(sim_path + "garbage", hostsim_garbage)
    app.router.add_post(sim_path + "hang", hostsim_hang)
    app.router.add_post(sim_path + "resume", hostsim_resume)
    app.router.add_post(sim_path + "faults", hostsim_set_faults)
    app.router.add_get(sim_path + "faults", hostsim_get_faults)
    return app


# -- callbacks and the server ----------------------------------------------------


def callback_params(command: SmsCommand, sim_unique_name: str) -> dict[str, str]:
    """The :data:`CALLBACK_FIELDS` of ``command``, dates as in the resource."""
    return {
        "SmsCommandSid": command.sid,
        "AccountSid": command.account_sid,
        "SimSid": command.sim_sid,
        "SimUniqueName": sim_unique_name,
        "Status": command.status.value,
        "Direction": command.direction.value,
        "Payload": command.payload,
        "DateCreated": format_date(command.date_created),
        "DateUpdated": format_date(command.date_updated),
    }


class CommandNotifier:
    """A :class:`Network` listener turning status changes into queued callbacks (never blocks)."""

    def __init__(
        self,
        network: Network,
        sender: CallbackSender,
        webhook: str | None = None,
        webhook_method: CallbackMethod = CallbackMethod.POST,
    ) -> None:
        self._network = network
        self._sender = sender
        self._webhook = webhook
        self._webhook_method = webhook_method

    def __call__(self, command: SmsCommand) -> None:
        if command.direction is Direction.TO_SIM:
            if command.callback_url is None or command.status is Status.QUEUED:
                return
            url, method = command.callback_url, command.callback_method
        else:
            if self._webhook is None or command.status is not Status.RECEIVED:
                return
            url, method = self._webhook, self._webhook_method
        sim = self._network.find_sim(command.sim_sid)
        params = callback_params(command, sim.unique_name if sim is not None else "")
        self._sender.submit(Callback(command.sid, method.value, url, params))


def _split_address(address: str) -> tuple[str, int]:
    host, sep, port_text = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"API address must be HOST:PORT (port 0 for any), not {address!r}")
    return host, int(port_text)


class ApiServer:
    """The HTTP API plus its callbacks, for :class:`hostsim.sim.HostSim`.

    ``commands_webhook`` (like a Fleet's ``sms_commands_url``) receives every
    ``from_sim`` command with ``commands_webhook_method``; ValueError at once
    when either is invalid.
    """

    def __init__(
        self,
        network: Network,
        auth_token: str,
        *,
        commands_webhook: str | None = None,
        commands_webhook_method: str = "POST",
        callback_timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if commands_webhook is not None and not valid_callback_url(commands_webhook):
            raise ValueError(f"commands webhook must be an http(s) URL: {commands_webhook!r}")
        try:
            method = parse_method(commands_webhook_method)
        except ValueError:
            raise ValueError(
                f"commands webhook method must be GET or POST: {commands_webhook_method!r}"
            ) from None
        self._network = network
        self.app = create_app(network, auth_token)
        self._sender = CallbackSender(auth_token, timeout=callback_timeout)
        self._notifier = CommandNotifier(network, self._sender, commands_webhook, method)
        self._runner: web.AppRunner | None = None
        self.url: str | None = None

    async def start(self, address: str) -> str:
        """Listen on ``HOST:PORT`` (port 0: any free one); returns ``http://HOST:PORT``.

        ValueError for a malformed address, OSError (naming the address) when it
        cannot be bound. For a host name resolving to several addresses with
        port 0, the URL carries the first socket's port.
        """
        if self._runner is not None:
            raise RuntimeError("API server already started")
        host, port = _split_address(address)
        runner = web.AppRunner(self.app, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            await runner.cleanup()
            raise OSError(exc.errno, f"cannot serve the API on {address}: {exc.strerror}") from exc
        self._runner = runner
        bound = runner.addresses[0][1]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{bound}"
        self._sender.start()
        self._network.listeners.append(self._notifier)
        LOGGER.info("SmsCommands API on %s", self.url)
        return self.url

    async def close(self) -> None:
        """Stop listening and drop pending callbacks; idempotent, safe before start()."""
        if self._notifier in self._network.listeners:
            self._network.listeners.remove(self._notifier)
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        await self._sender.close()
