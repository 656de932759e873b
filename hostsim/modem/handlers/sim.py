"""27.007 / 27.005 SIM commands: PIN, retry counters, lock, identity of the SIM, MSISDN, SMSC.

The PIN state is :class:`~hostsim.modem.simcard.SimCard` (``modem.module.sim``):
its errors (11 SIM PIN required, 12 SIM PUK required, 13 blocked, 16 incorrect
password) come from there. While the SIM asks for a PIN or PUK the module does
not register (:mod:`hostsim.modem.radio`); entering it registers, and the boot
banner's tail from ``+CPIN: READY`` on follows the ``OK`` (Quectel and SIMCom
print it so).

* ``AT+CPIN=<pin>`` / ``AT+CPIN=<puk>,<newpin>`` (§8.3), quoted or not.
* Retry counters: ``AT+CPINR`` (27.007 §8.65), and where the persona has them
  ``AT+QPINC`` (Quectel BG96 AT manual §5.6: ``+QPINC: "SC",<pin>,<puk>``),
  ``AT+SPIC`` (SIMCom SIM7600 AT manual: ``+SPIC: <pin1>,<puk1>,<pin2>,<puk2>``),
  ``AT+UPINCNT`` (u-blox SARA-R4 AT manual: ``+UPINCNT: <pin1>,<pin2>,<puk1>,<puk2>``).
* ``AT+CLCK="SC",<mode>[,<pin>]`` (§7.4) and ``AT+CPWD="SC",<old>,<new>`` (§7.5);
  another facility is ``+CME ERROR: 4`` (not supported).
* ICCID: ``AT+CCID`` (``+CCID:``), ``AT+QCCID`` (Quectel, ``+QCCID:``),
  ``AT+CICCID`` (SIMCom, ``+ICCID:``).
* ``AT+CNUM`` (§7.1): nothing for a SIM without MSISDN (a Super SIM).
* ``AT+CSCA`` (27.005 §3.3.1): the address in the ``AT+CSCS`` character set;
  ``<tosca>`` defaults to 145 for ``+…``, else 129; a malformed address or a
  ``<tosca>`` outside 128–255 is ``+CMS ERROR: 304``.
"""

from __future__ import annotations

import fnmatch
import functools
from typing import TYPE_CHECKING

from device.sms.charset import address_from_wire
from hostsim.modem.atparse import Form, Invocation, Param
from hostsim.modem.handlers.general import (
    Handler,
    fixed,
    int_value,
    max_params,
    only_forms,
    require_sim,
)
from hostsim.modem.results import CommandFailed
from hostsim.modem.simcard import PIN_TRIES, PUK_TRIES, PinState
from hostsim.modem.state import READY_LINE
from hostsim.modem.textmode import number_to_wire, quoted, string_to_wire

if TYPE_CHECKING:
    from hostsim.modem.interpreter import EmulatedModem

_ADDRESS_CHARS = frozenset("+0123456789")


def _password(param: Param | None) -> str:
    """A PIN or PUK, quoted or not; plain ERROR when missing or not digits."""
    if param is None or not param.text.isascii() or not param.text.isdigit():
        raise CommandFailed.plain()
    return param.text


def _cpin(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT+CPIN?`` → ``+CPIN: READY`` / ``SIM PIN`` / ``SIM PUK``; ``AT+CPIN=`` enters one."""
    sim = modem.module.sim
    if invocation.form is Form.TEST:
        return []
    if not modem.sim_ready:
        raise CommandFailed.cme(14)
    if invocation.form is Form.READ:
        if sim.state is PinState.BLOCKED:
            raise CommandFailed.cme(13)
        return [f"+CPIN: {sim.state.value}"]
    only_forms(invocation, Form.SET)
    max_params(invocation, 2)
    first = _password(invocation.params[0])
    second = _password(invocation.params[1]) if len(invocation.params) == 2 else None
    was_locked = sim.state is not PinState.READY

    def enter(radio: object) -> None:
        if second is not None and sim.state is PinState.SIM_PUK:
            sim.unblock(first, second)
        else:
            sim.enter_pin(first)
        modem.module.sim_changed()

    modem.change_radio(enter)
    if was_locked:
        banner = modem.config.boot_banner
        tail = banner[banner.index(READY_LINE) :] if READY_LINE in banner else ()
        for line in tail:
            modem.after_result(functools.partial(modem.unsolicited, [line]))
    return []


def _counters(modem: EmulatedModem) -> tuple[int, int]:
    sim = modem.module.sim
    return sim.pin_tries, sim.puk_tries


def _cpinr(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT+CPINR[=<sel_code>]``: ``+CPINR: <code>,<retries>,<default_retries>``
    per matching code (``*`` and ``?`` are wildcards)."""
    only_forms(invocation, Form.EXEC, Form.SET, Form.TEST)
    if invocation.form is Form.TEST:
        return []
    pattern = "*"
    if invocation.form is Form.SET:
        max_params(invocation, 1)
        param = invocation.params[0]
        if param is None:
            raise CommandFailed.plain()
        pattern = param.text
    pin, puk = _counters(modem)
    rows = (("SIM PIN", pin, PIN_TRIES), ("SIM PUK", puk, PUK_TRIES))
    return [
        f"+CPINR: {code},{left},{default}"
        for code, left, default in rows
        if fnmatch.fnmatchcase(code, pattern.upper())
    ]


def _qpinc(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT+QPINC?`` / ``AT+QPINC="SC"|"P2"``: PIN and PUK attempts left (P2: PIN2, full)."""
    pin, puk = _counters(modem)
    rows = {"SC": f'+QPINC: "SC",{pin},{puk}', "P2": f'+QPINC: "P2",{PIN_TRIES},{PUK_TRIES}'}
    if invocation.form is Form.TEST:
        return ['+QPINC: ("SC","P2")']
    require_ready_sim_busy(modem)
    if invocation.form is Form.READ:
        return list(rows.values())
    only_forms(invocation, Form.SET)
    max_params(invocation, 1)
    param = invocation.params[0]
    if param is None or not param.quoted:
        raise CommandFailed.plain()
    if param.text.upper() not in rows:
        raise CommandFailed.cme(50)
    return [rows[param.text.upper()]]


def require_ready_sim_busy(modem: EmulatedModem) -> None:
    """CME 14 while the SIM is busy (counters are readable in every PIN state)."""
    if not modem.sim_ready:
        raise CommandFailed.cme(14)


def _vendor_counters(render: str) -> Handler:
    """``AT+SPIC`` / ``AT+UPINCNT``: one line, ``render`` of ``pin``/``puk``/``pin2``/``puk2``."""

    def handler(modem: EmulatedModem, invocation: Invocation) -> list[str]:
        only_forms(invocation, Form.EXEC, Form.TEST)
        if invocation.form is Form.TEST:
            return []
        require_ready_sim_busy(modem)
        pin, puk = _counters(modem)
        return [render.format(pin=pin, puk=puk, pin2=PIN_TRIES, puk2=PUK_TRIES)]

    return handler


def _facility(invocation: Invocation) -> None:
    param = invocation.params[0] if invocation.params else None
    if param is None or not param.quoted:
        raise CommandFailed.plain()
    if param.text.upper() != "SC":
        raise CommandFailed.cme(4)


def _clck(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT+CLCK="SC",<mode>[,<pin>]``: 0 unlock, 1 lock, 2 query (``+CLCK: <status>``)."""
    if invocation.form is Form.TEST:
        return ['+CLCK: ("SC")']
    only_forms(invocation, Form.SET)
    max_params(invocation, 4)
    _facility(invocation)
    mode = int_value(invocation.params[1] if len(invocation.params) > 1 else None, 0, 2, _bad())
    sim = modem.module.sim
    require_sim(modem)
    if mode == 2:
        return [f"+CLCK: {int(sim.lock_enabled)}"]
    pin = invocation.params[2] if len(invocation.params) > 2 else None
    sim.set_lock(bool(mode), _password(pin))
    return []


def _cpwd(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT+CPWD="SC",<oldpwd>,<newpwd>``: change the PIN (the lock must be on)."""
    if invocation.form is Form.TEST:
        return ['+CPWD: ("SC",8)']
    only_forms(invocation, Form.SET)
    max_params(invocation, 3)
    _facility(invocation)
    if len(invocation.params) != 3:
        raise CommandFailed.plain()
    require_sim(modem)
    old, new = _password(invocation.params[1]), _password(invocation.params[2])
    modem.module.sim.change_pin(old, new)
    return []


def _bad() -> CommandFailed:
    return CommandFailed.cme(50)


def _cnum(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT+CNUM``: ``+CNUM: "",<number>,<type>``; no line when the SIM has no MSISDN."""
    only_forms(invocation, Form.EXEC, Form.TEST)
    if invocation.form is Form.TEST:
        return []
    require_sim(modem)
    number = modem.config.msisdn
    if not number:
        return []
    charset = modem.settings.cscs
    kind = 145 if number.startswith("+") else 129
    return [f'+CNUM: "",{quoted(string_to_wire(number, charset))},{kind}']


def _csca(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT+CSCA?`` / ``AT+CSCA=<sca>[,<tosca>]`` (see the module docstring)."""
    if invocation.form is Form.TEST:
        return []
    if not modem.sim_ready:
        raise CommandFailed.cms(314)
    charset = modem.settings.cscs
    if invocation.form is Form.READ:
        address, kind = modem.module.sca
        return [f"+CSCA: {quoted(number_to_wire(address, charset, modem.config.quirks))},{kind}"]
    only_forms(invocation, Form.SET)
    max_params(invocation, 2)
    param = invocation.params[0]
    if param is None or not param.quoted:
        raise CommandFailed.plain()
    address = address_from_wire(param.text, charset)
    digits = address.removeprefix("+")
    if not digits or not digits.isdigit() or len(digits) > 20 or not set(address) <= _ADDRESS_CHARS:
        raise CommandFailed.cms(304)
    kind = 145 if address.startswith("+") else 129
    if len(invocation.params) == 2 and invocation.params[1] is not None:
        kind = int_value(invocation.params[1], 0, 255, CommandFailed.cms(304))
        if kind < 128:
            raise CommandFailed.cms(304)
    modem.module.sca = (address, kind)
    return []


HANDLERS: dict[str, Handler] = {
    "+CPIN": _cpin,
    "+CPINR": _cpinr,
    "+QPINC": _qpinc,
    "+SPIC": _vendor_counters("+SPIC: {pin},{puk},{pin2},{puk2}"),
    "+UPINCNT": _vendor_counters("+UPINCNT: {pin},{pin2},{puk},{puk2}"),
    "+CLCK": _clck,
    "+CPWD": _cpwd,
    "+CIMI": fixed(lambda m: m.config.imsi, needs_sim=True),
    "+CCID": fixed(lambda m: f"+CCID: {m.config.iccid}", needs_sim=True),
    "+QCCID": fixed(lambda m: f"+QCCID: {m.config.iccid}", needs_sim=True),
    "+CICCID": fixed(lambda m: f"+ICCID: {m.config.iccid}", needs_sim=True),
    "+CNUM": _cnum,
    "+CSCA": _csca,
}
