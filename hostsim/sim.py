"""The asyncio face of hostsim: emulated modems on pseudo-terminals, for tests and the CLI.

::

    async with HostSim(link=tmp / "modem") as sim:
        modem = sim.modems[0]
        ...  # the agent opens modem.link
        modem.deliver("000", "checkin: now")
        await modem.wait_until(lambda m: len(m.sent) == 1, timeout=5)

Everything runs on the loop thread; :meth:`SimulatedModem.deliver` must be
called from it too. Waiting never polls: predicates are re-evaluated after
every change the modem reports through ``on_change``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from hostsim.faults import MAX_GARBAGE, ChunkedWriter, FaultPlan, garbage
from hostsim.modem import EmulatedModem, SentSms
from hostsim.network import (
    DEFAULT_RETRY_INITIAL,
    DEFAULT_RETRY_WINDOW,
    Network,
    SidFactory,
    Sim,
)
from hostsim.pty import PtyEndpoint
from hostsim.settings import ModemConfig

if TYPE_CHECKING:
    from hostsim.api import ApiServer

LOGGER = logging.getLogger(__name__)


class SimulatedModem:
    """One emulated modem wired to its pty."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        config: ModemConfig | None = None,
        *,
        link: str | os.PathLike[str] | None = None,
        faults: FaultPlan | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.modem = EmulatedModem(config, on_change=self._changed, faults=faults, rng=rng)
        self._waiters: set[asyncio.Future[None]] = set()
        self._listeners: list[Callable[[], None]] = []
        self._loop = loop
        self._link_path = link
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._writer = ChunkedWriter(loop, self._write, lambda: self.modem.faults)
        self._pty = PtyEndpoint(loop, self._received, link=link)

    def add_change_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every change of the modem (exceptions logged)."""
        self._listeners.append(listener)

    def unplug(self) -> None:
        """USB unplug: the pty (and its symlink) disappears; the TE's port fails.

        The network holds SMS for this Sim until :meth:`replug`.
        """
        self._cancel("replug")
        if self._pty.closed:
            return
        LOGGER.info("modem on %s unplugged", self._pty.path)
        self._writer.clear()
        self._pty.close()
        self._changed()

    def replug(self) -> None:
        """USB replug: a new pty (often another /dev/pts/N) behind the same symlink,
        and the module boots again (settings at defaults, boot banner). Stored
        messages survive, as on a SIM."""
        self._cancel("replug")
        if not self._pty.closed:
            return
        self._pty = PtyEndpoint(self._loop, self._received, link=self._link_path)
        LOGGER.info("modem replugged on %s", self._pty.path)
        self.modem.reboot()

    @property
    def attached(self) -> bool:
        """The modem is on its port (False once closed or unplugged)."""
        return not self._pty.closed

    @property
    def path(self) -> str:
        """The pty slave path, e.g. ``/dev/pts/3``."""
        return self._pty.path

    @property
    def link(self) -> Path | None:
        """The stable symlink to :attr:`path`, when one was asked for."""
        return self._pty.link

    @property
    def sent(self) -> list[SentSms]:
        """Messages the TE sent with ``AT+CMGS``, oldest first."""
        return self.modem.sent

    def deliver(self, sender: str, text: str, timestamp: datetime | None = None) -> int | None:
        """A message from the network (see :meth:`EmulatedModem.deliver_sms`); URC flushed."""
        index = self.modem.deliver_sms(sender, text, timestamp=timestamp)
        self._pump()
        return index

    def deliver_concatenated(
        self,
        sender: str,
        text: str,
        *,
        order: Sequence[int] | None = None,
        reference: int | None = None,
        timestamp: datetime | None = None,
    ) -> list[int | None]:
        """A long message as concatenated parts, in ``order`` (see
        :meth:`EmulatedModem.deliver_concatenated`); URCs flushed."""
        indexes = self.modem.deliver_concatenated(
            sender, text, order=order, reference=reference, timestamp=timestamp
        )
        self._pump()
        return indexes

    def reboot(self) -> None:
        """Restart the module silently (see :meth:`EmulatedModem.reboot`)."""
        self.modem.reboot()
        self._pump()

    # ------------------------------------------------------------------ faults

    @property
    def faults(self) -> FaultPlan:
        """The persistent faults in force (:class:`hostsim.faults.FaultPlan`)."""
        return self.modem.faults

    def set_faults(self, plan: FaultPlan | None = None, **changes: object) -> FaultPlan:
        """Replace the fault plan (``plan``, else the current one) with ``changes``
        applied; returns the new plan. ValueError for unknown names or bad values."""
        base = plan if plan is not None else self.modem.faults
        self.modem.faults = base.replace(**changes)
        LOGGER.info("faults of %s: %s", self._pty.path, self.modem.faults)
        return self.modem.faults

    def unplug_for(self, seconds: float | None) -> None:
        """Unplug now; with ``seconds``, replug (a new pty behind the same link) that
        much later, else only on :meth:`replug`."""
        if seconds is not None and seconds < 0:
            raise ValueError("seconds must not be negative")
        self.unplug()
        if seconds is not None:
            self._later("replug", seconds, self.replug)

    def reset(self, not_ready_seconds: float = 0.0) -> None:
        """A reboot (possibly mid-command): settings back to defaults, the boot banner,
        then for ``not_ready_seconds`` the SIM and SMS are not ready (CME 14 / CMS 314)
        and the rest of the banner comes once they are."""
        if not_ready_seconds < 0:
            raise ValueError("not_ready_seconds must not be negative")
        self._cancel("ready")
        not_ready = not_ready_seconds > 0
        if not not_ready:
            self.modem.sim_ready = True  # a plain reboot finds the SIM (full banner)
        self.modem.reboot(not_ready=not_ready)
        if not_ready:
            self._later("ready", not_ready_seconds, self.modem.become_ready)
        self._pump()

    @property
    def output_pending(self) -> int:
        """Output bytes still queued by the chunking fault (not yet on the pty)."""
        return self._writer.pending

    def garbage(self, count: int) -> bytes:
        """Put ``count`` seeded random bytes (line noise) on the line; returns them."""
        if not 0 <= count <= MAX_GARBAGE:
            raise ValueError(f"count must be between 0 and {MAX_GARBAGE}")
        data = garbage(self.modem.rng, count)
        self.inject(data)
        return data

    def hang(self, seconds: float | None = None) -> None:
        """Stop answering (input swallowed); resume after ``seconds`` (never when None,
        until :meth:`resume`)."""
        if seconds is not None and seconds < 0:
            raise ValueError("seconds must not be negative")
        self._cancel("resume")
        self.modem.hung = True
        LOGGER.info("modem on %s hung", self._pty.path)
        if seconds is not None:
            self._later("resume", seconds, self.resume)
        self._changed()

    def resume(self) -> None:
        """Answer again after :meth:`hang`."""
        self._cancel("resume")
        if self.modem.hung:
            self.modem.hung = False
            LOGGER.info("modem on %s answers again", self._pty.path)
            self._changed()

    def _later(self, name: str, seconds: float, action: Callable[[], None]) -> None:
        self._cancel(name)

        def fire() -> None:
            self._timers.pop(name, None)
            action()

        self._timers[name] = self._loop.call_later(seconds, fire)

    def _cancel(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()

    def inject(self, data: bytes) -> None:
        """Write raw bytes to the TE as if the module had sent them."""
        self.modem.inject(data)
        self._pump()

    async def wait_until(self, predicate: Callable[[EmulatedModem], bool], timeout: float) -> None:
        """Return once ``predicate(modem)`` holds; TimeoutError after ``timeout`` seconds.

        Checked at once, then after every change (command line, send, delivery).
        """
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            while not predicate(self.modem):
                waiter: asyncio.Future[None] = loop.create_future()
                self._waiters.add(waiter)
                try:
                    await waiter
                finally:
                    self._waiters.discard(waiter)

    def close(self) -> None:
        """Close the pty (and its symlink) and cancel pending faults; pending waiters
        time out. Idempotent."""
        for name in list(self._timers):
            self._cancel(name)
        self._writer.clear()
        self._pty.close()

    def _received(self, data: bytes) -> None:
        self.modem.feed(data)
        self._pump()

    def _pump(self) -> None:
        out = self.modem.data_to_send()
        if out:
            self._writer.write(out)

    def _write(self, data: bytes) -> None:
        self._pty.write(data)

    def _changed(self) -> None:
        self._pump()
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:
                LOGGER.exception("change listener %r failed", listener)
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()


class HostSim:
    """A simulated fleet: ``count`` gateways, each an emulated modem on its own pty
    holding one Super SIM (``sim0``, ``sim1`` …), the emulated network between
    them and, when ``api`` is given, the SmsCommands HTTP API (async context
    manager).

    ``link`` names the symlinks: ``link`` itself for one modem, ``link0``,
    ``link1``… for several. ``seed`` makes every sid (account, Sims, commands)
    and the auth token reproducible. ``api`` is ``"HOST:PORT"`` (port 0 picks a
    free one); :attr:`api_url` is set once started.
    """

    def __init__(
        self,
        count: int = 1,
        *,
        link: str | os.PathLike[str] | None = None,
        config: ModemConfig | None = None,
        seed: int | None = None,
        account_sid: str | None = None,
        auth_token: str | None = None,
        api: str | None = None,
        retry_window: float = DEFAULT_RETRY_WINDOW,
        retry_initial: float = DEFAULT_RETRY_INITIAL,
        commands_webhook: str | None = None,
        commands_webhook_method: str = "POST",
        faults: FaultPlan | None = None,
    ) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        self._count = count
        self._link = link
        self._config = config
        self._seed = seed
        self._faults = faults
        self.sids = SidFactory(seed)
        self.account_sid = account_sid or self.sids.sid("AC")
        self.auth_token = auth_token or self.sids.hex32()
        self._api = api
        self._commands_webhook = commands_webhook
        self._commands_webhook_method = commands_webhook_method
        self.network = Network(
            self.account_sid,
            self.sids,
            retry_window=retry_window,
            retry_initial=retry_initial,
        )
        self.modems: list[SimulatedModem] = []
        self.api_url: str | None = None
        self._server: ApiServer | None = None

    @property
    def sims(self) -> list[Sim]:
        """The Sims, in the order of :attr:`modems`."""
        return self.network.sims

    def __getitem__(self, index: int) -> SimulatedModem:
        return self.modems[index]

    def rng_for(self, index: int) -> random.Random:
        """The fault rng of modem ``index``: reproducible with a seed, distinct per modem."""
        if self._seed is None:
            return random.Random()
        return random.Random(f"hostsim-faults:{self._seed}:{index}")

    def _link_for(self, index: int) -> str | None:
        if self._link is None:
            return None
        base = os.fspath(self._link)
        return base if self._count == 1 else f"{base}{index}"

    async def start(self) -> None:
        """Open the ptys and start the API; on failure closes whatever was opened."""
        loop = asyncio.get_running_loop()
        try:
            for i in range(self._count):
                gateway = SimulatedModem(
                    loop,
                    self._config,
                    link=self._link_for(i),
                    faults=self._faults,
                    rng=self.rng_for(i),
                )
                self.modems.append(gateway)
                self.network.add_sim(gateway, f"sim{i}")
            if self._api is not None:
                from hostsim.api import ApiServer

                self._server = ApiServer(
                    self.network,
                    self.auth_token,
                    commands_webhook=self._commands_webhook,
                    commands_webhook_method=self._commands_webhook_method,
                )
                self.api_url = await self._server.start(self._api)
        except BaseException:
            await self.close()
            raise
        LOGGER.info("hostsim started %d modem(s)%s", self._count,
                    f", API on {self.api_url}" if self.api_url else "")  # fmt: skip

    async def close(self) -> None:
        """Shut down; idempotent. Undelivered commands become ``failed`` first, so their
        callbacks still go out (within a short grace), then the API, then the modems."""
        self.network.close()
        if self._server is not None:
            server, self._server = self._server, None
            await server.close()
        for modem in self.modems:
            modem.close()

    def ready_info(self) -> dict[str, object]:
        """What ``hostsim run`` prints first: API, credentials, Sims and their ptys."""
        return {
            "event": "ready",
            "api": self.api_url,
            "account_sid": self.account_sid,
            "auth_token": self.auth_token,
            "sims": [
                {
                    "sid": sim.sid,
                    "unique_name": sim.unique_name,
                    "pty": sim.gateway.path,
                    "link": str(sim.gateway.link) if sim.gateway.link is not None else None,
                }
                for sim in self.sims
            ],
        }

    async def __aenter__(self) -> HostSim:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
