"""The emulated modem's send path: ``AT+CMGS`` / ``AT+CMSS`` submits to the network.

:class:`Sender` owns what a send touches: the TP-MR counter (0–255, wrapping),
the queued one-shot send faults (:meth:`EmulatedModem.fail_next_send`), the
network's say (:data:`SubmitDecision`) and the record of what went out
(:class:`SentSms`). Order of a send:

1. the next TP-MR is taken (also by a send that fails, as modules do);
2. a queued or random send fault is drawn;
3. unless the fault says the SMS never left, the network decides: a refusal
   becomes the fault (its ``+CMS ERROR`` code);
4. an SMS that left is recorded, even when a "sent anyway" fault then reports
   an error.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from device.sms.pdu import Concat
from hostsim.modem import pdumode
from hostsim.modem.faults import FaultPlan, SendFault, SendFaults

LOGGER = logging.getLogger(__name__)

#: The network's say on an SMS the TE sends: called with the destination and the
#: text; None accepts it, a number refuses it with that ``+CMS ERROR`` code.
SubmitDecision = Callable[[str, str], int | None]


@dataclass(frozen=True, slots=True)
class SentSms:
    """A message the TE sent with ``AT+CMGS`` or ``AT+CMSS`` (``reference`` is the ``<mr>``)."""

    destination: str
    text: str
    reference: int
    timestamp: datetime
    dcs: int = 0
    #: The concatenation header of a PDU-mode submit, None otherwise.
    concat: Concat | None = None
    #: TP-SRR: the sender asked for a status report.
    srr: bool = False


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """What became of one send: its TP-MR, the SMS when it left, the error code when
    the module reports one (both may be set: "sent anyway")."""

    reference: int
    sms: SentSms | None
    error: int | None


class Sender:
    """The send path of one modem (see the module docstring)."""

    def __init__(self) -> None:
        self.sent: list[SentSms] = []
        self._next_mr = 0
        self._faults = SendFaults()
        self.decide: SubmitDecision | None = None

    def queue_fault(self, fault: SendFault) -> None:
        """Answer a coming send with ``fault`` (queued in order)."""
        self._faults.queue(fault)

    def send(
        self, submitted: pdumode.Submitted, plan: FaultPlan, rng: random.Random
    ) -> SendOutcome:
        """Send ``submitted`` under the faults of ``plan`` (random ones drawn from ``rng``)."""
        destination, text = submitted.destination, submitted.text
        reference = self._next_mr
        self._next_mr = (self._next_mr + 1) % 256
        when = datetime.now(UTC).replace(microsecond=0)
        fault = self._faults.next(plan, rng)
        if (fault is None or fault.sent_anyway) and self.decide is not None:
            refusal = self.decide(destination, text)
            if refusal is not None:
                LOGGER.info("SMS to %s refused by the network (CMS %d)", destination, refusal)
                fault = SendFault(refusal, sent_anyway=False)
        sms: SentSms | None = None
        if fault is None or fault.sent_anyway:
            sms = SentSms(
                destination, text, reference, when, submitted.dcs, submitted.concat, submitted.srr
            )
            self.sent.append(sms)
            LOGGER.info("SMS to %s sent (mr=%d): %r", destination, reference, text)
        return SendOutcome(reference, sms, None if fault is None else fault.code)
