"""The modem's lifecycle as a state machine declared as data.

:data:`TRANSITIONS` is a ``transitions`` table over :class:`ModemState`, fired
by :class:`Trigger` members (never bare strings). Callbacks only keep books;
the I/O is done by the supervisor's bring-up steps, which fire a trigger once
a step succeeded::

    disconnected ─connected→ probing ─answered→ configuring ─configured→
    waiting_for_sim ─sim_ready→ setting_up_sms ─sms_ready→ waiting_for_network
    ─registered→ ready

    any state after probing ─unresponsive→ probing  (commands time out)
    ready ─deregistered→ waiting_for_network
    ready ─journal_failed→ suspended ─resumed→ ready  (the modem is not re-probed)
    any attached state ─port_lost→ disconnected   ·   any state but stopped ─stop→ stopped

The table decides: a trigger that has no transition from the current state is
an :class:`InvalidTrigger` error, unless the pair is declared in
:data:`IGNORABLE` (a no-op, logged at DEBUG). ``stop`` once stopped, or any
trigger at all once stopped, is such an error.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from transitions import Machine

from device.errors import SmscmdError

LOGGER = logging.getLogger(__name__)


class ModemState(enum.Enum):
    """Where the modem is in its lifecycle."""

    DISCONNECTED = "disconnected"
    PROBING = "probing"
    CONFIGURING = "configuring"
    WAITING_FOR_SIM = "waiting_for_sim"
    SETTING_UP_SMS = "setting_up_sms"
    WAITING_FOR_NETWORK = "waiting_for_network"
    READY = "ready"
    SUSPENDED = "suspended"  # the modem is fine, the journal is not: nothing is taken off it
    STOPPED = "stopped"


class Trigger(enum.Enum):
    """What moves the lifecycle; the value is the ``transitions`` trigger name."""

    CONNECTED = "connected"
    ANSWERED = "answered"
    CONFIGURED = "configured"
    SIM_READY = "sim_ready"
    SMS_READY = "sms_ready"
    REGISTERED = "registered"
    DEREGISTERED = "deregistered"
    UNRESPONSIVE = "unresponsive"
    RESET_DETECTED = "reset_detected"
    PORT_LOST = "port_lost"
    JOURNAL_FAILED = "journal_failed"
    RESUMED = "resumed"
    STOP = "stop"


S = ModemState
T = Trigger
_ATTACHED = [
    S.PROBING,
    S.CONFIGURING,
    S.WAITING_FOR_SIM,
    S.SETTING_UP_SMS,
    S.WAITING_FOR_NETWORK,
    S.READY,
    S.SUSPENDED,
]

STATES: list[ModemState] = list(ModemState)

TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": T.CONNECTED.value, "source": S.DISCONNECTED, "dest": S.PROBING},
    {"trigger": T.ANSWERED.value, "source": S.PROBING, "dest": S.CONFIGURING},
    {"trigger": T.CONFIGURED.value, "source": S.CONFIGURING, "dest": S.WAITING_FOR_SIM},
    {"trigger": T.SIM_READY.value, "source": S.WAITING_FOR_SIM, "dest": S.SETTING_UP_SMS},
    {"trigger": T.SMS_READY.value, "source": S.SETTING_UP_SMS, "dest": S.WAITING_FOR_NETWORK},
    {"trigger": T.REGISTERED.value, "source": S.WAITING_FOR_NETWORK, "dest": S.READY},
    {"trigger": T.DEREGISTERED.value, "source": S.READY, "dest": S.WAITING_FOR_NETWORK},
    {"trigger": T.JOURNAL_FAILED.value, "source": S.READY, "dest": S.SUSPENDED},
    {"trigger": T.RESUMED.value, "source": S.SUSPENDED, "dest": S.READY},
    {"trigger": T.UNRESPONSIVE.value, "source": _ATTACHED, "dest": S.PROBING},
    {"trigger": T.RESET_DETECTED.value, "source": _ATTACHED, "dest": S.PROBING},
    {"trigger": T.PORT_LOST.value, "source": _ATTACHED, "dest": S.DISCONNECTED},
    {"trigger": T.STOP.value, "source": [S.DISCONNECTED, *_ATTACHED], "dest": S.STOPPED},
]

#: (state, trigger) pairs with no transition that are nevertheless fine to fire:
#: nothing happens. Every other pair without a transition is an InvalidTrigger.
IGNORABLE: dict[tuple[ModemState, Trigger], str] = {
    (S.DISCONNECTED, T.PORT_LOST): "the port is already closed",
}


class InvalidTrigger(SmscmdError):
    """A trigger fired in a state where the table has neither a transition nor an
    :data:`IGNORABLE` entry for it: a bug in the driver, never a modem condition."""

    def __init__(self, state: ModemState, trigger: Trigger) -> None:
        self.state = state
        self.trigger = trigger
        super().__init__(f"trigger {trigger.value} is not valid in state {state.value}")


class Lifecycle:
    """The state machine alone: current state, triggers, a change listener."""

    def __init__(
        self,
        on_change: Callable[[ModemState, ModemState], None] | None = None,
        *,
        initial: ModemState = S.DISCONNECTED,
    ) -> None:
        """``initial`` is where the machine starts (``disconnected``; tests start elsewhere)."""
        self._on_change = on_change
        self.state: ModemState = initial
        self._machine = Machine(
            model=self,
            states=STATES,
            transitions=TRANSITIONS,
            initial=initial,
            auto_transitions=False,
            after_state_change=None,
        )
        self.since = datetime.now().astimezone()

    def can(self, trigger: Trigger) -> bool:
        """Whether the table has a transition for ``trigger`` from the current state."""
        return trigger.value in self._machine.get_triggers(self.state)

    def fire(self, trigger: Trigger) -> None:
        """Fire ``trigger``: the transition the table has for it from this state.

        Raises :class:`InvalidTrigger` when there is none, unless the pair is
        declared in :data:`IGNORABLE` (then nothing changes, logged at DEBUG).
        """
        before = self.state
        if trigger.value not in self._machine.get_triggers(before):
            if (before, trigger) not in IGNORABLE:
                raise InvalidTrigger(before, trigger)
            LOGGER.debug("trigger %s ignored in state %s: %s", trigger.value, before.value,
                         IGNORABLE[before, trigger])  # fmt: skip
            return
        getattr(self, "trigger")(trigger.value)  # noqa: B009 - method added by transitions
        after = self.state
        if after is not before:
            self.since = datetime.now().astimezone()
            LOGGER.info("modem: %s -> %s (%s)", before.value, after.value, trigger.value)
            if self._on_change is not None:
                self._on_change(before, after)


__all__ = [
    "IGNORABLE",
    "STATES",
    "TRANSITIONS",
    "InvalidTrigger",
    "Lifecycle",
    "ModemState",
    "Trigger",
]
