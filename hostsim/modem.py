"""A sans-IO emulated cellular modem: bytes in, bytes out (27.005 / 27.007, text and PDU mode).

:class:`EmulatedModem` owns no file, socket or event loop. The caller feeds the
bytes the TE wrote (:meth:`EmulatedModem.feed`) and writes back what
:meth:`EmulatedModem.data_to_send` returns. Processing is byte by byte, so any
chunking of the same input gives the same output.

Framing (V.250 / 27.007):

* A command line ends with ``\\r``; ``\\n`` is ignored; backspace (0x08) erases
  the last character. Characters before the ``AT`` prefix (any case) are
  ignored; a line without ``AT`` gets no answer at all. A line longer than
  :data:`MAX_LINE` is answered ``ERROR`` once its ``\\r`` arrives.
* Echo (``ATE1``, the default) repeats every received byte as it arrives.
* Responses use ATV1 framing: ``\\r\\n<line>[\\r\\n<line>…]\\r\\n`` per command,
  then ``\\r\\nOK\\r\\n`` or an error per ``AT+CMEE`` (:mod:`hostsim.results`).
  Commands of one line run in order; the first failure ends the line.
* ``AT+CMGS`` enters the SMS prompt (``\\r\\n> ``); commands after it on the
  same line are discarded. In PDU mode (``AT+CMGS=<length>``) the body is the
  hex PDU (see :mod:`hostsim.pdumode`); a malformed one, one that is not an
  SMS-SUBMIT or whose TPDU is not ``<length>`` octets is ``+CMS ERROR: 304``.
  In the prompt, Ctrl-Z sends, ESC cancels (``OK``), ``\\r`` is part of the
  text and re-prompts, a ``\\n`` right after the prompt is dropped (it is the
  tail of a ``\\r\\n``-terminated command line), other bytes are echoed when
  echo is on.
* Unsolicited result codes are emitted at once, except while in the SMS
  prompt or with ``AT+CNMI`` mode 0: then they are held (at most
  :data:`MAX_HELD_URCS`, oldest dropped) and flushed after the final result /
  when a mode other than 0 is selected (``<bfr>`` 1 discards them instead).

Nothing raised by a handler escapes :meth:`EmulatedModem.feed`: an unexpected
exception is logged and answered ``ERROR``.
"""

from __future__ import annotations

import enum
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from device.errors import SmsFormatError
from device.sms import gsm7
from device.sms.charset import Charset, from_wire
from device.sms.pdu import Concat, Encoding, PduError, split_for_concat
from hostsim import commands, pdumode, smscommands
from hostsim.atparse import Invocation, SyntaxFailure, parse_commands
from hostsim.faults import INVALID_CMTI_KINDS, FaultPlan, flood_lines
from hostsim.results import CommandFailed, render_error
from hostsim.settings import MessageMode, ModemConfig, RegStat, Settings
from hostsim.storage import MessageStorage, Status, StoredMessage
from hostsim.textmode import TextFormat, cmt_lines, quoted

LOGGER = logging.getLogger(__name__)

#: Returned by :meth:`EmulatedModem.deliver_sms` for a ``+CMT`` direct delivery (nothing stored).
DIRECT_DELIVERY = -1
#: Longest command line accepted (characters after which the line is refused).
MAX_LINE = 1024
#: Longest SMS body accepted in the prompt, in bytes (UCS2 hex of 70 chars is 280).
MAX_BODY = 1024
#: Most unsolicited result codes held while they cannot be emitted.
MAX_HELD_URCS = 64

CTRL_Z = 0x1A
ESC = 0x1B
BACKSPACE = 0x08


class InputState(enum.Enum):
    """What the modem does with the next byte."""

    COMMAND = "command"
    SMS_PROMPT = "sms-prompt"


@dataclass(frozen=True, slots=True)
class SentSms:
    """A message the TE sent with ``AT+CMGS`` (``reference`` is the ``<mr>``)."""

    destination: str
    text: str
    reference: int
    timestamp: datetime
    dcs: int = 0
    #: The concatenation header of a PDU-mode submit, None otherwise.
    concat: Concat | None = None


@dataclass(frozen=True, slots=True)
class _PendingSubmit:
    destination: str
    #: ``<length>`` of a PDU-mode ``AT+CMGS`` (then ``destination`` is empty).
    pdu_length: int | None = None


Handler = Callable[["EmulatedModem", Invocation], list[str]]


class EmulatedModem:
    """One emulated module with its SIM storage (see the module docstring for framing).

    Read access for tests: :attr:`settings`, :attr:`storages`, :attr:`sent`,
    :attr:`state`. ``on_change`` is called (exceptions logged, never raised)
    after every processed command line, SMS send/cancel, delivery and
    registration change.
    """

    def __init__(
        self,
        config: ModemConfig | None = None,
        *,
        on_change: Callable[[], None] | None = None,
        faults: FaultPlan | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config: ModemConfig = config if config is not None else ModemConfig()
        #: Persistent faults (:mod:`hostsim.faults`); replace at any time.
        self.faults: FaultPlan = faults if faults is not None else FaultPlan()
        #: Every random fault decision comes from here (seed it for reproducibility).
        self.rng: random.Random = rng if rng is not None else random.Random()
        self._announced: dict[str, set[int]] = {}
        self.on_change = on_change
        self.settings: Settings = self.config.defaults
        self.storages: dict[str, MessageStorage] = {
            name: MessageStorage(name, capacity, self.config.index_base)
            for name, capacity in self.config.storages
        }
        self.sent: list[SentSms] = []
        self.reg_stat: RegStat = self.config.reg_stat
        #: False makes SIM-dependent commands fail with "SIM busy" (CME 14 / CMS 314).
        self.sim_ready = True
        self._state = InputState.COMMAND
        self._line = bytearray()
        self._line_overflow = False
        self._body = bytearray()
        self._body_overflow = False
        self._submit: _PendingSubmit | None = None
        self._out = bytearray()
        self._held: list[bytes] = []
        self._next_mr = 0
        self._next_concat_reference = 0
        #: V.250 S-registers (S3 line end, S4 response formatting, S5 backspace …).
        self.s_registers: dict[int, int] = {0: 0, 3: 13, 4: 10, 5: 8, 7: 60, 10: 14}
        #: While True the module is hung: input is swallowed, nothing is answered.
        self.hung = False
        #: Bytes from the TE ignored while hung (a change is reported for each feed).
        self.swallowed = 0
        self._send_faults: list[tuple[int, bool]] = []
        #: The network's say on each SMS sent: None accepts it, a number refuses
        #: it with that +CMS ERROR code (set by hostsim.network).
        self.submit_hook: Callable[[str, str], int | None] | None = None
        self._handlers: dict[str, Handler] = {**commands.HANDLERS, **smscommands.HANDLERS}

    # ------------------------------------------------------------------ public API

    @property
    def state(self) -> InputState:
        """COMMAND, or SMS_PROMPT between ``AT+CMGS`` and Ctrl-Z / ESC."""
        return self._state

    def feed(self, data: bytes) -> None:
        """Process bytes from the TE; never raises. Output accumulates for :meth:`data_to_send`."""
        if data:
            LOGGER.debug("TE -> modem %r", data)
        if self.hung:
            LOGGER.debug("hung: %d bytes ignored", len(data))
            if data:
                self.swallowed += len(data)
                self._changed()
            return
        for byte in data:
            if self._state is InputState.SMS_PROMPT:
                self._prompt_byte(byte)
            else:
                self._command_byte(byte)

    def data_to_send(self) -> bytes:
        """Drain and return the pending output (empty when there is none)."""
        out = bytes(self._out)
        self._out.clear()
        if out:
            LOGGER.debug("modem -> TE %r", out)
        return out

    def deliver_sms(
        self, sender: str, text: str, *, timestamp: datetime | None = None
    ) -> int | None:
        """A message arrives from the network.

        Stored in the CPMS ``<mem3>`` memory with status REC UNREAD and announced
        per ``AT+CNMI`` ``<mt>``: 0 silently, 1 and 3 ``+CMTI: "<mem>",<index>``.
        With ``<mt>`` 2 it is shown as ``+CMT:`` (text or PDU per ``AT+CMGF``)
        and not stored: returns :data:`DIRECT_DELIVERY`. Returns None, with no
        indication, when the memory is full (the network would retry later). A
        text outside GSM 03.38 is stored with DCS 8 (UCS2). The default
        timestamp is now, in UTC, to the second.

        The text is not checked against one SMS: a longer one reads fine in text
        mode, but in PDU mode reading it fails (``+CMS ERROR: 300``) as it has
        no PDU; use :meth:`deliver_concatenated` for long texts.
        """
        when = timestamp if timestamp is not None else datetime.now(UTC).replace(microsecond=0)
        message = StoredMessage(Status.REC_UNREAD, sender, text, when, _dcs_for(text))
        return self._deliver(message)

    def deliver_concatenated(
        self,
        sender: str,
        text: str,
        *,
        order: Sequence[int] | None = None,
        reference: int | None = None,
        timestamp: datetime | None = None,
    ) -> list[int | None]:
        """A long message arrives as concatenated parts (TS 23.040 §9.2.3.24.1).

        ``text`` is cut with :func:`device.sms.pdu.split_for_concat` (GSM 7-bit
        when every character is in GSM 03.38, else UCS2); each part is then
        delivered like :meth:`deliver_sms` (stored and announced with its own
        ``+CMTI``, or shown with ``+CMT``) in ``order``: 0-based part numbers,
        e.g. ``[2, 0, 1]``, which may repeat a part (a duplicate) or leave one
        out (default: every part in order). Even a short text gets a header
        (one part of one). ``reference`` (0–65535; above 255 selects the 16-bit
        element) defaults to a per-modem counter. Returns each delivery's
        result in delivery order.

        ValueError, before anything is delivered, for an order naming a part
        that does not exist, a bad reference, or a sender or text that cannot be
        a PDU (e.g. an alphanumeric sender over 11 characters).
        """
        when = timestamp if timestamp is not None else datetime.now(UTC).replace(microsecond=0)
        if reference is None:
            reference = self._next_concat_reference
            self._next_concat_reference = (reference + 1) % 256
        if not 0 <= reference <= 0xFFFF:
            raise ValueError(f"concat reference {reference} is out of range 0-65535")
        dcs = _dcs_for(text)
        encoding = Encoding.GSM7 if dcs == 0 else Encoding.UCS2
        messages: list[StoredMessage] = []
        for part, concat in split_for_concat(text, reference, encoding=encoding):
            assert isinstance(part, str)  # a str is cut into str parts
            message = StoredMessage(Status.REC_UNREAD, sender, part, when, dcs, concat)
            pdumode.render(message, self.config.smsc)  # PduError (a ValueError) now, not later
            messages.append(message)
        sequence = list(range(len(messages))) if order is None else list(order)
        for number in sequence:
            if not 0 <= number < len(messages):
                raise ValueError(f"order names part {number}; the text has {len(messages)} parts")
        return [self._deliver(messages[number]) for number in sequence]

    def _deliver(self, message: StoredMessage) -> int | None:
        cnmi = self.settings.cnmi
        if cnmi.mt == 2:
            lines = self._cmt_lines(message)
            if lines is not None:
                self._urc(lines)
                self._changed()
                return DIRECT_DELIVERY
        mem = self.settings.cpms[2]
        index = self.storages[mem].store(message)
        if index is None:
            LOGGER.debug("memory %s full: message from %s not stored", mem, message.address)
            return None  # nothing changed: no change notification
        self._announced.setdefault(mem, set()).add(index)
        if cnmi.mt in (1, 3):
            self._urc([f"+CMTI: {quoted(mem)},{index}"])
            if self.faults.invalid_cmti:
                self._urc([self._invalid_cmti(mem)])
        self._changed()
        return index

    def _cmt_lines(self, message: StoredMessage) -> list[str] | None:
        """``+CMT`` lines in the current mode; None when there is no PDU for it (stored instead)."""
        if self.settings.cmgf is MessageMode.TEXT:
            return cmt_lines(message, self.text_format())
        try:
            return pdumode.cmt_lines(message, self.config.smsc)
        except PduError as exc:
            LOGGER.warning("no PDU for the message from %s (%s): stored", message.address, exc)
            return None

    def set_registration(self, stat: RegStat) -> None:
        """Change the network registration; emits ``+CREG``/``+CEREG`` URCs per their ``<n>``."""
        self.reg_stat = stat
        if self.settings.creg:
            self._urc([f"+CREG: {int(stat)}"])
        if self.settings.cereg:
            self._urc([f"+CEREG: {int(stat)}"])
        self._changed()

    @property
    def registered(self) -> bool:
        """Registered to a network (home or roaming): SMS can be delivered."""
        return self.reg_stat in (RegStat.HOME, RegStat.ROAMING)

    def reset_settings(self) -> None:
        """Restore the configured defaults (``ATZ``); stored messages survive."""
        self.settings = self.config.defaults

    def reboot(self, *, not_ready: bool = False) -> None:
        """A silent module restart: settings back to defaults, a half-typed
        command or SMS body forgotten, held indications lost, then the boot
        banner (:attr:`ModemConfig.boot_banner`). Stored messages survive.

        With ``not_ready`` only the banner's first line (``RDY``) comes now and
        the SIM stays busy (:attr:`sim_ready` False: CME 14 / CMS 314) until
        :meth:`become_ready` prints the rest.
        """
        self.reset_settings()
        self._state = InputState.COMMAND
        self._line.clear()
        self._line_overflow = False
        self._body.clear()
        self._body_overflow = False
        self._submit = None
        self._held.clear()
        banner = self.config.boot_banner[:1] if not_ready else self.config.boot_banner
        if not_ready:
            self.sim_ready = False
        for line in banner:
            self._out += self._frame([line])
        self._changed()

    def become_ready(self) -> None:
        """The SIM and SMS are ready again after :meth:`reboot` ``(not_ready=True)``:
        the rest of the boot banner follows. Nothing happens when already ready."""
        if self.sim_ready:
            return
        self.sim_ready = True
        for line in self.config.boot_banner[1:]:
            self._out += self._frame([line])
        self._changed()

    def inject(self, data: bytes) -> None:
        """Put raw bytes on the line as if the module had sent them (noise, stray codes)."""
        self._out += data
        self._changed()

    def text_format(self) -> TextFormat:
        """The current text-mode rendering settings."""
        return TextFormat(
            charset=self.settings.cscs,
            show_header=self.settings.csdh,
            smsc=self.config.smsc,
            submit_fo=self.settings.csmp.fo,
            submit_vp=self.settings.csmp.vp,
        )

    def begin_submit(self, destination: str, *, pdu_length: int | None = None) -> None:
        """Enter the SMS prompt (called by the ``AT+CMGS`` handler): for ``destination``
        in text mode, for a PDU of ``pdu_length`` TPDU octets in PDU mode."""
        self._submit = _PendingSubmit(destination, pdu_length)
        self._body.clear()
        self._body_overflow = False
        self._state = InputState.SMS_PROMPT

    def cnmi_changed(self) -> None:
        """Flush or drop held URCs after ``AT+CNMI`` selected a mode other than 0."""
        if self.settings.cnmi.mode != 0 and self.settings.cnmi.bfr == 1:
            self._held.clear()

    # ------------------------------------------------------------------ command mode

    @property
    def echoing(self) -> bool:
        """Echo is on (``ATE1``, or stuck on by the ``echo_stuck`` fault)."""
        return self.settings.echo or self.faults.echo_stuck

    def _command_byte(self, byte: int) -> None:
        if self.echoing:
            self._out.append(byte)
        if byte == 0x0D:
            line = bytes(self._line)
            overflow = self._line_overflow
            self._line.clear()
            self._line_overflow = False
            self._run_line(line, overflow)
        elif byte == 0x0A:
            return
        elif byte == BACKSPACE:
            if self._line:
                self._line.pop()
        elif len(self._line) < MAX_LINE:
            self._line.append(byte)
        else:
            self._line_overflow = True

    def _run_line(self, raw: bytes, overflow: bool) -> None:
        text = raw.decode("latin-1")
        start = text.upper().find("AT")
        if start < 0:
            if text.strip():
                LOGGER.debug("ignoring line without AT prefix: %r", raw)
            return
        LOGGER.debug("command line %r", raw)
        if overflow:
            self._final("ERROR")
        else:
            self._execute(text[start + 2 :])
        self._flush_held()
        self._changed()

    def _execute(self, body: str) -> None:
        try:
            invocations = parse_commands(body)
        except SyntaxFailure as exc:
            LOGGER.debug("syntax error: %s", exc)
            self._final("ERROR")
            return
        for invocation in invocations:
            handler = self._handlers.get(invocation.name)
            if handler is None:
                LOGGER.debug("unknown command %s", invocation.name)
                self._final("ERROR")
                return
            try:
                lines = handler(self, invocation)
            except CommandFailed as failure:
                self._final(render_error(failure, self.settings.cmee))
                return
            except Exception:
                LOGGER.exception("handler for %s failed", invocation.name)
                self._final("ERROR")
                return
            self._info(lines)
            if self._state is InputState.SMS_PROMPT:
                self._out += self._eol + b"> "
                return
        self._final("OK")

    # ------------------------------------------------------------------ SMS prompt

    def _prompt_byte(self, byte: int) -> None:
        if byte == CTRL_Z:
            self._finish_submit()
        elif byte == ESC:
            self._leave_prompt()
            self._final("OK")
            self._after_prompt()
        elif byte == 0x0D:
            self._append_body(byte)
            self._out += self._eol + b"> "
        elif byte == 0x0A and not self._body:
            return
        else:
            if self.echoing:
                self._out.append(byte)
            self._append_body(byte)

    def _append_body(self, byte: int) -> None:
        if len(self._body) < MAX_BODY:
            self._body.append(byte)
        else:
            self._body_overflow = True

    def _leave_prompt(self) -> tuple[_PendingSubmit, bytes, bool]:
        pending = self._submit if self._submit is not None else _PendingSubmit("")
        body = bytes(self._body)
        overflow = self._body_overflow
        self._submit = None
        self._body.clear()
        self._body_overflow = False
        self._state = InputState.COMMAND
        return pending, body, overflow

    def _after_prompt(self) -> None:
        self._flush_held()
        self._changed()

    def _finish_submit(self) -> None:
        pending, body, overflow = self._leave_prompt()
        destination = pending.destination
        concat: Concat | None = None
        try:
            if pending.pdu_length is not None:
                if overflow:
                    raise CommandFailed.cms(304)
                submitted = self._decode_pdu_body(body, pending.pdu_length)
                destination, text, dcs = submitted.destination, submitted.text, submitted.dcs
                concat = submitted.concat
            else:
                if overflow:
                    raise CommandFailed.cms(305)
                text, dcs = self._decode_body(body)
        except CommandFailed as failure:
            self._final(render_error(failure, self.settings.cmee))
            self._after_prompt()
            return
        reference = self._next_mr
        self._next_mr = (self._next_mr + 1) % 256
        when = datetime.now(UTC).replace(microsecond=0)
        fault = self._send_faults.pop(0) if self._send_faults else None
        if fault is None and self._send_fault_drawn():
            fault = (500, self.rng.random() < self.faults.sent_anyway)
            LOGGER.info("fault: AT+CMGS answered CMS 500 (sent anyway: %s)", fault[1])
        if (fault is None or fault[1]) and self.submit_hook is not None:
            # The SMS reaches the network (also when the module then reports an
            # error although it went out): the network may still refuse it.
            refusal = self.submit_hook(destination, text)
            if refusal is not None:
                LOGGER.info("SMS to %s refused by the network (CMS %d)", destination, refusal)
                fault = (refusal, False)
        if fault is None or fault[1]:
            self.sent.append(SentSms(destination, text, reference, when, dcs, concat))
            LOGGER.info("SMS to %s sent (mr=%d): %r", destination, reference, text)
        if fault is not None:
            self._final(render_error(CommandFailed.cms(fault[0]), self.settings.cmee))
        else:
            self._info([f"+CMGS: {reference}"])
            self._final("OK")
        self._after_prompt()

    def _send_fault_drawn(self) -> bool:
        """Whether the ``cms_on_send`` fault strikes this send (draws from the rng)."""
        probability = self.faults.cms_on_send
        return probability > 0 and self.rng.random() < probability

    def fail_next_send(self, code: int = 500, *, sent_anyway: bool = False) -> None:
        """Answer the next ``AT+CMGS`` with ``+CMS ERROR: <code>``.

        With ``sent_anyway`` the SMS is recorded as sent all the same, as some
        modules (SIMCom SIM7080G with 500) do. Calls queue up.
        """
        self._send_faults.append((code, sent_anyway))

    @staticmethod
    def _decode_pdu_body(body: bytes, length: int) -> pdumode.Submitted:
        """The SMS-SUBMIT of a PDU-mode prompt body; CMS 304 when it cannot be sent."""
        try:
            return pdumode.decode_submit(body, length)
        except PduError as exc:
            LOGGER.info("SMS PDU refused: %s", exc)
            raise CommandFailed.cms(304) from exc

    def _decode_body(self, body: bytes) -> tuple[str, int]:
        """Text and DCS of a prompt body; CMS 305 when it cannot be sent.

        The body is decoded per ``AT+CSCS``. With ``AT+CSMP`` DCS 8 (UCS2) any
        text of up to 70 UTF-16 units is sent; otherwise every character must be
        in GSM 03.38 and fit 160 septets. (Under ``"GSM"`` an extension-table
        character cannot be typed: its 0x1B escape is ESC, which cancels.)
        """
        charset = self.settings.cscs
        wire = body.decode("latin-1")
        try:
            if charset is Charset.IRA and any(b > 0x7F for b in body):
                raise SmsFormatError("non-ASCII byte under IRA")
            text = from_wire(wire, charset)
        except SmsFormatError as exc:
            LOGGER.info("SMS body refused: %s", exc)
            raise CommandFailed.cms(305) from exc
        if self.settings.csmp.dcs == 8:
            if len(text.encode("utf-16-be", errors="surrogatepass")) > 140:
                raise CommandFailed.cms(305)
            return text, 8
        try:
            septets = gsm7.septet_length(text)
        except SmsFormatError as exc:
            LOGGER.info("SMS body refused: %s", exc)
            raise CommandFailed.cms(305) from exc
        if septets > gsm7.SMS_SEPTETS:
            raise CommandFailed.cms(305)
        return text, 0

    # ------------------------------------------------------------------ output

    @property
    def _eol(self) -> bytes:
        return b"\n" if self.faults.bare_lf else b"\r\n"

    def _frame(self, lines: list[str]) -> bytes:
        """``<eol><line>[<eol><line>…]<eol>`` (empty for no lines)."""
        if not lines:
            return b""
        eol = self._eol.decode("latin-1")
        return (eol + eol.join(lines) + eol).encode("latin-1", "replace")

    def _flood(self) -> None:
        if self.faults.urc_flood:
            self._out += self._frame(flood_lines(self.rng, self.faults.urc_flood))

    def _info(self, lines: list[str]) -> None:
        if not self.faults.urc_flood:
            self._out += self._frame(lines)
            return
        for line in lines:
            self._flood()
            self._out += self._frame([line])

    def _final(self, result: str) -> None:
        self._flood()
        self._out += self._frame([result])

    def _invalid_cmti(self, mem: str) -> str:
        """A bogus ``+CMTI`` line following a real one in ``mem`` (``invalid_cmti`` fault)."""
        storage = self.storages[mem]
        kind = self.rng.choice(INVALID_CMTI_KINDS)
        if kind == "other-memory":
            others = sorted(name for name in self.storages if name != mem)
            other = self.rng.choice(others) if others else "ME" if mem != "ME" else "SM"
            return f"+CMTI: {quoted(other)},{storage.first_index}"
        if kind == "deleted":
            used = set(storage.indices())
            deleted = sorted(self._announced.get(mem, set()) - used)
            free = [i for i in range(storage.first_index, storage.last_index + 1) if i not in used]
            choices = deleted or free
            if choices:
                return f"+CMTI: {quoted(mem)},{self.rng.choice(choices)}"
        return f"+CMTI: {quoted(mem)},-1"

    def _urc(self, lines: list[str]) -> None:
        data = self._frame(lines)
        if self._state is InputState.SMS_PROMPT or self.settings.cnmi.mode == 0:
            self._held.append(data)
            del self._held[:-MAX_HELD_URCS]
        else:
            self._out += data

    def _flush_held(self) -> None:
        if self._state is InputState.COMMAND and self.settings.cnmi.mode != 0:
            for data in self._held:
                self._out += data
            self._held.clear()

    def _changed(self) -> None:
        if self.on_change is None:
            return
        try:
            self.on_change()
        except Exception:
            LOGGER.exception("on_change callback failed")


def _dcs_for(text: str) -> int:
    """0 (GSM 7-bit) when every character is in GSM 03.38, else 8 (UCS2)."""
    return 0 if all(gsm7.is_gsm(ch) for ch in text) else 8
