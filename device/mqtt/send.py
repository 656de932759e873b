"""``<prefix>/send``: an SMS from the gateway stack, through the outbox.

A client publishes to ``<prefix>/send``::

    {"correlation_id": "order-17", "text": "door opened", "destination": "000"}

``text`` is one GSM 7-bit SMS (at most 160 septets, nothing outside GSM 03.38: as
``smscmd send``); ``destination`` is optional (digits, a leading ``+`` allowed; default
the ``[agent] reply_to``, ``000``); ``correlation_id`` is a string of 1..200 characters
chosen by the client. The message is committed to the journal's outbox (from then on
it is sent and retried as every reply is: RELIABILITY.md) and the agent answers on
``<prefix>/send/result``::

    {"correlation_id": "order-17", "ok": true, "outbox_id": 12, "state": "queued",
     "destination": "000"}

or, when the request is refused (nothing is queued)::

    {"correlation_id": "order-17", "ok": false,
     "error": {"type": "invalid_text", "message": "the text is 171 septets; ..."}}

with ``type`` one of :class:`SendError`. The later states of the message (sent,
failed) are the outbox events (``<prefix>/outbox``), with the same ``outbox_id``.

Edge cases: a payload that is not a JSON object, or lacks a valid correlation id, is
answered with ``correlation_id`` null (when it cannot be read) and the type
``invalid_request``; nothing a client sends raises out of here. A request whose
correlation id was queued already (a QoS 1 redelivery, a client retrying) is answered
with the first result again and not queued twice (the last :data:`REMEMBERED` ids are
kept, in memory). The result is published once, not kept for a broker that is away: a
client that lost it asks ``smscmd journal`` or watches ``…/outbox``.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from device.config import PHONE_NUMBER_RE
from device.control import check_sms_text
from device.errors import SmscmdError, SmsFormatError
from device.mqtt.link import MqttUnavailable

if TYPE_CHECKING:
    from device.mqtt.link import Incoming, MqttLink

LOGGER = logging.getLogger(__name__)

#: How many correlation ids (and their results) are remembered against redelivery.
REMEMBERED = 1000
#: The longest correlation id taken.
CORRELATION_MAX = 200

#: What queues a message: (text, destination or None for the default) → the outbox row
#: as a dict (``id``, ``state``, ``destination``, ...): :meth:`device.agent.Agent.queue_send`.
QueueSend = Callable[[str, str | None], Awaitable[dict[str, Any]]]


class SendError(enum.Enum):
    """Why a ``…/send`` request was refused (the result's ``error.type``)."""

    INVALID_REQUEST = "invalid_request"  # not a JSON object, no/bad correlation_id
    INVALID_TEXT = "invalid_text"  # no text, empty, not one GSM 7-bit SMS
    INVALID_DESTINATION = "invalid_destination"  # not a phone number
    NOT_QUEUED = "not_queued"  # the journal could not commit it (disk full, ...)


class Refused(SmscmdError):
    """A request :func:`parse_request` or the queue refused, with its type."""

    def __init__(self, kind: SendError, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def parse_request(payload: bytes) -> tuple[str, str, str | None]:
    """``(correlation_id, text, destination)`` of a request; :class:`Refused` otherwise
    (:func:`correlation_of` reads the id of a refused one)."""
    try:
        body = json.loads(payload)
    except ValueError as exc:
        raise Refused(SendError.INVALID_REQUEST, f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise Refused(SendError.INVALID_REQUEST, "a request is a JSON object")
    correlation = body.get("correlation_id")
    if not isinstance(correlation, str) or not 0 < len(correlation) <= CORRELATION_MAX:
        raise Refused(
            SendError.INVALID_REQUEST,
            f"correlation_id must be a string of 1..{CORRELATION_MAX} characters",
        )
    text, destination = body.get("text"), body.get("destination")
    if not isinstance(text, str):
        raise Refused(SendError.INVALID_TEXT, "text must be a string")
    try:
        check_sms_text(text)
    except SmsFormatError as exc:
        raise Refused(SendError.INVALID_TEXT, str(exc)) from None
    if destination is not None and (
        not isinstance(destination, str) or not PHONE_NUMBER_RE.fullmatch(destination)
    ):
        raise Refused(
            SendError.INVALID_DESTINATION,
            "destination must be a phone number (digits, a leading + allowed)",
        )
    return correlation, text, destination


def correlation_of(payload: bytes) -> str | None:
    """The request's correlation id when it can be read (for a refused one's result)."""
    try:
        body = json.loads(payload)
    except ValueError:
        return None
    correlation = body.get("correlation_id") if isinstance(body, dict) else None
    return correlation if isinstance(correlation, str) else None


def refused(correlation: str | None, kind: SendError, message: str) -> dict[str, Any]:
    return {"correlation_id": correlation, "ok": False,
            "error": {"type": kind.value, "message": message}}  # fmt: skip


class SendTopic:
    """Serves ``<prefix>/send`` on ``link`` with ``queue_send`` (see the module
    docstring). :meth:`attach` subscribes; each request is handled in a task of its
    own (the link's reader is not held up by the journal's commit)."""

    def __init__(self, link: MqttLink, queue_send: QueueSend) -> None:
        self.link = link
        self.queue_send = queue_send
        #: Correlation id → its result (a future while the commit is under way, so that
        #: a duplicate arriving meanwhile waits for it instead of queueing again).
        self._results: collections.OrderedDict[str, asyncio.Future[dict[str, Any]]] = (
            collections.OrderedDict()
        )
        self._tasks: set[asyncio.Task[dict[str, Any]]] = set()

    def attach(self) -> None:
        self.link.subscribe(self.link.topic("send"), self._on_send)

    def _on_send(self, message: Incoming) -> None:
        task = asyncio.get_running_loop().create_task(self.serve(message.payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def serve(self, payload: bytes) -> dict[str, Any]:
        """Handle one request and publish its result (returned too)."""
        result = await self.handle(payload)
        try:
            await self.link.publish(self.link.topic("send/result"), result)
        except MqttUnavailable as exc:
            LOGGER.warning("MQTT send result %s not published: %s", result, exc)
        return result

    async def handle(self, payload: bytes) -> dict[str, Any]:
        """The result of one request; never raises (but on cancellation)."""
        try:
            correlation, text, destination = parse_request(payload)
        except Refused as exc:
            LOGGER.warning("MQTT send refused (%s): %s", exc.kind.value, exc)
            return refused(correlation_of(payload), exc.kind, str(exc))
        known = self._results.get(correlation)
        if known is not None:
            await asyncio.wait([known])
            if known.cancelled():  # the first one was not queued: this one tries again
                return await self.handle(payload)
            result = known.result()
            LOGGER.info("MQTT send %r: queued already (outbox %s), not again", correlation,
                        result["outbox_id"])  # fmt: skip
            return result
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._results[correlation] = future
        while len(self._results) > REMEMBERED:
            self._results.popitem(last=False)
        try:
            row = await self.queue_send(text, destination)
        except BaseException as exc:  # nothing queued: a retry of this id may queue it
            self._results.pop(correlation, None)
            future.cancel()
            if not isinstance(exc, SmscmdError):
                raise
            LOGGER.error("MQTT send %r not queued: %s", correlation, exc)
            return refused(correlation, SendError.NOT_QUEUED, str(exc))
        result = {"correlation_id": correlation, "ok": True, "outbox_id": row["id"],
                  "state": row["state"], "destination": row["destination"]}  # fmt: skip
        future.set_result(result)
        return result


__all__ = ["REMEMBERED", "QueueSend", "Refused", "SendError", "SendTopic", "parse_request"]
