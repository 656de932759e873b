"""AT-layer errors and the meanings of ``+CME ERROR`` / ``+CMS ERROR`` codes.

Codes and meanings are from 3GPP TS 27.007 §9.2 (CME) and TS 27.005 §3.2.5
(CMS). A ``+CMS ERROR`` of 0…127 is the RP-cause the network answered (TS 24.011
§8.2.5.4 Table 8.4 part 1, named in Annex E.2), 128…255 the TP-Failure-Cause of the
service centre (TS 23.040 §9.2.3.22). With ``AT+CMEE=2`` modules print the meaning
instead of the number; :func:`cme_code` and :func:`cms_code` map such text back to
the number where the wording is known (case and punctuation ignored).

:data:`PERMANENT_CMS` are the causes after which sending the same SMS again cannot
succeed (the destination, the subscription or the message itself is refused); every
other cause may be temporary.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from device.errors import SmscmdError

CME_MEANINGS: dict[int, str] = {
    0: "phone failure",
    1: "no connection to phone",
    2: "phone-adaptor link reserved",
    3: "operation not allowed",
    4: "operation not supported",
    5: "PH-SIM PIN required",
    6: "PH-FSIM PIN required",
    7: "PH-FSIM PUK required",
    10: "SIM not inserted",
    11: "SIM PIN required",
    12: "SIM PUK required",
    13: "SIM failure",
    14: "SIM busy",
    15: "SIM wrong",
    16: "incorrect password",
    17: "SIM PIN2 required",
    18: "SIM PUK2 required",
    20: "memory full",
    21: "invalid index",
    22: "not found",
    23: "memory failure",
    24: "text string too long",
    25: "invalid characters in text string",
    26: "dial string too long",
    27: "invalid characters in dial string",
    30: "no network service",
    31: "network timeout",
    32: "network not allowed - emergency calls only",
    40: "network personalization PIN required",
    100: "unknown",
}

#: RP-causes of a mobile originating SM-transfer: TS 24.011 Annex E.2 names (§8.2.5.4
#: Table 8.4 part 1 lists the same numbers; its other wordings are in _CMS_BY_TEXT).
RP_CAUSES: dict[int, str] = {
    1: "unassigned (unallocated) number",
    8: "operator determined barring",
    10: "call barred",
    11: "reserved",
    21: "short message transfer rejected",
    27: "destination out of service",
    28: "unidentified subscriber",
    29: "facility rejected",
    30: "unknown subscriber",
    38: "network out of order",
    41: "temporary failure",
    42: "congestion",
    47: "resources unavailable, unspecified",
    50: "requested facility not subscribed",
    69: "requested facility not implemented",
    81: "invalid short message transfer reference value",
    95: "invalid message, unspecified",
    96: "invalid mandatory information",
    97: "message type non-existent or not implemented",
    98: "message not compatible with short message protocol state",
    99: "information element non-existent or not implemented",
    111: "protocol error, unspecified",
    127: "interworking, unspecified",
}

#: TP-Failure-Cause values, TS 23.040 §9.2.3.22 (the reserved and application-specific
#: ranges have no name).
TP_FAILURE_CAUSES: dict[int, str] = {
    0x80: "telematic interworking not supported",
    0x81: "short message type 0 not supported",
    0x82: "cannot replace short message",
    0x8F: "unspecified TP-PID error",
    0x90: "data coding scheme (alphabet) not supported",
    0x91: "message class not supported",
    0x9F: "unspecified TP-DCS error",
    0xA0: "command cannot be actioned",
    0xA1: "command unsupported",
    0xAF: "unspecified TP-Command error",
    0xB0: "TPDU not supported",
    0xC0: "SC busy",
    0xC1: "no SC subscription",
    0xC2: "SC system failure",
    0xC3: "invalid SME address",
    0xC4: "destination SME barred",
    0xC5: "SM rejected-duplicate SM",
    0xC6: "TP-VPF not supported",
    0xC7: "TP-VP not supported",
    0xD0: "(U)SIM SMS storage full",
    0xD1: "no SMS storage capability in (U)SIM",
    0xD2: "error in MS",
    0xD3: "memory capacity exceeded",
    0xD4: "(U)SIM Application Toolkit busy",
    0xD5: "(U)SIM data download error",
    0xFF: "unspecified error cause",
}

CMS_MEANINGS: dict[int, str] = {
    **RP_CAUSES,
    **TP_FAILURE_CAUSES,
    300: "ME failure",
    301: "SMS service of ME reserved",
    302: "operation not allowed",
    303: "operation not supported",
    304: "invalid PDU mode parameter",
    305: "invalid text mode parameter",
    310: "SIM not inserted",
    311: "SIM PIN required",
    312: "PH-SIM PIN required",
    313: "SIM failure",
    314: "SIM busy",
    315: "SIM wrong",
    316: "SIM PUK required",
    317: "SIM PIN2 required",
    318: "SIM PUK2 required",
    320: "memory failure",
    321: "invalid memory index",
    322: "memory full",
    330: "SMSC address unknown",
    331: "no network service",
    332: "network timeout",
    340: "no +CNMA acknowledgement expected",
    500: "unknown error",
}

#: Codes meaning "not ready yet, try again shortly" (SIM still initialising).
BUSY_CME = frozenset({14})
BUSY_CMS = frozenset({314})

#: RP-causes that are temporary: 38, 41, 42 and 47, the causes TS 24.011 Table 8.4
#: (part 3) types "T" (its other causes are "P", permanent). Table 8.4 part 1 has an
#: RP-cause it does not list treated as 41, temporary failure; "reserved" (11) is kept
#: temporary too, as it names nothing.
TEMPORARY_RP = frozenset({11, 38, 41, 42, 47})
#: TP-Failure-Causes about the service centre's state rather than the message (SC busy,
#: SC system failure), those of the receiving side only (0xD0…0xD5: an MO submit does
#: not get them) and the unspecified one: not known to be permanent.
TEMPORARY_TP = frozenset({0xC0, 0xC2, 0xD0, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5, 0xFF})
#: ``+CMS ERROR`` codes after which the same SMS cannot go out: the named RP-causes and
#: TP-Failure-Causes but the temporary ones (unnamed values are not known to be permanent).
PERMANENT_CMS = frozenset((set(RP_CAUSES) - TEMPORARY_RP) | (set(TP_FAILURE_CAUSES) - TEMPORARY_TP))


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


_CME_BY_TEXT = {_norm(v): k for k, v in CME_MEANINGS.items()}
_CMS_BY_TEXT = {_norm(v): k for k, v in CMS_MEANINGS.items()}
# Wordings seen from modules that differ from the specification's.
_CMS_BY_TEXT.update({_norm("unknown"): 500, _norm("invalid memory index"): 321})
# TS 24.011 Table 8.4's wordings where Annex E.2 words a cause otherwise, and the
# shorter forms some modules print.
_CMS_BY_TEXT.update(
    {
        _norm("unassigned number"): 1,
        _norm("unallocated number"): 1,
        _norm("destination out of order"): 27,
        _norm("semantically incorrect message"): 95,
        _norm("resources unavailable"): 47,
    }
)


def cme_code(text: str) -> int | None:
    """Code for a verbose ``+CME ERROR`` text, or None when the wording is unknown."""
    return _CME_BY_TEXT.get(_norm(text))


def cms_code(text: str) -> int | None:
    """Code for a verbose ``+CMS ERROR`` text, or None when the wording is unknown."""
    return _CMS_BY_TEXT.get(_norm(text))


class ModemError(SmscmdError):
    """Anything that went wrong talking to the modem."""


class CommandError(ModemError):
    """The modem ended a command with an error result.

    ``code`` is the numeric code when known (None for plain ``ERROR`` or an
    unknown verbose text); ``meaning`` is the human text.
    """

    kind = "ERROR"

    def __init__(self, command: str, code: int | None, meaning: str) -> None:
        self.command = command
        self.code = code
        self.meaning = meaning
        shown = f"{self.kind} {code}" if code is not None else self.kind
        super().__init__(f"{command!r} failed: {shown} ({meaning})")

    @property
    def busy(self) -> bool:
        """True when the error says the module or SIM is not ready yet."""
        return False


class CmeError(CommandError):
    """``+CME ERROR`` (mobile equipment error, 3GPP TS 27.007)."""

    kind = "+CME ERROR"

    @property
    def busy(self) -> bool:
        return self.code in BUSY_CME


class CmsError(CommandError):
    """``+CMS ERROR`` (SMS service error, 3GPP TS 27.005)."""

    kind = "+CMS ERROR"

    @property
    def busy(self) -> bool:
        return self.code in BUSY_CMS


class CommandTimeout(ModemError):
    """No final result code arrived within the command's timeout."""

    def __init__(self, command: str, timeout: float) -> None:
        self.command = command
        self.timeout = timeout
        super().__init__(f"{command!r}: no final result within {timeout:g} s")


class SmsInputCancelled(ModemError):
    """The module was waiting for SMS text (a send interrupted by a crash); the
    command in flight went into that text, and the SMS was cancelled with ESC."""


class ConnectionLost(ModemError):
    """The serial port closed or failed (unplugged, removed, I/O error)."""


class ResponseError(ModemError):
    """A response arrived but its content is not what the command's syntax allows."""


class ResponseDamaged(ResponseError):
    """The command ended, but a line of its response was lost on the way: it was
    longer than the codec's bound (``max_line``), so it was dropped unread.

    ``lines`` are the information lines that did arrive, in order; ``dropped`` the
    first bytes of each line that was lost; ``final`` the final result's text. What
    the lines say cannot be trusted to be the whole answer (a ``+CMGR`` header
    without its body, a listing with one message's body missing).
    """

    def __init__(self, command: str, lines: tuple[str, ...], dropped: tuple[bytes, ...],
                 final: str) -> None:  # fmt: skip
        self.command = command
        self.lines = lines
        self.dropped = dropped
        self.final = final
        super().__init__(
            f"{command!r}: {len(dropped)} over-long line(s) of the response dropped "
            f"(first: {dropped[0][:32]!r}…), {len(lines)} line(s) read, then {final!r}"
        )


@contextmanager
def shown_as(command: str, shown: str) -> Iterator[None]:
    """Inside the block, a :class:`CommandError` or :class:`CommandTimeout` of ``command``
    names it ``shown`` instead (the same type, code, meaning and timeout), so that a log
    line or a journal row shows, say, ``AT+CMGS="000"`` rather than the UCS2 hex on the
    wire. Errors of other commands, and other errors, pass unchanged."""
    try:
        yield
    except CommandError as exc:
        if exc.command != command:
            raise
        raise type(exc)(shown, exc.code, exc.meaning).with_traceback(exc.__traceback__) from None
    except CommandTimeout as exc:
        if exc.command != command:
            raise
        raise CommandTimeout(shown, exc.timeout).with_traceback(exc.__traceback__) from None
