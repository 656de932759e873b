"""The emulated SIM's PIN state: PIN / PUK entry with retry counters (27.007 §8.3, §7.4).

:class:`SimCard` is what ``AT+CPIN``, ``AT+CLCK="SC"``, ``AT+CPWD="SC"`` and the
retry-counter commands act on. Edge cases:

* Three wrong PINs in a row (the counter resets on a right one) block the PIN:
  the SIM then asks for the PUK (``SIM PUK``). Ten wrong PUKs block the SIM for
  good (:attr:`PinState.BLOCKED`: every SIM command is ``+CME ERROR: 13``).
* A wrong password is ``+CME ERROR: 16`` (incorrect password); entering a PIN
  when none is asked for is ``+CME ERROR: 3`` (operation not allowed), as the
  Quectel and SIMCom manuals show; a PIN alone while the PUK is asked for is
  ``+CME ERROR: 12`` (SIM PUK required).
* A PIN is 4–8 digits (TS 31.101 §9.4); a new PIN outside that is
  ``+CME ERROR: 50`` (incorrect parameters), the counters untouched.
* The lock setting and the counters survive a reboot; the PIN state does not:
  with the lock on, every boot asks for the PIN again.
"""

from __future__ import annotations

import enum
import logging

from hostsim.modem.results import CommandFailed

LOGGER = logging.getLogger(__name__)

PIN_TRIES = 3
PUK_TRIES = 10


class PinState(enum.Enum):
    """``<code>`` of ``+CPIN:`` (27.007 §8.3); BLOCKED has no code (CME 13)."""

    READY = "READY"
    SIM_PIN = "SIM PIN"
    SIM_PUK = "SIM PUK"
    BLOCKED = "BLOCKED"


def _valid_pin(pin: str) -> bool:
    return 4 <= len(pin) <= 8 and pin.isascii() and pin.isdigit()


class SimCard:
    """One SIM: its PIN, PUK, lock setting, counters and current PIN state."""

    def __init__(self, pin: str, puk: str, *, locked: bool) -> None:
        self.pin = pin
        self.puk = puk
        self.lock_enabled = locked
        self.pin_tries = PIN_TRIES
        self.puk_tries = PUK_TRIES
        self.state = PinState.READY
        self.power_on()

    def power_on(self) -> None:
        """A boot: the PIN is asked for again when the lock is on (a blocked SIM stays so)."""
        if self.state is PinState.BLOCKED:
            return
        if self.pin_tries == 0:
            self.state = PinState.SIM_PUK
        else:
            self.state = PinState.SIM_PIN if self.lock_enabled else PinState.READY

    def require_ready(self) -> None:
        """CME 11 / 12 / 13 unless the PIN state is READY."""
        if self.state is PinState.SIM_PIN:
            raise CommandFailed.cme(11)
        if self.state is PinState.SIM_PUK:
            raise CommandFailed.cme(12)
        if self.state is PinState.BLOCKED:
            raise CommandFailed.cme(13)

    def enter_pin(self, pin: str) -> None:
        """``AT+CPIN=<pin>`` while ``SIM PIN`` is asked for."""
        if self.state is PinState.READY:
            raise CommandFailed.cme(3)
        if self.state is not PinState.SIM_PIN:
            self.require_ready()
        self._check_pin(pin)
        self.state = PinState.READY

    def unblock(self, puk: str, new_pin: str) -> None:
        """``AT+CPIN=<puk>,<newpin>`` while ``SIM PUK`` is asked for: a new PIN, counters reset."""
        if self.state is PinState.READY:
            raise CommandFailed.cme(3)
        if self.state is PinState.BLOCKED:
            raise CommandFailed.cme(13)
        if self.state is PinState.SIM_PIN:
            # 27.007 §8.3: a PUK is only asked for once the PIN is blocked.
            raise CommandFailed.cme(3)
        if not _valid_pin(new_pin):
            raise CommandFailed.cme(50)
        if puk != self.puk:
            self.puk_tries -= 1
            LOGGER.info("wrong PUK: %d tries left", self.puk_tries)
            if self.puk_tries == 0:
                self.state = PinState.BLOCKED
                raise CommandFailed.cme(13)
            raise CommandFailed.cme(16)
        self.pin, self.pin_tries, self.puk_tries = new_pin, PIN_TRIES, PUK_TRIES
        self.state = PinState.READY

    def set_lock(self, enable: bool, pin: str) -> None:
        """``AT+CLCK="SC",<mode>,<pin>``: turn the PIN lock on or off (the PIN counts down)."""
        self.require_ready()
        self._check_pin(pin)
        self.lock_enabled = enable

    def change_pin(self, old: str, new: str) -> None:
        """``AT+CPWD="SC",<old>,<new>`` (the lock must be on, 27.007 §7.5)."""
        self.require_ready()
        if not self.lock_enabled:
            raise CommandFailed.cme(3)
        if not _valid_pin(new):
            raise CommandFailed.cme(50)
        self._check_pin(old)
        self.pin = new

    def _check_pin(self, pin: str) -> None:
        """Count a wrong PIN down (CME 16; the third blocks it: SIM PUK) or reset the counter."""
        if pin == self.pin:
            self.pin_tries = PIN_TRIES
            return
        self.pin_tries -= 1
        LOGGER.info("wrong PIN: %d tries left", self.pin_tries)
        if self.pin_tries == 0:
            self.state = PinState.SIM_PUK
        raise CommandFailed.cme(16)
