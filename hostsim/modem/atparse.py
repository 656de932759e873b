"""Parsing one AT command line (the part after ``AT``) into invocations (V.250 §5.3).

``E0V1+CMGF=1;+CNMI=2,1`` gives ``E`` (set 0), ``V`` (set 1), ``+CMGF`` (set 1),
``+CNMI`` (set 2,1). Names are upper-cased; parameters keep their case.

Edge cases:

* Spaces outside double quotes are ignored (V.250); inside quotes they are kept.
* An empty parameter (``AT+CMGD=,4``) is None; ``"…"`` gives a quoted param.
* An unterminated quote, an empty extended name or junk after a read/test
  form is a syntax error: :class:`SyntaxFailure`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

#: Characters that start an extended command name (``+CMGF``, ``$QCSIMSTAT``, ``^SYSINFO``…).
EXTENDED_PREFIXES = "+$^#%*"


class SyntaxFailure(ValueError):
    """The command line cannot be parsed."""


class Form(enum.Enum):
    """How a command is invoked."""

    EXEC = "exec"  # AT+CGMI, ATZ
    READ = "read"  # AT+CMGF?
    TEST = "test"  # AT+CMGF=?
    SET = "set"  # AT+CMGF=1, ATE0


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter value; ``quoted`` tells ``"1"`` from ``1``."""

    text: str
    quoted: bool = False


@dataclass(frozen=True, slots=True)
class Invocation:
    """One command of a command line."""

    name: str
    form: Form
    params: tuple[Param | None, ...] = ()


def _strip_spaces(line: str) -> str:
    out: list[str] = []
    in_quotes = False
    for ch in line:
        if ch == '"':
            in_quotes = not in_quotes
        if ch == " " and not in_quotes:
            continue
        out.append(ch)
    if in_quotes:
        raise SyntaxFailure("unterminated string")
    return "".join(out)


def split_params(text: str) -> tuple[Param | None, ...]:
    """Comma-separated parameters; commas inside quotes do not split."""
    items: list[str] = []
    current: list[str] = []
    in_quotes = False
    for ch in text:
        if ch == '"':
            in_quotes = not in_quotes
        if ch == "," and not in_quotes:
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    items.append("".join(current))
    params: list[Param | None] = []
    for item in items:
        if not item:
            params.append(None)
        elif len(item) >= 2 and item[0] == '"' and item[-1] == '"' and item.count('"') == 2:
            params.append(Param(item[1:-1], quoted=True))
        elif '"' in item:
            raise SyntaxFailure(f"misplaced quote in {item!r}")
        else:
            params.append(Param(item))
    return tuple(params)


def _until_semicolon(line: str, start: int) -> int:
    in_quotes = False
    i = start
    while i < len(line):
        ch = line[i]
        if ch == '"':
            in_quotes = not in_quotes
        elif ch == ";" and not in_quotes:
            return i
        i += 1
    return i


def parse_commands(line: str) -> list[Invocation]:
    """Invocations of a command line body (``AT`` already removed)."""
    line = _strip_spaces(line)
    result: list[Invocation] = []
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == ";":
            i += 1
            continue
        if ch in EXTENDED_PREFIXES:
            invocation, i = _extended(line, i)
        elif ch in "Ss":
            invocation, i = _s_register(line, i)
        else:
            invocation, i = _basic(line, i)
        result.append(invocation)
    return result


def _extended(line: str, i: int) -> tuple[Invocation, int]:
    """``+NAME``, ``+NAME?``, ``+NAME=?`` or ``+NAME=params`` at ``i``; and where it ends."""
    j = i + 1
    while j < len(line) and line[j].isascii() and line[j].isalnum():
        j += 1
    if j == i + 1:
        raise SyntaxFailure("empty extended command name")
    name = line[i:j].upper()
    rest = line[j:]
    params: tuple[Param | None, ...] = ()
    if rest.startswith("=?"):
        form, j = Form.TEST, j + 2
    elif rest.startswith("?"):
        form, j = Form.READ, j + 1
    elif rest.startswith("="):
        end = _until_semicolon(line, j + 1)
        form, params, j = Form.SET, split_params(line[j + 1 : end]), end
    else:
        form = Form.EXEC
    if j < len(line) and line[j] != ";":
        raise SyntaxFailure(f"unexpected {line[j]!r} after {name}")
    return Invocation(name, form, params), j


def _s_register(line: str, i: int) -> tuple[Invocation, int]:
    """An S-parameter (V.250 §5.3) at ``i``: ``Sn?`` reads, ``Sn=v`` sets."""
    j = i + 1
    while j < len(line) and line[j].isdigit():
        j += 1
    if j == i + 1:
        raise SyntaxFailure("S without a register number")
    register = Param(line[i + 1 : j])
    if line[j : j + 1] == "?":
        return Invocation("S", Form.READ, (register,)), j + 1
    if line[j : j + 1] == "=":
        k = j + 1
        while k < len(line) and line[k].isdigit():
            k += 1
        return Invocation("S", Form.SET, (register, Param(line[j + 1 : k]))), k
    raise SyntaxFailure("S register without ? or =")


def _basic(line: str, i: int) -> tuple[Invocation, int]:
    """A basic command at ``i``: ``[&]letter[digits]``, e.g. ``E0``, ``Z``, ``I``, ``&F``."""
    ch = line[i]
    j = i + 1 if ch != "&" else i + 2
    if j > len(line) or not line[j - 1].isascii() or not line[j - 1].isalpha():
        raise SyntaxFailure(f"unexpected {ch!r}")
    name = line[i:j].upper()
    k = j
    while k < len(line) and line[k].isdigit():
        k += 1
    if k > j:
        return Invocation(name, Form.SET, (Param(line[j:k]),)), k
    return Invocation(name, Form.EXEC), k
