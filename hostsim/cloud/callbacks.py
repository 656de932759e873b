"""Outgoing webhooks (status callbacks, the fleet's SmsCommands webhook), signed like Twilio's.

:class:`CommandNotifier` listens to the network and turns each status change
worth a callback into a request carrying :data:`CALLBACK_FIELDS`, signed with
``X-Twilio-Signature``; :class:`CallbackSender` sends them.

:class:`CallbackSender` is fire-and-forget: :meth:`CallbackSender.submit` only
enqueues (it is safe to call from a :class:`hostsim.cloud.network.Network` listener,
which runs synchronously on the event loop); one task per SmsCommand does the
HTTP, at most ``per_host`` at a time for one target (scheme, host and port) and ``workers`` in all.

Edge cases:

* A full queue drops the new request with a warning; nothing is ever raised
  into the caller.
* Requests sharing a ``key`` (one SmsCommand) go out one after the other, in
  submission order, so a receiver sees ``sent`` before ``delivered``;
  requests with different keys go out concurrently.
* A target that does not answer within the timeout, refuses the connection or
  answers non-2xx is logged at WARNING; there are no retries (Twilio retries
  only on request, with ``#rc=`` URL fragments, which hostsim does not emulate).
* A slow target holds at most ``per_host`` requests in flight: callbacks to
  other targets are not delayed by it.
* A ``#fragment`` in the URL is not sent (nor signed).
* :meth:`CallbackSender.close` gives pending requests a short grace, then
  abandons them; it leaves no task behind and is idempotent.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from yarl import URL

from hostsim.cloud.api.resource import format_date
from hostsim.cloud.network import CallbackMethod, Direction, Network, SmsCommand, Status

LOGGER = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 5.0
DEFAULT_WORKERS = 64
DEFAULT_PER_HOST = 8
DEFAULT_GRACE = 2.0
DEFAULT_MAX_PENDING = 1000
SIGNATURE_HEADER = "X-Twilio-Signature"
USER_AGENT = "hostsim-callbacks/1.0"
#: Fields of every callback and webhook request, in Twilio's PascalCase convention.
CALLBACK_FIELDS = (
    "SmsCommandSid",
    "AccountSid",
    "SimSid",
    "SimUniqueName",
    "Status",
    "Direction",
    "Payload",
    "DateCreated",
    "DateUpdated",
)


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """Twilio's ``X-Twilio-Signature``: base64 HMAC-SHA1 keyed by the auth token over
    ``url`` followed by every ``name + value`` of ``params`` sorted by name.

    For a GET request pass the full URL with its query string and no ``params``.
    """
    data = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True, slots=True)
class Callback:
    """One outgoing request: ``method`` is ``GET`` (params in the query) or ``POST`` (form)."""

    key: str
    method: str
    url: str
    params: Mapping[str, str]


class CallbackSender:
    """Sends signed webhooks: one task per SmsCommand, bounded per target host and in all.

    ``workers`` caps the requests in flight in all; ``per_host`` caps them for one
    target host, so a slow or dead target can hold at most that many while
    callbacks to every other target go on. Requests waiting for their command's
    previous request, or for a slot, count as pending (at most ``max_pending``).
    """

    def __init__(
        self,
        auth_token: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        workers: int = DEFAULT_WORKERS,
        per_host: int = DEFAULT_PER_HOST,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        if timeout <= 0 or workers < 1 or per_host < 1 or max_pending < 1:
            raise ValueError("timeout must be > 0, workers, per_host and max_pending >= 1")
        self._auth_token = auth_token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._slots = asyncio.Semaphore(workers)
        self._per_host = per_host
        self._host_slots: dict[str, asyncio.Semaphore] = {}
        self._max_pending = max_pending
        #: key -> callbacks not sent yet, in order; the key's task sends them one by one.
        self._backlog: dict[str, collections.deque[Callback]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending = 0
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    @property
    def pending(self) -> int:
        """Requests accepted and not finished yet (waiting or in flight)."""
        return self._pending

    def start(self) -> None:
        """Open the session (needs a running loop); idempotent."""
        if self._session is not None or self._closed:
            return
        self._session = aiohttp.ClientSession(
            timeout=self._timeout, headers={"User-Agent": USER_AGENT}
        )

    def submit(self, callback: Callback) -> bool:
        """Enqueue ``callback``; False (and a warning) when full, closed or not started."""
        if self._session is None or self._closed:
            LOGGER.warning(
                "callback sender not running: %s %s dropped", callback.method, callback.url
            )
            return False
        if self._pending >= self._max_pending:
            LOGGER.warning(
                "callback queue full (%d): %s %s dropped",
                self._max_pending,
                callback.method,
                callback.url,
            )
            return False
        self._pending += 1
        backlog = self._backlog.get(callback.key)
        if backlog is not None:
            backlog.append(callback)  # the key's task sends it after the ones before
            return True
        self._backlog[callback.key] = collections.deque([callback])
        task = asyncio.get_running_loop().create_task(
            self._drain(callback.key), name=f"hostsim-callback-{callback.key}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def close(self, grace: float = DEFAULT_GRACE) -> None:
        """Give pending requests up to ``grace`` seconds, then abandon them; idempotent."""
        self._closed = True
        tasks = set(self._tasks)
        if tasks and grace > 0:
            await asyncio.wait(tasks, timeout=grace)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._pending:
            LOGGER.info("callback sender closed: %d request(s) abandoned", self._pending)
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def _drain(self, key: str) -> None:
        backlog = self._backlog[key]
        try:
            while backlog:
                callback = backlog[0]
                target = _origin(callback.url)
                host_slots = self._host_slots.setdefault(target, asyncio.Semaphore(self._per_host))
                async with host_slots, self._slots:
                    await self._send(callback)
                backlog.popleft()
                self._pending -= 1
        finally:
            self._pending -= len(backlog)
            del self._backlog[key]

    async def _send(self, callback: Callback) -> None:
        """One request; every failure is logged, none is raised (except cancellation)."""
        session = self._session
        if session is None:
            return
        params = dict(callback.params)
        # A #fragment (Twilio's #rc= retry options) is not part of the request.
        url = str(URL(callback.url, encoded=True).with_fragment(None))
        data: dict[str, str] | None = params
        if callback.method == "GET":
            if params:
                url += ("&" if "?" in url else "?") + urlencode(params)
            params, data = {}, None
        signature = twilio_signature(self._auth_token, url, params)
        try:
            async with session.request(
                callback.method,
                URL(url, encoded=True),
                data=data,
                headers={SIGNATURE_HEADER: signature},
            ) as response:
                await response.read()
            if 200 <= response.status < 300:
                LOGGER.debug("callback %s %s: %d", callback.method, url, response.status)
            else:
                LOGGER.warning(
                    "callback %s %s answered %d", callback.method, callback.url, response.status
                )
        except TimeoutError:
            LOGGER.warning("callback %s %s timed out", callback.method, callback.url)
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            LOGGER.warning("callback %s %s failed: %s", callback.method, callback.url, exc)
        except Exception:  # a request must survive anything a target does
            LOGGER.exception("callback %s %s failed", callback.method, callback.url)


def _origin(url: str) -> str:
    """``scheme://host:port`` of ``url``: the unit a slow target may hold slots of."""
    try:
        return str(URL(url).origin())
    except ValueError:
        return url


def callback_params(command: SmsCommand, sim_unique_name: str) -> dict[str, str]:
    """The :data:`CALLBACK_FIELDS` of ``command``, dates as in the resource."""
    return {
        "SmsCommandSid": command.sid,
        "AccountSid": command.account_sid,
        "SimSid": command.sim_sid,
        "SimUniqueName": sim_unique_name,
        "Status": command.status.value,
        "Direction": command.direction.value,
        "Payload": command.payload,
        "DateCreated": format_date(command.date_created),
        "DateUpdated": format_date(command.date_updated),
    }


class CommandNotifier:
    """A :class:`Network` listener turning status changes into queued callbacks (never blocks)."""

    def __init__(
        self,
        network: Network[Any],
        sender: CallbackSender,
        webhook: str | None = None,
        webhook_method: CallbackMethod = CallbackMethod.POST,
    ) -> None:
        self._network = network
        self._sender = sender
        self._webhook = webhook
        self._webhook_method = webhook_method

    def __call__(self, command: SmsCommand) -> None:
        if command.direction is Direction.TO_SIM:
            if command.callback_url is None or command.status is Status.QUEUED:
                return
            url, method = command.callback_url, command.callback_method
        else:
            if self._webhook is None or command.status is not Status.RECEIVED:
                return
            url, method = self._webhook, self._webhook_method
        sim = self._network.find_sim(command.sim_sid)
        params = callback_params(command, sim.unique_name if sim is not None else "")
        self._sender.submit(Callback(command.sid, method.value, url, params))
