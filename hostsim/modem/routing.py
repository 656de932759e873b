"""How the emulated modem routes what the network sends it (27.005 §3.4.1, §3.4.4).

:class:`MessageRouting` is a part of :class:`~hostsim.modem.interpreter.EmulatedModem`
(a mixin over the modem's own attributes): an SMS-DELIVER or a status report
arrives and is stored and announced (``+CMTI``/``+CDSI``) or shown
(``+CMT``/``+CDS``) per ``AT+CNMI``; under ``AT+CNMI`` mode 0 the indication
stays in the module's buffer; under ``AT+CSMS=1`` a ``+CMT``/``+CDS`` waits for
``AT+CNMA`` (:mod:`hostsim.modem.acks`), and until it is settled no other is
shown: a delivery then is refused (None), the network tries again later.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from device.sms import gsm7
from device.sms.pdu import PduError
from hostsim.modem import pdumode
from hostsim.modem.acks import Acknowledgements
from hostsim.modem.faults import FaultPlan, invalid_cmti
from hostsim.modem.output import ModemOutput
from hostsim.modem.results import CommandFailed
from hostsim.modem.settings import MessageMode, ModemConfig, Settings
from hostsim.modem.storage import MessageStorage, Status, StatusReport, StoredMessage
from hostsim.modem.textmode import TextFormat, cds_lines, cmt_lines, quoted

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

LOGGER = logging.getLogger(__name__)

#: A delivery shown as ``+CMT`` (or ``+CDS``): nothing stored.
DIRECT_DELIVERY = -1
#: A ``+CMT`` that waits for the TE's ``AT+CNMA`` (``AT+CSMS=1``); the outcome goes
#: to the :meth:`MessageRouting.on_acknowledged` listeners. The same value as
#: :data:`hostsim.cloud.network.AWAITING_ACK` (the network's side of it).
AWAITING_ACK = -2


class MessageRouting:
    """Deliveries, status reports and acknowledgements of one modem (see the module)."""

    if TYPE_CHECKING:  # provided by EmulatedModem
        settings: Settings
        config: ModemConfig
        storages: dict[str, MessageStorage]
        faults: FaultPlan
        rng: random.Random
        output: ModemOutput
        _announced: dict[str, set[int]]
        _acks: Acknowledgements

        _next_concat_reference: int

        def _changed(self) -> None: ...
        def _urc(self, lines: list[str]) -> None: ...
        def text_format(self) -> TextFormat: ...

    def deliver_sms(
        self,
        sender: str,
        text: str,
        *,
        timestamp: datetime | None = None,
        sender_type: int | None = None,
    ) -> int | None:
        """A message arrives from the network.

        Stored in the CPMS ``<mem3>`` memory with status REC UNREAD and announced
        per ``AT+CNMI`` ``<mt>``: 0 silently, 1 and 3 ``+CMTI: "<mem>",<index>``.
        With ``<mt>`` 2 it is shown as ``+CMT:`` (text or PDU per ``AT+CMGF``)
        and not stored: returns :data:`DIRECT_DELIVERY`. Returns None, with no
        indication, when the memory is full (the network would retry later). A
        text outside GSM 03.38 is stored with DCS 8 (UCS2). The default
        timestamp is now, in UTC, to the second. ``sender_type`` is the sender's
        type-of-address octet when it is not the one its form suggests (TS 23.040
        §9.1.2.5: ``0xD0`` alphanumeric, ``0xA1`` national …), shown as TP-OA's type
        in PDU mode and as ``<tooa>`` in text mode.

        The text is not checked against one SMS: a longer one reads fine in text
        mode, but in PDU mode reading it fails (``+CMS ERROR: 300``) as it has
        no PDU; use :meth:`deliver_concatenated` for long texts.
        """
        when = timestamp if timestamp is not None else datetime.now(UTC).replace(microsecond=0)
        message = StoredMessage(
            Status.REC_UNREAD, sender, text, when, _dcs_for(text), address_type=sender_type
        )
        return self._deliver(message)

    def deliver_concatenated(
        self,
        sender: str,
        text: str,
        *,
        order: Sequence[int] | None = None,
        reference: int | None = None,
        timestamp: datetime | None = None,
        sender_type: int | None = None,
    ) -> list[int | None]:
        """A long message arrives as concatenated parts (TS 23.040 §9.2.3.24.1).

        ``text`` is cut with :func:`device.sms.pdu.split_for_concat` (GSM 7-bit
        when every character is in GSM 03.38, else UCS2); each part is then
        delivered like :meth:`deliver_sms` (stored and announced with its own
        ``+CMTI``, or shown with ``+CMT``) in ``order``: 0-based part numbers,
        e.g. ``[2, 0, 1]``, which may repeat a part (a duplicate) or leave one
        out (default: every part in order). Even a short text gets a header
        (one part of one). ``reference`` (0–65535; above 255 selects the 16-bit
        element) defaults to a per-modem counter. ``sender_type`` as for
        :meth:`deliver_sms`. Returns each delivery's result in delivery order.

        ValueError, before anything is delivered, for an order naming a part
        that does not exist, a bad reference, or a sender or text that cannot be
        a PDU (e.g. an alphanumeric sender over 11 characters).
        """
        when = timestamp if timestamp is not None else datetime.now(UTC).replace(microsecond=0)
        if reference is None:
            reference = self._next_concat_reference
            self._next_concat_reference = (reference + 1) % 256
        messages = pdumode.concatenated(
            StoredMessage(
                Status.REC_UNREAD, sender, text, when, _dcs_for(text), address_type=sender_type
            ),
            reference,
            self.config.smsc,
        )
        sequence = list(range(len(messages))) if order is None else list(order)
        for number in sequence:
            if not 0 <= number < len(messages):
                raise ValueError(f"order names part {number}; the text has {len(messages)} parts")
        return [self._deliver(messages[number]) for number in sequence]

    def _deliver(self, message: StoredMessage) -> int | None:
        cnmi = self.settings.cnmi
        if cnmi.mt == 2:
            if self.acknowledging and self._acks.awaiting is not None:
                # 27.005 §3.4.1: no new +CMT before the previous one is acknowledged.
                LOGGER.debug("a +CMT waits for +CNMA: message from %s refused", message.address)
                return None
            lines = _direct_lines(message, self.settings.cmgf, self.text_format(), self.config.smsc)
            if lines is not None:
                self._indication(lines)
                waits = self.acknowledging
                if waits:
                    self._acks.expect(message)
                self._changed()
                return AWAITING_ACK if waits else DIRECT_DELIVERY
        return self._store_received(message, "+CMTI")

    def _store_received(self, message: StoredMessage, indication: str) -> int | None:
        """Store in ``<mem3>``, announce with ``indication`` per ``<mt>`` (``+CMTI``) or
        ``<ds>`` (``+CDSI``, always announced); None when the memory is full."""
        cnmi = self.settings.cnmi
        mem = self.settings.cpms[2]
        index = self.storages[mem].store(message)
        if index is None:
            LOGGER.debug("memory %s full: message from %s not stored", mem, message.address)
            return None  # nothing changed: no change notification
        self._announced.setdefault(mem, set()).add(index)
        if self.settings.cmgf is MessageMode.PDU:  # as a module keeps it (pdumode.render)
            with contextlib.suppress(PduError):  # AT+CMGR answers CMS 300 for it later
                pdumode.render(message, self.config.smsc, self.settings.csmp.vp)
        if indication == "+CDSI" or cnmi.mt in (1, 3):
            self._indication([f"{indication}: {quoted(mem)},{index}"])
            if self.faults.invalid_cmti and indication == "+CMTI":
                self._indication([invalid_cmti(self.rng, self.storages, self._announced, mem)])
        self._changed()
        return index

    def deliver_status_report(
        self,
        recipient: str,
        reference: int,
        *,
        status: int = 0,
        timestamp: datetime | None = None,
        discharge: datetime | None = None,
    ) -> int | None:
        """The network reports on the SMS with TP-MR ``reference`` to ``recipient``.

        Routed per ``AT+CNMI`` ``<ds>`` (27.005 §3.4.1): 0 not at all (None),
        1 shown as ``+CDS:`` (text or PDU per ``AT+CMGF``; :data:`DIRECT_DELIVERY`,
        or :data:`AWAITING_ACK` under ``AT+CSMS=1``: unacknowledged reports are
        kept in :attr:`unacknowledged`, the network does not repeat them), 2
        stored in ``<mem3>`` and announced with ``+CDSI: <mem>,<index>`` (None when
        full). Times default to now (UTC, to the second).
        """
        now = datetime.now(UTC).replace(microsecond=0)
        report = StatusReport(reference, discharge or now, status)
        message = StoredMessage(
            Status.REC_UNREAD, recipient, "", timestamp or now, 0, report=report
        )
        ds = self.settings.cnmi.ds
        if ds == 0:
            LOGGER.debug("status report on mr=%d not routed (ds=0)", reference)
            return None
        if ds == 2:
            return self._store_received(message, "+CDSI")
        if self.acknowledging and self._acks.awaiting is not None:
            self._acks.unacknowledged.append(message)
            return None
        if self.settings.cmgf is MessageMode.TEXT:
            self._indication(cds_lines(message, self.text_format()))
        else:
            self._indication(pdumode.cds_lines(message, self.config.smsc))
        waits = self.acknowledging
        if waits:
            self._acks.expect(message)
        self._changed()
        return AWAITING_ACK if waits else DIRECT_DELIVERY

    # ------------------------------------------------------------------ acknowledgements

    @property
    def acknowledging(self) -> bool:
        """``AT+CSMS=1``: a ``+CMT``/``+CDS`` shown to the TE waits for ``AT+CNMA``."""
        return self.settings.csms == 1

    @property
    def awaiting_ack(self) -> bool:
        """A ``+CMT``/``+CDS`` waits for the TE's ``AT+CNMA``."""
        return self._acks.awaiting is not None

    @property
    def unacknowledged(self) -> list[StoredMessage]:
        """Direct deliveries the TE did not acknowledge, oldest first."""
        return self._acks.unacknowledged

    def on_acknowledged(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener(acknowledged)`` when a ``+CMT`` that waited for ``AT+CNMA``
        is settled: True for an ack, False for a negative ack, a timeout or a
        reboot (exceptions logged). Status reports are not reported."""
        self._acks.add_listener(listener)

    def acknowledge(self, positive: bool = True) -> None:
        """The TE's ``AT+CNMA`` (``positive`` False: ``AT+CNMA=2``, RP-ERROR); CMS 340
        (no acknowledgement expected) when nothing waits for one."""
        if self._acks.settle(positive) is None:
            raise CommandFailed.cms(340)
        self._changed()

    def ack_timeout(self) -> None:
        """The wait for ``AT+CNMA`` is over (the runtime calls this
        :attr:`ModemConfig.ack_timeout` seconds after an :data:`AWAITING_ACK`).

        Nothing happens when nothing waits. Otherwise the message is not
        acknowledged to the network and, as 27.005 §3.4.1 says, the module stops
        routing to the TE: ``<mt>`` and ``<ds>`` become 0.
        """
        if self._acks.settle(False) is None:
            return
        LOGGER.info("no +CNMA in time: routing to the TE disabled (mt=0, ds=0)")
        cnmi = dataclasses.replace(self.settings.cnmi, mt=0, ds=0)
        self.settings = dataclasses.replace(self.settings, cnmi=cnmi)
        self._changed()

    def _indication(self, lines: list[str]) -> None:
        """A new-message indication (``+CMTI``, ``+CMT``, ``+CDS``, ``+CDSI``): kept in
        the module's buffer under ``AT+CNMI`` mode 0 (27.005 §3.4.1), else a URC."""
        if self.settings.cnmi.mode == 0:
            self.output.buffer(lines)
        else:
            self._urc(lines)


def _direct_lines(
    message: StoredMessage, mode: MessageMode, fmt: TextFormat, smsc: str
) -> list[str] | None:
    """``+CMT`` lines in ``mode``; None when there is no PDU for it (then it is stored)."""
    if mode is MessageMode.TEXT:
        return cmt_lines(message, fmt)
    try:
        return pdumode.cmt_lines(message, smsc)
    except PduError as exc:
        LOGGER.warning("no PDU for the message from %s (%s): stored", message.address, exc)
        return None


def _dcs_for(text: str) -> int:
    """0 (GSM 7-bit) when every character is in GSM 03.38, else 8 (UCS2)."""
    return 0 if all(gsm7.is_gsm(ch) for ch in text) else 8
