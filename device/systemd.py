"""The systemd ``sd_notify`` protocol, without libsystemd.

Under ``Type=notify`` systemd passes ``NOTIFY_SOCKET`` (a filesystem path, or an abstract
socket name starting with ``@``) and expects newline-separated ``KEY=VALUE`` datagrams on
it: ``READY=1`` once the service is up, ``STATUS=...`` for ``systemctl status``,
``WATCHDOG=1`` at least every ``WatchdogSec`` (passed as ``WATCHDOG_USEC``), and
``RELOADING=1`` while the configuration is reloaded (ended by ``READY=1``), and
``STOPPING=1`` when shutting down. See sd_notify(3) and sd_watchdog_enabled(3).

Everything here is safe outside systemd: without ``NOTIFY_SOCKET`` every call is a no-op,
and a failed send is logged once (as a warning) and otherwise ignored: the agent must
never stop because its supervisor cannot be told something.

Typical use::

    notifier = Notifier.from_env()
    notifier.ready("ready: Quectel BG96")
    asyncio.create_task(run_watchdog(notifier, agent_is_healthy, stop_event))
    ...
    notifier.stopping()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping, MutableMapping

LOGGER = logging.getLogger(__name__)

NOTIFY_SOCKET = "NOTIFY_SOCKET"
WATCHDOG_USEC = "WATCHDOG_USEC"
WATCHDOG_PID = "WATCHDOG_PID"

#: Longest STATUS= text sent; systemd shows one line, and a datagram should stay small.
MAX_STATUS = 200


def _socket_address(value: str) -> str | bytes | None:
    """The ``sendto`` address for a ``NOTIFY_SOCKET`` value, or None when unusable."""
    if value.startswith("@") and len(value) > 1:
        # Abstract namespace: a leading NUL byte instead of the '@'.
        return b"\0" + value[1:].encode("utf-8", "surrogateescape")
    if value.startswith("/"):
        return value
    return None


class Notifier:
    """Sends sd_notify datagrams to ``NOTIFY_SOCKET``; a no-op when there is none.

    No method ever raises. The first failed send is logged as a warning, later ones
    at debug level (a watchdog ping every few seconds must not flood the journal).
    The socket is non-blocking: a full receive queue drops the message rather than
    stalling the event loop.
    """

    def __init__(self, address: str | None) -> None:
        """``address`` is a ``NOTIFY_SOCKET`` value (path or ``@abstract``), or None."""
        self._raw = address or None
        self._address = _socket_address(address) if address else None
        self._sock: socket.socket | None = None
        self._warned = False
        if address and self._address is None:
            LOGGER.warning(
                "ignoring %s=%r: not a path or an @abstract name", NOTIFY_SOCKET, address
            )

    @classmethod
    def from_env(
        cls, env: MutableMapping[str, str] | None = None, *, unset: bool = False
    ) -> Notifier:
        """A notifier for ``$NOTIFY_SOCKET`` in ``env`` (default: ``os.environ``).

        With ``unset=True`` the variable is removed from ``env`` so that child processes
        (exec handlers) do not inherit it, like ``sd_notify(unset_environment=1)``;
        ``WATCHDOG_USEC``/``WATCHDOG_PID`` go too, so read :func:`watchdog_period`
        *before* unsetting.
        """
        environ: MutableMapping[str, str] = os.environ if env is None else env
        notifier = cls(environ.get(NOTIFY_SOCKET))
        if unset:
            for name in (NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID):
                environ.pop(name, None)
        return notifier

    @property
    def enabled(self) -> bool:
        """True when there is a socket to notify."""
        return self._address is not None

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=VALUE`` lines as one datagram; True when it was sent."""
        if self._address is None or not assignments:
            return False
        payload = "\n".join(assignments).encode("utf-8", "replace")
        try:
            if self._sock is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                sock.setblocking(False)
                self._sock = sock
            self._sock.sendto(payload, self._address)
        except OSError as exc:
            self._failed(exc)
            return False
        return True

    def _failed(self, exc: OSError) -> None:
        if self._warned:
            LOGGER.debug("sd_notify to %s failed: %s", self._raw, exc)
            return
        self._warned = True
        LOGGER.warning(
            "cannot notify systemd on %s: %s (further failures are logged at debug level)",
            self._raw,
            exc,
        )

    def ready(self, status: str | None = None) -> bool:
        """``READY=1``: start-up is complete (``systemctl start`` returns)."""
        if status is None:
            return self.notify("READY=1")
        return self.notify("READY=1", _status_line(status))

    def status(self, text: str) -> bool:
        """``STATUS=text``: one line shown by ``systemctl status``."""
        return self.notify(_status_line(text))

    def watchdog(self) -> bool:
        """``WATCHDOG=1``: the keep-alive ping for ``WatchdogSec=``."""
        return self.notify("WATCHDOG=1")

    def reloading(self, status: str | None = None) -> bool:
        """``RELOADING=1`` with ``MONOTONIC_USEC=`` (sd_notify(3)): a reload has begun;
        the next :meth:`ready` ends it."""
        usec = f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}"
        if status is None:
            return self.notify("RELOADING=1", usec)
        return self.notify("RELOADING=1", usec, _status_line(status))

    def stopping(self, status: str | None = None) -> bool:
        """``STOPPING=1``: shutdown has begun (sent on SIGTERM)."""
        if status is None:
            return self.notify("STOPPING=1")
        return self.notify("STOPPING=1", _status_line(status))

    def close(self) -> None:
        """Close the socket (a later call opens a new one)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _status_line(text: str) -> str:
    line = " ".join(text.split())
    if len(line) > MAX_STATUS:
        line = line[: MAX_STATUS - 1] + "…"
    return f"STATUS={line}"


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """The systemd watchdog timeout in seconds, or None when no watchdog applies.

    From ``WATCHDOG_USEC`` (a positive integer); when ``WATCHDOG_PID`` is set it must be
    this process's pid, otherwise the watchdog is meant for another process. Ping at
    half this interval (:func:`watchdog_period`), as sd_watchdog_enabled(3) recommends.
    """
    environ = os.environ if env is None else env
    raw = environ.get(WATCHDOG_USEC)
    if not raw:
        return None
    try:
        usec = int(raw)
    except ValueError:
        LOGGER.warning("ignoring %s=%r: not an integer", WATCHDOG_USEC, raw)
        return None
    if usec <= 0:
        return None
    pid = environ.get(WATCHDOG_PID)
    if pid:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            LOGGER.warning("ignoring the watchdog: %s=%r is not a pid", WATCHDOG_PID, pid)
            return None
    return usec / 1_000_000


def watchdog_period(env: Mapping[str, str] | None = None) -> float | None:
    """The recommended ping period: half of :func:`watchdog_interval`, or None."""
    interval = watchdog_interval(env)
    return None if interval is None else interval / 2


async def run_watchdog(
    notifier: Notifier,
    healthy: Callable[[], bool],
    stop: asyncio.Event,
    *,
    period: float | None = None,
) -> None:
    """Ping ``WATCHDOG=1`` every ``period`` seconds while ``healthy()``, until ``stop``.

    ``period`` defaults to :func:`watchdog_period` from the environment; with no
    watchdog configured (or no notify socket) this returns at once. While ``healthy()``
    is false (or raises) no ping is sent, so a stuck agent is killed and restarted by
    systemd after ``WatchdogSec``; pings resume if it recovers before that. A blocked
    event loop stops the pings by itself.
    """
    if period is None:
        period = watchdog_period()
    if period is None or period <= 0 or not notifier.enabled:
        return
    withheld = False
    while not stop.is_set():
        try:
            ok = bool(healthy())
        except Exception:
            LOGGER.exception("health check for the watchdog failed; treating it as unhealthy")
            ok = False
        if ok:
            if withheld:
                LOGGER.info("healthy again; resuming watchdog pings")
                withheld = False
            notifier.watchdog()
        elif not withheld:
            withheld = True
            LOGGER.warning("agent unhealthy: withholding watchdog pings (systemd will restart it)")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=period)
