"""The modem half of hostsim: a sans-IO emulated cellular module (27.005 / 27.007).

:class:`~hostsim.modem.interpreter.EmulatedModem` is the module: bytes in,
bytes out, no file, socket or event loop. Around it, one module per concern:

* :mod:`~hostsim.modem.lines` — the TE's bytes: command lines and the SMS prompt;
* :mod:`~hostsim.modem.atparse` — the command-line syntax (V.250);
* :mod:`~hostsim.modem.handlers` — the AT commands, as one table
  (general V.250 / 27.007 ones, radio, SIM, and the 27.005 SMS ones);
* :mod:`~hostsim.modem.submit` — the ``AT+CMGS``/``AT+CMGW`` body and what it
  decodes to; :mod:`~hostsim.modem.sending` — the send path (TP-MR, send
  faults, the network's say);
* :mod:`~hostsim.modem.routing` — deliveries and status reports per
  ``AT+CNMI``, ``AT+CNMA`` (:mod:`~hostsim.modem.acks`);
* :mod:`~hostsim.modem.output` — framing, results and held URCs;
  :mod:`~hostsim.modem.results` — ``OK`` / ``ERROR`` / ``+CME`` / ``+CMS``;
* :mod:`~hostsim.modem.settings`, :mod:`~hostsim.modem.storage`,
  :mod:`~hostsim.modem.state` (with :mod:`~hostsim.modem.radio` and
  :mod:`~hostsim.modem.simcard`) — what the module remembers;
  :mod:`~hostsim.modem.textmode`, :mod:`~hostsim.modem.pdumode` — how stored
  messages are shown in each ``AT+CMGF`` mode;
* :mod:`~hostsim.modem.personas` — module families as data (command sets included);
  :mod:`~hostsim.modem.faults` — what a misbehaving module does.

hostsim keeps its own AT parser and CME/CMS tables on purpose: it is an
independent oracle for the agent in ``device``, not a mirror of it; it
imports only the ``device.sms`` codecs (and their ``SmsFormatError``) from there.
"""

from hostsim.modem.interpreter import EmulatedModem
from hostsim.modem.lines import InputState
from hostsim.modem.routing import AWAITING_ACK, DIRECT_DELIVERY
from hostsim.modem.sending import SentSms, SubmitDecision

__all__ = [
    "AWAITING_ACK",
    "DIRECT_DELIVERY",
    "EmulatedModem",
    "InputState",
    "SentSms",
    "SubmitDecision",
]
