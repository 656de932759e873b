"""Restart detection and trouble reports, for :mod:`device.modem.supervisor`.

:class:`Restarts` keeps the first reason a re-initialisation is needed until the
next bring-up: a boot banner (:meth:`Restarts.banner`), echo back on after
``ATE0`` (:meth:`Restarts.check` counts it), settings found changed (the health
check, the inbox). One boot prints several banner lines, seconds apart: Quectel
BG96/EG25-G ``RDY``, ``+CPIN: READY``, ``+QIND: PB DONE``, ``+QIND: SMS DONE``
(BG96 AT Commands Manual, "URC indication of module start"), SIMCom SIM7600
``RDY`` … ``SMS DONE``, ``PB DONE`` (SIM7500/SIM7600 series AT command manual).
The lines after a boot's first, within :data:`BOOT_WINDOW`, are that boot:
one re-initialisation, not one per line. A new ``RDY`` is a new boot.

:class:`TroubleReport` holds what the supervisor runs on with but reports (a
setting that will not stick, re-initialisations in a row), one text per
:class:`Trouble` kind, logged and told to a listener when it changes;
:class:`InARow` counts re-initialisations in a row, backs them off and reports them.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable

from device.at.channel import AtChannel
from device.at.codec import Urc
from device.errors import SmscmdError
from device.modem.profiles import Profile, is_banner, starts_boot
from device.retry import Backoff

LOGGER = logging.getLogger(__name__)

#: Seconds after a boot's first banner line in which its later lines (``SMS DONE``,
#: ``PB DONE`` …, not a new ``RDY``) are the same boot, not another restart. The
#: modules print them as the SIM and the SMS service come up, seconds after ``RDY``.
BOOT_WINDOW = 60.0

#: Re-initialisations in a row (no health check passed between them) from which on
#: they are reported as trouble (log, ``smscmd status``, the unit's STATUS=).
ESCALATE_AFTER = 3

#: Told the current trouble, all of it, whenever it changes (empty: none).
TroubleListener = Callable[[tuple[str, ...]], None]


class RestartDetected(SmscmdError):
    """The module restarted (or its settings were lost): re-initialise it."""


class Restarts:
    """Restart detection: the first reason seen, kept until the next bring-up."""

    def __init__(self, wake: asyncio.Event) -> None:
        self._wake = wake
        self.reason: str | None = None
        self.channel: AtChannel | None = None
        #: Echoes seen by the time the modem was ready; more mean echo is back on.
        self.echo_baseline = 0
        #: False for a module that keeps echo on despite ATE0 (echo is no sign then).
        self.echo_means_restart = True
        #: Loop time of the last boot's first banner line.
        self._boot_seen: float | None = None

    def needed(self, reason: str) -> None:
        """Ask for a re-initialisation (the first reason is kept) and wake the agent."""
        if self.reason is None:
            self.reason = reason
        self._wake.set()

    def check(self) -> None:
        """Raise :class:`RestartDetected` when a restart was seen (echo counted here)."""
        channel = self.channel
        if (
            channel is not None
            and self.echo_means_restart
            and channel.echo_count > self.echo_baseline
        ):
            self.needed("echo is back on")
        if self.reason is not None:
            raise RestartDetected(self.reason)

    def urc(self, profile: Profile, urc: Urc, *, starting: bool) -> None:
        """An unsolicited line: a boot banner of ``profile`` goes to :meth:`banner`,
        anything else is ignored (logged at debug level)."""
        if is_banner(profile, urc.text):
            self.banner(urc.name, urc.text, starting=starting)
        else:
            LOGGER.debug("unsolicited %r ignored", urc.text)

    def banner(self, name: str, text: str, *, starting: bool) -> None:
        """A boot banner line ``text`` (indication ``name``) was seen.

        A restart, unless it is a later line of the boot seen last (within
        :data:`BOOT_WINDOW` of that boot's first line, and not itself a boot's
        first line such as ``RDY``). While ``starting`` (disconnected or probing: a
        bring-up from the start is under way) nothing is needed, but the line
        still opens a boot's window, so that the rest of that boot's banner,
        printed during the bring-up, is not taken for another restart.
        """
        now = asyncio.get_running_loop().time()
        seen = self._boot_seen
        same_boot = seen is not None and now - seen < BOOT_WINDOW and not starts_boot(text)
        if not same_boot:
            self._boot_seen = now
        if starting:
            return
        if same_boot:
            LOGGER.info("boot banner %r: the same boot as the banner before", text)
            return
        LOGGER.warning("boot banner %r: the modem restarted", name)
        self.needed(f"boot banner {name}")


class Trouble(enum.Enum):
    """What the supervisor runs on with but reports (``smscmd status``, STATUS=)."""

    SETTINGS = "settings"  # a verified setting does not read back as it was written
    REINITIALISING = "reinitialising"  # re-initialised ESCALATE_AFTER times or more in a row


class TroubleReport:
    """The current trouble, one text per :class:`Trouble` kind."""

    def __init__(self, listener: TroubleListener | None = None) -> None:
        self._texts: dict[Trouble, str] = {}
        self._listener = listener

    @property
    def texts(self) -> tuple[str, ...]:
        """The current trouble, in the order it was first reported; empty: none."""
        return tuple(self._texts.values())

    def report(self, kind: Trouble, text: str | None) -> None:
        """Set (``text``) or clear (None) one kind; logged and told when it changes.

        A listener that raises is logged and ignored.
        """
        if self._texts.get(kind) == text:
            return
        if text is None:
            del self._texts[kind]
            LOGGER.info("resolved: %s", kind.value)
        else:
            self._texts[kind] = text
            LOGGER.error("%s", text)
        if self._listener is not None:
            try:
                self._listener(self.texts)
            except Exception:
                LOGGER.exception("trouble listener failed")


class InARow:
    """Re-initialisations (and error answers) in a row: their backoff and their report.

    The streak runs until :meth:`healthy` (a passed health check), not until the next
    bring-up: a module that is brought up and fails again at once (a poison message, a
    setting read back otherwise) is in a row all the same.
    """

    def __init__(self, backoff: Backoff, trouble: TroubleReport) -> None:
        #: The pauses between them (``reconnect_initial`` … ``reconnect_max``; a reload
        #: sets a new one).
        self.backoff = backoff
        self._trouble = trouble
        self.streak = 0

    def next(self, reason: str, *, first_at_once: bool) -> float:
        """Count one more; the seconds to wait before it (the backoff's delay for the
        streak, one step behind with ``first_at_once``: 0 for the first)."""
        self.streak += 1
        attempt = self.streak - 1 if first_at_once else self.streak
        pause = self.backoff.delay(attempt) if attempt >= 1 else 0.0
        if self.streak >= ESCALATE_AFTER:
            self._trouble.report(
                Trouble.REINITIALISING,
                f"re-initialised {self.streak} times in a row, now every "
                f"{self.backoff.delay(self.streak):.0f} s at most: {reason}",
            )
        return pause

    def healthy(self) -> None:
        """The ready modem passed a health check: the streak and its report end."""
        self.streak = 0
        self._trouble.report(Trouble.REINITIALISING, None)


__all__ = [
    "BOOT_WINDOW",
    "ESCALATE_AFTER",
    "InARow",
    "RestartDetected",
    "Restarts",
    "Trouble",
    "TroubleListener",
    "TroubleReport",
]
