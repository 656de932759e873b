"""AT-layer errors and the meanings of ``+CME ERROR`` / ``+CMS ERROR`` codes.

Codes and meanings are from 3GPP TS 27.007 §9.2 (CME) and TS 27.005 §3.2.5
(CMS). With ``AT+CMEE=2`` modules print the meaning instead of the number;
:func:`cme_code` and :func:`cms_code` map such text back to the number where
the wording is known (case and punctuation ignored).
"""

from __future__ import annotations

import re

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

CMS_MEANINGS: dict[int, str] = {
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


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


_CME_BY_TEXT = {_norm(v): k for k, v in CME_MEANINGS.items()}
_CMS_BY_TEXT = {_norm(v): k for k, v in CMS_MEANINGS.items()}
# Wordings seen from modules that differ from the specification's.
_CMS_BY_TEXT.update({_norm("unknown"): 500, _norm("invalid memory index"): 321})


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
