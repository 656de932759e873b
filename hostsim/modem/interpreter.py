"""A sans-IO emulated cellular modem: bytes in, bytes out (27.005 / 27.007, text and PDU mode).

:class:`EmulatedModem` owns no file, socket or event loop. The caller feeds the
bytes the TE wrote (:meth:`EmulatedModem.feed`) and writes back what
:meth:`EmulatedModem.data_to_send` returns. Processing is byte by byte, so any
chunking of the same input gives the same output.

Framing (V.250 / 27.007):

* A command line ends with ``\\r``; ``\\n`` is ignored; backspace (the
  character in ``S5``, 0x08 by default) erases the last character.
  Characters before the ``AT`` prefix (any case) are ignored; a line without
  ``AT`` gets no answer at all. A line longer than
  :data:`~hostsim.modem.lines.MAX_LINE` is answered ``ERROR`` once its ``\\r``
  arrives (the input side is :mod:`hostsim.modem.lines`).
* Echo (``ATE1``, the default) repeats every received byte as it arrives.
* Responses use ATV1 framing by default: ``\\r\\n<line>[\\r\\n<line>…]\\r\\n``
  per command, then ``\\r\\nOK\\r\\n`` or an error per ``AT+CMEE``
  (:mod:`hostsim.modem.results`); ``ATV0`` (numeric codes), ``ATQ1`` (no
  result codes) and ``S3``/``S4`` change it as :mod:`hostsim.modem.output`
  says. Commands of one line run in order; the first failure ends the line.
  ``A/`` repeats the last line (:mod:`hostsim.modem.lines`).
* What the module remembers besides its settings (radio, SIM PIN, SMSC, clock,
  PDP contexts, the ``AT&W`` profile) is :attr:`EmulatedModem.module`
  (:mod:`hostsim.modem.state`); registration URCs a command causes follow its
  final result (:meth:`EmulatedModem.change_radio`).
* ``AT+CMGS`` enters the SMS prompt (``\\r\\n> ``); commands after it on the
  same line are discarded. In PDU mode (``AT+CMGS=<length>``) the body is the
  hex PDU (see :mod:`hostsim.modem.pdumode`, the prompt in
  :mod:`hostsim.modem.submit`); a malformed one, one that is not an
  SMS-SUBMIT or whose TPDU is not ``<length>`` octets is ``+CMS ERROR: 304``.
  In the prompt, Ctrl-Z sends, ESC cancels (``OK``), ``\\r`` is part of the
  text and re-prompts, a ``\\n`` right after the prompt is dropped (it is the
  tail of a ``\\r\\n``-terminated command line), backspace (``S5``) erases the
  last character of the body, other bytes are echoed when echo is on.
* Unsolicited result codes are emitted at once, except while a command line
  runs (or the send after Ctrl-Z) or the SMS prompt is open: then they are
  held (at most :data:`~hostsim.modem.output.MAX_HELD_URCS`, oldest dropped)
  and flushed, back to back, after the final result; so in ``AT+CNMI`` modes
  1, 2 and 3 alike (27.005 §3.4.1: mode 1 discards only while the link is
  reserved for on-line data, which hostsim has not). New-message indications
  under ``AT+CNMI`` mode 0 stay in the module until a mode other than 0 is
  selected: flushed after that command's ``OK`` (``<bfr>`` 0) or cleared
  (``<bfr>`` 1). ``+CREG`` and other codes are not kept by mode 0.
* ``AT+CMGW`` enters the same prompt and stores the message
  (``+CMGW: <index>``); ``AT+CMSS`` sends a stored one. Deliveries, status
  reports and ``AT+CNMA`` are routed by :mod:`hostsim.modem.routing`.

Commands: the persona's set (:attr:`ModemConfig.commands`, see
:mod:`hostsim.modem.personas`) selects the handlers of the merged table
(:mod:`hostsim.modem.handlers`); a command outside the set, or in it but not
emulated, answers as that module answers an unknown command
(:meth:`EmulatedModem.absent`): plain ``ERROR``, or ``+CME ERROR: 100`` per
``AT+CMEE`` with :attr:`Quirk.ABSENT_COMMAND_IS_CME_UNKNOWN`.

Nothing raised by a handler escapes :meth:`EmulatedModem.feed`: an unexpected
exception is logged and answered ``ERROR``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime

from hostsim.modem import pdumode
from hostsim.modem.acks import Acknowledgements
from hostsim.modem.faults import FaultPlan, SendFault
from hostsim.modem.handlers import HANDLERS, Handler
from hostsim.modem.lines import InputState, LineInput
from hostsim.modem.output import Framing, ModemOutput
from hostsim.modem.results import CommandFailed, render_error
from hostsim.modem.routing import MessageRouting
from hostsim.modem.sending import Sender, SentSms, SubmitDecision
from hostsim.modem.settings import ModemConfig, Quirk, Settings
from hostsim.modem.state import DEFAULT_S_REGISTERS, THIS_PORT, ModuleState, RadioControl
from hostsim.modem.storage import MessageStorage, Status, StoredMessage
from hostsim.modem.submit import PendingSubmit, decode_body
from hostsim.modem.textmode import TextFormat

LOGGER = logging.getLogger(__name__)


class EmulatedModem(MessageRouting, RadioControl):
    """One emulated module with its SIM storage (see the module docstring for framing).

    Read access for tests: :attr:`settings`, :attr:`storages`, :attr:`sent`,
    :attr:`state`, :attr:`unacknowledged`. Deliveries, status reports and
    ``AT+CNMA`` are in :class:`~hostsim.modem.routing.MessageRouting`; registration
    and what waits for a final result in :class:`~hostsim.modem.state.RadioControl`.
    ``on_change`` is called (exceptions logged, never raised) after every
    processed command line, SMS send/cancel, delivery, acknowledgement and
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
        #: Persistent faults (:mod:`hostsim.modem.faults`); replace at any time.
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
        self._sender = Sender()
        #: Radio, SIM PIN, SMSC, clock, PDP contexts, saved profile (:mod:`hostsim.modem.state`).
        self.module = ModuleState(self.config)
        #: False makes SIM-dependent commands fail with "SIM busy" (CME 14 / CMS 314).
        self.sim_ready = True
        self.output = ModemOutput(lambda: self.faults, lambda: self.rng, self._framing)
        self._next_concat_reference = 0
        #: V.250 S-registers (S3 line end, S4 response formatting, S5 backspace …).
        self.s_registers: dict[int, int] = dict(self.module.profile.s_registers)
        #: What runs once the current command line's final result is out (``AT+CFUN=1,1``).
        self._after_result: list[Callable[[], None]] = []
        #: While True the module is hung: input is swallowed, nothing is answered.
        self.hung = False
        #: Bytes from the TE ignored while hung (a change is reported for each feed).
        self.swallowed = 0
        #: The AT commands this modem answers, by name: the handlers of the persona's set.
        self.handlers: dict[str, Handler] = {
            name: handler for name, handler in HANDLERS.items() if name in self.commands
        }
        self._input = LineInput(self)
        self._acks = Acknowledgements()

    # ------------------------------------------------------------------ public API

    @property
    def commands(self) -> frozenset[str]:
        """The command names this module has (its persona's set; every emulated one for a
        bare :class:`ModemConfig`), the one source for ``AT+CLAC``. It may name commands
        hostsim does not emulate (:attr:`ModemConfig.not_emulated`)."""
        if self.config.commands is None:
            return frozenset(HANDLERS)
        return self.config.commands

    def absent(self, name: str) -> CommandFailed:
        """How this module answers the command ``name`` it has no handler for: plain
        ``ERROR``, or ``+CME ERROR: 100`` (rendered per ``AT+CMEE``) on a module with
        :attr:`Quirk.ABSENT_COMMAND_IS_CME_UNKNOWN`."""
        if name in self.commands:
            LOGGER.info("%s: a command of %s that hostsim does not emulate", name, self.config.name)
        if Quirk.ABSENT_COMMAND_IS_CME_UNKNOWN in self.config.quirks:
            return CommandFailed.cme(100)
        return CommandFailed.plain()

    @property
    def state(self) -> InputState:
        """COMMAND, or SMS_PROMPT between ``AT+CMGS`` and Ctrl-Z / ESC."""
        return self._input.state

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
            self._input.byte(byte)

    def data_to_send(self) -> bytes:
        """Drain and return the pending output (empty when there is none)."""
        return self.output.drain()

    def on_submit(self, decide: SubmitDecision | None) -> None:
        """Let ``decide`` (the network) accept or refuse every SMS the TE sends from now on.

        It is asked only when the SMS reaches the network: not when a send fault
        answers an error and the SMS did not go out. None: every SMS is accepted.
        """
        self._sender.decide = decide

    @property
    def sent(self) -> list[SentSms]:
        """Messages the TE sent (``AT+CMGS``, ``AT+CMSS``), oldest first."""
        return self._sender.sent

    def reset_settings(self, *, factory: bool = False) -> None:
        """Restore the profile ``AT&W`` saved (``ATZ``), or with ``factory`` the configured
        defaults (``AT&F``); S-registers too. Stored messages survive."""
        profile = self.module.profile
        self.settings = self.config.defaults if factory else profile.settings
        self.s_registers = dict(DEFAULT_S_REGISTERS if factory else profile.s_registers)

    def reboot(self, *, not_ready: bool = False) -> None:
        """A silent module restart: settings back to defaults, a half-typed
        command or SMS body forgotten, held indications lost, then the boot
        banner (:attr:`ModemConfig.boot_banner`). Stored messages survive.

        With ``not_ready`` only the banner's first line (``RDY``) comes now and
        the SIM stays busy (:attr:`sim_ready` False: CME 14 / CMS 314) until
        :meth:`become_ready` prints the rest.
        """
        self.reset_settings()
        self.module.power_on()
        self._after_result.clear()
        self._input.forget()
        self.output.drop_held()
        self.output.drop_buffer()
        self._acks.settle(False)  # a +CMT waiting for +CNMA is never acknowledged
        full = self.module.banner(self.config.boot_banner)
        banner = full[:1] if not_ready else full
        if not_ready:
            self.sim_ready = False
        for line in banner:
            self.output.lines([line])
        self._changed()

    def become_ready(self) -> None:
        """The SIM and SMS are ready again after :meth:`reboot` ``(not_ready=True)``:
        the rest of the boot banner follows. Nothing happens when already ready."""
        if self.sim_ready:
            return
        self.sim_ready = True
        for line in self.module.banner(self.config.boot_banner)[1:]:
            self.output.lines([line])
        self._changed()

    def inject(self, data: bytes) -> None:
        """Put raw bytes on the line as if the module had sent them (noise, stray codes)."""
        self.output.raw(data)
        self._changed()

    def text_format(self) -> TextFormat:
        """The current text-mode rendering settings (``AT+CSCS``, ``AT+CSDH``, ``AT+CSMP``)."""
        return TextFormat.of(self.settings, self.config.smsc, self.config.quirks)

    def begin_submit(
        self, destination: str, *, pdu_length: int | None = None, write: Status | None = None
    ) -> None:
        """Enter the SMS prompt (called by the ``AT+CMGS``/``AT+CMGW`` handlers): for
        ``destination`` in text mode, for a PDU of ``pdu_length`` TPDU octets in PDU
        mode; with ``write`` the message is stored with that status, not sent."""
        self._input.begin_submit(PendingSubmit(destination, pdu_length, write))

    def cnmi_changed(self) -> None:
        """After ``AT+CNMI``: a mode other than 0 flushes the indications buffered in
        mode 0 after the ``OK`` (``<bfr>`` 0) or clears them (``<bfr>`` 1), 27.005 §3.4.1."""
        cnmi = self.settings.cnmi
        if cnmi.mode != 0:
            if cnmi.bfr == 1:
                self.output.drop_buffer()
            else:
                self.output.release_buffer()

    def fail_next_send(self, code: int = 500, *, sent_anyway: bool = False) -> None:
        """Answer the next ``AT+CMGS`` with ``+CMS ERROR: <code>``.

        With ``sent_anyway`` the SMS is recorded as sent all the same, as some
        modules (SIMCom SIM7080G with 500) do. Calls queue up.
        """
        self._sender.queue_fault(SendFault(code, sent_anyway))

    # ------------------------------------------------------------------ for the input side

    @property
    def echoing(self) -> bool:
        """Echo is on (``ATE1``, or stuck on by the ``echo_stuck`` fault)."""
        return self.settings.echo or self.faults.echo_stuck

    def submit(self, pending: PendingSubmit, body: bytes, overflow: bool) -> None:
        """The TE ended the prompt with Ctrl-Z: send, write (``AT+CMGW``) or refuse
        the message and answer; the caller ends the line."""
        try:
            submitted = decode_body(pending, body, overflow, self.settings)
            if pending.write is not None:
                lines = [f"+CMGW: {self._write(pending.write, submitted)}"]
            else:
                lines = [f"+CMGS: {self.send(submitted)}"]
        except CommandFailed as failure:
            self.fail(failure)
            return
        self.output.info(lines)
        self.output.final("OK")

    def send(self, submitted: pdumode.Submitted) -> int:
        """Send ``submitted`` (``AT+CMGS``, ``AT+CMSS``): its TP-MR, or CommandFailed
        for a send fault or the network's refusal. Sent with TP-SRR set, a status
        report follows (:meth:`deliver_status_report`: the emulated network reports
        delivery at once; while a command runs it is held until its final result)."""
        outcome = self._sender.send(submitted, self.faults, self.rng)
        if outcome.sms is not None and submitted.srr:
            sms = outcome.sms
            self.deliver_status_report(sms.destination, sms.reference, timestamp=sms.timestamp)
        if outcome.error is not None:
            raise CommandFailed.cms(outcome.error)
        return outcome.reference

    def _write(self, status: Status, submitted: pdumode.Submitted) -> int:
        """``AT+CMGW``: store in ``<mem2>``; the index, or CMS 322 (memory full)."""
        when = submitted.timestamp or datetime.now(UTC).replace(microsecond=0)
        message = StoredMessage(
            status,
            submitted.destination,
            submitted.text,
            when,
            submitted.dcs,
            submitted.concat,
            srr=submitted.srr,
        )
        index = self.storages[self.settings.cpms[1]].store(message)
        if index is None:
            raise CommandFailed.cms(322)
        return index

    def fail(self, failure: CommandFailed) -> None:
        """End the line with ``failure`` rendered per ``AT+CMEE``."""
        self.output.final(render_error(failure, self.settings.cmee))

    def after_line(self) -> None:
        """After a command line or the prompt: what waited for the final result runs
        (:meth:`after_result`), held URCs flush (unless a prompt is open), a change
        is reported."""
        self.run_after_result()
        if self.state is InputState.COMMAND:
            self.output.flush_held()
        self._changed()

    # ------------------------------------------------------------------ output

    def unsolicited(self, lines: list[str]) -> None:
        """Emit unsolicited result codes now (held in the prompt or with ``AT+CNMI`` mode 0)."""
        self._urc(lines)

    def _urc(self, lines: list[str]) -> None:
        """An unsolicited result code: held while a command runs or the prompt is
        open (flushed after the final result), else at once; dropped when
        ``AT+QURCCFG`` routes URCs to another port."""
        if self.module.urc_port != THIS_PORT:
            LOGGER.debug("URC to port %s, not this one: %r", self.module.urc_port, lines)
            return
        hold = self.state is InputState.SMS_PROMPT or self._input.busy
        self.output.urc(lines, hold=hold)

    def _framing(self) -> Framing:
        registers = self.s_registers
        return Framing(self.settings.verbose, self.settings.quiet, registers[3], registers[4])

    def _changed(self) -> None:
        if self.on_change is None:
            return
        try:
            self.on_change()
        except Exception:
            LOGGER.exception("on_change callback failed")
