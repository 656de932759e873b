"""``AT+CNMA`` bookkeeping of the emulated modem (``AT+CSMS=1``, 27.005 §3.4.4).

Under service 1 a ``+CMT`` or ``+CDS`` shown to the TE waits for the TE's
acknowledgement; until it is settled no other one is shown. :class:`Acknowledgements`
keeps the one that waits, the ones that were never acknowledged (a negative
``AT+CNMA``, a timeout, a reboot) and the listeners told of each settled
``+CMT`` (the network redelivers what was not acknowledged). Status reports are
settled silently: the emulated network does not repeat them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from hostsim.modem.storage import StoredMessage

LOGGER = logging.getLogger(__name__)


class Acknowledgements:
    """The direct delivery that waits for ``AT+CNMA``, and the unacknowledged ones."""

    def __init__(self) -> None:
        self.awaiting: StoredMessage | None = None
        #: Direct deliveries the TE did not acknowledge, oldest first.
        self.unacknowledged: list[StoredMessage] = []
        self._listeners: list[Callable[[bool], None]] = []

    def add_listener(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener(acknowledged)`` for every settled ``+CMT`` (exceptions logged)."""
        self._listeners.append(listener)

    def expect(self, message: StoredMessage) -> None:
        """``message`` was shown and now waits (replacing none: the caller checks)."""
        self.awaiting = message

    def settle(self, positive: bool) -> StoredMessage | None:
        """End the wait, acknowledged or not; the message, None when none waited."""
        message = self.awaiting
        if message is None:
            return None
        self.awaiting = None
        if not positive:
            self.unacknowledged.append(message)
        if message.report is None:
            for listener in list(self._listeners):
                try:
                    listener(positive)
                except Exception:
                    LOGGER.exception("acknowledgement listener failed")
        return message
