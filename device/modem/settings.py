"""The SMS settings the agent puts in force, as one table: what each writes and
what its read-back must show.

:data:`SETTINGS` feeds the set-up sequences (:data:`CONFIGURE`, before the SIM
is needed; :data:`SMS_SETUP`, once its SMS service runs; :data:`SEND_SETUP`,
just enough for ``smscmd send`` without an agent) and the "settings intact"
health check (:data:`HEALTH_CHECK`: the settings marked ``verify``, read back
in table order). A module that restarted without a banner, or another program
on the port, shows itself there. Only three are verified, to keep the check at
three commands: the message format and character set (wrong ones garble
messages) and the indications (wrong ones lose ``+CMTI``).

Edge cases of a read-back: no information line at all is shown as ``?``; the
character set may be printed in the character set itself (``"UCS2"`` as
``"0055004300530032"``), which counts as intact.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from device.at import commands as at
from device.at.commands import CommandDef
from device.modem.messages import normalise_storage
from device.modem.modes import MessageMode
from device.sms.charset import to_wire


@dataclass(frozen=True, slots=True)
class Context:
    """What the values depend on: the mode (CMGF, charset) and the storage."""

    mode: MessageMode
    storage: str


def _first(values: Sequence[str]) -> str:
    return values[0].strip() if values else "?"


def _fields(values: Sequence[str]) -> list[str]:
    return [f.strip() for f in values[0].split(",")] if values else []


@dataclass(frozen=True, slots=True)
class SmsSetting:
    """One setting: its write and read commands, the value written, the read-back check."""

    name: str
    write: CommandDef
    read: CommandDef
    #: The parameter text after ``=``.
    value: Callable[[Context], str]
    #: The read-back as shown in a complaint when it is not what was written, None when it is.
    wrong: Callable[[Sequence[str], Context], str | None]
    #: Read back by the health check.
    verify: bool = False


def _fixed(value: str) -> Callable[[Context], str]:
    return lambda ctx: value


def _exactly(expected: str) -> Callable[[Sequence[str], Context], str | None]:
    def wrong(values: Sequence[str], ctx: Context) -> str | None:
        return None if _fields(values) == expected.split(",") else _first(values)

    return wrong


def _cmgf_wrong(values: Sequence[str], ctx: Context) -> str | None:
    shown = values[0] if values else "?"
    return None if values and values[0].strip() == str(ctx.mode.cmgf) else shown


def _cpms_wrong(values: Sequence[str], ctx: Context) -> str | None:
    fields = _fields(values)
    memories = [normalise_storage(f.strip('"')) for f in fields[0:9:3]]
    return None if memories == [ctx.storage] * 3 else _first(values)


def _cscs_wrong(values: Sequence[str], ctx: Context) -> str | None:
    value = values[0].strip().strip('"').upper() if values else "?"
    charset = ctx.mode.charset
    return None if value in (charset.value, to_wire(charset.value, charset)) else value


def _cnmi_wrong(values: Sequence[str], ctx: Context) -> str | None:
    # Only <mt> matters: 1 stores and indicates with +CMTI.
    fields = _fields(values)
    return None if len(fields) >= 2 and fields[1] == "1" else (values[0] if values else "?")


def _storages(ctx: Context) -> str:
    return ",".join([f'"{ctx.storage}"'] * 3)


#: 2: errors as verbose +CME/+CMS ERROR texts.
CMEE = SmsSetting("CMEE", at.CMEE_SET, at.CMEE_READ, _fixed("2"), _exactly("2"))
#: 1: text mode, 0: PDU mode (the mode object's value).
CMGF = SmsSetting(
    "CMGF", at.CMGF_SET, at.CMGF_READ, lambda ctx: str(ctx.mode.cmgf), _cmgf_wrong, verify=True
)
#: 1: text-mode headers show every field (address type, length, ...).
CSDH = SmsSetting("CSDH", at.CSDH_SET, at.CSDH_READ, _fixed("1"), _exactly("1"))
#: Before AT+CSCS="UCS2", so that the memory names are still plain text for
#: modules that apply the TE character set to them.
CPMS = SmsSetting("CPMS", at.CPMS_SET, at.CPMS_READ, _storages, _cpms_wrong)
CSCS = SmsSetting(
    "CSCS",
    at.CSCS_SET,
    at.CSCS_READ,
    lambda ctx: f'"{ctx.mode.charset.value}"',
    _cscs_wrong,
    verify=True,
)
#: fo=17 (SMS-SUBMIT, relative validity), vp=167 (24 h), pid 0, dcs 0: replies
#: go out as GSM 7-bit whatever the TE character set.
CSMP = SmsSetting("CSMP", at.CSMP_SET, at.CSMP_READ, _fixed("17,167,0,0"), _exactly("17,167,0,0"))
#: mode 2: buffer indications while a command runs, flush after; mt 1: store and
#: indicate with +CMTI; no cell broadcast; status reports off.
CNMI = SmsSetting("CNMI", at.CNMI_SET, at.CNMI_READ, _fixed("2,1,0,0,0"), _cnmi_wrong, verify=True)

#: Every setting, in the order the health check reads the verified ones.
SETTINGS: tuple[SmsSetting, ...] = (CMEE, CMGF, CSDH, CPMS, CSCS, CSMP, CNMI)
#: Set up before the SIM is needed (verbose errors, message format, header detail).
CONFIGURE: tuple[SmsSetting, ...] = (CMEE, CMGF, CSDH)
#: Set up once the SIM's SMS service runs (storage, character set, send parameters, indications).
SMS_SETUP: tuple[SmsSetting, ...] = (CPMS, CSCS, CSMP, CNMI)
#: Just enough to send one SMS.
SEND_SETUP: tuple[SmsSetting, ...] = (CMEE, CMGF, CSCS, CSMP)
#: Read back by the health check.
HEALTH_CHECK: tuple[SmsSetting, ...] = tuple(s for s in SETTINGS if s.verify)
