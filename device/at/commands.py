"""The AT commands the agent sends, declared as data (one :class:`CommandDef` each).

A definition holds the command's text (a :meth:`str.format` template with named
fields), the prefix of its information lines, its timeout as a multiple of the
configured command timeout, and whether it prompts for a body (``> ``, then the
body and Ctrl-Z). :class:`~device.modem.operations.Modem` sends through these;
nothing else spells an AT command. :func:`timeout_factor` gives the factor for a
command text that was not built from a definition (a profile's extra set-up
commands): the longest declared head that starts it wins, others get 1.

``AT+CMGS`` is the exception to the factor: a send has its own configured
timeout (``timeouts.send``), given by the caller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class CommandDef:
    """One AT command: how to write it, what its answer looks like, how long it may take."""

    #: The text to send without the trailing CR; ``{name}`` fields are filled by :meth:`text`.
    template: str
    #: The prefix of its information lines (``"+CMGL"``), None when it prints none.
    prefix: str | None
    summary: str
    #: Timeout as a multiple of the configured command timeout.
    timeout_factor: float = 1.0
    #: True when the module answers ``> `` and waits for a body (``AT+CMGS``).
    prompt: bool = False

    @property
    def head(self) -> str:
        """The command name without parameters or ``?``: ``AT+CMGL``, ``ATE0``."""
        return re.split(r"[=?{]", self.template, maxsplit=1)[0].upper()

    def text(self, **fields: Any) -> str:
        """The command line; KeyError for a missing field (a programming error)."""
        return self.template.format(**fields)


def _setting(name: str, summary: str, factor: float = 1.0) -> tuple[CommandDef, CommandDef]:
    """The write (``AT+X={value}``) and read (``AT+X?``) forms of a setting."""
    prefix = f"+{name}"
    return (
        CommandDef(f"AT+{name}={{value}}", prefix, f"set {summary}", factor),
        CommandDef(f"AT+{name}?", prefix, f"read {summary}", factor),
    )


ECHO_OFF = CommandDef("ATE0", None, "echo off (also the liveness probe)")
CMEE_SET, CMEE_READ = _setting("CMEE", "the error format (2: verbose +CME/+CMS ERROR)")
CMGF_SET, CMGF_READ = _setting("CMGF", "the message format (0: PDU, 1: text)")
CSDH_SET, CSDH_READ = _setting("CSDH", "text-mode header detail")
#: Selecting storages can take a module a while when the SIM is large.
CPMS_SET, CPMS_READ = _setting("CPMS", "the message storages (read, write, receive)", 1.5)
CSCS_SET, CSCS_READ = _setting("CSCS", "the TE character set")
#: 27.005 §3.3.1: ``+CSCA: <sca>,<tosca>``, ``<sca>`` a string in the ``AT+CSCS`` character set.
CSCA_READ = CommandDef("AT+CSCA?", "+CSCA", "read the service centre address")
CSMP_SET, CSMP_READ = _setting("CSMP", "text-mode send parameters (fo, vp, pid, dcs)")
CNMI_SET, CNMI_READ = _setting("CNMI", "new-message indications")
CGMI = CommandDef("AT+CGMI", "+CGMI", "manufacturer")
CGMM = CommandDef("AT+CGMM", "+CGMM", "model")
CGMR = CommandDef("AT+CGMR", "+CGMR", "firmware revision")
CGSN = CommandDef("AT+CGSN", "+CGSN", "IMEI")
CPIN_READ = CommandDef("AT+CPIN?", "+CPIN", "SIM state")
CREG_READ = CommandDef("AT+CREG?", "+CREG", "circuit-switched registration")
CEREG_READ = CommandDef("AT+CEREG?", "+CEREG", "EPS (LTE) registration")
CSQ = CommandDef("AT+CSQ", "+CSQ", "signal quality")
CMGR = CommandDef("AT+CMGR={index}", "+CMGR", "read one message")
#: Listing a full storage takes a module several seconds.
CMGL = CommandDef("AT+CMGL={stat}", "+CMGL", "list messages", 3.0)
CMGD = CommandDef("AT+CMGD={index},0", None, "delete exactly one index (delflag 0)")
CMGS = CommandDef("AT+CMGS={destination}", "+CMGS", "send one SMS", prompt=True)
CCID = CommandDef("AT+CCID", "+CCID", "ICCID (3GPP)")
QCCID = CommandDef("AT+QCCID", "+QCCID", "ICCID (Quectel)")
CICCID = CommandDef("AT+CICCID", "+ICCID", "ICCID (SIMCom)")
QURCCFG_URCPORT = CommandDef(
    'AT+QURCCFG="urcport"', "+QURCCFG", "which port gets unsolicited codes (Quectel)"
)

#: Every command above, for lookups and documentation.
COMMANDS: tuple[CommandDef, ...] = tuple(
    value for value in dict(globals()).values() if isinstance(value, CommandDef)
)


def timeout_factor(text: str) -> float:
    """The timeout factor for a command line: that of the declared command whose
    head starts it (the longest such head), 1 when none does."""
    upper = text.upper()
    best: CommandDef | None = None
    for command in COMMANDS:
        if upper.startswith(command.head) and (best is None or len(command.head) > len(best.head)):
            best = command
    return best.timeout_factor if best is not None else 1.0
