"""What the agent reports as it works: observer hooks and counters.

:class:`AgentObserver` is the listener interface (the demo prints it, the
systemd unit turns state changes into ``STATUS=``); :class:`Counters` are the
figures ``smscmd status`` shows. Both are shared by the agent's parts (inbox,
executor, outbox, supervisor), which is why they live apart from any of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from device.journal import InboxRow, OutboxRow
from device.modem import ModemState

LOGGER = logging.getLogger(__name__)


class AgentObserver:
    """Hooks for what the agent does (the demo prints them). All are no-ops here.

    A hook that raises is logged and ignored.
    """

    def state_changed(self, before: ModemState, after: ModemState) -> None:
        """The modem lifecycle moved."""

    def received(self, row: InboxRow) -> None:
        """A message was committed to the journal (any state, refused included)."""

    def replied(self, row: InboxRow, outbox: OutboxRow | None) -> None:
        """A command finished; ``outbox`` is its queued reply, if any."""

    def sent(self, outbox: OutboxRow) -> None:
        """A queued message was accepted by the modem."""

    def send_failed(self, outbox: OutboxRow) -> None:
        """A send attempt failed; ``outbox.state`` says whether it will be retried."""

    def trouble(self, texts: tuple[str, ...]) -> None:
        """What the agent runs on with but reports changed (a setting that will not
        stick, re-initialisations in a row); ``texts`` is all of it, empty when none."""


@dataclass
class Counters:
    """Running totals since the agent started (mutable: the parts count into one)."""

    received: int = 0
    executed: int = 0
    refused: int = 0
    undecodable: int = 0
    unreadable: int = 0
    sent: int = 0
    send_failures: int = 0
    reconnects: int = 0
    reinitialisations: int = 0


def notify(hook: Callable[..., None], *args: object) -> None:
    """Call an observer hook; its failure is logged and never stops the agent."""
    try:
        hook(*args)
    except Exception:
        LOGGER.exception("observer hook %s failed", getattr(hook, "__name__", hook))


__all__ = ["AgentObserver", "Counters", "notify"]
