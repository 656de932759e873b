"""V.250 and 27.007 command handlers: identity, SIM, signal, registration, error mode.

Each handler takes the modem and the :class:`~hostsim.modem.atparse.Invocation` and
returns the information-response lines (possibly none); it raises
:class:`~hostsim.modem.results.CommandFailed` to end the line with an error.

Error conventions: a malformed value (not a number, quoted where a number is
expected, missing, an unsupported form) is plain ``ERROR`` as V.250 says; a
well-formed number out of range for a 27.007 command is ``+CME ERROR: 50``
(incorrect parameters); a SIM query while the SIM is not ready is
``+CME ERROR: 14`` (SIM busy).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from hostsim.modem.atparse import Form, Invocation, Param
from hostsim.modem.results import CommandFailed

if TYPE_CHECKING:
    from hostsim.modem.interpreter import EmulatedModem

Handler = Callable[["EmulatedModem", Invocation], list[str]]


def int_value(param: Param | None, low: int, high: int, out_of_range: CommandFailed) -> int:
    """The unquoted decimal ``param`` in ``low..high``; plain ERROR when malformed."""
    if param is None or param.quoted or not param.text.isdigit() or len(param.text) > 6:
        raise CommandFailed.plain()
    value = int(param.text)
    if not low <= value <= high:
        raise out_of_range
    return value


def max_params(invocation: Invocation, count: int) -> None:
    """Plain ERROR when the command got more than ``count`` parameters."""
    if len(invocation.params) > count:
        raise CommandFailed.plain()


def only_forms(invocation: Invocation, *forms: Form) -> None:
    """Plain ERROR when the command is invoked in a form it does not support."""
    if invocation.form not in forms:
        raise CommandFailed.plain()


def _basic_flag(invocation: Invocation, allowed: tuple[int, ...]) -> int:
    """The digit of a basic command (``E1`` → 1; bare ``E`` → 0); ERROR when not allowed."""
    value = 0 if invocation.form is Form.EXEC else int(invocation.params[0].text)  # type: ignore[union-attr]
    if value not in allowed:
        raise CommandFailed.plain()
    return value


def _echo(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``ATE0`` / ``ATE1``: the echo of this very line has already been sent."""
    value = _basic_flag(invocation, (0, 1))
    modem.settings = dataclasses.replace(modem.settings, echo=bool(value))
    return []


def _reset(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``ATZ`` / ``AT&F``: settings back to the configured defaults."""
    _basic_flag(invocation, (0,))
    modem.reset_settings()
    return []


def _identify(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``ATI``: the persona's identification lines (:meth:`ModemConfig.identification`)."""
    _basic_flag(invocation, (0,))
    return modem.config.identification()


def _verbose(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``ATV1`` only: numeric result codes (``ATV0``) are not emulated."""
    _basic_flag(invocation, (1,))
    return []


def _quiet(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``ATQ0`` only: result codes are never suppressed."""
    _basic_flag(invocation, (0,))
    return []


def _fixed(text: Callable[[EmulatedModem], str], *, needs_sim: bool = False) -> Handler:
    """A query command that prints one line on execution and nothing on test."""

    def handler(modem: EmulatedModem, invocation: Invocation) -> list[str]:
        only_forms(invocation, Form.EXEC, Form.TEST)
        if invocation.form is Form.TEST:
            return []
        if needs_sim and not modem.sim_ready:
            raise CommandFailed.cme(14)
        return [text(modem)]

    return handler


def _cpin(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT+CPIN?`` → ``+CPIN: READY``; setting a PIN is not emulated (CME 3)."""
    if invocation.form is Form.TEST:
        return []
    if invocation.form is Form.SET:
        raise CommandFailed.cme(3)
    only_forms(invocation, Form.READ)
    if not modem.sim_ready:
        raise CommandFailed.cme(14)
    return ["+CPIN: READY"]


def _csq(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT+CSQ`` → ``+CSQ: <rssi>,99``."""
    only_forms(invocation, Form.EXEC, Form.TEST)
    if invocation.form is Form.TEST:
        return ["+CSQ: (0-31,99),(0-7,99)"]
    return [f"+CSQ: {modem.config.rssi},99"]


def _registration(field: str) -> Handler:
    """``AT+CREG`` / ``AT+CEREG``: ``<n>`` 0..2; ``<n>``=2 adds the location fields."""
    name = "+" + field.upper()

    def handler(modem: EmulatedModem, invocation: Invocation) -> list[str]:
        if invocation.form is Form.TEST:
            return [f"{name}: (0-2)"]
        if invocation.form is Form.SET:
            max_params(invocation, 1)
            value = int_value(invocation.params[0], 0, 2, CommandFailed.cme(50))
            if field == "creg":
                modem.settings = dataclasses.replace(modem.settings, creg=value)
            else:
                modem.settings = dataclasses.replace(modem.settings, cereg=value)
            return []
        only_forms(invocation, Form.READ)
        n: int = getattr(modem.settings, field)
        line = f"{name}: {n},{int(modem.reg_stat)}"
        if n == 2:
            cfg = modem.config
            line += f',"{cfg.lac}","{cfg.cell_id}"'
            if field == "cereg":
                line += ",7"
        return [line]

    return handler


def _cmee(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT+CMEE=<n>``: 0 plain ERROR, 1 numeric, 2 verbose."""
    if invocation.form is Form.TEST:
        return ["+CMEE: (0-2)"]
    if invocation.form is Form.READ:
        return [f"+CMEE: {modem.settings.cmee}"]
    only_forms(invocation, Form.SET)
    max_params(invocation, 1)
    value = int_value(invocation.params[0], 0, 2, CommandFailed.cme(50))
    modem.settings = dataclasses.replace(modem.settings, cmee=value)
    return []


def _s_register(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``ATSn?`` / ``ATSn=v`` (V.250): values 0–255 kept per register."""
    register = int_value(invocation.params[0], 0, 255, CommandFailed.plain())
    if invocation.form is Form.READ:
        return [f"{modem.s_registers.get(register, 0):03d}"]
    if len(invocation.params) < 2 or invocation.params[1] is None:
        raise CommandFailed.plain()
    modem.s_registers[register] = int_value(invocation.params[1], 0, 255, CommandFailed.plain())
    return []


def _accept(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """V.250 circuit and storage commands with no meaning on a pty (``&C``, ``&D``, ``&W``…)."""
    return []


HANDLERS: dict[str, Handler] = {
    "S": _s_register,
    "&C": _accept,
    "&D": _accept,
    "&K": _accept,
    "&W": _accept,
    "X": _accept,
    "E": _echo,
    "Z": _reset,
    "&F": _reset,
    "I": _identify,
    "V": _verbose,
    "Q": _quiet,
    "+CGMI": _fixed(lambda m: m.config.manufacturer),
    "+GMI": _fixed(lambda m: m.config.manufacturer),
    "+CGMM": _fixed(lambda m: m.config.model),
    "+GMM": _fixed(lambda m: m.config.model),
    "+CGMR": _fixed(lambda m: m.config.revision),
    "+GMR": _fixed(lambda m: m.config.revision),
    "+CGSN": _fixed(lambda m: m.config.imei),
    "+GSN": _fixed(lambda m: m.config.imei),
    "+CIMI": _fixed(lambda m: m.config.imsi, needs_sim=True),
    "+CCID": _fixed(lambda m: f"+CCID: {m.config.iccid}", needs_sim=True),
    "+CPIN": _cpin,
    "+CSQ": _csq,
    "+CREG": _registration("creg"),
    "+CEREG": _registration("cereg"),
    "+CMEE": _cmee,
}
