"""hostsim's own routes under ``/_hostsim`` (same auth as the API), no part of Twilio's.

``{Sim}`` is a Sim's sid or unique name; an unknown one is 404/20404.

* ``POST /_hostsim/sims/{Sim}/sms`` — form fields ``Body`` (required), ``From``
  (default ``000``), ``Parts`` (optional, e.g. ``2,0,1``) → 201
  ``{"indexes": [...]}``. An SMS from ``From`` reaches the Sim's modem at once,
  bypassing the SmsCommands network (no command record, registration
  ignored). Without ``Parts`` a ``Body`` that fits one SMS is one message, a
  longer one is delivered as concatenated parts in order; with ``Parts`` it is
  always concatenated and the parts (0-based, a repeat is a duplicate part)
  arrive in that order. ``indexes`` holds each delivery's storage index, ``-1``
  for a ``+CMT`` direct delivery, ``null`` when the memory was full (the
  message is lost). 400/20001 for a missing ``Body``, malformed ``Parts`` or a
  part that does not exist, or a ``From`` that cannot be an SMS originator;
  409/20409 when its modem is unplugged.

The fault controls are one route family declared in :data:`CONTROLS`:
``POST /_hostsim/sims/{Sim}/<name>``, their one parameter from the query
string or a form field, answered with the Sim's state (``GET
/_hostsim/sims/{Sim}/faults`` shows it alone); 400/20001 for a bad value,
409/20409 where the modem must be plugged in. They are (generated from the
table and from :class:`hostsim.modem.faults.FaultPlan`):
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

from aiohttp import web

from device.sms.pdu import encode_deliver
from hostsim.cloud.api.middleware import (
    HOSTSIM_PREFIX,
    NETWORK_KEY,
    ApiError,
    form_value,
    invalid,
    read_form,
    required,
)
from hostsim.cloud.network import COMMANDS_NUMBER, Gateway, Sim
from hostsim.modem.faults import MAX_GARBAGE, FaultPlan, describe_faults
from hostsim.modem.pdumode import fits_one_sms

HOSTSIM_SMS_PATH = HOSTSIM_PREFIX + "/sims/{sim}/sms"
#: Longest delay a fault route accepts, in seconds (one day).
MAX_FAULT_SECONDS = 86400.0
_TRUE = ("1", "true", "yes", "on")


class ControlledGateway(Gateway, Protocol):
    """A gateway the ``/_hostsim`` routes deliver to and break (the pty modem)."""

    @property
    def path(self) -> str:
        """The modem's port (a pty path)."""
        ...

    @property
    def hung(self) -> bool:
        """The module swallows its input and answers nothing."""
        ...

    @property
    def sim_ready(self) -> bool:
        """The SIM and SMS are ready (False for a while after a reset)."""
        ...

    @property
    def faults(self) -> FaultPlan:
        """The persistent faults in force."""
        ...

    def deliver(self, sender: str, text: str, timestamp: datetime | None = None) -> int | None:
        """One SMS into the modem (see :class:`Gateway`)."""
        ...

    def deliver_concatenated(
        self,
        sender: str,
        text: str,
        *,
        order: Sequence[int] | None = None,
        reference: int | None = None,
        timestamp: datetime | None = None,
    ) -> list[int | None]:
        """A long SMS as concatenated parts, in ``order``; ValueError before any delivery."""
        ...

    def reset(self, not_ready_seconds: float = 0.0) -> None: ...
    def unplug_for(self, seconds: float | None) -> None: ...
    def replug(self) -> None: ...
    def garbage(self, count: int) -> bytes: ...
    def hang(self, seconds: float | None = None) -> None: ...
    def resume(self) -> None: ...
    def set_faults(self, plan: FaultPlan | None = None, **changes: object) -> FaultPlan: ...


# -- parameters of the controls ---------------------------------------------------------------


def seconds(name: str, params: Mapping[str, str], gateway: ControlledGateway) -> float | None:
    """``name`` as seconds from 0 to :data:`MAX_FAULT_SECONDS`, None when absent."""
    text = params.get(name)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        invalid(f"{name} must be a number of seconds, got {text!r}")
    if not 0 <= value <= MAX_FAULT_SECONDS:  # also refuses nan
        invalid(f"{name} must be between 0 and {MAX_FAULT_SECONDS:g}")
    return value


def byte_count(params: Mapping[str, str], gateway: ControlledGateway) -> int:
    """``bytes``, required, from 1 to :data:`~hostsim.modem.faults.MAX_GARBAGE`."""
    text = params.get("bytes")
    if text is None:
        invalid("Missing required parameter bytes")
    try:
        count = int(text)
    except ValueError:
        invalid(f"bytes must be an integer, got {text!r}")
    if not 1 <= count <= MAX_GARBAGE:
        invalid(f"bytes must be between 1 and {MAX_GARBAGE}")
    return count


def fault_plan(params: Mapping[str, str], gateway: ControlledGateway) -> FaultPlan:
    """The gateway's plan (none with ``reset=true``) changed by the fault fields given."""
    fields = dict(params)
    reset = fields.pop("reset", "false").strip().lower() in _TRUE
    base = FaultPlan() if reset else gateway.faults
    try:
        return base.updated_from_strings(fields)
    except ValueError as exc:
        invalid(str(exc))


def nothing(params: Mapping[str, str], gateway: ControlledGateway) -> None:
    """No parameter."""
    return None


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Control(Generic[T]):
    """One ``POST /_hostsim/sims/{Sim}/<name>`` route: read the parameter, check, act.

    ``read`` parses the parameters (400 via :func:`invalid`); with ``plugged``
    an unplugged modem is 409 (checked after ``read``); ``act`` does it;
    ``answer`` names the key that echoes the value in the answer (none: the
    Sim's state alone). ``usage`` is the route's line in the docs: the path
    after ``/sims/{Sim}/`` in double backquotes, then what it does.
    """

    name: str
    usage: str
    read: Callable[[Mapping[str, str], ControlledGateway], T]
    act: Callable[[ControlledGateway, T], object]
    plugged: bool = False
    answer: str | None = None


CONTROLS: tuple[Control[Any], ...] = (
    Control(
        "reset",
        "``reset[?not_ready_seconds=S]`` — a reboot: settings to defaults, boot banner, "
        "SIM/SMS not ready for S seconds (409 when unplugged)",
        lambda params, gateway: seconds("not_ready_seconds", params, gateway) or 0.0,
        lambda gateway, value: gateway.reset(value),
        plugged=True,
        answer="not_ready_seconds",
    ),
    Control(
        "unplug",
        "``unplug[?seconds=N]`` — unplug now; replug (a new pty behind the same link) after "
        "N seconds, or on ``replug``",
        partial(seconds, "seconds"),
        lambda gateway, value: gateway.unplug_for(value),
        answer="replug_in",
    ),
    Control(
        "replug",
        "``replug`` — plug the modem back in (a new pty)",
        nothing,
        lambda gateway, _: gateway.replug(),
    ),
    Control(
        "garbage",
        "``garbage?bytes=N`` — N seeded random bytes on the line (409 when unplugged)",
        byte_count,
        lambda gateway, value: gateway.garbage(value),
        plugged=True,
        answer="bytes",
    ),
    Control(
        "hang",
        "``hang[?seconds=N]`` — stop answering; resume after N seconds or on ``resume``",
        partial(seconds, "seconds"),
        lambda gateway, value: gateway.hang(value),
        answer="resume_in",
    ),
    Control(
        "resume",
        "``resume`` — answer again after a hang",
        nothing,
        lambda gateway, _: gateway.resume(),
    ),
    Control(
        "faults",
        "``faults`` — change the persistent faults (``reset=true`` starts from none); "
        "its fields are those of :class:`~hostsim.modem.faults.FaultPlan`:",
        fault_plan,
        lambda gateway, plan: gateway.set_faults(plan),
    ),
)


def route_docs() -> str:
    """The docs of the control routes, from :data:`CONTROLS` and the fault declarations."""
    lines = [
        f"* ``POST {HOSTSIM_PREFIX}/sims/{{Sim}}/{c.usage.removeprefix('``')}" for c in CONTROLS
    ]
    lines += [f"  * {line}" for line in describe_faults()]
    return "\n".join(lines) + "\n"


__doc__ = (__doc__ or "") + "\n" + route_docs()


# -- handlers --------------------------------------------------------------------------------


def _find_sim(request: web.Request) -> Sim[ControlledGateway]:
    sim_key = request.match_info["sim"]
    sim = request.app[NETWORK_KEY].find_sim(sim_key)
    if sim is None:
        raise ApiError(404, 20404, f"The requested resource /Sims/{sim_key} was not found")
    return sim


def _plugged(sim: Sim[ControlledGateway]) -> None:
    if not sim.gateway.attached:
        raise ApiError(409, 20409, f"The modem of Sim {sim.unique_name} is unplugged")


async def _params(request: web.Request) -> dict[str, str]:
    """Query parameters and plain form fields (the form wins), empty ones left out."""
    params = {name: value for name, value in request.query.items() if value != ""}
    form = await read_form(request)
    for name in form:
        value = form_value(form, name)
        if value is not None:
            params[name] = value
    return params


def _sim_info(sim: Sim[ControlledGateway]) -> dict[str, Any]:
    gateway = sim.gateway
    return {
        "sim_sid": sim.sid,
        "unique_name": sim.unique_name,
        "attached": gateway.attached,
        "pty": gateway.path if gateway.attached else None,
        "hung": gateway.hung,
        "sim_ready": gateway.sim_ready,
        "faults": gateway.faults.as_dict(),
    }


async def run_control(control: Control[Any], request: web.Request) -> web.Response:
    """``POST /_hostsim/sims/{sim}/<control.name>``: the one shape of every control."""
    sim = _find_sim(request)
    value = control.read(await _params(request), sim.gateway)
    if control.plugged:
        _plugged(sim)
    control.act(sim.gateway, value)
    info = _sim_info(sim)
    return web.json_response(info if control.answer is None else {**info, control.answer: value})


async def show_faults(request: web.Request) -> web.Response:
    """``GET /_hostsim/sims/{sim}/faults``: the Sim's modem state and faults."""
    return web.json_response(_sim_info(_find_sim(request)))


def parse_parts(text: str) -> list[int]:
    """``Parts`` of the hostsim SMS route: comma-separated 0-based part numbers; ValueError."""
    numbers: list[int] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item.isdigit() or len(item) > 3:
            raise ValueError(f"Parts must be comma-separated part numbers, not {text!r}")
        numbers.append(int(item))
    return numbers


async def deliver_sms(request: web.Request) -> web.Response:
    """``POST /_hostsim/sims/{sim}/sms``: an SMS straight into a modem (module docstring)."""
    network = request.app[NETWORK_KEY]
    form = await read_form(request)
    body = required(form, "Body")
    sender = form_value(form, "From") or COMMANDS_NUMBER
    parts_text = form_value(form, "Parts")
    order: list[int] | None = None
    if parts_text is not None:
        try:
            order = parse_parts(parts_text)
        except ValueError as exc:
            invalid(str(exc))
    sim_key = request.match_info["sim"]
    sim = network.find_sim(sim_key)
    if sim is None:
        raise ApiError(404, 20404, f"The requested resource /Sims/{sim_key} was not found")
    _plugged(sim)
    gateway = sim.gateway
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        if order is None and fits_one_sms(body):
            encode_deliver(sender, body, timestamp=now)  # ValueError when it is no SMS
            indexes = [gateway.deliver(sender, body, timestamp=now)]
        else:
            indexes = gateway.deliver_concatenated(sender, body, order=order, timestamp=now)
    except ValueError as exc:
        invalid(f"Cannot deliver this SMS: {exc}")
    return web.json_response({"indexes": indexes}, status=201)


def _handler(control: Control[Any]) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        return await run_control(control, request)

    return handle


def add_routes(app: web.Application) -> None:
    """Serve the ``/_hostsim`` routes on ``app``: the SMS route and every :data:`CONTROLS`."""
    app.router.add_post(HOSTSIM_SMS_PATH, deliver_sms)
    sim_path = HOSTSIM_PREFIX + "/sims/{sim}/"
    for control in CONTROLS:
        app.router.add_post(sim_path + control.name, _handler(control))
    app.router.add_get(sim_path + "faults", show_faults)
