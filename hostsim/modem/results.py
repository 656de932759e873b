"""Final result codes of the emulated modem and how ``AT+CMEE`` renders them.

Handlers raise :class:`CommandFailed`; the interpreter renders it per the
current ``AT+CMEE`` mode:

* ``CMEE=0``: every failure is a plain ``ERROR``;
* ``CMEE=1``: ``+CME ERROR: <n>`` / ``+CMS ERROR: <n>``;
* ``CMEE=2``: the same with the meaning text of 27.007 §9.2 / 27.005 §3.2.5.

A :attr:`ErrorKind.PLAIN` failure (unknown command, syntax error) is ``ERROR``
in every mode, as V.250 prescribes. An unknown code in verbose mode prints its
number.
"""

from __future__ import annotations

import enum

#: V.250 §5.7.1 Table 1: the numeric form (``ATV0``) of the basic result codes.
NUMERIC_CODES: dict[str, int] = {
    "OK": 0,
    "CONNECT": 1,
    "RING": 2,
    "NO CARRIER": 3,
    "ERROR": 4,
    "NO DIALTONE": 6,
    "BUSY": 7,
    "NO ANSWER": 8,
}

#: 27.007 §9.2 meanings of the CME codes the simulator uses.
CME_TEXT: dict[int, str] = {
    3: "operation not allowed",
    4: "operation not supported",
    10: "SIM not inserted",
    11: "SIM PIN required",
    12: "SIM PUK required",
    13: "SIM failure",
    14: "SIM busy",
    16: "incorrect password",
    30: "no network service",
    32: "network not allowed - emergency calls only",
    50: "Incorrect parameters",
    100: "unknown",
}

#: 27.005 §3.2.5 meanings of the CMS codes the simulator uses. 0…127 are RP-causes in
#: the wording of TS 24.011 §8.2.5.4 Table 8.4 (part 1: mobile originating transfer),
#: which the network answers to an ``AT+CMGS`` (:func:`hostsim.modem.interpreter.
#: EmulatedModem.fail_next_send`, the Super SIM network's refusal of a number).
CMS_TEXT: dict[int, str] = {
    1: "Unassigned (unallocated) number",
    8: "Operator determined barring",
    10: "Call barred",
    21: "Short message transfer rejected",
    27: "Destination out of order",
    38: "Network out of order",
    41: "Temporary failure",
    42: "Congestion",
    47: "Resources unavailable, unspecified",
    50: "Requested facility not subscribed",
    69: "Requested facility not implemented",
    111: "Protocol error, unspecified",
    300: "ME failure",
    302: "operation not allowed",
    303: "operation not supported",
    304: "invalid PDU mode parameter",
    305: "invalid text mode parameter",
    310: "SIM not inserted",
    314: "SIM busy",
    320: "memory failure",
    321: "invalid memory index",
    322: "memory full",
    330: "SMSC address unknown",
    331: "no network service",
    340: "no +CNMA acknowledgement expected",
    500: "unknown error",
}


class ErrorKind(enum.Enum):
    """Which family a failure belongs to."""

    PLAIN = "ERROR"
    CME = "+CME ERROR"
    CMS = "+CMS ERROR"


class CommandFailed(Exception):
    """A command ended in an error result; never escapes the interpreter."""

    def __init__(self, kind: ErrorKind, code: int | None = None) -> None:
        super().__init__(f"{kind.value}: {code}" if code is not None else kind.value)
        self.kind = kind
        self.code = code

    @classmethod
    def plain(cls) -> CommandFailed:
        """Plain ``ERROR`` (unknown command, syntax error)."""
        return cls(ErrorKind.PLAIN)

    @classmethod
    def cme(cls, code: int) -> CommandFailed:
        """``+CME ERROR: <code>``."""
        return cls(ErrorKind.CME, code)

    @classmethod
    def cms(cls, code: int) -> CommandFailed:
        """``+CMS ERROR: <code>``."""
        return cls(ErrorKind.CMS, code)


def render_error(failure: CommandFailed, cmee: int) -> str:
    """The final result line (without framing) for ``failure`` under ``AT+CMEE=<cmee>``.

    ``AT+CMEE`` governs ``+CME ERROR`` only (TS 27.007 §9.1): with 0 it becomes
    plain ``ERROR``. ``+CMS ERROR`` is a final result code of its own
    (TS 27.005 §3.2.5) and is always reported, numerically unless ``AT+CMEE=2``
    asks for text, as real modules do.
    """
    if failure.kind is ErrorKind.PLAIN or failure.code is None:
        return "ERROR"
    if cmee == 0 and failure.kind is ErrorKind.CME:
        return "ERROR"
    if cmee == 2:
        table = CME_TEXT if failure.kind is ErrorKind.CME else CMS_TEXT
        return f"{failure.kind.value}: {table.get(failure.code, str(failure.code))}"
    return f"{failure.kind.value}: {failure.code}"
