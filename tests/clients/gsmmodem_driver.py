"""python-gsmmodem-new, unchanged, driven as an application would drive it; run by
``tests/test_clients_gsmmodem.py`` with the Python of its own virtual environment
(``.venv-clients``), never imported by the suite.

    python gsmmodem_driver.py PORT {text,pdu} LOGFILE

``sendSms`` waits for the status report of what it sent, and the driver lets the
library's notification thread for it finish before the receive phase: a report read
while a command arrives would race with it (the library takes a ``+CMTI`` that comes
while it waits for an answer as part of that answer, and loses it).

It speaks JSON lines. On stdout, one object per step, ``{"step": NAME, ...}`` with
``"error"`` when the client raised (``connect`` failing ends the run, exit 1). On
stdin, after ``{"step": "ready"}``, the test writes ``{"expect": N}`` once it has seen
N commands delivered to the modem; the driver reports the callbacks it got
(``received``), what is left in storage (``listStoredSms``) and exits 0. An exception
in one of the library's own threads is printed by Python on stderr, which the test
keeps.

How the end of the receive phase is found: with N callbacks, at once (after the
library's notification threads, which delete what they handed over, end). With fewer (the
library handles only the first ``+CMTI`` of the lines it reads in one go, which is
what the burst measurement counts), the library gives no signal that it is done
reading, so the driver polls, with a deadline, until the port has no input waiting,
the reader thread holds no partial notification and no notification thread is alive,
on two looks in a row.

The library's own log (``gsmmodem`` loggers at DEBUG: every AT line written and read)
goes to LOGFILE.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from typing import Any

from gsmmodem.modem import GsmModem, SentSms

#: Bound of the receive phase, after the test said how many commands were delivered.
RECEIVE_DEADLINE = 10.0
#: Longest pause between two looks at the reader's state (a callback ends it sooner).
SETTLE_POLL = 0.02
#: The serial read timeout of the library's reader thread (see main()).
READ_TIMEOUT = 0.1
#: What the driver sends to 000 in each mode.
REPLY = "pong from python-gsmmodem"


def emit(step: str, **fields: Any) -> None:
    print(json.dumps({"step": step, **fields}), flush=True)


def attempt(step: str, action: Any) -> Any:
    """Run ``action()``; emit ``step`` with its value or the client's error."""
    try:
        value = action()
    except Exception as exc:
        emit(step, error=f"{type(exc).__name__}: {exc}")
        return None
    emit(step, value=value)
    return value


class Inbox:
    """What the receive callback saw, with a wait for a count."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self._cond = threading.Condition()

    def callback(self, sms: Any) -> None:
        with self._cond:
            self.texts.append(sms.text)
            self._cond.notify_all()

    def wait_for(self, count: int, deadline: float) -> bool:
        with self._cond:
            return self._cond.wait_for(
                lambda: len(self.texts) >= count, max(0.0, deadline - time.monotonic())
            )


def sent(modem: GsmModem, text: str) -> dict[str, Any]:
    """``sendSms`` to 000, waiting for its status report (the library asks for one by
    default, ``AT+CSMP=49,…``): its reference and delivery status."""
    sms = modem.sendSms("000", text, waitForDeliveryReport=True, deliveryTimeout=RECEIVE_DEADLINE)
    status = {SentSms.ENROUTE: "enroute", SentSms.DELIVERED: "delivered"}.get(sms.status, "failed")
    return {"reference": sms.reference, "status": status}


def handlers(modem: GsmModem) -> list[threading.Thread]:
    """The library's notification threads still running (one per group of lines read)."""
    own = (threading.main_thread(), modem.rxThread)
    return [t for t in threading.enumerate() if t not in own and t.is_alive()]


def join_handlers(modem: GsmModem, deadline: float) -> None:
    """Each callback is followed by the library's delete: let those finish."""
    for thread in handlers(modem):
        thread.join(max(0.0, deadline - time.monotonic()))


def settled(modem: GsmModem) -> bool:
    """Nothing left to read, no partial notification, no handler thread running."""
    return modem.serial.in_waiting == 0 and not modem._notification and not handlers(modem)


def wait_received(modem: GsmModem, inbox: Inbox, expect: int, deadline: float) -> None:
    """Until ``expect`` callbacks (then the library's deletes finish), or until the
    library has settled (see the module docstring), or the deadline."""
    calm = 0
    while calm < 2 and time.monotonic() < deadline:
        if inbox.wait_for(expect, min(deadline, time.monotonic() + SETTLE_POLL)):
            join_handlers(modem, deadline)
            return
        calm = calm + 1 if settled(modem) else 0


def main(port: str, mode: str, logfile: str) -> int:
    logging.basicConfig(
        filename=logfile, level=logging.DEBUG,
        format="%(asctime)s %(threadName)s %(name)s %(message)s",
    )  # fmt: skip
    inbox = Inbox()
    # The library's read timeout (its class attribute, 1 s by default) bounds how long
    # close() waits for its reader thread: shorter, so that each run ends sooner.
    GsmModem.timeout = READ_TIMEOUT
    modem = GsmModem(port, 115200, smsReceivedCallbackFunc=inbox.callback)
    modem.smsTextMode = mode == "text"
    try:
        modem.connect()
    except Exception as exc:
        emit("connect", error=f"{type(exc).__name__}: {exc}")
        return 1
    try:
        emit("connect", value=modem.manufacturer)
        attempt("networkName", lambda: modem.networkName)
        attempt("signalStrength", lambda: modem.signalStrength)
        attempt("sendSms", lambda: sent(modem, f"{REPLY} ({mode})"))
        join_handlers(modem, time.monotonic() + RECEIVE_DEADLINE)
        emit("ready")
        expect = int(json.loads(sys.stdin.readline())["expect"])
        wait_received(modem, inbox, expect, time.monotonic() + RECEIVE_DEADLINE)
        emit("received", value=list(inbox.texts))
        attempt("listStoredSms", lambda: [sms.text for sms in modem.listStoredSms()])
    finally:
        modem.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
