"""The agent's MQTT side: its events journaled, then published when the broker is there.

:class:`MqttBridge` is built by the service for a configuration with ``[mqtt]``; its
:attr:`~MqttBridge.events` observer goes with the unit's STATUS= one to the agent
(:class:`~device.observer.Observers`), :meth:`~MqttBridge.start` runs its tasks next
to the agent, :meth:`~MqttBridge.close` ends them after it. What comes in is served on
the same link: the ``mqtt = true`` handlers' responses (:attr:`~MqttBridge.remote`,
:mod:`device.mqtt.handlers`), ``…/send`` (:mod:`device.mqtt.send`, from :meth:`start`)
and, with ``discovery = true``, Home Assistant's configs on every connection
(:mod:`device.mqtt.discovery`). Its tasks:

* the **link** (:class:`~device.mqtt.link.MqttLink`): connection, last will, reconnect;
* the **writer**: what the observer appended (in memory, at once) goes into the journal's
  publish queue (:mod:`device.journal.publish`), one transaction per batch; past
  ``queue_max`` rows the oldest are dropped, counted in :attr:`~MqttBridge.dropped` and
  logged as a warning;
* the **publisher**: while connected, the queue oldest first, one publish at a time
  (so in order, per topic and overall), each row deleted once the broker confirmed it
  (at least once); when a publish fails it waits for the next connection and starts
  again from the oldest row left. It also publishes the retained ``status`` on every
  change of the modem state, and when the registration, the signal or the queue's
  length changed (looked at every :data:`STATUS_INTERVAL` seconds).

Nothing here is on the agent's path: a hook appends to a list; the journal work is on a
journal thread of the bridge's own (:class:`~device.journal.worker.AsyncJournal` over the
service's :class:`~device.journal.Journal`, so that the events of the agent's last steps
are still journaled after the agent closed its own thread); publishing waits for nobody
but the broker. A broker that is away, slow or silent delays no receive, journal write
or reply (tests/test_mqtt_events.py measures it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from device.errors import JournalError
from device.journal import Journal, PublishEvent
from device.journal.worker import AsyncJournal
from device.modem import ModemState
from device.mqtt.config import MqttConfig
from device.mqtt.discovery import Discovery
from device.mqtt.events import MqttEvents, Topic, status_payload
from device.mqtt.handlers import RemoteHandlers
from device.mqtt.link import MqttLink, MqttUnavailable, encode
from device.mqtt.send import SendTopic

if TYPE_CHECKING:
    from device.agent import Agent

LOGGER = logging.getLogger(__name__)

#: Seconds between looks at the registration, signal and queue length for ``status``.
STATUS_INTERVAL = 5.0
#: Queue rows read per journal call by the publisher.
BATCH = 100


class MqttBridge:
    """The agent's events, journaled and published (see the module docstring)."""

    def __init__(self, config: MqttConfig, journal: Journal, *, link: MqttLink | None = None):
        self.config = config
        self.journal = AsyncJournal(journal)
        self.link = link or MqttLink(config, birth=self.status)
        #: The ``mqtt = true`` handlers' requests in flight, answered on this link.
        self.remote = RemoteHandlers()
        self.remote.attach(self.link)
        if config.discovery:
            Discovery(self.link).attach()
        self.events = MqttEvents(wake=self._wake_writer, on_state=self._wake_status)
        #: Events dropped to stay within ``queue_max`` since the bridge started.
        self.dropped = 0
        #: Events published (confirmed by the broker) since the bridge started.
        self.published = 0
        self._agent: Agent | None = None
        self._queued = 0
        self._written = asyncio.Event()  # the writer added rows: the publisher looks
        self._to_write = asyncio.Event()
        self._status_due = asyncio.Event()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.link.on_connect(self._connected)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self, agent: Agent) -> None:
        """Run the link, the writer and the publisher as tasks for ``agent``."""
        self._agent = agent
        SendTopic(self.link, agent.queue_send).attach()
        jobs = {
            "link": self.link.run(),
            "writer": self._write(),
            "publisher": self._publish(),
            "status": self._watch(),
        }
        for name, coro in jobs.items():
            self._tasks.append(asyncio.create_task(coro, name=f"mqtt-{name}"))

    async def close(self) -> None:
        """Journal what is still in memory, stop the tasks, close the journal thread.
        Whatever was not published stays queued for the next start."""
        self._stop.set()
        self._to_write.set()
        self._written.set()
        self._status_due.set()
        self.link.stop()
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                LOGGER.error("MQTT task failed: %r", result)
        self._tasks.clear()
        await self._flush()
        await self.journal.close()

    # -- status ------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The retained ``status`` payload as things stand."""
        agent = self._agent
        if agent is None:
            return status_payload(
                ModemState.DISCONNECTED,
                datetime.now(UTC),
                "unknown",
                "unknown",
                None,
                queued=self._queued,
                dropped=self.dropped,
            )
        snapshot = agent.status()
        modem = agent.modem
        return status_payload(
            agent.state,
            agent.lifecycle.since,
            snapshot.registration,
            snapshot.signal,
            modem.rssi if modem is not None else None,
            queued=self._queued,
            dropped=self.dropped,
        )

    def _wake_status(self) -> None:
        self._status_due.set()

    async def _watch(self) -> None:
        """Publish ``status`` when the modem state changed (at once), or when what it
        shows changed (looked at every STATUS_INTERVAL); the time stamp alone is no change."""
        shown: dict[str, Any] | None = None
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._status_due.wait(), STATUS_INTERVAL)
            self._status_due.clear()
            if self._stop.is_set() or not self.link.connected:
                shown = None  # a new connection publishes its own (the birth)
                continue
            payload = self.status()
            key = {k: v for k, v in payload.items() if k != "updated_at"}
            if key == shown:
                continue
            try:
                await self.link.publish(self.link.topic(Topic.STATUS.value), payload, retain=True)
                shown = key
            except MqttUnavailable as exc:
                LOGGER.debug("MQTT status not published: %s", exc)

    # -- the writer --------------------------------------------------------------------

    def _wake_writer(self) -> None:
        self._to_write.set()

    async def _write(self) -> None:
        while not self._stop.is_set():
            await self._to_write.wait()
            self._to_write.clear()
            await self._flush()

    async def _flush(self) -> None:
        """Journal what the observer appended, in one transaction."""
        pending, self.events.pending = self.events.pending, []
        if not pending:
            return
        rows = [
            PublishEvent(
                self.link.topic(topic.value),
                json.dumps(payload, ensure_ascii=False),
                retain=False,
                qos=self.config.qos,
            )
            for topic, payload in pending
        ]
        try:
            outcome = await self.journal.queue_publish(rows, limit=self.config.queue_max)
        except Exception as exc:  # the journal cannot record: these events are lost
            LOGGER.error("MQTT: %d events not journaled, lost: %s", len(rows), exc)
            self.dropped += len(rows)
            return
        if outcome.dropped:
            self.dropped += outcome.dropped
            LOGGER.warning(
                "MQTT: publish queue full (queue_max %d): dropped the %d oldest events "
                "(%d dropped since start)",
                self.config.queue_max,
                outcome.dropped,
                self.dropped,
            )
        self._written.set()

    # -- the publisher -----------------------------------------------------------------

    async def _connected(self) -> None:
        self._written.set()
        self._status_due.set()

    async def _publish(self) -> None:
        """Publish the queue whenever rows were added or a connection was made. A journal
        that cannot be read is logged and tried again at the next event or connection
        (the rows stay queued)."""
        while not self._stop.is_set():
            await self._written.wait()
            self._written.clear()
            try:
                while not self._stop.is_set() and self.link.connected:
                    if not await self._publish_batch():
                        break
            except JournalError as exc:
                LOGGER.error("MQTT: cannot read the publish queue: %s", exc)

    async def _publish_batch(self) -> bool:
        """Publish up to BATCH rows, oldest first; True when all went (more may follow)."""
        rows = await self.journal.pending_publish(BATCH)
        self._queued = len(rows)
        if len(rows) == BATCH:
            self._queued = await self.journal.publish_queue_size()
        if not rows:
            return False
        done: list[int] = []
        try:
            for row in rows:
                payload = {"event": row.id, **json.loads(row.payload)}
                await self.link.publish(row.topic, encode(payload), qos=row.qos, retain=row.retain)
                done.append(row.id)
        except MqttUnavailable as exc:
            LOGGER.info("MQTT: publishing paused (%s); %d queued", exc, self._queued - len(done))
        finally:
            if done:
                await self.journal.published(done)
                self.published += len(done)
        return len(done) == len(rows)  # else the next connection sets _written again


__all__ = ["BATCH", "STATUS_INTERVAL", "MqttBridge"]
