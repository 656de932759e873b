"""The HTTP server of the SmsCommands API: the aiohttp app, and the server with its callbacks."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web

from hostsim.cloud.api import control, resource
from hostsim.cloud.api.control import ControlledGateway
from hostsim.cloud.api.middleware import NETWORK_KEY, TOKEN_KEY, twilio_errors
from hostsim.cloud.api.resource import parse_method, valid_callback_url
from hostsim.cloud.callbacks import DEFAULT_TIMEOUT, CallbackSender, CommandNotifier
from hostsim.cloud.network import Network

if TYPE_CHECKING:
    from hostsim.console.hub import ConsoleHub

LOGGER = logging.getLogger(__name__)


def create_app(
    network: Network[ControlledGateway], auth_token: str, console: ConsoleHub | None = None
) -> web.Application:
    """The aiohttp application serving ``network``'s SmsCommands (no callbacks: see ApiServer),
    and with ``console`` the console's page and stream (:mod:`hostsim.console.routes`)."""
    app = web.Application(middlewares=[twilio_errors])
    app[NETWORK_KEY] = network
    app[TOKEN_KEY] = auth_token
    resource.add_routes(app)
    control.add_routes(app)
    if console is not None:
        from hostsim.console import routes

        routes.add_routes(app, console)
    return app


def _split_address(address: str) -> tuple[str, int]:
    host, sep, port_text = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"API address must be HOST:PORT (port 0 for any), not {address!r}")
    return host, int(port_text)


class ApiServer:
    """The HTTP API plus its callbacks, for :class:`hostsim.sim.HostSim`.

    ``commands_webhook`` (like a Fleet's ``sms_commands_url``) receives every
    ``from_sim`` command with ``commands_webhook_method``; ValueError at once
    when either is invalid. ``console`` adds the console (``/``). A request
    handler whose client goes away is cancelled (``handler_cancellation``): the
    console's streams end at once; every other handler has done its work
    when its form is read, so a gone client cuts nothing short.
    """

    def __init__(
        self,
        network: Network[ControlledGateway],
        auth_token: str,
        *,
        commands_webhook: str | None = None,
        commands_webhook_method: str = "POST",
        callback_timeout: float = DEFAULT_TIMEOUT,
        console: ConsoleHub | None = None,
    ) -> None:
        if commands_webhook is not None and not valid_callback_url(commands_webhook):
            raise ValueError(f"commands webhook must be an http(s) URL: {commands_webhook!r}")
        try:
            method = parse_method(commands_webhook_method)
        except ValueError:
            raise ValueError(
                f"commands webhook method must be GET or POST: {commands_webhook_method!r}"
            ) from None
        self._network = network
        self.app = create_app(network, auth_token, console)
        self._sender = CallbackSender(auth_token, timeout=callback_timeout)
        self._notifier = CommandNotifier(network, self._sender, commands_webhook, method)
        self._runner: web.AppRunner | None = None
        self.url: str | None = None

    async def start(self, address: str) -> str:
        """Listen on ``HOST:PORT`` (port 0: any free one); returns ``http://HOST:PORT``.

        ValueError for a malformed address, OSError (naming the address) when it
        cannot be bound. For a host name resolving to several addresses with
        port 0, the URL carries the first socket's port.
        """
        if self._runner is not None:
            raise RuntimeError("API server already started")
        host, port = _split_address(address)
        runner = web.AppRunner(self.app, shutdown_timeout=1.0, handler_cancellation=True)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            await runner.cleanup()
            raise OSError(exc.errno, f"cannot serve the API on {address}: {exc.strerror}") from exc
        self._runner = runner
        bound = runner.addresses[0][1]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{bound}"
        self._sender.start()
        self._network.listeners.append(self._notifier)
        LOGGER.info("SmsCommands API on %s", self.url)
        return self.url

    async def close(self) -> None:
        """Stop listening and drop pending callbacks; idempotent, safe before start()."""
        if self._notifier in self._network.listeners:
            self._network.listeners.remove(self._notifier)
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        await self._sender.close()
