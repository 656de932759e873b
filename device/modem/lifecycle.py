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
    any state ─port_lost→ disconnected   ·   any state ─stop→ stopped
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from transitions import Machine

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
    {"trigger": T.UNRESPONSIVE.value, "source": _ATTACHED, "dest": S.PROBING},
    {"trigger": T.RESET_DETECTED.value, "source": _ATTACHED, "dest": S.PROBING},
    {"trigger": T.PORT_LOST.value, "source": [S.DISCONNECTED, *_ATTACHED], "dest": S.DISCONNECTED},
    {"trigger": T.STOP.value, "source": [S.DISCONNECTED, *_ATTACHED], "dest": S.STOPPED},
]

#: Registration status codes of +CREG / +CEREG (3GPP TS 27.007 §7.2).


class Lifecycle:
    """The state machine alone: current state, triggers, a change listener."""

    def __init__(self, on_change: Callable[[ModemState, ModemState], None] | None = None) -> None:
        self._on_change = on_change
        self.state: ModemState = S.DISCONNECTED
        self._machine = Machine(
            model=self,
            states=STATES,
            transitions=TRANSITIONS,
            initial=S.DISCONNECTED,
            auto_transitions=False,
            after_state_change=None,
        )
        self.since = datetime.now().astimezone()

    def fire(self, trigger: Trigger) -> None:
        """Fire ``trigger``; a trigger that does not apply in this state is ignored and logged."""
        before = self.state
        if trigger.value not in self._machine.get_triggers(before):
            LOGGER.debug("trigger %s ignored in state %s", trigger.value, before.value)
            return
        getattr(self, "trigger")(trigger.value)  # noqa: B009 - method added by transitions
        after = self.state
        if after is not before:
            self.since = datetime.now().astimezone()
            LOGGER.info("modem: %s -> %s (%s)", before.value, after.value, trigger.value)
            if self._on_change is not None:
                self._on_change(before, after)


__all__ = ["STATES", "TRANSITIONS", "Lifecycle", "ModemState", "Trigger"]
