"""The MQTT handler kind: ``[handlers."<name>"] mqtt = true`` (a Node-RED flow, any MQTT
client, answers the command).

For each run the agent publishes a request to ``<prefix>/handlers/<name>/request``
(QoS as configured, not retained)::

    {"journal_id": 42, "correlation_id": "5f0c...", "command": "lights",
     "argument": "on", "sender": "000", "timestamp": "2026-12-02T06:00:00+00:00",
     "deadline": "2026-12-02T06:00:10.500000+00:00"}

(``argument`` and ``timestamp`` may be null; ``deadline`` is when the agent stops
waiting: now + the table's ``timeout``, 10 s by default.) The answer is expected on
``<prefix>/handlers/<name>/response``::

    {"correlation_id": "5f0c...", "reply": "lights are on"}

``reply`` is the SMS reply (null or missing: none is sent); an ``error`` string makes
the command ``failed`` with that error in the journal, and the reply (``reply`` when
given, else ``error: <name> failed``) is still sent.

Edge cases, each the handler's error reply, the command journaled ``failed``:

* not connected to the broker (or the broker does not confirm the request):
  ``error: <name> unavailable`` — nothing waits for a broker that is away;
* no response within ``timeout``: ``error: <name> timed out``;
* a response with this correlation id but a wrong shape (``reply``/``error`` not a
  string): ``error: <name> failed``.

A response that is not JSON, has no correlation id, or one that matches no request in
flight (a second answer, a late one after the timeout, another agent's) is logged and
dropped: a command is answered once. The rule "never run twice" holds as for every
handler: the table is not idempotent unless it says ``idempotent = true``, so a command
found running after a crash is not forwarded again; a consumer that may see a request
twice (QoS 1 redelivers) de-duplicates by ``journal_id``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from device.commands import CommandContext, Handler, HandlerFailure
from device.handlers import HandlerConfig
from device.mqtt.link import MqttUnavailable

if TYPE_CHECKING:
    from device.mqtt.link import Incoming, MqttLink

LOGGER = logging.getLogger(__name__)


def request_topic(link: MqttLink, name: str) -> str:
    return link.topic(f"handlers/{name}/request")


@dataclass(frozen=True, slots=True)
class Response:
    """A matched answer: the reply (None: no SMS) and the error (None: done)."""

    reply: str | None
    error: str | None


class RemoteHandlers:
    """The requests in flight of every ``mqtt = true`` handler, by correlation id.

    One per agent, outliving reloads (the registry is rebuilt, this is not):
    :meth:`attach` binds it to the broker connection (it subscribes
    ``<prefix>/handlers/+/response``); :meth:`handler` makes the :class:`Handler` of a
    table. Unattached, every run answers ``error: <name> unavailable``.
    """

    def __init__(self) -> None:
        self._link: MqttLink | None = None
        self._pending: dict[str, tuple[str, asyncio.Future[Response]]] = {}

    def attach(self, link: MqttLink) -> None:
        self._link = link
        link.subscribe(link.topic("handlers/+/response"), self._on_response)

    @property
    def in_flight(self) -> int:
        """Requests waiting for their response."""
        return len(self._pending)

    def handler(self, cfg: HandlerConfig) -> Handler:
        """The Handler that forwards ``cfg.name``'s commands (see the module docstring)."""
        name, timeout = cfg.name, cfg.timeout

        async def run(ctx: CommandContext) -> str | None:
            response = await self._ask(name, ctx, timeout)
            if response.error is not None:
                raise HandlerFailure(response.reply or f"error: {name} failed", response.error)
            return response.reply

        return Handler(
            name,
            run,
            idempotent=bool(cfg.idempotent),
            summary=cfg.summary or "answered over MQTT",
            enabled=cfg.enabled if cfg.enabled is not None else True,
            rate_limit=(cfg.rate, cfg.per) if cfg.rate is not None else None,
            concurrency=cfg.concurrency or 1,
        )

    async def _ask(self, name: str, ctx: CommandContext, timeout: float) -> Response:
        link = self._link
        if link is None or not link.connected:
            raise HandlerFailure(f"error: {name} unavailable", "MQTT broker not connected")
        correlation = uuid.uuid4().hex
        deadline = datetime.now(UTC) + timedelta(seconds=timeout)
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending[correlation] = (name, future)
        try:
            async with asyncio.timeout(timeout):
                try:
                    await link.publish(
                        request_topic(link, name), request(ctx, correlation, deadline)
                    )
                except MqttUnavailable as exc:
                    raise HandlerFailure(f"error: {name} unavailable", str(exc)) from exc
                return await future
        except TimeoutError:
            raise HandlerFailure(
                f"error: {name} timed out", f"no MQTT response within {timeout:g} s"
            ) from None
        finally:
            del self._pending[correlation]

    def _on_response(self, message: Incoming) -> None:
        """Resolve the request ``message`` answers; anything else is logged, dropped."""
        try:
            body = json.loads(message.payload)
        except ValueError:
            LOGGER.warning("MQTT response on %s is not JSON: dropped", message.topic)
            return
        correlation = body.get("correlation_id") if isinstance(body, dict) else None
        entry = self._pending.get(correlation) if isinstance(correlation, str) else None
        if entry is None or entry[1].done():
            LOGGER.warning("MQTT response on %s matches no request in flight "
                           "(correlation id %r): dropped", message.topic, correlation)  # fmt: skip
            return
        name, future = entry
        if message.topic.split("/")[-2:-1] != [name]:
            LOGGER.warning("MQTT response for %r came on %s: dropped", name, message.topic)
            return
        future.set_result(parse_response(body))


def request(ctx: CommandContext, correlation: str, deadline: datetime) -> dict[str, Any]:
    """The request payload of ``ctx`` (see the module docstring)."""
    return {
        "journal_id": ctx.journal_id,
        "correlation_id": correlation,
        "command": ctx.name,
        "argument": ctx.argument,
        "sender": ctx.sender,
        "timestamp": ctx.timestamp.isoformat() if ctx.timestamp else None,
        "deadline": deadline.isoformat(),
    }


def parse_response(body: dict[str, Any]) -> Response:
    """A response body as a :class:`Response`; a wrong shape is a failed run."""
    reply, error = body.get("reply"), body.get("error")
    if reply is not None and not isinstance(reply, str):
        return Response(None, f"invalid MQTT response: reply is {type(reply).__name__}")
    if error is not None and not isinstance(error, str):
        return Response(reply, f"invalid MQTT response: error is {type(error).__name__}")
    return Response((reply.strip() or None) if reply is not None else None, error)


__all__ = ["RemoteHandlers", "Response", "parse_response", "request", "request_topic"]
