"""The cellular modem: its lifecycle (``lifecycle``), its SMS operations
(``operations``), and the messages it hands out (``messages``)."""

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
    decode_direct,
    from_pdu,
    normalise_storage,
    parse_cmti,
    signal_text,
)
from device.modem.operations import (
    COMMAND_TIMEOUT_FACTORS,
    DEFAULT_SEND_TIMEOUT,
    Modem,
    SmsSettings,
    retry_while_busy,
)

__all__ = [
    "COMMAND_TIMEOUT_FACTORS",
    "DEFAULT_SEND_TIMEOUT",
    "IGNORABLE",
    "REGISTERED",
    "REGISTRATION",
    "STATES",
    "TRANSITIONS",
    "InvalidTrigger",
    "Lifecycle",
    "Modem",
    "ModemError",
    "ModemState",
    "ModuleIdentity",
    "SmsSettings",
    "StoredSms",
    "Trigger",
    "UndecodableSms",
    "decode_direct",
    "from_pdu",
    "normalise_storage",
    "parse_cmti",
    "retry_while_busy",
    "signal_text",
]
