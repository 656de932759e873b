"""The composition root: a :class:`~device.config.Config` in, a running service out.

:func:`run_service` is the only place that builds the whole agent process, in
this order:

1. the systemd notifier (``NOTIFY_SOCKET`` is taken out of the environment, so
   exec handlers do not inherit it) and the watchdog period;
2. the journal lock (one agent per journal: a second one stops here with a
   :class:`~device.errors.JournalError`) and the journal;
3. the command registry: built-ins, plug-ins, then ``[handlers]`` from the config;
4. the :class:`~device.agent.Agent`, with an observer that reports every
   lifecycle change as the unit's ``STATUS=``;
5. the control socket (a failure to bind it is logged, and the agent runs
   without it: commands still work, only ``smscmd send/status`` cannot reach it);
6. SIGINT and SIGTERM handlers that say ``STOPPING=1`` and stop the agent;
7. ``READY=1`` (once the journal, the lock and the control socket are up; the
   modem's own progress is reported through ``STATUS=``, since a gateway
   without its modem must still be reachable with ``smscmd status``), and the
   watchdog pings, which prove that the event loop turns and the agent runs.

Everything is torn down in the reverse order when the agent returns.
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

from device import __version__
from device.agent import Agent
from device.commands import Registry, default_registry, load_plugins
from device.config import Config
from device.control import ControlError, ControlServer
from device.errors import JournalError
from device.handlers import apply_config
from device.journal import Journal
from device.modem import ModemState
from device.observer import AgentObserver
from device.systemd import Notifier, run_watchdog, watchdog_period

LOGGER = logging.getLogger(__name__)

#: The signals that stop the service.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SystemdStatus(AgentObserver):
    """Every lifecycle change as the unit's STATUS= (what ``systemctl status`` shows),
    followed by the agent's trouble while there is any."""

    def __init__(self, notifier: Notifier, port: str | None) -> None:
        self._notifier = notifier
        self._port = port
        self._state: ModemState | None = None
        self._trouble: tuple[str, ...] = ()

    def state_changed(self, before: ModemState, after: ModemState) -> None:
        self._state = after
        self._show()

    def trouble(self, texts: tuple[str, ...]) -> None:
        self._trouble = texts
        self._show()

    def _show(self) -> None:
        state = self._state.value if self._state is not None else "starting"
        self._notifier.status("; ".join((f"modem {state} on {self._port}", *self._trouble)))


def build_registry(config: Config) -> Registry:
    """Built-in handlers, then plug-ins, then the ``[handlers]`` tables of the config."""
    registry = default_registry()
    load_plugins(registry)
    apply_config(registry, config.handlers)
    return registry


async def run_service(config: Config) -> None:
    """Build the service from ``config`` and run it until SIGINT or SIGTERM.

    Raises JournalError when the journal is locked by another agent or unusable
    (nothing is started then); modem trouble is the agent's to recover from.
    """
    wd_period = watchdog_period()  # read before from_env(unset=True) clears WATCHDOG_*
    notifier = Notifier.from_env(unset=True)  # exec handlers do not inherit NOTIFY_SOCKET
    with exclusive(config.journal), Journal.open(config.journal) as journal:
        registry = build_registry(config)
        agent = Agent(config, journal, registry, observer=SystemdStatus(notifier, config.port))
        control = ControlServer(agent, config.control_socket)
        try:
            await control.start()
        except ControlError as exc:
            LOGGER.error("%s; running without a control socket", exc)
        loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, _stopper(agent, signum, notifier))
        LOGGER.info("smscmd %s on %s, journal %s", __version__, config.port, config.journal)
        notifier.ready(f"started on {config.port}")
        run = asyncio.create_task(agent.run())
        wd_stop = asyncio.Event()
        watchdog = asyncio.create_task(
            run_watchdog(notifier, lambda: not run.done(), wd_stop, period=wd_period)
        )
        try:
            await run
        finally:
            wd_stop.set()
            await watchdog
            for signum in STOP_SIGNALS:
                loop.remove_signal_handler(signum)
            await control.close()
            notifier.close()


@contextlib.contextmanager
def exclusive(journal: Path) -> Iterator[None]:
    """One agent per journal: an exclusive lock on ``<journal>.lock`` for the run.

    A second agent on the same journal (and so, normally, the same modem) would run
    the same commands twice; it stops here instead.
    """
    lock_path = journal.with_name(journal.name + ".lock")
    try:
        lock_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise JournalError(f"cannot create {lock_path}: {exc}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise JournalError(
                f"another smscmd agent is using {journal} (lock {lock_path} is held)"
            ) from None
        yield
    finally:
        os.close(fd)


def _stopper(agent: Agent, signum: int, notifier: Notifier) -> Callable[[], None]:
    def stop() -> None:
        name = signal.Signals(signum).name
        LOGGER.info("%s received; stopping", name)
        notifier.stopping(f"stopping: {name}")
        agent.stop()

    return stop


__all__ = ["STOP_SIGNALS", "SystemdStatus", "build_registry", "exclusive", "run_service"]
