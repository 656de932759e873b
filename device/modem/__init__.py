"""The cellular modem: its lifecycle (``lifecycle``), its SMS operations
(``operations``), the SMS settings table (``settings``), text or PDU mode
(``modes``), module profiles (``profiles``), and the messages it hands out
(``messages``)."""

from device.at.errors import ModemError
from device.modem.lifecycle import (
    IGNORABLE,
    STATES,
    TRANSITIONS,
    InvalidTrigger,
    Lifecycle,
    ModemState,
    Trigger,
)
from device.modem.messages import (
    REGISTERED,
    REGISTRATION,
    ModuleIdentity,
    StoredSms,
    UndecodableSms,
    from_pdu,
    normalise_storage,
    parse_cmti,
    signal_text,
)
from device.modem.modes import MODES, MessageMode, PduMode, TextMode, mode_for
from device.modem.operations import (
    DEFAULT_SEND_TIMEOUT,
    Modem,
    SmsSettings,
    retry_while_busy,
)

__all__ = [
    "DEFAULT_SEND_TIMEOUT",
    "IGNORABLE",
    "MODES",
    "REGISTERED",
    "REGISTRATION",
    "STATES",
    "TRANSITIONS",
    "InvalidTrigger",
    "Lifecycle",
    "MessageMode",
    "Modem",
    "ModemError",
    "ModemState",
    "ModuleIdentity",
    "PduMode",
    "SmsSettings",
    "StoredSms",
    "TextMode",
    "Trigger",
    "UndecodableSms",
    "from_pdu",
    "mode_for",
    "normalise_storage",
    "parse_cmti",
    "retry_while_busy",
    "signal_text",
]
