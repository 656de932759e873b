"""Outgoing webhooks (status callbacks, the fleet's SmsCommands webhook), signed like Twilio's.

:class:`CallbackSender` is fire-and-forget: :meth:`CallbackSender.submit` only
enqueues (it is safe to call from a :class:`hostsim.network.Network` listener,
which runs synchronously on the event loop) and a few worker tasks do the HTTP.

Edge cases:

* A full queue drops the new request with a warning; nothing is ever raised
  into the caller.
* Requests sharing a ``key`` (one SmsCommand) go out one after the other, in
  submission order, so a receiver sees ``sent`` before ``delivered``;
  requests with different keys go out concurrently.
* A target that does not answer within the timeout, refuses the connection or
  answers non-2xx is logged at WARNING; there are no retries (Twilio retries
  only on request, with ``#rc=`` URL fragments, which hostsim does not emulate).
* :meth:`CallbackSender.close` cancels the workers, so requests still queued or
  in flight are abandoned; it leaves no task behind and is idempotent.
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
from urllib.parse import urlencode

import aiohttp
from yarl import URL

LOGGER = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 5.0
DEFAULT_WORKERS = 4
DEFAULT_MAX_PENDING = 1000
SIGNATURE_HEADER = "X-Twilio-Signature"
USER_AGENT = "hostsim-callbacks/1.0"


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
    """Sends signed webhooks from a bounded queue with a few workers and one session."""

    def __init__(
        self,
        auth_token: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        workers: int = DEFAULT_WORKERS,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        if timeout <= 0 or workers < 1 or max_pending < 1:
            raise ValueError("timeout must be > 0, workers and max_pending >= 1")
        self._auth_token = auth_token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._worker_count = workers
        self._max_pending = max_pending
        self._queue: asyncio.Queue[Callback] = asyncio.Queue()
        #: key -> callbacks waiting behind the one a worker is sending for that key.
        self._backlog: dict[str, collections.deque[Callback]] = {}
        self._pending = 0
        self._session: aiohttp.ClientSession | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._closed = False

    @property
    def pending(self) -> int:
        """Requests accepted and not finished yet (queued, waiting behind their key, in flight)."""
        return self._pending

    def start(self) -> None:
        """Open the session and start the workers (needs a running loop); idempotent."""
        if self._session is not None or self._closed:
            return
        self._session = aiohttp.ClientSession(
            timeout=self._timeout, headers={"User-Agent": USER_AGENT}
        )
        self._workers = [
            asyncio.create_task(self._work(), name=f"hostsim-callbacks-{i}")
            for i in range(self._worker_count)
        ]

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
        self._queue.put_nowait(callback)
        return True

    async def close(self) -> None:
        """Cancel the workers (abandoning pending requests) and close the session; idempotent."""
        self._closed = True
        workers, self._workers = self._workers, []
        for task in workers:
            task.cancel()
        if workers:
            await asyncio.gather(*workers, return_exceptions=True)
        if self._pending:
            LOGGER.info("callback sender closed: %d request(s) abandoned", self._pending)
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def _work(self) -> None:
        while True:
            callback = await self._queue.get()
            backlog = self._backlog.get(callback.key)
            if backlog is not None:
                backlog.append(callback)  # the worker holding this key sends it next
                continue
            backlog = self._backlog[callback.key] = collections.deque([callback])
            try:
                while backlog:
                    await self._send(backlog[0])
                    backlog.popleft()
                    self._pending -= 1
            finally:
                del self._backlog[callback.key]

    async def _send(self, callback: Callback) -> None:
        """One request; every failure is logged, none is raised (except cancellation)."""
        session = self._session
        if session is None:
            return
        params = dict(callback.params)
        url = callback.url
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
        except Exception:  # a worker must survive anything a target does
            LOGGER.exception("callback %s %s failed", callback.method, callback.url)
