"""The agent's connection to an MQTT broker: :class:`MqttLink`.

One long-lived task (:meth:`MqttLink.run`) connects, keeps the connection (MQTT pings
every ``keepalive`` seconds), and reconnects with capped exponential backoff
(:class:`~device.retry.Backoff`, 0.5 s doubling to 30 s by default) until
:meth:`MqttLink.stop`. aiomqtt (on paho-mqtt) is imported by :meth:`run`, so that a
configuration without ``[mqtt]`` never loads it; :mod:`ssl` only for ``mqtts://``.

On every connection:

1. the last will is registered: ``<prefix>/status`` = ``{"availability": "offline"}``,
   retained, at the configured QoS (the broker publishes it when the agent vanishes
   without a clean disconnect; :meth:`stop` publishes the same itself first);
2. the birth message: ``<prefix>/status`` = what ``birth()`` returns, retained
   (``{"availability": "online"}`` without one);
3. every filter given to :meth:`subscribe` is subscribed again (clean sessions: the
   broker keeps nothing for us between connections);
4. each :meth:`on_connect` callback is awaited, in the order registered.

Publishing never waits for a broker that is not there: :meth:`publish` raises
:class:`MqttUnavailable` at once when not connected, and when the broker does not
confirm within ``timeout`` (QoS 1/2: its PUBACK/PUBCOMP). What must survive an outage
is the caller's to keep (the journal-backed queue keeps the agent's events).

Incoming messages are handed to the callbacks of the matching filters in the order
received, one at a time (a callback that raises is logged and the next one runs; an
async one is awaited, so a slow one holds up the messages after it: start a task for
long work). Callbacks get an :class:`Incoming`, never an aiomqtt type.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from device.errors import SmscmdError
from device.mqtt.config import MqttConfig
from device.retry import Backoff, wait_any

if TYPE_CHECKING:
    import ssl

    import aiomqtt

LOGGER = logging.getLogger(__name__)

#: The payloads of ``<prefix>/status`` that say whether the agent is connected.
OFFLINE = {"availability": "offline"}
ONLINE = {"availability": "online"}
#: The default reconnect backoff (as the modem port's defaults).
RECONNECT = Backoff(0.5, 30.0)
#: Seconds a connect, a subscribe or a publish may take before it counts as failed.
BROKER_TIMEOUT = 10.0


class MqttUnavailable(SmscmdError):
    """The broker is not connected, or did not confirm a publish in time."""


@dataclass(frozen=True, slots=True)
class Incoming:
    """One message from the broker: its topic, payload bytes and retain flag."""

    topic: str
    payload: bytes
    retain: bool = False


#: What :meth:`MqttLink.subscribe` calls: plain or async, with one Incoming.
Callback = Callable[[Incoming], Awaitable[None] | None]


def topic_matches(pattern: str, topic: str) -> bool:
    """Whether ``topic`` matches the subscription filter ``pattern`` (MQTT 3.1.1 §4.7):
    ``+`` is one whole level, ``#`` (last) any number of levels, the parent included;
    a filter starting with a wildcard does not match topics starting with ``$``."""
    if topic.startswith("$") and pattern[:1] in ("+", "#"):
        return False
    want, have = pattern.split("/"), topic.split("/")
    for index, level in enumerate(want):
        if level == "#":
            return index == len(want) - 1
        if index >= len(have) or (level != "+" and level != have[index]):
            return False
    return len(want) == len(have)


class MqttLink:
    """The agent's MQTT connection (see the module docstring for what a connection does).

    Build it, register :meth:`subscribe` / :meth:`on_connect` callbacks (before or while
    it runs), run :meth:`run` as a task; :meth:`stop` ends it. ``birth`` gives the
    retained ``status`` payload sent on every connect.
    """

    def __init__(
        self,
        config: MqttConfig,
        *,
        reconnect: Backoff = RECONNECT,
        birth: Callable[[], dict[str, Any]] | None = None,
        timeout: float = BROKER_TIMEOUT,
    ) -> None:
        self.config = config
        self.reconnect = reconnect
        self.timeout = timeout
        self._birth = birth or (lambda: dict(ONLINE))
        self._subscriptions: list[tuple[str, Callback]] = []
        self._connect_callbacks: list[Callable[[], Awaitable[None]]] = []
        self._client: aiomqtt.Client | None = None
        self._connected = asyncio.Event()
        self._stop = asyncio.Event()
        #: Successful connections so far (the first one included).
        self.connections = 0

    # -- the API ---------------------------------------------------------------------

    def topic(self, name: str) -> str:
        """``<topic_prefix>/<name>`` (``name`` may have levels: ``commands/received``)."""
        return f"{self.config.topic_prefix}/{name}"

    @property
    def connected(self) -> bool:
        """Connected to the broker now (a publish may still fail)."""
        return self._client is not None and self._connected.is_set()

    async def wait_connected(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a connection; True when there is one."""
        if self.connected:
            return True
        return await wait_any(self._connected, timeout=timeout) and self.connected

    async def publish(
        self,
        topic: str,
        payload: bytes | str | dict[str, Any],
        *,
        qos: int | None = None,
        retain: bool = False,
    ) -> None:
        """Publish ``payload`` (a dict is sent as compact JSON) to ``topic`` (a full topic:
        see :meth:`topic`) at ``qos`` (the configured one by default). Returns once the
        broker confirmed it (QoS 0: once it is written). MqttUnavailable when not
        connected, on a broker error, or after ``timeout`` seconds without confirmation."""
        client = self._client
        if client is None or not self._connected.is_set():
            raise MqttUnavailable(f"not connected to {self.config.url}")
        data = encode(payload)
        import aiomqtt

        try:
            await client.publish(
                topic, data, qos=self._qos(qos), retain=retain, timeout=self.timeout
            )
        except (aiomqtt.MqttError, TimeoutError) as exc:
            raise MqttUnavailable(f"publish to {topic} failed: {exc}") from exc

    def subscribe(self, pattern: str, callback: Callback) -> None:
        """Call ``callback`` for each message on a topic matching ``pattern`` (a full
        filter, wildcards allowed), from the next connection on (at once when connected)."""
        self._subscriptions.append((pattern, callback))
        client = self._client
        if client is not None and self._connected.is_set():
            task = asyncio.get_running_loop().create_task(self._subscribe_one(client, pattern))
            task.add_done_callback(_log_failure)

    def on_connect(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Await ``callback()`` after each connection is set up (a failure is logged)."""
        self._connect_callbacks.append(callback)

    def stop(self) -> None:
        """End :meth:`run`: ``offline`` is published, the connection closed cleanly."""
        self._stop.set()

    # -- the connection loop -------------------------------------------------------

    async def run(self) -> None:
        """Connect and stay connected until :meth:`stop` (see the module docstring).

        A stop while a connection is being made (a broker that accepts TCP but does not
        answer) abandons it at once: stopping never waits for the broker's timeout.
        """
        attempt = 0
        while not self._stop.is_set():
            connection = asyncio.ensure_future(self._connection())
            stopped = asyncio.ensure_future(self._stop.wait())
            try:
                await asyncio.wait((connection, stopped), return_when=asyncio.FIRST_COMPLETED)
                if not connection.done() and not self._connected.is_set():
                    connection.cancel()  # still connecting: nothing to say goodbye to
                made = (await asyncio.gather(connection, return_exceptions=True))[0]
                attempt = 0 if made is True else attempt
            finally:
                stopped.cancel()
                connection.cancel()
                await asyncio.gather(connection, stopped, return_exceptions=True)
            if self._stop.is_set():
                break
            attempt += 1
            delay = self.reconnect.delay(attempt)
            LOGGER.info("MQTT: reconnecting to %s in %.1f s", self.config.url, delay)
            await wait_any(self._stop, timeout=delay)
        LOGGER.info("MQTT: disconnected from %s", self.config.url)

    async def _connection(self) -> bool:
        """One connection, from connect to its end; True when it was made."""
        import aiomqtt

        client = self._client_for()
        made = False
        try:
            async with client:
                made = True
                await self._connected_with(client)
                await self._serve(client)
        except (aiomqtt.MqttError, OSError) as exc:  # OSError: name resolution, TLS files
            LOGGER.warning("MQTT broker %s: %s", self.config.url, exc)
        except ImportError as exc:  # mqtts:// where ssl was left out (SMSCMD_TLS, device.tls)
            LOGGER.error("MQTT broker %s: TLS unavailable: %s", self.config.url, exc)
        finally:
            self._client = None
            self._connected.clear()
            await _release(client)
        return made

    def _client_for(self) -> aiomqtt.Client:
        import aiomqtt

        config = self.config
        will = aiomqtt.Will(self.topic("status"), encode(OFFLINE), qos=config.qos, retain=True)
        return aiomqtt.Client(
            config.host,
            config.port,
            username=config.username,
            password=config.password,
            identifier=config.client_id,
            keepalive=config.keepalive,
            timeout=self.timeout,
            will=will,
            tls_context=self._tls_context() if config.tls else None,
            logger=logging.getLogger("device.mqtt.client"),
        )

    def _tls_context(self) -> ssl.SSLContext:
        import ssl

        context = ssl.create_default_context(
            cafile=str(self.config.ca_file) if self.config.ca_file else None
        )
        if self.config.cert_file is not None and self.config.key_file is not None:
            context.load_cert_chain(self.config.cert_file, self.config.key_file)
        return context

    async def _connected_with(self, client: aiomqtt.Client) -> None:
        self.connections += 1
        LOGGER.info("MQTT: connected to %s as %s", self.config.url, self.config.client_id)
        await client.publish(
            self.topic("status"), encode(self._birth()), qos=self.config.qos, retain=True
        )
        for pattern in dict.fromkeys(p for p, _ in self._subscriptions):
            await client.subscribe(pattern, qos=self.config.qos)
        self._client = client
        self._connected.set()
        for callback in list(self._connect_callbacks):
            try:
                await callback()
            except Exception:
                LOGGER.exception("MQTT on_connect callback %s failed", callback)

    async def _serve(self, client: aiomqtt.Client) -> None:
        """Hand incoming messages to the callbacks until the connection ends or stop();
        on stop, publish ``offline`` before the clean disconnect."""
        reader = asyncio.ensure_future(self._read(client))
        stopped = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait((reader, stopped), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not reader.done():
                reader.cancel()
            await asyncio.gather(reader, stopped, return_exceptions=True)
        if reader.done() and not reader.cancelled() and reader.exception() is not None:
            raise reader.exception()  # type: ignore[misc]
        if self._stop.is_set():
            self._connected.clear()
            try:
                await client.publish(
                    self.topic("status"), encode(OFFLINE), qos=self.config.qos, retain=True
                )
            except Exception as exc:  # the broker went away meanwhile: the will says it
                LOGGER.debug("MQTT: offline not published: %s", exc)

    async def _read(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload
            data = payload if isinstance(payload, bytes) else str(payload or "").encode()
            incoming = Incoming(str(message.topic), data, bool(message.retain))
            for pattern, callback in list(self._subscriptions):
                if topic_matches(pattern, incoming.topic):
                    await _call(callback, incoming)

    async def _subscribe_one(self, client: aiomqtt.Client, pattern: str) -> None:
        await client.subscribe(pattern, qos=self.config.qos, timeout=self.timeout)

    def _qos(self, qos: int | None) -> int:
        return self.config.qos if qos is None else qos


def encode(payload: bytes | str | dict[str, Any]) -> bytes:
    """A payload as bytes: a dict as compact JSON (UTF-8, keys in the order given)."""
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode()
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


async def _release(client: aiomqtt.Client) -> None:
    """Close what a failed or ended connection left open: a broker that accepted TCP but
    never answered CONNECT leaves paho's socket open (aiomqtt only gives up waiting), and
    with it aiomqtt's housekeeping task; closing the socket ends that task, which is then
    let run to its end."""
    paho = client._client  # aiomqtt 2.x keeps the paho client here; no public close
    if paho.socket() is not None:
        paho._sock_close()
    misc = getattr(client, "_misc_task", None)
    if isinstance(misc, asyncio.Task) and not misc.done():
        misc.cancel()
        await asyncio.gather(misc, return_exceptions=True)


async def _call(callback: Callback, incoming: Incoming) -> None:
    try:
        result = callback(incoming)
        if inspect.isawaitable(result):
            await result
    except Exception:
        LOGGER.exception("MQTT callback for %s failed", incoming.topic)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        LOGGER.warning("MQTT subscribe failed: %s", task.exception())


__all__ = [
    "BROKER_TIMEOUT",
    "OFFLINE",
    "ONLINE",
    "RECONNECT",
    "Callback",
    "Incoming",
    "MqttLink",
    "MqttUnavailable",
    "encode",
    "topic_matches",
]
