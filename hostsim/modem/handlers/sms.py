"""27.005 SMS command handlers (text and PDU mode) and the 27.007 ``AT+CSCS`` they depend on.

Error conventions (see also :mod:`hostsim.modem.handlers.general`): malformed values are
plain ``ERROR``; a well-formed setting out of range is ``+CMS ERROR: 302``
(``AT+CSCS``: ``+CME ERROR: 50``); an unknown memory is 302; a bad text-mode
value (``<stat>``, ``<da>``, ``<toda>``) is 305; an invalid or empty index for
``AT+CMGR`` is 321; SMS commands while the SIM is not ready are 314.

PDU mode (``AT+CMGF=0``, rendering in :mod:`hostsim.modem.pdumode`):

* ``AT+CMGR=<index>`` → ``+CMGR: <stat>,,<length>`` and the PDU line;
  ``AT+CMGL[=<stat>]`` (numeric 0–3, 4 for all; default 0) →
  ``+CMGL: <index>,<stat>,,<length>`` and the PDU line per message;
  ``AT+CMGL=?`` → ``+CMGL: (0-4)``.
* ``AT+CMGS=<length>`` (TPDU octets, 1–164) shows the prompt for the hex PDU.
* A parameter of the other mode's kind is refused with the code for an invalid
  parameter *of the current mode* (27.005 §3.2.5): a quoted or string
  ``<stat>``, a ``<stat>`` above 4, a quoted or out-of-range ``<length>``, or
  ``AT+CMGS="<da>"`` in PDU mode is 304; a numeric ``<stat>`` in text mode
  stays 305 (like any unknown status). Not 302: the operation itself is allowed.
* A stored message that has no PDU (a text longer than one SMS delivered with
  :meth:`EmulatedModem.deliver_sms`) makes ``AT+CMGR``/``AT+CMGL`` answer
  ``+CMS ERROR: 300`` (ME failure); nothing is marked read then.
* Under the ``overlong_line`` fault the body line of an ``AT+CMGR``/``AT+CMGL``
  answer is printed over-long (:func:`~hostsim.modem.faults.overlong_body`).
* The ``unreadable_index`` fault is a corrupt record: its ``AT+CMGR``, and any
  ``AT+CMGL`` that would list it, answer ``+CMS ERROR: 320`` (memory failure)
  until ``AT+CMGD`` deletes it, which ends the fault. Under ``cscs_reads_ira``
  ``AT+CSCS?`` shows ``"IRA"`` whatever was set (the set one is still used).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

from device.errors import SmsFormatError
from device.sms.charset import Charset, address_from_wire, from_wire
from device.sms.pdu import PduError
from hostsim.modem import pdumode
from hostsim.modem.atparse import Form, Invocation, Param
from hostsim.modem.faults import overlong_body
from hostsim.modem.handlers.general import Handler, int_value, max_params, only_forms
from hostsim.modem.results import CommandFailed
from hostsim.modem.settings import Cnmi, Csmp, MessageMode
from hostsim.modem.storage import Status, StoredMessage
from hostsim.modem.textmode import cmgl_lines, cmgr_lines, quoted, status_from_cmgl

if TYPE_CHECKING:
    from hostsim.modem.interpreter import EmulatedModem

LOGGER = logging.getLogger(__name__)

#: What a corrupt record (the ``unreadable_index`` fault) answers: 27.005 §3.2.5
#: ``<err>`` 320, "memory failure".
UNREADABLE = 320
#: ``AT+CSCS`` character sets offered (``"HEX"`` is not).
CHARSETS = (Charset.GSM, Charset.IRA, Charset.UCS2)
_ADDRESS_CHARS = frozenset("+0123456789*#ABCabc")


def _not_allowed() -> CommandFailed:
    return CommandFailed.cms(302)


def _require_sim(modem: EmulatedModem) -> None:
    if not modem.sim_ready:
        raise CommandFailed.cms(314)


def _pdu_mode(modem: EmulatedModem) -> bool:
    return modem.settings.cmgf is MessageMode.PDU


def _pdu_stat(param: Param | None) -> Status | None:
    """``<stat>`` of ``AT+CMGL`` in PDU mode: 0..3, None for 4 (all); else CMS 304."""
    if param is None or param.quoted or not param.text.isdigit() or len(param.text) > 3:
        raise CommandFailed.cms(304)
    value = int(param.text)
    if value == 4:
        return None
    try:
        return Status.from_number(value)
    except ValueError:
        raise CommandFailed.cms(304) from None


def _pdu_lines(modem: EmulatedModem, index: int | None, message: StoredMessage) -> list[str]:
    """The PDU-mode ``+CMGR`` (index None) or ``+CMGL`` lines; CMS 300 without a PDU."""
    smsc, vp = modem.config.smsc, modem.settings.csmp.vp
    try:
        if index is None:
            return pdumode.cmgr_lines(message, smsc, vp)
        return pdumode.cmgl_lines(index, message, smsc, vp)
    except PduError as exc:
        LOGGER.warning("message to/from %s has no PDU: %s", message.address, exc)
        raise CommandFailed.cms(300) from exc


def _cmgf(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT+CMGF=<mode>``: 0 PDU, 1 text."""
    if invocation.form is Form.TEST:
        return ["+CMGF: (0,1)"]
    if invocation.form is Form.READ:
        return [f"+CMGF: {int(modem.settings.cmgf)}"]
    only_forms(invocation, Form.SET)
    max_params(invocation, 1)
    value = int_value(invocation.params[0], 0, 1, _not_allowed())
    modem.settings = dataclasses.replace(modem.settings, cmgf=MessageMode(value))
    return []


def _cscs(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT+CSCS="<chset>"``: GSM, IRA or UCS2 (the name itself is always plain)."""
    if invocation.form is Form.TEST:
        return ["+CSCS: (" + ",".join(quoted(c.value) for c in CHARSETS) + ")"]
    if invocation.form is Form.READ:
        shown = "IRA" if modem.faults.cscs_reads_ira else modem.settings.cscs.value
        return [f"+CSCS: {quoted(shown)}"]
    only_forms(invocation, Form.SET)
    max_params(invocation, 1)
    param = invocation.params[0]
    if param is None:
        raise CommandFailed.plain()
    try:
        charset = Charset.parse(param.text)
    except SmsFormatError:
        raise CommandFailed.cme(50) from None
    if charset not in CHARSETS:
        raise CommandFailed.cme(50)
    modem.settings = dataclasses.replace(modem.settings, cscs=charset)
    return []


def _csdh(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT+CSDH=[<show>]``: 1 adds the detail fields to ``+CMGR``/``+CMGL``/``+CMT``."""
    if invocation.form is Form.TEST:
        return ["+CSDH: (0,1)"]
    if invocation.form is Form.READ:
        return [f"+CSDH: {int(modem.settings.csdh)}"]
    max_params(invocation, 1)
    value = 0
    if invocation.form is Form.SET and invocation.params[0] is not None:
        value = int_value(invocation.params[0], 0, 1, _not_allowed())
    modem.settings = dataclasses.replace(modem.settings, csdh=bool(value))
    return []


def _csmp(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT+CSMP=[<fo>[,<vp>[,<pid>[,<dcs>]]]]``: omitted values are kept (integer vp only)."""
    if invocation.form is Form.TEST:
        return []
    if invocation.form is Form.READ:
        return [f"+CSMP: {modem.settings.csmp.render()}"]
    only_forms(invocation, Form.SET)
    max_params(invocation, 4)
    current = modem.settings.csmp
    values = [current.fo, current.vp, current.pid, current.dcs]
    for i, param in enumerate(invocation.params):
        if param is not None:
            values[i] = int_value(param, 0, 255, CommandFailed.cms(305))
    modem.settings = dataclasses.replace(modem.settings, csmp=Csmp(*values))
    return []


#: Allowed values of each ``AT+CNMI`` parameter.
_CNMI_RANGES: tuple[tuple[int, ...], ...] = ((0, 1, 2, 3), (0, 1, 2, 3), (0, 2), (0, 1, 2), (0, 1))


def _cnmi(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT+CNMI=<mode>[,<mt>[,<bm>[,<ds>[,<bfr>]]]]``; omitted values are kept.

    ``<mt>`` 0 no indication, 1 and 3 ``+CMTI``, 2 ``+CMT`` (text mode).
    ``<mode>`` 0 holds indications; another mode flushes them (``<bfr>`` 0) or
    drops them (``<bfr>`` 1).
    """
    if invocation.form is Form.TEST:
        return ["+CNMI: (0-3),(0-3),(0,2),(0-2),(0,1)"]
    if invocation.form is Form.READ:
        return [f"+CNMI: {modem.settings.cnmi.render()}"]
    only_forms(invocation, Form.SET)
    max_params(invocation, 5)
    current = modem.settings.cnmi
    values = [current.mode, current.mt, current.bm, current.ds, current.bfr]
    for i, param in enumerate(invocation.params):
        if param is None:
            continue
        value = int_value(param, 0, 9, _not_allowed())
        if value not in _CNMI_RANGES[i]:
            raise _not_allowed()
        values[i] = value
    modem.settings = dataclasses.replace(modem.settings, cnmi=Cnmi(*values))
    modem.cnmi_changed()
    return []


def _cpms(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT+CPMS="<mem1>"[,"<mem2>"[,"<mem3>"]]``: read/delete, write/send, receive memories."""
    names = list(modem.storages)
    if invocation.form is Form.TEST:
        choice = "(" + ",".join(quoted(n) for n in names) + ")"
        return [f"+CPMS: {choice},{choice},{choice}"]
    _require_sim(modem)
    if invocation.form is Form.READ:
        parts = []
        for mem in modem.settings.cpms:
            store = modem.storages[mem]
            parts.append(f"{quoted(mem)},{store.used},{store.total}")
        return ["+CPMS: " + ",".join(parts)]
    only_forms(invocation, Form.SET)
    max_params(invocation, 3)
    mems = list(modem.settings.cpms)
    for i, param in enumerate(invocation.params):
        if param is None:
            if i == 0:
                raise CommandFailed.plain()
            continue
        name = param.text.upper()
        if name not in modem.storages:
            raise _not_allowed()
        mems[i] = name
    modem.settings = dataclasses.replace(modem.settings, cpms=(mems[0], mems[1], mems[2]))
    counts = []
    for mem in mems:
        store = modem.storages[mem]
        counts.append(f"{store.used},{store.total}")
    return ["+CPMS: " + ",".join(counts)]


def _string_param(modem: EmulatedModem, param: Param) -> str:
    """A string parameter under ``AT+CSCS`` (UCS2 hex is decoded when it is hex)."""
    if modem.settings.cscs is Charset.UCS2:
        try:
            return from_wire(param.text, Charset.UCS2)
        except SmsFormatError:
            return param.text
    return param.text


def _cmgl(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT+CMGL[=<stat>]`` (default ``"REC UNREAD"`` / 0); listed unread messages become read."""
    pdu = _pdu_mode(modem)
    if invocation.form is Form.TEST:
        if pdu:
            return ["+CMGL: (0-4)"]
        names = [s.text for s in Status] + ["ALL"]
        return ["+CMGL: (" + ",".join(quoted(n) for n in names) + ")"]
    only_forms(invocation, Form.EXEC, Form.SET)
    _require_sim(modem)
    wanted: Status | None = Status.REC_UNREAD
    if invocation.form is Form.SET:
        max_params(invocation, 1)
        param = invocation.params[0]
        if pdu:
            wanted = _pdu_stat(param)
        else:
            if param is None:
                raise CommandFailed.cms(305)
            try:
                wanted = status_from_cmgl(_string_param(modem, param))
            except ValueError:
                raise CommandFailed.cms(305) from None
    store = modem.storages[modem.settings.cpms[0]]
    fmt = modem.text_format()
    listed = store.list(wanted)
    if any(index == modem.faults.unreadable_index for index, _ in listed):
        raise CommandFailed.cms(UNREADABLE)
    lines: list[str] = []
    for index, message in listed:  # everything rendered before anything is marked read
        lines += _pdu_lines(modem, index, message) if pdu else cmgl_lines(index, message, fmt)
    for index, message in listed:
        if message.status is Status.REC_UNREAD:
            store.set_status(index, Status.REC_READ)
    lines, modem.faults = overlong_body(modem.faults, lines)
    return lines


def _cmgr(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT+CMGR=<index>``: an empty slot or an index out of range is CMS 321."""
    if invocation.form is Form.TEST:
        return []
    only_forms(invocation, Form.SET)
    max_params(invocation, 1)
    _require_sim(modem)
    index = int_value(invocation.params[0], 0, 999_999, CommandFailed.cms(321))
    store = modem.storages[modem.settings.cpms[0]]
    message = store.get(index)
    if message is None:
        raise CommandFailed.cms(321)
    if index == modem.faults.unreadable_index:
        raise CommandFailed.cms(UNREADABLE)
    if _pdu_mode(modem):
        lines = _pdu_lines(modem, None, message)
    else:
        lines = cmgr_lines(message, modem.text_format())
    if message.status is Status.REC_UNREAD:
        store.set_status(index, Status.REC_READ)
    lines, modem.faults = overlong_body(modem.faults, lines)
    return lines


def _cmgd(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT+CMGD=<index>[,<delflag>]`` (any mode).

    delflag 0: an empty in-range slot is OK, out of range CMS 321; delflag 1..4
    ignore the index (``AT+CMGD=,4`` is valid); other delflags CMS 302.
    """
    store = modem.storages[modem.settings.cpms[0]]
    if invocation.form is Form.TEST:
        used = ",".join(str(i) for i in store.indices())
        return [f"+CMGD: ({used}),(0-4)"]
    only_forms(invocation, Form.SET)
    max_params(invocation, 2)
    _require_sim(modem)
    params = invocation.params
    delflag = 0
    if len(params) == 2 and params[1] is not None:
        delflag = int_value(params[1], 0, 4, _not_allowed())
    index: int | None = None
    if params[0] is not None:
        index = int_value(params[0], 0, 999_999, CommandFailed.cms(321))
    elif delflag == 0:
        raise CommandFailed.plain()
    try:
        store.delete_by_flag(index, delflag)
    except ValueError:
        raise CommandFailed.cms(321) from None
    if delflag == 0 and index is not None and index == modem.faults.unreadable_index:
        LOGGER.info("fault: the corrupt record at index %d is deleted; it is over", index)
        modem.faults = modem.faults.replace(unreadable_index=-1)
    return []


def _text_address(modem: EmulatedModem, param: Param | None) -> str:
    """A text-mode ``<da>``/``<oa>`` under ``AT+CSCS``: quoted, valid digits; else CMS 305."""
    if param is None or not param.quoted:
        raise CommandFailed.cms(305)
    try:
        address = address_from_wire(param.text, modem.settings.cscs)
    except SmsFormatError:
        raise CommandFailed.cms(305) from None
    if not address or not all(ch in _ADDRESS_CHARS for ch in address):
        raise CommandFailed.cms(305)
    return address


def _type_of_address(param: Param | None, error: CommandFailed) -> None:
    """Check an optional ``<toda>``/``<tooa>`` (0–255)."""
    if param is not None:
        int_value(param, 0, 255, error)


def _pdu_length(param: Param | None) -> int:
    """``<length>`` of a PDU-mode prompt (TPDU octets, 1–164); else CMS 304."""
    if param is None or param.quoted or not param.text.isdigit() or len(param.text) > 3:
        raise CommandFailed.cms(304)
    length = int(param.text)
    if not 1 <= length <= pdumode.MAX_TPDU:
        raise CommandFailed.cms(304)
    return length


def _cmgs(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT+CMGS="<da>"[,<toda>]`` (text) or ``AT+CMGS=<length>`` (PDU): checks the
    parameters, then the modem shows the prompt."""
    if invocation.form is Form.TEST:
        return []
    only_forms(invocation, Form.SET)
    if _pdu_mode(modem):
        max_params(invocation, 1)
        _require_sim(modem)
        modem.begin_submit("", pdu_length=_pdu_length(invocation.params[0]))
        return []
    max_params(invocation, 2)
    _require_sim(modem)
    address = _text_address(modem, invocation.params[0])
    if len(invocation.params) == 2:
        _type_of_address(invocation.params[1], CommandFailed.cms(305))
    modem.begin_submit(address)
    return []


def _cmgw(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT+CMGW[=<da>[,<toda>[,<stat>]]]`` (text) or ``AT+CMGW=<length>[,<stat>]`` (PDU):
    the prompt, then the message is written to ``<mem2>`` (27.005 §3.5.3).

    ``<stat>`` defaults to ``"STO UNSENT"`` / 2; a received status (0, 1) stores
    ``<da>`` as the originator (and in PDU mode wants an SMS-DELIVER). The bare
    ``AT+CMGW`` of text mode writes a message without an address. A full memory
    is CMS 322, after Ctrl-Z.
    """
    if invocation.form is Form.TEST:
        return []
    only_forms(invocation, Form.EXEC, Form.SET)
    _require_sim(modem)
    params = list(invocation.params) if invocation.form is Form.SET else []
    status = Status.STO_UNSENT
    if _pdu_mode(modem):
        max_params(invocation, 2)
        length = _pdu_length(params[0] if params else None)
        if len(params) == 2 and params[1] is not None:
            chosen = _pdu_stat(params[1])
            if chosen is None:  # 4 ("all") is a filter, not a status
                raise CommandFailed.cms(304)
            status = chosen
        modem.begin_submit("", pdu_length=length, write=status)
        return []
    max_params(invocation, 3)
    address = ""
    if params and params[0] is not None:
        address = _text_address(modem, params[0])
    if len(params) >= 2:
        _type_of_address(params[1], CommandFailed.cms(305))
    if len(params) == 3 and params[2] is not None:
        if not params[2].quoted:
            raise CommandFailed.cms(305)
        try:
            status = Status.from_text(_string_param(modem, params[2]))
        except ValueError:
            raise CommandFailed.cms(305) from None
    modem.begin_submit(address, write=status)
    return []


def _cmss(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT+CMSS=<index>[,<da>[,<toda>]]``: send the message at ``<index>`` of ``<mem2>``,
    to ``<da>`` when given (in either mode, a string under ``AT+CSCS``) → ``+CMSS: <mr>``.

    An empty or invalid index is CMS 321. A ``"STO UNSENT"`` message becomes
    ``"STO SENT"`` once sent; it keeps its status when the send fails. The
    network sees it as it sees an ``AT+CMGS`` (same faults, same refusals).
    """
    if invocation.form is Form.TEST:
        return []
    only_forms(invocation, Form.SET)
    max_params(invocation, 3)
    _require_sim(modem)
    params = invocation.params
    index = int_value(params[0], 0, 999_999, CommandFailed.cms(321))
    store = modem.storages[modem.settings.cpms[1]]
    message = store.get(index)
    if message is None or message.report is not None:
        raise CommandFailed.cms(321)
    destination = message.address
    bad = CommandFailed.cms(304 if _pdu_mode(modem) else 305)
    if len(params) >= 2 and params[1] is not None:
        try:
            destination = _text_address(modem, params[1])
        except CommandFailed:
            raise bad from None
    if len(params) == 3:
        _type_of_address(params[2], bad)
    if not destination:
        raise CommandFailed.cms(304 if _pdu_mode(modem) else 305)
    submitted = pdumode.Submitted(
        destination, message.text, message.dcs, message.concat, message.srr
    )
    reference = modem.send(submitted)
    if message.status is Status.STO_UNSENT:
        store.set_status(index, Status.STO_SENT)
    return [f"+CMSS: {reference}"]


def _csms(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT+CSMS=<service>`` (0 or 1; 27.005 §3.2.1) → ``+CSMS: <mt>,<mo>,<bm>``.

    Read: ``+CSMS: <service>,<mt>,<mo>,<bm>``. Every type is supported in both
    services (1,1,1). Service 1 makes ``+CMT``/``+CDS`` wait for ``AT+CNMA``.
    """
    if invocation.form is Form.TEST:
        return ["+CSMS: (0,1)"]
    if invocation.form is Form.READ:
        return [f"+CSMS: {modem.settings.csms},1,1,1"]
    only_forms(invocation, Form.SET)
    max_params(invocation, 1)
    service = int_value(invocation.params[0], 0, 1, _not_allowed())
    modem.settings = dataclasses.replace(modem.settings, csms=service)
    return ["+CSMS: 1,1,1"]


def _cnma(modem: EmulatedModem, invocation: Invocation) -> list[str]:
    """``AT+CNMA`` acknowledges the ``+CMT``/``+CDS`` shown under ``AT+CSMS=1``
    (27.005 §3.4.4); CMS 340 when none waits.

    PDU mode also has ``AT+CNMA=<n>[,<length>]``: ``<n>`` 0 or 1 acknowledge,
    2 is a negative acknowledgement (the network delivers again later); a
    ``<length>`` other than 0 (an RP-ACK/RP-ERROR PDU to type) is not emulated
    (CMS 304). Text mode has only the bare form.
    """
    pdu = _pdu_mode(modem)
    if invocation.form is Form.TEST:
        return ["+CNMA: (0-2)"] if pdu else []
    positive = True
    if invocation.form is Form.SET:
        if not pdu:
            raise CommandFailed.plain()
        max_params(invocation, 2)
        params = invocation.params
        n = 0 if params[0] is None else int_value(params[0], 0, 2, CommandFailed.cms(304))
        if len(params) == 2 and int_value(params[1], 0, 0, CommandFailed.cms(304)) != 0:
            raise CommandFailed.cms(304)
        positive = n != 2
    else:
        only_forms(invocation, Form.EXEC)
    modem.acknowledge(positive)
    return []


HANDLERS: dict[str, Handler] = {
    "+CMGF": _cmgf,
    "+CSCS": _cscs,
    "+CSDH": _csdh,
    "+CSMP": _csmp,
    "+CNMI": _cnmi,
    "+CPMS": _cpms,
    "+CMGL": _cmgl,
    "+CMGR": _cmgr,
    "+CMGD": _cmgd,
    "+CMGS": _cmgs,
    "+CMGW": _cmgw,
    "+CMSS": _cmss,
    "+CSMS": _csms,
    "+CNMA": _cnma,
}
