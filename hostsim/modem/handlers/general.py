"""V.250 and 27.007 general commands: result-code format, profiles, identity, error mode.

The radio (``AT+CFUN``, ``AT+COPS``, registration, signal, PDP contexts) is in
:mod:`~hostsim.modem.handlers.network`, the SIM (PIN, ICCID, MSISDN, SMSC) in
:mod:`~hostsim.modem.handlers.sim`. This module also holds the helpers every
handler module shares (:func:`int_value`, :func:`max_params`, :func:`only_forms`).

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
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from hostsim.modem.atparse import Form, Invocation, Param
from hostsim.modem.results import CommandFailed
from hostsim.modem.settings import with_setting
from hostsim.modem.state import URC_PORTS, Profile

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


def _setting(field: str, allowed: tuple[int, ...], *, flag: bool = False) -> Handler:
    """A basic command storing its digit in ``Settings.<field>`` (``ATE``, ``ATV``, ``AT&C``…)."""

    def handler(modem: EmulatedModem, invocation: Invocation) -> list[str]:
        value = _basic_flag(invocation, allowed)
        stored: object = bool(value) if flag else value
        modem.settings = with_setting(modem.settings, field, stored)
        return []

    return handler


def _reset(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``ATZ``: back to the profile ``AT&W`` saved (the configured defaults until then)."""
    _basic_flag(invocation, (0,))
    modem.reset_settings()
    return []


def _factory(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT&F``: back to the factory defaults (the persona's); the saved profile stays."""
    _basic_flag(invocation, (0,))
    modem.reset_settings(factory=True)
    return []


def _write_profile(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT&W``: the current settings and S-registers become what ``ATZ`` and a boot restore."""
    _basic_flag(invocation, (0,))
    modem.module.profile = Profile(modem.settings, tuple(sorted(modem.s_registers.items())))
    return []


def _identify(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``ATI``: the persona's identification lines (:meth:`ModemConfig.identification`)."""
    _basic_flag(invocation, (0,))
    return modem.config.identification()


def _view(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT&V``: the active configuration: the basic settings, then the S-registers."""
    _basic_flag(invocation, (0,))
    cfg = modem.settings
    basics = (
        f"&C: {cfg.dcd_mode}; &D: {cfg.dtr_mode}; &K: {cfg.flow_control}; "
        f"E: {int(cfg.echo)}; Q: {int(cfg.quiet)}; V: {int(cfg.verbose)}; X: {cfg.result_set}"
    )
    registers = "; ".join(f"S{n}: {v}" for n, v in sorted(modem.s_registers.items()))
    return ["ACTIVE PROFILE:", basics, registers]


def fixed(text: Callable[[EmulatedModem], str], *, needs_sim: bool = False) -> Handler:
    """A query command that prints one line on execution and nothing on test."""

    def handler(modem: EmulatedModem, invocation: Invocation) -> list[str]:
        only_forms(invocation, Form.EXEC, Form.TEST)
        if invocation.form is Form.TEST:
            return []
        if needs_sim:
            require_sim(modem)
        return [text(modem)]

    return handler


def require_sim(modem: EmulatedModem) -> None:
    """CME 14 while the SIM is busy, 11 / 12 / 13 while it asks for a PIN / PUK or is blocked."""
    if not modem.sim_ready:
        raise CommandFailed.cme(14)
    modem.module.sim.require_ready()


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
    """``ATSn?`` / ``ATSn=v`` (V.250 §6.2): values 0–255 kept per register; S3 and S4
    change the framing (the answer to this very command already uses the new value)."""
    register = int_value(invocation.params[0], 0, 255, CommandFailed.plain())
    if invocation.form is Form.READ:
        return [f"{modem.s_registers.get(register, 0):03d}"]
    if len(invocation.params) < 2 or invocation.params[1] is None:
        raise CommandFailed.plain()
    high = 127 if register in (3, 4, 5) else 255
    modem.s_registers[register] = int_value(invocation.params[1], 0, high, CommandFailed.plain())
    return []


def _command_list(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT+CLAC`` (27.007 §8.37): every command this module has (its persona's set), one
    per line."""
    only_forms(invocation, Form.EXEC, Form.TEST)
    if invocation.form is Form.TEST:
        return []
    return sorted(f"AT{name}" for name in modem.commands)


def _battery(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT+CBC`` (27.007 §8.4): ``+CBC: <bcs>,<bcl>,<voltage>`` (Quectel adds the mV)."""
    only_forms(invocation, Form.EXEC, Form.TEST)
    if invocation.form is Form.TEST:
        return ["+CBC: (0-3),(0-100),(3300-4300)"]
    bcs, bcl, voltage = modem.config.battery
    return [f"+CBC: {bcs},{bcl},{voltage}"]


def _clock(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT+CCLK`` (27.007 §8.15): ``"yy/MM/dd,hh:mm:ss±zz"``, zz in quarter hours.

    Setting keeps the clock running from the new time; a malformed or impossible
    time (``26/02/30``) is ``+CME ERROR: 50``.
    """
    if invocation.form is Form.TEST:
        return []
    if invocation.form is Form.READ:
        now = modem.module.clock()
        quarters = modem.module.tz_quarters
        sign = "-" if quarters < 0 else "+"
        return [f'+CCLK: "{now:%y/%m/%d,%H:%M:%S}{sign}{abs(quarters):02d}"']
    only_forms(invocation, Form.SET)
    max_params(invocation, 1)
    param = invocation.params[0]
    if param is None or not param.quoted:
        raise CommandFailed.plain()
    match = _CCLK.fullmatch(param.text)
    if match is None:
        raise CommandFailed.cme(50)
    quarters = int(match["tz"])
    if not -96 <= quarters <= 96:
        raise CommandFailed.cme(50)
    zone = timezone(timedelta(minutes=15 * quarters))
    try:
        when = datetime.strptime(match["time"], "%y/%m/%d,%H:%M:%S").replace(tzinfo=zone)
    except ValueError:
        raise CommandFailed.cme(50) from None
    modem.module.set_clock(when, quarters)
    return []


_CCLK = re.compile(r"(?P<time>\d\d/\d\d/\d\d,\d\d:\d\d:\d\d)(?P<tz>[+-]\d\d)")


def _urc_config(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT+QURCCFG="urcport"[,"<port>"]`` (Quectel BG96 AT manual §2.27).

    This line is ``"usbat"``: routing the URCs to another port makes them vanish
    here. Another ``<type>`` or port name is ``+CME ERROR: 50``.
    """
    choices = "(" + ",".join(f'"{port}"' for port in URC_PORTS) + ")"
    if invocation.form is Form.TEST:
        return [f'+QURCCFG: "urcport",{choices}']
    only_forms(invocation, Form.SET)
    max_params(invocation, 2)
    kind = invocation.params[0]
    if kind is None or not kind.quoted:
        raise CommandFailed.plain()
    if kind.text.lower() != "urcport":
        raise CommandFailed.cme(50)
    if len(invocation.params) == 1:
        return [f'+QURCCFG: "urcport","{modem.module.urc_port}"']
    port = invocation.params[1]
    if port is None or not port.quoted or port.text.lower() not in URC_PORTS:
        raise CommandFailed.cme(50)
    modem.module.urc_port = port.text.lower()
    return []


def _accept(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``ATX<n>`` 0–4: the result-code set (only the one without call progress is used)."""
    modem.settings = dataclasses.replace(
        modem.settings, result_set=_basic_flag(invocation, (0, 1, 2, 3, 4))
    )
    return []


HANDLERS: dict[str, Handler] = {
    "S": _s_register,
    "&C": _setting("dcd_mode", (0, 1)),
    "&D": _setting("dtr_mode", (0, 1, 2)),
    "&K": _setting("flow_control", (0, 3, 4)),
    "X": _accept,
    "E": _setting("echo", (0, 1), flag=True),
    "V": _setting("verbose", (0, 1), flag=True),
    "Q": _setting("quiet", (0, 1), flag=True),
    "Z": _reset,
    "&F": _factory,
    "&W": _write_profile,
    "&V": _view,
    "I": _identify,
    "+CGMI": fixed(lambda m: m.config.manufacturer),
    "+GMI": fixed(lambda m: m.config.manufacturer),
    "+CGMM": fixed(lambda m: m.config.model),
    "+GMM": fixed(lambda m: m.config.model),
    "+CGMR": fixed(lambda m: m.config.revision),
    "+GMR": fixed(lambda m: m.config.revision),
    "+CGSN": fixed(lambda m: m.config.imei),
    "+GSN": fixed(lambda m: m.config.imei),
    "+GCAP": fixed(lambda m: m.config.gcap),
    "+CLAC": _command_list,
    "+CMEE": _cmee,
    "+CBC": _battery,
    "+CCLK": _clock,
    "+QURCCFG": _urc_config,
}
