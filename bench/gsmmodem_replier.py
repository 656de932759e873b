"""python-gsmmodem-new as a command receiver, for ``bench/side_by_side.py``: run with the
Python of the clients' virtual environment (``.venv-clients``), never imported.

    python gsmmodem_replier.py PORT {text,pdu}

Connects (the library's own start-up), prints ``{"step": "ready"}`` and answers every
received SMS from its receive callback with ``sendSms("000", "pong")`` (no wait for
a status report), until stdin closes; then closes the modem and exits 0. Exit 1
when ``connect`` fails (the error on stdout as ``{"step": "connect", "error": …}``).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from gsmmodem.modem import GsmModem

#: The library's serial read timeout (its class attribute, 1 s by default): it bounds
#: how long close() waits for the reader thread.
READ_TIMEOUT = 0.1


def main(port: str, mode: str) -> int:
    GsmModem.timeout = READ_TIMEOUT
    modem: GsmModem | None = None

    def received(sms: Any) -> None:
        assert modem is not None
        try:
            modem.sendSms("000", "pong", waitForDeliveryReport=False)
        except Exception as exc:
            print(json.dumps({"step": "sendSms", "error": repr(exc)}), flush=True)

    modem = GsmModem(port, 115200, smsReceivedCallbackFunc=received)
    modem.smsTextMode = mode == "text"
    try:
        modem.connect()
    except Exception as exc:
        print(json.dumps({"step": "connect", "error": repr(exc)}), flush=True)
        return 1
    print(json.dumps({"step": "ready"}), flush=True)
    sys.stdin.read()
    modem.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
