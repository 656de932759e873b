"""What the emulated modem does with the bytes the TE writes: command lines and the SMS prompt.

:class:`LineInput` is byte-driven, so any chunking of the same input gives the
same output (the framing rules are in :mod:`hostsim.modem.interpreter`):

* In command mode a line ends with ``S3`` (``\\r``); ``\\n`` is ignored,
  backspace (the character in ``S5``, 0x08 by default) erases; ``A/`` (V.250
  §5.2.4, any case, with no ``AT`` before it on the line) repeats the last
  command line at once, without ``S3`` (before any line: the empty one,
  ``OK``); past :data:`MAX_LINE` characters the line is refused (``ERROR``)
  once its ``S3`` arrives; a line without ``AT`` gets no answer. Commands of
  one line run in order through the modem's handler table; the first failure
  ends the line, and so does a command without a handler (answered as the
  persona answers an absent command); ``AT+CMGS``/``AT+CMGW`` end it with the
  prompt.
* In the SMS prompt Ctrl-Z sends (the modem decides what then), ESC cancels
  (``OK``), ``\\r`` is part of the body (a line break in the message) and
  re-prompts, a ``\\n`` right after the prompt is dropped, backspace (``S5``)
  erases the last character of the body (nothing when the body is empty; the
  backspace is echoed like any byte), other bytes are echoed when echo is on.
  Sources: 27.005 §3.5.1 (``<CR>`` gives a new prompt, Ctrl-Z sends, ESC
  cancels); Telit LE910C / ML865 AT manuals, ``+CMGS``/``+CMGW`` (backspace
  deletes the last character entered). DEL (0x7F) is not an editing
  character: under ``AT+CSCS="GSM"`` it is the character ``à`` (GSM 03.38), so
  it stays in the body. (Old Siemens MC35 firmware stored backspace as a
  character; the modules of our personas edit.)
"""

from __future__ import annotations

import enum
import logging
from typing import TYPE_CHECKING

from hostsim.modem.atparse import SyntaxFailure, parse_commands
from hostsim.modem.results import CommandFailed
from hostsim.modem.submit import PendingSubmit, SmsPrompt

if TYPE_CHECKING:
    from hostsim.modem.interpreter import EmulatedModem

LOGGER = logging.getLogger(__name__)

#: Longest command line accepted (characters after which the line is refused).
MAX_LINE = 1024

CTRL_Z = 0x1A
ESC = 0x1B
#: The default of ``S5``, the command-line editing character.
BACKSPACE = 0x08


class InputState(enum.Enum):
    """What the modem does with the next byte."""

    COMMAND = "command"
    SMS_PROMPT = "sms-prompt"


class LineInput:
    """The TE-facing input of ``modem``: one byte at a time, never raising."""

    def __init__(self, modem: EmulatedModem) -> None:
        self._modem = modem
        self.state = InputState.COMMAND
        self._line = bytearray()
        self._line_overflow = False
        self._prompt = SmsPrompt()
        #: A command line (or the send after Ctrl-Z) is being executed: URCs wait.
        self.busy = False
        #: The body (after ``AT``) of the last command line run, for ``A/``.
        self._last_body = ""

    def byte(self, byte: int) -> None:
        """Process one byte from the TE."""
        if self.state is InputState.SMS_PROMPT:
            self._prompt_byte(byte)
        else:
            self._command_byte(byte)

    def begin_submit(self, submit: PendingSubmit) -> None:
        """Enter the SMS prompt for ``submit`` (the prompt itself is written after the line)."""
        self._prompt.begin(submit)
        self.state = InputState.SMS_PROMPT

    def forget(self) -> None:
        """Drop a half-typed command line or SMS body (a reboot): back to command mode."""
        self.state = InputState.COMMAND
        self._line.clear()
        self._line_overflow = False
        self._prompt.leave()

    def _command_byte(self, byte: int) -> None:
        modem = self._modem
        if modem.echoing:
            modem.output.raw(byte)
        if byte == modem.s_registers[3]:
            line = bytes(self._line)
            overflow = self._line_overflow
            self._line.clear()
            self._line_overflow = False
            self._run_line(line, overflow)
        elif byte == 0x0A:
            return
        elif byte == modem.s_registers.get(5, BACKSPACE):
            if self._line:
                self._line.pop()
        elif byte == ord("/") and self._repeat_asked():
            self._line.clear()
            self._line_overflow = False
            LOGGER.debug("A/: repeating %r", self._last_body)
            self._run_body(self._last_body)
            modem.after_line()
        elif len(self._line) < MAX_LINE:
            self._line.append(byte)
        else:
            self._line_overflow = True

    def _repeat_asked(self) -> bool:
        """The line so far ends in ``A`` (so ``/`` makes ``A/``) and has no ``AT`` before it."""
        line = bytes(self._line).upper()
        return line.endswith(b"A") and b"AT" not in line

    def _run_line(self, raw: bytes, overflow: bool) -> None:
        text = raw.decode("latin-1")
        start = text.upper().find("AT")
        if start < 0:
            if text.strip():
                LOGGER.debug("ignoring line without AT prefix: %r", raw)
            return
        LOGGER.debug("command line %r", raw)
        if overflow:
            self._modem.output.final("ERROR")
        else:
            self._last_body = text[start + 2 :]
            self._run_body(self._last_body)
        self._modem.after_line()

    def _run_body(self, body: str) -> None:
        """Execute a command line's ``body`` (after ``AT``); URCs wait meanwhile."""
        self.busy = True
        try:
            self._execute(body)
        finally:
            self.busy = False

    def _execute(self, body: str) -> None:
        modem = self._modem
        try:
            invocations = parse_commands(body)
        except SyntaxFailure as exc:
            LOGGER.debug("syntax error: %s", exc)
            modem.output.final("ERROR")
            return
        for invocation in invocations:
            handler = modem.handlers.get(invocation.name)
            if handler is None:
                LOGGER.debug("unknown command %s", invocation.name)
                modem.fail(modem.absent(invocation.name))
                return
            try:
                lines = handler(modem, invocation)
            except CommandFailed as failure:
                modem.fail(failure)
                return
            except Exception:
                LOGGER.exception("handler for %s failed", invocation.name)
                modem.output.final("ERROR")
                return
            modem.output.info(lines)
            if self.state is InputState.SMS_PROMPT:
                modem.output.prompt()
                return
        modem.output.final("OK")

    def _prompt_byte(self, byte: int) -> None:
        modem = self._modem
        if byte == CTRL_Z:
            self.state = InputState.COMMAND
            self.busy = True
            try:
                modem.submit(*self._prompt.leave())
            finally:
                self.busy = False
            modem.after_line()
        elif byte == ESC:
            self.state = InputState.COMMAND
            self._prompt.leave()
            modem.output.final("OK")
            modem.after_line()
        elif byte == 0x0D:
            self._prompt.append(byte)
            modem.output.prompt()
        elif byte == 0x0A and self._prompt.empty:
            return
        elif byte == modem.s_registers.get(5, BACKSPACE):
            if modem.echoing:
                modem.output.raw(byte)
            self._prompt.erase()
        else:
            if modem.echoing:
                modem.output.raw(byte)
            self._prompt.append(byte)
