"""The agent's Prometheus metrics: fed by the observer hooks, written as a node_exporter
textfile and/or served on a local HTTP port. Imports ``prometheus_client``: the service
imports this module only when ``[metrics]`` is configured.

What is measured (every metric carries the label ``agent``, the ``[metrics]`` name, so
that two instances' files in one textfile directory never clash):

- ``smscmd_commands_received_total``: messages journaled (any state: refused,
  undecodable and incomplete ones included), ``…_refused_total`` (sender not allowed),
  ``…_done_total`` / ``…_failed_total`` (the journaled outcome of a command);
- ``smscmd_sms_sent_total{kind}`` (accepted by the modem: ``reply`` or ``originated``,
  ``smscmd send``), ``smscmd_sms_send_failures_total{final}`` (each failed attempt;
  ``final="true"`` when given up);
- ``smscmd_reconnects_total``, ``smscmd_reinitialisations_total`` (the supervisor's
  counters, read at each scrape or write);
- ``smscmd_modem_state`` (a state set: 1 for the current lifecycle state, 0 for the rest),
  ``smscmd_signal_rssi`` (27.007 ``+CSQ`` 0-31) and ``smscmd_signal_dbm``,
  ``smscmd_registration_status`` (27.007 §7.2 ``<stat>``), ``smscmd_registered`` (1 home
  or roaming) — NaN while unknown (no modem, 99);
- ``smscmd_journal_size_bytes`` (the file and its WAL), ``smscmd_outbox_depth`` (rows
  queued to send), read every ``interval`` (on the journal thread and a worker thread);
- ``smscmd_handler_run_seconds{handler}``: a histogram of each dispatch's run time, by
  the registered handler's name (the label set is the registry's: bounded by the
  configuration, never the text of a message; ``none`` when no handler ran);
- ``smscmd_reaction_seconds``: from the ``+CMTI`` that named a message (the moment the
  channel handed the indication to the inbox) to the modem's ``+CMGS`` accepting its
  reply (the outbox's ``sent``), on the monotonic clock. Messages that no ``+CMTI``
  named (a drain, a sweep, ``+CMT``) and commands without a reply are not measured.

Nothing here blocks the event loop: the textfile (and the journal's size) is written on
a worker thread (:func:`asyncio.to_thread`), the outbox depth is read on the journal
thread, and the HTTP endpoint is ``prometheus_client``'s own server thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from device.errors import JournalError
from device.journal import InboxRow, InboxState, OutboxRow, OutboxState
from device.metrics.config import MetricsConfig
from device.modem import ModemState
from device.modem.messages import REGISTERED
from device.observer import AgentObserver, Counters

if TYPE_CHECKING:
    import threading

    from device.agent import Agent

LOGGER = logging.getLogger(__name__)

#: Handler run time buckets (s): built-ins answer in milliseconds, exec handlers in
#: seconds, and the handler timeout defaults to 30 s.
HANDLER_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: Reaction time buckets (s): a reply goes out in well under a second on a quiet modem;
#: a network that is slow to accept the submit takes up to the send timeout (60 s).
REACTION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
#: Indications and commands waiting for their reply that are remembered for the
#: reaction time; beyond it the oldest is forgotten (never unbounded memory).
MAX_TRACKED = 256
#: The textfile's mode: node_exporter runs as another user (``prometheus`` on Debian).
TEXTFILE_MODE = 0o644

_K = TypeVar("_K")


class AgentMetrics(AgentObserver):
    """The metrics of one agent on their own registry; an observer of that agent."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.registry = CollectorRegistry(auto_describe=True)
        self.counters = _CountersCollector(name)
        self.registry.register(self.counters)
        reg, agent = self.registry, ("agent",)

        def counter(metric: str, doc: str, *extra: str) -> Counter:
            return Counter(metric, doc, (*agent, *extra), registry=reg)

        def gauge(metric: str, doc: str) -> Gauge:
            return Gauge(metric, doc, agent, registry=reg)

        self._received = counter("smscmd_commands_received", "Messages journaled, any state.")
        self._refused = counter("smscmd_commands_refused", "Messages from senders not allowed.")
        self._done = counter("smscmd_commands_done", "Commands journaled done.")
        self._failed = counter("smscmd_commands_failed", "Commands journaled failed.")
        self._sent = counter("smscmd_sms_sent", "Messages accepted by the modem.", "kind")
        self._send_failures = counter(
            "smscmd_sms_send_failures", "Failed send attempts (final: given up).", "final"
        )
        self._state = Enum(
            "smscmd_modem_state", "The modem's lifecycle state.", agent, registry=reg,
            states=[s.value for s in ModemState],
        )  # fmt: skip
        self._rssi = gauge("smscmd_signal_rssi", "+CSQ rssi 0-31 (NaN: unknown).")
        self._dbm = gauge("smscmd_signal_dbm", "Signal strength in dBm (NaN: unknown).")
        self._registration = gauge(
            "smscmd_registration_status", "27.007 +CREG/+CEREG <stat> (NaN: unknown)."
        )
        self._registered = gauge("smscmd_registered", "1 when registered (home or roaming).")
        self._journal_size = gauge("smscmd_journal_size_bytes", "Journal file and its WAL.")
        self._outbox = gauge("smscmd_outbox_depth", "Messages queued to send.")
        self._handler_run = Histogram(
            "smscmd_handler_run_seconds", "Run time of each command's handler.",
            (*agent, "handler"), registry=reg, buckets=HANDLER_BUCKETS,
        )  # fmt: skip
        self._reaction = Histogram(
            "smscmd_reaction_seconds", "From +CMTI seen to the reply accepted by the modem.",
            agent, registry=reg, buckets=REACTION_BUCKETS,
        )  # fmt: skip
        # Every series there is from the start, at 0 (a rate over a series that
        # appears only at its first event would miss that event).
        for plain in (self._received, self._refused, self._done, self._failed):
            plain.labels(name)
        for kind in ("reply", "originated"):
            self._sent.labels(name, kind)
        for final in ("true", "false"):
            self._send_failures.labels(name, final)
        self._reaction.labels(name)
        self._state.labels(name).state(ModemState.DISCONNECTED.value)
        for unknown in (self._rssi, self._dbm, self._registration, self._registered):
            unknown.labels(name).set(math.nan)
        self._seen: OrderedDict[tuple[str, int], float] = OrderedDict()
        self._waiting: OrderedDict[int, float] = OrderedDict()

    # -- observer hooks (on the event loop) ---------------------------------

    def state_changed(self, before: ModemState, after: ModemState) -> None:
        self._state.labels(self.name).state(after.value)

    def indication(self, storage: str, index: int) -> None:
        _remember(self._seen, (storage, index), time.monotonic())  # a newer +CMTI wins

    def received(self, row: InboxRow) -> None:
        self._received.labels(self.name).inc()
        if row.state is InboxState.REFUSED:
            self._refused.labels(self.name).inc()
        if row.storage is None or row.index is None:
            return
        seen = self._seen.pop((row.storage, row.index), None)
        if seen is not None and row.state is InboxState.RECEIVED:
            _remember(self._waiting, row.id, seen)

    def finished(
        self, row: InboxRow, state: InboxState, handler: str | None, run_time: float | None
    ) -> None:
        (self._done if state is InboxState.DONE else self._failed).labels(self.name).inc()
        if run_time is not None:
            self._handler_run.labels(self.name, handler or "none").observe(run_time)

    def replied(self, row: InboxRow, outbox: OutboxRow | None) -> None:
        if outbox is None:  # no reply: nothing will be accepted for it
            self._waiting.pop(row.id, None)

    def sent(self, outbox: OutboxRow) -> None:
        kind = "originated" if outbox.inbox_id is None else "reply"
        self._sent.labels(self.name, kind).inc()
        if outbox.inbox_id is not None:
            seen = self._waiting.pop(outbox.inbox_id, None)
            if seen is not None:
                self._reaction.labels(self.name).observe(time.monotonic() - seen)

    def send_failed(self, outbox: OutboxRow) -> None:
        final = "true" if outbox.state is OutboxState.FAILED else "false"
        self._send_failures.labels(self.name, final).inc()
        if outbox.state is OutboxState.FAILED and outbox.inbox_id is not None:
            self._waiting.pop(outbox.inbox_id, None)

    # -- gauges read every interval -----------------------------------------

    def modem_read(self, rssi: int | None, registration: int | None) -> None:
        """The modem's last ``+CSQ`` rssi and registration ``<stat>`` (None: unknown)."""
        known = rssi is not None and 0 <= rssi <= 31
        self._rssi.labels(self.name).set(rssi if known and rssi is not None else math.nan)
        self._dbm.labels(self.name).set(-113 + 2 * rssi if known and rssi is not None else math.nan)
        if registration is None:
            self._registration.labels(self.name).set(math.nan)
            self._registered.labels(self.name).set(math.nan)
        else:
            self._registration.labels(self.name).set(registration)
            self._registered.labels(self.name).set(1 if registration in REGISTERED else 0)

    def journal_read(self, counts: dict[str, int] | None, size: int | None) -> None:
        """The outbox depth from the journal's counts, the journal's size in bytes
        (either None: not readable now; the last value stays)."""
        if counts is not None:
            self._outbox.labels(self.name).set(counts.get(f"outbox.{OutboxState.QUEUED.value}", 0))
        if size is not None:
            self._journal_size.labels(self.name).set(size)


class _CountersCollector(Collector):
    """The supervisor's reconnect and re-initialisation counts, read when collected."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.counters = Counters()

    def collect(self) -> Iterable[Metric]:
        for metric, doc, value in (
            ("smscmd_reconnects", "Port re-openings after a lost port.", self.counters.reconnects),
            ("smscmd_reinitialisations", "Modem re-initialisations (restart, lost set-up).",
             self.counters.reinitialisations),
        ):  # fmt: skip
            family = CounterMetricFamily(metric, doc, labels=["agent"])
            family.add_metric([self.name], value)
            yield family


class MetricsExporter:
    """One agent's metrics, exposed as configured: :meth:`start` with the agent,
    :meth:`close` when it has stopped (one last textfile write, the port closed)."""

    def __init__(self, config: MetricsConfig) -> None:
        self.config = config
        self.metrics = AgentMetrics(config.name)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._http: tuple[WSGIServer, threading.Thread] | None = None
        self._write_error: str | None = None

    @property
    def address(self) -> tuple[str, int] | None:
        """Where the HTTP endpoint listens (the port bound, for ``:0``), or None."""
        if self._http is None:
            return None
        host, port = self._http[0].server_address[:2]
        return str(host), int(port)

    def start(self, agent: Agent) -> None:
        """Serve the port (when configured) and start writing the textfile. A port that
        cannot be bound is logged and the agent runs without it (like the control socket)."""
        self.metrics.counters.counters = agent.counters
        if self.config.listen is not None:
            host, port = self.config.listen
            try:
                self._http = start_http_server(port, host, registry=self.metrics.registry)
            except OSError as exc:
                LOGGER.error("metrics: cannot listen on %s:%d (%s); running without it",
                             host, port, exc)  # fmt: skip
            else:
                LOGGER.info("metrics on http://%s:%d/metrics", *self._bracketed())
        self._task = asyncio.create_task(self._run(agent), name="metrics")

    async def close(self) -> None:
        """Write the textfile once more and close the port."""
        self._stop.set()
        if self._task is not None:
            await self._task
        if self._http is not None:
            server, thread = self._http
            self._http = None
            await asyncio.to_thread(_shut, server, thread)

    async def update(self, agent: Agent) -> None:
        """Read the gauges (modem on the loop, journal on its thread) and write the file."""
        modem = agent.modem
        self.metrics.modem_read(
            modem.rssi if modem is not None else None,
            modem.registration if modem is not None else None,
        )
        try:
            counts: dict[str, int] | None = await agent.journal.counts()
        except JournalError as exc:  # closed at the end, or cannot be read now
            LOGGER.debug("metrics: journal counts not read: %s", exc)
            counts = None
        self.metrics.journal_read(counts, None)
        await asyncio.to_thread(self._off_loop, agent.journal.path)

    async def _run(self, agent: Agent) -> None:
        while True:
            await self.update(agent)
            try:
                await asyncio.wait_for(self._stop.wait(), self.config.interval)
            except TimeoutError:
                continue
            await self.update(agent)  # the final figures (the journal is closed by now)
            return

    def _off_loop(self, journal: Path) -> None:
        """On a worker thread: the journal's size, then the textfile."""
        self.metrics.journal_read(None, journal_size(journal))
        if self.config.textfile is None:
            return
        try:
            write_textfile(self.config.textfile, generate_latest(self.metrics.registry))
        except OSError as exc:
            text = str(exc)
            if text != self._write_error:  # once per distinct error, not every interval
                LOGGER.error("metrics: cannot write %s: %s", self.config.textfile, text)
            self._write_error = text
        else:
            if self._write_error is not None:
                LOGGER.info("metrics: %s written again", self.config.textfile)
            self._write_error = None

    def _bracketed(self) -> tuple[str, int]:
        host, port = self.address or ("", 0)
        return (f"[{host}]" if ":" in host else host), port


def journal_size(journal: Path) -> int | None:
    """Bytes of the journal file and its ``-wal`` (an absent WAL counts 0); None when
    the file itself cannot be read."""
    try:
        size = journal.stat().st_size
    except OSError:
        return None
    with contextlib.suppress(OSError):
        size += journal.with_name(journal.name + "-wal").stat().st_size
    return size


def write_textfile(path: Path, content: bytes) -> None:
    """Replace ``path`` atomically, as node_exporter's textfile collector needs: the
    content goes to ``.<name>.<pid>.tmp`` in the same directory (the collector reads
    only ``*.prom``, so never the temporary file), made ``TEXTFILE_MODE`` whatever the
    umask, then renamed over ``path``; a reader sees the old file or the new one, never
    a part. Not fsynced: the figures are rewritten every interval, and a crash that
    loses the last one loses nothing the next write does not restore. A failure
    removes the temporary file and raises OSError."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, TEXTFILE_MODE)
        try:
            os.fchmod(fd, TEXTFILE_MODE)
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def _remember(table: OrderedDict[_K, float], key: _K, value: float) -> None:
    table[key] = value
    table.move_to_end(key)
    while len(table) > MAX_TRACKED:
        table.popitem(last=False)


def _shut(server: WSGIServer, thread: threading.Thread) -> None:
    server.shutdown()
    server.server_close()
    thread.join()


__all__ = [
    "HANDLER_BUCKETS", "MAX_TRACKED", "REACTION_BUCKETS", "TEXTFILE_MODE", "AgentMetrics",
    "MetricsExporter", "journal_size", "write_textfile",
]  # fmt: skip
