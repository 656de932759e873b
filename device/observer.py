"""What the agent reports as it works: observer hooks, counters, the last error.

:class:`AgentObserver` is the listener interface (the demo prints it, the
systemd unit turns state changes into ``STATUS=``); :class:`Counters` are the
figures ``smscmd status`` shows; :class:`LastError` is the most recent error the
agent logged and recovers from (a lost port, a modem error, a failed send), shown
by ``smscmd status`` and in the unit's ``STATUS=`` for :data:`LAST_ERROR_SHOWN`.
All are shared by the agent's parts (inbox, executor, outbox, supervisor), which
is why they live apart from any of them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from device.journal import InboxRow, InboxState, OutboxRow
from device.modem import ModemState

LOGGER = logging.getLogger(__name__)


class AgentObserver:
    """Hooks for what the agent does (the demo prints them). All are no-ops here.

    A hook that raises is logged and ignored.
    """

    def state_changed(self, before: ModemState, after: ModemState) -> None:
        """The modem lifecycle moved."""

    def indication(self, storage: str, index: int) -> None:
        """A ``+CMTI`` named a stored message (before it is read; a malformed one is
        not reported, it makes the agent drain the storage instead)."""

    def received(self, row: InboxRow) -> None:
        """A message was committed to the journal (any state, refused included)."""

    def replied(self, row: InboxRow, outbox: OutboxRow | None) -> None:
        """A command finished; ``row`` as finished (its state, reply and error; its
        ``updated_at`` is still the start's), ``outbox`` its queued reply, if any."""

    def finished(
        self, row: InboxRow, state: InboxState, handler: str | None, run_time: float | None
    ) -> None:
        """A command's outcome was journaled: ``state`` is DONE or FAILED, ``handler`` the
        registered name of the handler that ran (None when none did: an unknown, empty,
        disabled or interrupted command), ``run_time`` the seconds its dispatch took (None
        for an interrupted row answered without a run). Called just before
        :meth:`replied`."""

    def sent(self, outbox: OutboxRow) -> None:
        """A queued message was accepted by the modem."""

    def send_failed(self, outbox: OutboxRow) -> None:
        """A send attempt failed; ``outbox.state`` says whether it will be retried."""

    def trouble(self, texts: tuple[str, ...]) -> None:
        """What the agent runs on with but reports changed (a setting that will not
        stick, re-initialisations in a row); ``texts`` is all of it, empty when none."""

    def error(self, note: ErrorNote) -> None:
        """An error was logged that the agent recovers from (:class:`LastError`)."""

    def journal_condition(self, text: str | None) -> None:
        """The journal cannot record (``"journal cannot record: disk full"``), for as
        long as it lasts; None when it records again."""


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


class Observers(AgentObserver):
    """Several observers as one: each hook is called on each, in order, through
    :func:`notify` (one that raises is logged and the others still hear it)."""

    def __init__(self, *observers: AgentObserver) -> None:
        self.observers = observers

    def state_changed(self, before: ModemState, after: ModemState) -> None:
        self._each("state_changed", before, after)

    def indication(self, storage: str, index: int) -> None:
        self._each("indication", storage, index)

    def received(self, row: InboxRow) -> None:
        self._each("received", row)

    def finished(
        self, row: InboxRow, state: InboxState, handler: str | None, run_time: float | None
    ) -> None:
        self._each("finished", row, state, handler, run_time)

    def replied(self, row: InboxRow, outbox: OutboxRow | None) -> None:
        self._each("replied", row, outbox)

    def sent(self, outbox: OutboxRow) -> None:
        self._each("sent", outbox)

    def send_failed(self, outbox: OutboxRow) -> None:
        self._each("send_failed", outbox)

    def trouble(self, texts: tuple[str, ...]) -> None:
        self._each("trouble", texts)

    def error(self, note: ErrorNote) -> None:
        self._each("error", note)

    def journal_condition(self, text: str | None) -> None:
        self._each("journal_condition", text)

    def _each(self, hook: str, *args: object) -> None:
        for observer in self.observers:
            notify(getattr(observer, hook), *args)


#: Seconds an error stays "the last error" (in ``smscmd status`` and the unit's STATUS=):
#: a day, so that the time of day it is shown with cannot be mistaken for another day's.
LAST_ERROR_SHOWN = 24 * 3600.0
#: Longest error text kept (whitespace collapsed to single spaces, then cut with "…"),
#: so that the modem's state always fits the STATUS= line before it.
MAX_ERROR_TEXT = 120


@dataclass(frozen=True, slots=True)
class ErrorNote:
    """One error as shown: when (aware, UTC) and what (one line, at most MAX_ERROR_TEXT)."""

    at: datetime
    text: str

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(timespec="seconds"), "text": self.text}

    def clock(self) -> str:
        """The local time of day, ``12:03:04`` (systemctl and journalctl show local time)."""
        return self.at.astimezone().strftime("%H:%M:%S")


class LastError:
    """The most recent error the agent logged and recovers from, until it is
    ``shown_for`` seconds old (measured on the monotonic clock: a wall clock set back
    neither hides nor revives it). A newer error replaces it; nothing else clears it,
    so a modem that is ready again still shows what last went wrong, and when."""

    def __init__(self, shown_for: float = LAST_ERROR_SHOWN) -> None:
        self.shown_for = shown_for
        self._note: ErrorNote | None = None
        self._since = 0.0

    def record(self, text: str) -> ErrorNote:
        """Keep ``text`` (collapsed to one line, cut to MAX_ERROR_TEXT) as the last error."""
        line = " ".join(text.split()) or "error"
        if len(line) > MAX_ERROR_TEXT:
            line = line[: MAX_ERROR_TEXT - 1] + "…"
        self._note = ErrorNote(datetime.now(UTC), line)
        self._since = time.monotonic()
        return self._note

    def current(self) -> ErrorNote | None:
        """The last error, or None when there was none or it is older than shown_for."""
        if self._note is not None and time.monotonic() - self._since >= self.shown_for:
            self._note = None
        return self._note

    def expires_in(self) -> float | None:
        """Seconds until :meth:`current` turns None (None when it already is)."""
        if self.current() is None:
            return None
        return max(0.0, self.shown_for - (time.monotonic() - self._since))


def notify(hook: Callable[..., None], *args: object) -> None:
    """Call an observer hook; its failure is logged and never stops the agent."""
    try:
        hook(*args)
    except Exception:
        LOGGER.exception("observer hook %s failed", getattr(hook, "__name__", hook))


__all__ = [
    "LAST_ERROR_SHOWN", "MAX_ERROR_TEXT", "AgentObserver", "Counters", "ErrorNote", "LastError",
    "Observers", "notify",
]  # fmt: skip
