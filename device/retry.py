"""Retry timing: the one capped exponential backoff used wherever smscmd tries again.

The loops that wait between tries take their delays from here: reopening a lost modem
port (``reconnect_initial`` … ``reconnect_max``), the bring-up waits for the SIM and the
network, and re-sending a failed SMS (``outbox.retry_initial`` … ``outbox.retry_max``).
(A step the module answers "busy" is retried at a fixed ``reconnect_initial``:
:func:`device.modem.operations.retry_while_busy`.)

* :func:`backoff` is the rule itself: after the ``attempt``-th failed try (counting from
  1) wait ``initial * 2**(attempt - 1)`` seconds, but never more than ``maximum``.
* :class:`Backoff` holds one such pair of delays, checked once when it is built, so that
  a loop can say ``policy.delay(attempt)`` and cannot mix up the arguments.

The journal does not compute delays: it stores the ``retry_in`` it is given (see
:meth:`device.journal.Journal.mark_send_failed`). Which failures are retried and how
often is the caller's decision, not this module's. :func:`wait_any` is the one wait
that ends early: on a stop, a wake-up or a closed port, whichever comes first.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

#: From this exponent on ``2.0 ** exponent`` overflows a float; the cap has long been reached.
_OVERFLOW_EXPONENT = 1024


def _check_delays(initial: float, maximum: float) -> None:
    if not (math.isfinite(initial) and math.isfinite(maximum)) or initial < 0 or maximum < 0:
        raise ValueError(f"backoff needs finite delays >= 0, not {initial!r}, {maximum!r}")


def backoff(attempt: int, initial: float, maximum: float) -> float:
    """Seconds to wait after the ``attempt``-th failed try: ``initial * 2**(attempt-1)``, capped.

    ``attempt`` counts from 1; ``initial`` and ``maximum`` are finite and >= 0
    (ValueError otherwise). A ``maximum`` below ``initial`` wins: every delay is
    ``maximum``. Any ``attempt``, however large, gives ``maximum`` rather than overflowing
    (or 0.0 when ``initial`` is 0).
    """
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, not {attempt}")
    _check_delays(initial, maximum)
    exponent = attempt - 1
    if exponent >= _OVERFLOW_EXPONENT:
        return float(maximum) if initial > 0 else 0.0
    return float(min(initial * 2.0**exponent, maximum))  # the product may be inf: capped


@dataclass(frozen=True, slots=True)
class Backoff:
    """A capped exponential backoff: ``initial`` seconds, doubling up to ``maximum``.

    Both are finite and >= 0, checked at construction (ValueError otherwise). A
    ``maximum`` below ``initial`` is allowed and caps every delay, as in :func:`backoff`.
    Immutable: a loop that resets on success simply counts its attempts from 1 again.
    """

    initial: float
    maximum: float

    def __post_init__(self) -> None:
        _check_delays(self.initial, self.maximum)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after the ``attempt``-th failed try (from 1; ValueError below)."""
        return backoff(attempt, self.initial, self.maximum)


async def wait_any(*events: asyncio.Event, timeout: float) -> bool:
    """Wait until one of ``events`` is set, at most ``timeout`` seconds; True when one is.

    An event already set returns at once; no waiter task outlives the call (they are
    cancelled and awaited, also when the caller is cancelled).
    """
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
    return bool(done)
