"""The console's HTTP side: the page, its files, and the event stream (aiohttp).

* ``GET /`` — the page (``static/index.html``); ``GET /console/<file>`` its
  script and style sheet, from the package (nothing is fetched elsewhere: the
  page's ``Content-Security-Policy`` allows its own origin only).
* ``GET /_hostsim/console/events`` — the live stream, ``text/event-stream``
  (server-sent events, see :mod:`hostsim.console.hub`), a comment line every
  :data:`KEEPALIVE` seconds while nothing happens.

All of them need the API's credentials (Basic ``AccountSid:AuthToken``, 401 with
a challenge otherwise, so a browser asks once for the whole origin). The page acts
through the API's own routes: ``POST /v1/SmsCommands`` to send a command,
``POST /_hostsim/sims/{Sim}/sms`` and the fault controls.

A stream ends when the hub closes (hostsim stops) or drops it (too far behind);
a client that goes away cancels its handler (the server runs with
``handler_cancellation``), which unsubscribes it at once.
"""

from __future__ import annotations

import asyncio
import logging
from importlib import resources

from aiohttp import web

from hostsim.cloud.api.middleware import HOSTSIM_PREFIX, ApiError, authorized
from hostsim.console.hub import ConsoleHub

LOGGER = logging.getLogger(__name__)

EVENTS_PATH = HOSTSIM_PREFIX + "/console/events"
STATIC_PREFIX = "/console/"
#: Seconds between keep-alive comments on an idle stream.
KEEPALIVE = 15.0
HUB_KEY = web.AppKey("console_hub", ConsoleHub)
_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


def _files() -> dict[str, tuple[bytes, str]]:
    """The page's files (name -> content, content type), read once from the package."""
    folder = resources.files("hostsim.console") / "static"
    files: dict[str, tuple[bytes, str]] = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if suffix in _TYPES:
            files[entry.name] = (entry.read_bytes(), _TYPES[suffix])
    return files


def _check(request: web.Request) -> None:
    if not authorized(request):
        raise ApiError(401, 20003, "Authenticate: the AccountSid or AuthToken is incorrect")


def add_routes(app: web.Application, hub: ConsoleHub, *, keepalive: float = KEEPALIVE) -> None:
    """Serve the console of ``hub`` on ``app`` (the API's application)."""
    files = _files()
    app[HUB_KEY] = hub

    def serve(name: str) -> web.Response:
        body, content_type = files[name]
        return web.Response(body=body, content_type=content_type, charset="utf-8",
                            headers=_HEADERS)  # fmt: skip

    async def page(request: web.Request) -> web.Response:
        _check(request)
        return serve("index.html")

    async def static(request: web.Request) -> web.Response:
        _check(request)
        name = request.match_info["name"]
        if name not in files or name == "index.html":
            raise ApiError(404, 20404, f"The requested resource {request.path} was not found")
        return serve(name)

    async def events(request: web.Request) -> web.StreamResponse:
        return await stream(request, request.app[HUB_KEY], keepalive)

    app.router.add_get("/", page)
    app.router.add_get(STATIC_PREFIX + "{name}", static)
    app.router.add_get(EVENTS_PATH, events)


async def stream(request: web.Request, hub: ConsoleHub, keepalive: float) -> web.StreamResponse:
    """``GET /_hostsim/console/events``: the hub's events until it ends the stream or the
    client goes (auth is the middleware's: the path is under ``/_hostsim``)."""
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    subscription = hub.subscribe()
    try:
        # The browser waits this long before reconnecting once a stream ends.
        await response.write(b"retry: 1000\n\n")
        while True:
            try:
                event = await asyncio.wait_for(subscription.queue.get(), keepalive)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            if event is None:
                break
            await response.write(event)
    except ConnectionError:
        LOGGER.debug("console stream: client gone")
    finally:
        hub.unsubscribe(subscription)
    return response
