"""The emulated modem's AT command handlers, one table keyed by command name.

:mod:`~hostsim.modem.handlers.general` holds the V.250 / 27.007 general
commands (identity, SIM, signal, registration, error mode),
:mod:`~hostsim.modem.handlers.sms` the 27.005 SMS commands. A name in both
would be a bug: the SMS table would silently win, so importing this package
fails instead.
"""

from __future__ import annotations

from hostsim.modem.handlers import general, sms
from hostsim.modem.handlers.general import Handler

_CLASH = general.HANDLERS.keys() & sms.HANDLERS.keys()
if _CLASH:
    raise ImportError(f"AT handlers declared twice: {sorted(_CLASH)}")

#: Every command the emulated modem knows, by name (``E``, ``&C``, ``+CMGS`` …).
HANDLERS: dict[str, Handler] = {**general.HANDLERS, **sms.HANDLERS}

__all__ = ["HANDLERS", "Handler"]
