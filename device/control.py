"""The local control socket: ``smscmd send`` and ``smscmd status`` talk to a running agent.

A UNIX-domain stream socket (path from ``agent.control_socket``, mode 0660 so
that members of the service's group may use it). One request per connection:
the client writes one JSON object on one line, the agent answers one JSON
object on one line and closes. Requests:

* ``{"op": "status"}`` → ``{"ok": true, "status": {...}}`` — lifecycle state,
  module identity, registration, signal, uptime, counters, journal counts;
* ``{"op": "send", "text": "...", "to": "000"}`` → ``{"ok": true, "outbox":
  {...}}`` — the message is committed to the outbox and sent by the agent (``to``
  is optional and defaults to ``agent.reply_to``). Text that does not fit one
  GSM 7-bit SMS is refused, not cut: ``{"ok": false, "error": "..."}``.

Malformed requests get ``{"ok": false, "error": ...}``; a request line is at
most :data:`MAX_REQUEST` bytes and must arrive within :data:`REQUEST_TIMEOUT`
seconds. A stale socket file left by a killed agent (nobody listens) is
replaced, with a log line; a live one (another agent answers, or is too busy
to) is :class:`SocketInUse`, a configuration error: each agent of a fleet needs
its own ``--socket`` / ``agent.control_socket``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
from pathlib import Path
from typing import Any, Protocol

from device.config import PHONE_NUMBER_RE
from device.errors import ConfigError, SmscmdError, SmsFormatError
from device.sms import gsm7

LOGGER = logging.getLogger(__name__)

SOCKET_MODE = 0o660
MAX_REQUEST = 64 * 1024
REQUEST_TIMEOUT = 2.0
#: Clients served at once; more are answered "busy" and closed, so idle clients
#: cannot use up the agent's file descriptors.
MAX_CLIENTS = 8


class ControlError(SmscmdError):
    """The control socket cannot be served, reached or understood."""


class SocketInUse(ControlError, ConfigError):
    """Another agent serves the control socket path: two agents were given one path
    (a configuration error, exit status 2)."""


class AgentNotRunning(ControlError):
    """No agent answers on the control socket."""


class ControlTarget(Protocol):
    """What the server needs from the agent."""

    async def status_report(self) -> dict[str, Any]: ...

    async def queue_send(self, text: str, destination: str | None) -> dict[str, Any]: ...


def check_sms_text(text: str) -> None:
    """Refuse text that one GSM 7-bit SMS cannot carry exactly (SmsFormatError says why)."""
    if not text:
        raise SmsFormatError("the text is empty")
    septets = gsm7.septet_length(text)  # raises for characters outside GSM 03.38
    if septets > gsm7.SMS_SEPTETS:
        raise SmsFormatError(f"the text is {septets} septets; one SMS holds {gsm7.SMS_SEPTETS}")


class ControlServer:
    """Serves :class:`ControlTarget` on a UNIX socket."""

    def __init__(self, target: ControlTarget, path: Path) -> None:
        self.target = target
        self.path = path
        self._server: asyncio.Server | None = None
        self._clients = 0

    async def start(self) -> None:
        """Listen on :attr:`path` (creating its directory); SocketInUse when another
        agent answers there, ControlError when it is impossible otherwise."""
        try:
            self.path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
            _remove_stale(self.path)
            # Bind under a umask that already gives 0660, so the socket is never wider.
            old = os.umask(0o117)
            try:
                self._server = await asyncio.start_unix_server(
                    self._serve, path=str(self.path), limit=MAX_REQUEST
                )
            finally:
                os.umask(old)
            os.chmod(self.path, SOCKET_MODE)
        except OSError as exc:
            raise ControlError(f"cannot serve the control socket {self.path}: {exc}") from exc
        LOGGER.info("control socket %s", self.path)

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        await server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients += 1
        try:
            try:
                if self._clients > MAX_CLIENTS:
                    raise ValueError("busy: too many clients")
                line = await asyncio.wait_for(reader.readline(), REQUEST_TIMEOUT)
                answer = await self._answer(line)
            except (TimeoutError, ValueError, asyncio.LimitOverrunError) as exc:
                answer = {"ok": False, "error": f"bad request: {exc or 'timed out'}"}
            writer.write(json.dumps(answer, ensure_ascii=False).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, OSError) as exc:
            LOGGER.info("control client went away: %s", exc)
        finally:
            self._clients -= 1
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return {"ok": False, "error": f"not a JSON request: {exc}"}
        if not isinstance(request, dict):
            return {"ok": False, "error": "a request is a JSON object"}
        op = request.get("op")
        try:
            if op == "status":
                return {"ok": True, "status": await self.target.status_report()}
            if op == "send":
                text, to = request.get("text"), request.get("to")
                if not isinstance(text, str):
                    return {"ok": False, "error": "send needs a text string"}
                if to is not None and (
                    not isinstance(to, str) or not PHONE_NUMBER_RE.fullmatch(to)
                ):
                    return {"ok": False, "error": "to must be a phone number"}
                check_sms_text(text)
                return {"ok": True, "outbox": await self.target.queue_send(text, to)}
        except SmscmdError as exc:
            return {"ok": False, "error": str(exc)}
        return {"ok": False, "error": f"unknown op {op!r} (status, send)"}


def refuse_if_served(path: Path) -> None:
    """SocketInUse when another agent answers on ``path`` (a stale socket file is
    replaced); any other problem with the path is left to :meth:`ControlServer.start`.
    The service asks this before it opens anything, so a refused agent leaves no trace."""
    with contextlib.suppress(OSError):
        _remove_stale(path)


def _remove_stale(path: Path) -> None:
    """Unlink a socket file nobody listens on; SocketInUse when an agent answers there."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise OSError(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except ConnectionRefusedError:
        path.unlink()  # nobody listens: left behind by a killed agent
        LOGGER.warning("control socket %s: replaced a stale socket file (nobody listened on "
                       "it: an agent was killed?)", path)  # fmt: skip
        return
    except (TimeoutError, BlockingIOError):
        raise SocketInUse(_IN_USE.format(path=path, busy=" (too busy to answer)")) from None
    finally:
        probe.close()
    raise SocketInUse(_IN_USE.format(path=path, busy=""))


_IN_USE = ("another smscmd agent is serving the control socket {path}{busy}; give each agent "
           "its own with --socket or agent.control_socket")  # fmt: skip


async def request(path: Path, message: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """Send one request to the agent at ``path``; AgentNotRunning when nobody answers."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_unix_connection(str(path), limit=MAX_REQUEST), timeout
        )
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise AgentNotRunning(f"no agent is running (nothing answers on {path})") from exc
    except (OSError, TimeoutError) as exc:
        raise ControlError(f"cannot reach the agent on {path}: {exc}") from exc
    try:
        writer.write(json.dumps(message).encode() + b"\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
    except (OSError, TimeoutError) as exc:
        raise ControlError(f"the agent on {path} did not answer: {exc}") from exc
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    try:
        answer = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ControlError(f"the agent answered something that is not JSON: {line!r}") from exc
    if not isinstance(answer, dict):
        raise ControlError(f"unexpected answer from the agent: {answer!r}")
    return answer
