"""The composition root: a :class:`~device.config.Config` in, a running service out.

:func:`run_service` is the only place that builds the whole agent process, in
this order:

1. the systemd notifier (``NOTIFY_SOCKET`` is taken out of the environment, so
   exec handlers do not inherit it) and the watchdog period;
2. the journal lock (one agent per journal: a second one stops here with
   :class:`~device.errors.JournalInUse`, exit status 2) and the journal;
3. the command registry: built-ins, plug-ins, then ``[handlers]`` from the config;
4. the :class:`~device.agent.Agent`, with an observer that reports every
   lifecycle change, and the last error, as the unit's ``STATUS=``, and, with
   ``[metrics]``, the metrics exporter's observer beside it (:mod:`device.metrics`,
   imported only then; started after the control socket, closed when the agent
   returns: one last textfile write, the port closed);
   with ``[mqtt]``, the :class:`~device.mqtt.bridge.MqttBridge`'s observer too (its
   tasks start with the agent and end after it: :mod:`device.mqtt`, imported only then);
5. the control socket (one agent per socket: at start, another agent answering
   on the path stops this one with :class:`~device.control.SocketInUse`, exit
   status 2; a stale socket file is replaced; any other failure to bind it is
   logged, and the agent runs without it: commands still work, only ``smscmd
   send/status`` cannot reach it);
6. SIGINT and SIGTERM handlers that say ``STOPPING=1`` and stop the agent, and a
   SIGHUP handler that reloads the configuration (:class:`Service`);
7. ``READY=1`` (once the journal, the lock and the control socket are up; the
   modem's own progress is reported through ``STATUS=``, since a gateway
   without its modem must still be reachable with ``smscmd status``), and the
   watchdog pings, which prove that the event loop turns and the agent runs.

Everything is torn down in the reverse order when the agent returns. A reload that
changes more than :data:`HOT_FIELDS` runs steps 2-5 and 7 again with the new
configuration (the control socket is kept when its path is unchanged).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from device import __version__
from device.agent import Agent
from device.config import FIELD_OF_KEY, Config, config_changes
from device.control import ControlError, ControlServer, SocketInUse, refuse_if_served
from device.errors import ConfigError, JournalError, JournalInUse
from device.journal import DIR_MODE, Journal
from device.modem import ModemState
from device.observer import AgentObserver, ErrorNote, LastError, Observers
from device.preflight import build_registry
from device.systemd import Notifier, run_watchdog, watchdog_period
from device.tls import admit

if TYPE_CHECKING:
    from device.metrics.exporter import MetricsExporter
    from device.mqtt.bridge import MqttBridge
    from device.mqtt.handlers import RemoteHandlers

LOGGER = logging.getLogger(__name__)

#: The signals that stop the service.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SystemdStatus(AgentObserver):
    """Every lifecycle change as the unit's STATUS= (what ``systemctl status`` shows),
    then the last error while it is recent, then the agent's trouble while there is any
    (a journal that cannot record first):
    ``modem ready on /dev/ttyUSB2; last error 12:03:04 send to 000 failed: ...``.

    One per service, so that a reload which builds a new agent keeps the last error
    (:attr:`last_error`, shared with each agent for ``smscmd status``). When the error
    is too old to show (:data:`~device.observer.LAST_ERROR_SHOWN`) the line is sent
    again without it. The whole line is bounded by :data:`~device.systemd.MAX_STATUS`.
    """

    def __init__(
        self, notifier: Notifier, port: str | None, last_error: LastError | None = None
    ) -> None:
        self._notifier = notifier
        self.port = port
        self.last_error = last_error if last_error is not None else LastError()
        self._state = ModemState.DISCONNECTED  # as the agent's lifecycle starts
        self._trouble: tuple[str, ...] = ()
        self._journal: str | None = None
        self._expiry: asyncio.TimerHandle | None = None

    def state_changed(self, before: ModemState, after: ModemState) -> None:
        self._state = after
        self._show()

    def trouble(self, texts: tuple[str, ...]) -> None:
        self._trouble = texts
        self._show()

    def journal_condition(self, text: str | None) -> None:
        self._journal = text
        self._show()

    def error(self, note: ErrorNote) -> None:
        self._show()
        self._expire_later()

    def line(self) -> str:
        """The STATUS= text as it stands."""
        parts = [f"modem {self._state.value} on {self.port}"]
        note = self.last_error.current()
        if note is not None:
            parts.append(f"last error {note.clock()} {note.text}")
        if self._journal is not None:
            parts.append(self._journal)
        return "; ".join((*parts, *self._trouble))

    def close(self) -> None:
        """Cancel the pending re-send (the service is done)."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None

    def _show(self) -> None:
        self._notifier.status(self.line())

    def _expire_later(self) -> None:
        self.close()
        delay = self.last_error.expires_in()
        if delay is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # outside the service's loop (a test): nothing to re-send
            return
        self._expiry = loop.call_later(delay, self._expired)

    def _expired(self) -> None:
        self._expiry = None
        if self.last_error.current() is None:
            self._show()
        else:  # the timer fired a hair early
            self._expire_later()


#: Config fields a reload applies to the running agent (:meth:`Agent.reconfigure`);
#: any other changed field builds a new agent (the modem is reconnected, the journal
#: and the control socket re-opened where their paths changed).
HOT_FIELDS = frozenset(
    {"handlers", "allowed_senders", "log_level", "handler_timeout", "retention_days",
     "keep_last", "sweep_interval", "command_timeout", "send_timeout", "health_interval",
     "reconnect_initial", "reconnect_max"}
)  # fmt: skip


def set_log_level(level: str) -> None:
    """The root logger's level (and ``transitions``' at WARNING or above, as at start)."""
    root = logging.getLogger()
    root.setLevel(getattr(logging, level, logging.INFO))
    logging.getLogger("transitions").setLevel(max(logging.WARNING, root.level))


async def run_service(config: Config, *, reload: Callable[[], Config] | None = None) -> None:
    """Build the service from ``config`` and run it until SIGINT or SIGTERM.

    ``reload`` reads the configuration again (the file and the command line's
    overrides); with it, SIGHUP reloads (see :class:`Service`), without it SIGHUP is
    ignored and logged. Raises JournalError when the journal is locked by another
    agent or unusable at start (nothing is started then); modem trouble is the
    agent's to recover from.
    """
    wd_period = watchdog_period()  # read before from_env(unset=True) clears WATCHDOG_*
    notifier = Notifier.from_env(unset=True)  # exec handlers do not inherit NOTIFY_SOCKET
    service = Service(config, notifier, reload)
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, _stopper(service, signum, notifier))
    loop.add_signal_handler(signal.SIGHUP, service.reload)
    try:
        await service.run(wd_period)
    finally:
        for signum in (*STOP_SIGNALS, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        notifier.close()


class Service:
    """The agent's passes: one per journal / port / socket configuration.

    A reload (SIGHUP) reads the file again; a bad one (:class:`ConfigError`, a handler
    that cannot apply or whose program is missing) is logged and the running
    configuration kept. The changes are logged key by key; when only
    :data:`HOT_FIELDS` changed they apply to the running agent at once, otherwise the
    agent finishes the step in hand and a new pass starts with the new configuration
    (a journal that cannot be opened then is logged and the previous one kept).
    """

    def __init__(
        self, config: Config, notifier: Notifier, reload: Callable[[], Config] | None
    ) -> None:
        self.config = config
        self.agent: Agent | None = None
        self._notifier = notifier
        self._load = reload
        self._next: Config | None = None
        #: The running pass's mqtt = true handlers (its MQTT bridge's), for a reload.
        self._remote: RemoteHandlers | None = None
        self._stopping = False
        self._run: asyncio.Task[None] | None = None
        self._control: ControlServer | None = None
        self._status = SystemdStatus(notifier, config.port)

    def healthy(self) -> bool:
        """For the watchdog: the agent runs, or the next pass is about to."""
        return self._run is None or not self._run.done() or self._next is not None

    def stop(self) -> None:
        self._stopping = True
        self._next = None
        if self.agent is not None:
            self.agent.stop()

    async def run(self, wd_period: float | None) -> None:
        wd_stop = asyncio.Event()
        watchdog = asyncio.create_task(
            run_watchdog(self._notifier, self.healthy, wd_stop, period=wd_period)
        )
        previous: Config | None = None
        try:
            while True:
                try:
                    await self._pass(first=previous is None and self._run is None)
                except JournalError as exc:
                    if previous is None:
                        raise
                    LOGGER.error("reload: %s; back to the previous configuration", exc)
                    self.config, previous = previous, None
                    continue
                if self._next is None or self._stopping:
                    return
                previous, self.config, self._next = self.config, self._next, None
        finally:
            wd_stop.set()
            await watchdog
            self._status.close()
            if self._control is not None:
                await self._control.close()

    async def _pass(self, *, first: bool) -> None:
        config = self.config
        if first:
            refuse_if_served(config.control_socket)  # before the journal is even created
        with exclusive(config.journal), Journal.open(config.journal) as journal:
            self._status.port = config.port
            exporter = _exporter(config)
            mqtt = _mqtt(config, journal)
            observers: list[AgentObserver] = [self._status]
            if exporter is not None:
                observers.append(exporter.metrics)
            if mqtt is not None:
                observers.append(mqtt.events)
            remote = mqtt.remote.handler if mqtt is not None else None
            agent = Agent(
                config, journal, build_registry(config, remote),
                observer=observers[0] if len(observers) == 1 else Observers(*observers),
                last_error=self._status.last_error,
            )  # fmt: skip
            self.agent = agent
            self._remote = mqtt.remote if mqtt is not None else None
            await self._serve_control(config, agent, first=first)
            LOGGER.info("smscmd %s on %s, journal %s", __version__, config.port, config.journal)
            if exporter is not None:
                exporter.start(agent)
            self._notifier.ready(f"started on {config.port}" if first else "reloaded")
            if mqtt is not None:
                mqtt.start(agent)
            try:
                self._run = asyncio.create_task(agent.run())
                await self._run
            finally:
                if mqtt is not None:
                    await mqtt.close()
                if exporter is not None:
                    await exporter.close()

    async def _serve_control(self, config: Config, agent: Agent, *, first: bool) -> None:
        """This pass's control socket: the running one when its path is unchanged, else
        a new one (the old one is closed once the new one listens). When the new one
        cannot be served, a reload keeps the old one; at start another agent on the path
        stops the service (SocketInUse), any other failure leaves it without one."""
        control = self._control
        if control is not None and control.path == config.control_socket:
            control.target = agent
            return
        server = ControlServer(agent, config.control_socket)
        try:
            await server.start()
        except ControlError as exc:
            if control is not None:
                LOGGER.error("reload: %s; keeping the control socket %s", exc, control.path)
                control.target = agent
                return
            if first and isinstance(exc, SocketInUse):
                raise
            LOGGER.error("%s; running without a control socket", exc)
            return
        if control is not None:
            await control.close()
        self._control = server

    def reload(self) -> None:
        """SIGHUP: read the configuration again and apply it (see the class docstring)."""
        if self._load is None or self._stopping:
            LOGGER.warning("SIGHUP received; nothing to reload from")
            return
        LOGGER.info("SIGHUP received; reloading the configuration")
        try:
            new = self._load()
            # The running bridge's: the mqtt table is cold, so this pass keeps its link.
            remote = self._remote.handler if self._remote is not None else None
            registry = build_registry(new, remote)
        except ConfigError as exc:
            LOGGER.error("reload rejected, keeping the running configuration: %s", exc)
            return
        changes = config_changes(self._next or self.config, new)
        if not changes:
            LOGGER.info("reload: nothing changed")
            return
        for change in changes:
            LOGGER.info("reload: %s", change)
        self._notifier.reloading("reloading the configuration")
        set_log_level(new.log_level)
        cold = [c.key for c in changes if _field_of(c.key) not in HOT_FIELDS]
        if not cold and self._next is None and self.agent is not None:
            self.agent.reconfigure(new, registry)
            self.config = new
            self._notifier.ready(self._status.line())
            return
        LOGGER.info("reload: %s changed; restarting the agent", ", ".join(cold) or "a key")
        self._next = new
        if self.agent is not None:
            self.agent.stop()


def _field_of(key: str) -> str:
    """The Config field of a Change's dotted key (handler tables → ``handlers``; a
    table of its own, ``mqtt``, is its field)."""
    return "handlers" if key.startswith("handlers.") else FIELD_OF_KEY.get(key, key)


def _exporter(config: Config) -> MetricsExporter | None:
    """The pass's metrics exporter, or None without ``[metrics]`` (then neither
    :mod:`device.metrics.exporter` nor ``prometheus_client`` is imported)."""
    if config.metrics is None:
        return None
    if admit():  # prometheus_client imports ssl, even for a textfile
        LOGGER.info("TLS: ssl loaded after all ([metrics]: prometheus_client imports it)")
    from device.metrics.exporter import MetricsExporter  # only when configured

    return MetricsExporter(config.metrics)


def _mqtt(config: Config, journal: Journal) -> MqttBridge | None:
    """The pass's MQTT bridge, or None without ``[mqtt]`` (then neither :mod:`device.mqtt`
    nor aiomqtt is imported)."""
    if config.mqtt is None:
        return None
    from device.mqtt.bridge import MqttBridge  # only when configured

    return MqttBridge(config.mqtt, journal)


@contextlib.contextmanager
def exclusive(journal: Path) -> Iterator[None]:
    """One agent per journal: an exclusive lock on ``<journal>.lock`` for the run.

    A second agent on the same journal (and so, normally, the same modem) would run
    the same commands twice; it stops here instead.
    """
    lock_path = journal.with_name(journal.name + ".lock")
    try:
        lock_path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise JournalError(f"cannot create {lock_path}: {exc}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise JournalInUse(
                f"another smscmd agent is using the journal {journal} (lock {lock_path} is "
                "held); give each agent its own with --journal or agent.journal"
            ) from None
        yield
    finally:
        os.close(fd)


def _stopper(service: Service, signum: int, notifier: Notifier) -> Callable[[], None]:
    def stop() -> None:
        name = signal.Signals(signum).name
        LOGGER.info("%s received; stopping", name)
        notifier.stopping(f"stopping: {name}")
        service.stop()

    return stop


__all__ = [
    "HOT_FIELDS", "STOP_SIGNALS", "Service", "SystemdStatus", "build_registry", "exclusive",
    "run_service", "set_log_level",
]  # fmt: skip
