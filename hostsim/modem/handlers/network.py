"""27.007 radio commands: functionality, operator selection, registration, signal, PDP contexts.

What the radio is in is :class:`~hostsim.modem.radio.Radio` (``modem.radio``);
every change goes through :meth:`EmulatedModem.change_radio`, which queues the
``+CREG`` / ``+CGREG`` / ``+CEREG`` codes it causes until after the final
result, as modules print them once the command has completed.

* ``AT+CFUN=<fun>[,<rst>]`` (§8.2): 1 full, 0 minimum, 4 RF off. 0 and 4 drop
  the registration and the network stops delivering; 1 registers and attaches
  again. ``<rst>`` 1 (only with ``<fun>`` 1) reboots the module after ``OK``,
  with the persona's boot banner. Another ``<fun>`` is ``+CME ERROR: 50``.
* ``AT+COPS`` (§7.3): ``<mode>`` 0 automatic, 1 manual (``<format>`` and
  ``<oper>`` required; an operator not in sight is ``+CME ERROR: 30``), 2
  deregister, 3 set ``<format>`` only, 4 manual falling back to automatic.
  With the RF off, ``AT+COPS=?`` and a selection are ``+CME ERROR: 30``.
* ``AT+CGATT`` (§10.1.9): 0 detaches the packet service (``+CGREG``/``+CEREG``
  stat 0; SMS still arrive over the circuit-switched side), 1 attaches (only
  with full functionality, else ``+CME ERROR: 30``).
* ``AT+CSQ`` / ``AT+CESQ`` show no signal (99 / 255) with the RF off.
* ``AT+CGDCONT`` (§10.1.1): ``<cid>`` 1–15, ``<PDP_type>`` IP, IPV6 or IPV4V6;
  ``AT+CGDCONT=<cid>`` alone deletes the context.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from hostsim.modem.atparse import Form, Invocation, Param
from hostsim.modem.handlers.general import Handler, int_value, max_params, only_forms
from hostsim.modem.radio import REGISTERED, CopsMode, Domain, Radio
from hostsim.modem.results import CommandFailed
from hostsim.modem.settings import Operator, with_setting
from hostsim.modem.state import PdpContext

if TYPE_CHECKING:
    from hostsim.modem.interpreter import EmulatedModem

PDP_TYPES = ("IP", "IPV6", "IPV4V6")
MAX_CID = 15


def _bad() -> CommandFailed:
    return CommandFailed.cme(50)


def _no_service() -> CommandFailed:
    return CommandFailed.cme(30)


def _cfun(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT+CFUN`` read, test and set (see the module docstring)."""
    if invocation.form is Form.TEST:
        return ["+CFUN: (0,1,4),(0-1)"]
    if invocation.form is Form.READ:
        return [f"+CFUN: {modem.radio.fun}"]
    only_forms(invocation, Form.SET)
    max_params(invocation, 2)
    fun = int_value(invocation.params[0], 0, 127, _bad())
    if fun not in (0, 1, 4):
        raise _bad()
    reset = 0
    if len(invocation.params) == 2 and invocation.params[1] is not None:
        reset = int_value(invocation.params[1], 0, 1, _bad())
    if reset and fun != 1:
        raise _bad()
    if reset:
        modem.after_result(modem.reboot)
        return []

    def change(radio: Radio) -> None:
        radio.fun = fun
        if fun == 1:
            radio.packet_attached = True

    modem.change_radio(change)
    return []


def _find_operator(modem: EmulatedModem, fmt: int, name: str) -> Operator | None:
    for operator in modem.config.operators:
        if operator.name(fmt) == name:
            return operator
    return None


def _cops_read(modem: EmulatedModem) -> list[str]:
    radio = modem.radio
    mode = int(radio.cops_mode)
    if radio.cs_stat not in REGISTERED or radio.operator is None:
        return [f"+COPS: {mode}"]
    fmt = modem.settings.cops_format
    return [f'+COPS: {mode},{fmt},"{radio.operator.name(fmt)}",{radio.operator.act}']


def _cops_test(modem: EmulatedModem) -> list[str]:
    radio = modem.radio
    if radio.fun != 1:
        raise _no_service()
    entries = []
    for operator in modem.config.operators:
        current = operator == radio.operator and radio.cs_stat in REGISTERED
        entries.append(
            f'({2 if current else 1},"{operator.long_name}","{operator.short_name}",'
            f'"{operator.numeric}",{operator.act})'
        )
    return ["+COPS: " + ",".join(entries) + ",,(0-4),(0-2)"]


def _cops(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT+COPS`` read, test and set (see the module docstring)."""
    if invocation.form is Form.TEST:
        return _cops_test(modem)
    if invocation.form is Form.READ:
        return _cops_read(modem)
    only_forms(invocation, Form.SET)
    max_params(invocation, 4)
    params = invocation.params + (None,) * (4 - len(invocation.params))
    mode = int_value(params[0], 0, 4, _bad())
    fmt = modem.settings.cops_format
    if params[1] is not None:
        fmt = int_value(params[1], 0, 2, _bad())
    elif mode == 3:
        raise _bad()
    if mode != 3 and modem.radio.fun != 1:
        raise _no_service()
    operator = _selected(modem, mode, fmt, params[2])
    modem.settings = dataclasses.replace(modem.settings, cops_format=fmt)
    if mode == 3:
        return []

    def change(radio: Radio) -> None:
        radio.cops_mode = CopsMode(mode)
        if operator is not None:
            radio.operator = operator
        elif mode in (0, 4):
            radio.operator = modem.config.operators[0] if modem.config.operators else None

    modem.change_radio(change)
    return []


def _selected(modem: EmulatedModem, mode: int, fmt: int, oper: Param | None) -> Operator | None:
    """The operator a manual selection names; CME 30 for one not in sight (mode 1)."""
    if mode not in (1, 4):
        return None
    if oper is None or not oper.quoted:
        raise CommandFailed.plain()
    operator = _find_operator(modem, fmt, oper.text)
    if operator is None and mode == 1:
        raise _no_service()
    return operator


def _registration(domain: Domain) -> Handler:
    """``AT+CREG`` / ``AT+CGREG`` / ``AT+CEREG``: ``<n>`` 0..2; read per ``<n>``."""
    name = domain.name_

    def handler(modem: EmulatedModem, invocation: Invocation) -> list[str]:
        if invocation.form is Form.TEST:
            return [f"{name}: (0-2)"]
        if invocation.form is Form.SET:
            max_params(invocation, 1)
            value = int_value(invocation.params[0], 0, 2, _bad())
            modem.settings = with_setting(modem.settings, domain.value, value)
            return []
        only_forms(invocation, Form.READ)
        n: int = getattr(modem.settings, domain.value)
        return [f"{name}: {n},{modem.radio.fields(domain, n)}"]

    return handler


def _cgatt(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT+CGATT`` read, test and set (see the module docstring)."""
    if invocation.form is Form.TEST:
        return ["+CGATT: (0,1)"]
    if invocation.form is Form.READ:
        return [f"+CGATT: {int(modem.radio.packet_attached and modem.radio.fun == 1)}"]
    only_forms(invocation, Form.SET)
    max_params(invocation, 1)
    value = int_value(invocation.params[0], 0, 1, _bad())
    if value and modem.radio.fun != 1:
        raise _no_service()
    modem.change_radio(lambda radio: setattr(radio, "packet_attached", bool(value)))
    return []


def _csq(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT+CSQ`` → ``+CSQ: <rssi>,99`` (99,99 with the RF off)."""
    only_forms(invocation, Form.EXEC, Form.TEST)
    if invocation.form is Form.TEST:
        return ["+CSQ: (0-31,99),(0-7,99)"]
    rssi = modem.config.rssi if modem.radio.fun == 1 else 99
    return [f"+CSQ: {rssi},99"]


def _cesq(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT+CESQ`` (27.007 §8.69): no GSM/UTRAN values on an LTE module, RSRQ and RSRP."""
    only_forms(invocation, Form.EXEC, Form.TEST)
    if invocation.form is Form.TEST:
        return ["+CESQ: (0-63,99),(0-7,99),(0-96,255),(0-49,255),(0-34,255),(0-97,255)"]
    on = modem.radio.fun == 1
    rsrq, rsrp = (modem.config.rsrq, modem.config.rsrp) if on else (255, 255)
    return [f"+CESQ: 99,99,255,255,{rsrq},{rsrp}"]


def _cgdcont(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT+CGDCONT`` read, test and set (see the module docstring)."""
    contexts = modem.module.contexts
    if invocation.form is Form.TEST:
        return [f'+CGDCONT: (1-{MAX_CID}),"{kind}",,,(0-2),(0-4)' for kind in PDP_TYPES]
    if invocation.form is Form.READ:
        return [
            f'+CGDCONT: {cid},"{ctx.pdp_type}","{ctx.apn}","{_null_address(ctx.pdp_type)}",0,0'
            for cid, ctx in sorted(contexts.items())
        ]
    only_forms(invocation, Form.SET)
    max_params(invocation, 6)
    cid = int_value(invocation.params[0], 1, MAX_CID, _bad())
    if len(invocation.params) == 1:
        contexts.pop(cid, None)
        return []
    kind, apn = invocation.params[1], invocation.params[2] if len(invocation.params) > 2 else None
    if kind is None or not kind.quoted or (apn is not None and not apn.quoted):
        raise CommandFailed.plain()
    if kind.text.upper() not in PDP_TYPES:
        raise _bad()
    contexts[cid] = PdpContext(kind.text.upper(), apn.text if apn is not None else "")
    return []


def _null_address(pdp_type: str) -> str:
    return "0.0.0.0" if pdp_type == "IP" else "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0"


HANDLERS: dict[str, Handler] = {
    "+CFUN": _cfun,
    "+COPS": _cops,
    "+CREG": _registration(Domain.CREG),
    "+CGREG": _registration(Domain.CGREG),
    "+CEREG": _registration(Domain.CEREG),
    "+CGATT": _cgatt,
    "+CSQ": _csq,
    "+CESQ": _cesq,
    "+CGDCONT": _cgdcont,
}
