"""The emulated modem's AT command handlers, one table keyed by command name.

:mod:`~hostsim.modem.handlers.general` holds the V.250 / 27.007 general
commands (result-code format, profiles, identity, error mode, clock),
:mod:`~hostsim.modem.handlers.network` the radio (functionality, operator,
registration, signal, PDP contexts), :mod:`~hostsim.modem.handlers.sim` the
SIM (PIN, ICCID, MSISDN, SMSC) and :mod:`~hostsim.modem.handlers.sms` the
27.005 SMS commands. A name in two tables would be a bug (one would silently
win), so importing this package fails instead.
"""

from __future__ import annotations

from collections import Counter

from hostsim.modem.handlers import general, network, sim, sms
from hostsim.modem.handlers.general import Handler

_TABLES = (general.HANDLERS, network.HANDLERS, sim.HANDLERS, sms.HANDLERS)
_CLASH = [name for name, count in Counter(n for t in _TABLES for n in t).items() if count > 1]
if _CLASH:
    raise ImportError(f"AT handlers declared twice: {sorted(_CLASH)}")

#: Every command the emulated modem knows, by name (``E``, ``&C``, ``+CMGS`` …).
HANDLERS: dict[str, Handler] = {name: h for table in _TABLES for name, h in table.items()}
__all__ = ["HANDLERS", "Handler"]
