"""The simulated fleet: gateway modems on ptys, the network between them, the API.

::

    async with HostSim(link=tmp / "modem") as sim:
        modem = sim.modems[0]
        ...  # the agent opens modem.link
        modem.deliver("000", "checkin: now")
        await modem.wait_until(lambda m: len(m.sent) == 1, timeout=5)

Each modem is a :class:`hostsim.pty.SimulatedModem`; everything runs on the
loop thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from types import TracebackType
from typing import TYPE_CHECKING

from hostsim.cloud.network import (
    DEFAULT_RETRY_INITIAL,
    DEFAULT_RETRY_WINDOW,
    Network,
    SidFactory,
    Sim,
)
from hostsim.modem.faults import FaultPlan
from hostsim.modem.settings import ModemConfig
from hostsim.pty import PtyEndpoint, SimulatedModem
from hostsim.wire import ByteLog

if TYPE_CHECKING:
    from hostsim.cloud.api.control import ControlledGateway
    from hostsim.cloud.api.server import ApiServer
    from hostsim.console.hub import ConsoleHub
    from hostsim.link import EndpointFactory

LOGGER = logging.getLogger(__name__)


class HostSim:
    """A simulated fleet: ``count`` gateways, each an emulated modem on its own pty
    holding one Super SIM (``sim0``, ``sim1`` …), the emulated network between
    them and, when ``api`` is given, the SmsCommands HTTP API (async context
    manager).

    ``link`` names the symlinks: ``link`` itself for one modem, ``link0``,
    ``link1``… for several. ``seed`` makes every sid (account, Sims, commands)
    and the auth token reproducible. ``api`` is ``"HOST:PORT"`` (port 0 picks a
    free one); :attr:`api_url` is set once started. ``endpoint`` makes each modem's
    line (default a pty; :class:`hostsim.link.LoopbackPorts` for an in-memory one).
    ``baud`` paces every modem's line and ``byte_log`` records it (:mod:`hostsim.wire`).
    ``console`` (with ``api``) serves the live console at ``/`` of the API
    (:mod:`hostsim.console`); :attr:`console_url` is set once started.
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
        endpoint: EndpointFactory = PtyEndpoint,
        baud: int | None = None,
        byte_log: ByteLog | None = None,
        console: bool = False,
    ) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        if console and api is None:
            raise ValueError("the console is served by the API: give api too")
        self._console = console
        self._count = count
        self._link = link
        self._config = config
        self._seed = seed
        self._faults = faults
        self._endpoint = endpoint
        self._baud = baud
        self._byte_log = byte_log
        self.sids = SidFactory(seed)
        self.account_sid = account_sid or self.sids.sid("AC")
        self.auth_token = auth_token or self.sids.hex32()
        self._api = api
        self._commands_webhook = commands_webhook
        self._commands_webhook_method = commands_webhook_method
        self.network: Network[ControlledGateway] = Network(
            self.account_sid,
            self.sids,
            retry_window=retry_window,
            retry_initial=retry_initial,
        )
        self.modems: list[SimulatedModem] = []
        self.api_url: str | None = None
        self.console_url: str | None = None
        self.hub: ConsoleHub | None = None
        self._server: ApiServer | None = None

    @property
    def sims(self) -> list[Sim[ControlledGateway]]:
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
                    endpoint=self._endpoint,
                    baud=self._baud,
                    byte_log=self._byte_log,
                )
                self.modems.append(gateway)
                self.network.add_sim(gateway, f"sim{i}")
            if self._api is not None:
                from hostsim.cloud.api.server import ApiServer

                if self._console:
                    from hostsim.console.hub import ConsoleHub

                    self.hub = ConsoleHub(self.network, self.modems)
                self._server = ApiServer(
                    self.network,
                    self.auth_token,
                    commands_webhook=self._commands_webhook,
                    commands_webhook_method=self._commands_webhook_method,
                    console=self.hub,
                )
                self.api_url = await self._server.start(self._api)
                if self.hub is not None:
                    self.console_url = self.api_url + "/"
        except BaseException:
            await self.close()
            raise
        LOGGER.info("hostsim started %d modem(s)%s", self._count,
                    f", API on {self.api_url}" if self.api_url else "")  # fmt: skip

    async def close(self) -> None:
        """Shut down; idempotent. Undelivered commands become ``failed`` first, so their
        callbacks still go out (within a short grace), then the console's streams end,
        then the API, then the modems."""
        self.network.close()
        if self.hub is not None:
            self.hub.close()
        if self._server is not None:
            server, self._server = self._server, None
            await server.close()
        for modem in self.modems:
            modem.close()

    def ready_info(self) -> dict[str, object]:
        """What ``hostsim run`` prints first: API, console (None without), credentials,
        Sims and their ptys."""
        return {
            "event": "ready",
            "api": self.api_url,
            "console": self.console_url,
            "account_sid": self.account_sid,
            "auth_token": self.auth_token,
            "sims": [
                {
                    "sid": sim.sid,
                    "unique_name": sim.unique_name,
                    "pty": modem.path,
                    "link": str(modem.link) if modem.link is not None else None,
                }
                for sim, modem in zip(self.sims, self.modems, strict=True)
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
