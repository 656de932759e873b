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
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import TracebackType

from hostsim.modem import EmulatedModem, SentSms
from hostsim.pty import PtyEndpoint
from hostsim.settings import ModemConfig

LOGGER = logging.getLogger(__name__)


class SimulatedModem:
    """One emulated modem wired to its pty."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        config: ModemConfig | None = None,
        *,
        link: str | os.PathLike[str] | None = None,
    ) -> None:
        self.modem = EmulatedModem(config, on_change=self._changed)
        self._waiters: set[asyncio.Future[None]] = set()
        self._pty = PtyEndpoint(loop, self._received, link=link)

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

    def reboot(self) -> None:
        """Restart the module silently (see :meth:`EmulatedModem.reboot`)."""
        self.modem.reboot()
        self._pump()

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
        """Close the pty (and its symlink); pending waiters time out. Idempotent."""
        self._pty.close()

    def _received(self, data: bytes) -> None:
        self.modem.feed(data)
        self._pump()

    def _pump(self) -> None:
        out = self.modem.data_to_send()
        if out:
            self._pty.write(out)

    def _changed(self) -> None:
        self._pump()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()


class HostSim:
    """``count`` emulated modems, each on its own pty (async context manager).

    ``link`` names the symlink: ``link`` itself for one modem, ``link0``,
    ``link1``… for several.
    """

    def __init__(
        self,
        count: int = 1,
        *,
        link: str | os.PathLike[str] | None = None,
        config: ModemConfig | None = None,
    ) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        self._count = count
        self._link = link
        self._config = config
        self.modems: list[SimulatedModem] = []

    def __getitem__(self, index: int) -> SimulatedModem:
        return self.modems[index]

    def _link_for(self, index: int) -> str | None:
        if self._link is None:
            return None
        base = os.fspath(self._link)
        return base if self._count == 1 else f"{base}{index}"

    async def start(self) -> None:
        """Open the ptys; on failure closes whatever was opened."""
        loop = asyncio.get_running_loop()
        try:
            for i in range(self._count):
                self.modems.append(SimulatedModem(loop, self._config, link=self._link_for(i)))
        except BaseException:
            self.close()
            raise
        LOGGER.info("hostsim started %d modem(s)", self._count)

    def close(self) -> None:
        """Close every modem; idempotent."""
        for modem in self.modems:
            modem.close()

    async def __aenter__(self) -> HostSim:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
