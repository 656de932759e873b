"""What the emulated module remembers besides its :class:`~hostsim.modem.settings.Settings`.

:class:`ModuleState` holds the state that ``ATZ`` / ``AT&F`` do not reset: the
radio (:mod:`hostsim.modem.radio`), the SIM's PIN state
(:mod:`hostsim.modem.simcard`), the SMSC address (``AT+CSCA``, kept on the SIM),
the module clock (``AT+CCLK``), the PDP contexts (``AT+CGDCONT``), Quectel's
URC port (``AT+QURCCFG``) and the user profile ``AT&W`` saved (what ``ATZ``
restores; ``AT&F`` restores the factory defaults). A boot
(:meth:`ModuleState.power_on`) brings the radio up, asks for the PIN again when
the lock is on, and restores the saved profile; the clock keeps running.

:class:`RadioControl` is the part of
:class:`~hostsim.modem.interpreter.EmulatedModem` that changes the radio and
queues what must follow a command's final result (registration URCs, the
``AT+CFUN=1,1`` reboot).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING

from hostsim.modem.radio import Radio
from hostsim.modem.settings import ModemConfig, RegStat, Settings
from hostsim.modem.simcard import PinState, SimCard

#: V.250 S-registers at power-up: S0 auto-answer, S3 line end, S4 response
#: formatting, S5 backspace, S7 connection wait, S10 carrier loss delay.
DEFAULT_S_REGISTERS: dict[int, int] = {0: 0, 3: 13, 4: 10, 5: 8, 7: 60, 10: 14}
#: ``AT+QURCCFG="urcport"`` values (Quectel BG96 AT manual §2.27); this line is "usbat".
URC_PORTS = ("usbat", "usbmodem", "uart1")
#: The port the emulated line is.
THIS_PORT = "usbat"
#: The boot banner line that says the SIM is ready.
READY_LINE = "+CPIN: READY"


@dataclasses.dataclass(frozen=True, slots=True)
class Profile:
    """A stored configuration (``AT&W``): the settings and the S-registers."""

    settings: Settings
    s_registers: tuple[tuple[int, int], ...]


@dataclasses.dataclass(frozen=True, slots=True)
class PdpContext:
    """One ``AT+CGDCONT`` context definition."""

    pdp_type: str
    apn: str


class ModuleState:
    """Radio, SIM, SMSC, clock, PDP contexts, URC port and saved profile of one module."""

    def __init__(self, config: ModemConfig, *, clock: Callable[[], datetime] | None = None) -> None:
        self.radio = Radio(config)
        self.sim = SimCard(config.pin, config.puk, locked=config.pin_lock)
        #: ``AT+CSCA``: the service centre address and its type of address.
        self.sca: tuple[str, int] = (config.smsc, 145 if config.smsc.startswith("+") else 129)
        #: The host's UTC time; the module clock is this plus :attr:`clock_offset`.
        self.host_clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.clock_offset = timedelta(0)
        #: The module clock's time zone, in quarters of an hour (``AT+CCLK`` ``±zz``).
        self.tz_quarters = 0
        self.contexts: dict[int, PdpContext] = {1: PdpContext("IP", config.apn)}
        self.urc_port = THIS_PORT
        self.profile = Profile(config.defaults, tuple(DEFAULT_S_REGISTERS.items()))
        self._sync_sim()

    def power_on(self) -> None:
        """A boot: radio up, the PIN asked again with the lock on."""
        self.radio.power_on()
        self.sim.power_on()
        self._sync_sim()

    def sim_changed(self) -> None:
        """After a PIN entry: the radio registers once the SIM is unlocked."""
        self._sync_sim()

    def banner(self, lines: tuple[str, ...]) -> tuple[str, ...]:
        """The boot banner ``lines`` as this SIM lets it go: while it asks for a PIN or PUK,
        ``+CPIN: SIM PIN`` / ``SIM PUK`` replaces ``+CPIN: READY`` and what follows
        (the rest comes once the PIN is entered)."""
        if self.sim.state is PinState.READY or READY_LINE not in lines:
            return lines
        cut = lines.index(READY_LINE)
        if self.sim.state is PinState.BLOCKED:
            return lines[:cut]
        return (*lines[:cut], f"+CPIN: {self.sim.state.value}")

    def _sync_sim(self) -> None:
        self.radio.sim_unlocked = self.sim.state is PinState.READY

    def clock(self) -> datetime:
        """The module clock, in its own time zone, to the second."""
        zone = timezone(timedelta(minutes=15 * self.tz_quarters))
        now = (self.host_clock() + self.clock_offset).astimezone(zone)
        return now.replace(microsecond=0)

    def set_clock(self, when: datetime, tz_quarters: int) -> None:
        """``AT+CCLK=``: the module clock reads ``when`` (aware) now, in zone ``tz_quarters``."""
        self.clock_offset = when - self.host_clock()
        self.tz_quarters = tz_quarters


class RadioControl:
    """Registration and the actions that wait for the final result (mixed into the modem)."""

    if TYPE_CHECKING:  # provided by EmulatedModem
        module: ModuleState
        settings: Settings
        _after_result: list[Callable[[], None]]

        def _changed(self) -> None: ...
        def _urc(self, lines: list[str]) -> None: ...

    @property
    def reg_stat(self) -> RegStat:
        """The registration the network offers (the module's own is :attr:`radio`'s)."""
        return self.module.radio.network_stat

    @reg_stat.setter
    def reg_stat(self, stat: RegStat) -> None:
        self.module.radio.network_stat = stat

    @property
    def radio(self) -> Radio:
        """Functionality level, operator and attach (:mod:`hostsim.modem.radio`)."""
        return self.module.radio

    def set_registration(self, stat: RegStat) -> None:
        """The network offers ``stat``: ``+CREG``/``+CGREG``/``+CEREG`` URCs per their ``<n>``
        when what the module reports changes (not while its radio is off)."""
        self.change_radio(lambda radio: setattr(radio, "network_stat", stat))
        self.run_after_result()
        self._changed()

    def change_radio(self, change: Callable[[Radio], None]) -> None:
        """Apply ``change`` now; the registration URCs it causes go out after the
        current line's final result (at once outside a command line: call
        :meth:`run_after_result`)."""
        before = self.radio.snapshot()
        change(self.radio)
        for line in self.radio.urcs(before, self.settings):
            self.after_result(functools.partial(self._urc, [line]))

    def after_result(self, action: Callable[[], None]) -> None:
        """Run ``action`` once the current command line has its final result."""
        self._after_result.append(action)

    def run_after_result(self) -> None:
        """Run what :meth:`after_result` queued, in order."""
        actions, self._after_result = self._after_result, []
        for action in actions:
            action()

    @property
    def registered(self) -> bool:
        """Registered to a network (home or roaming): SMS can be delivered."""
        return self.radio.registered
