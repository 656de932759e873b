"""What differs between cellular modules, as data: one :class:`Profile` per family.

:class:`~device.modem.operations.Modem` picks the profile when it identifies the
module (:func:`resolve`): from the model it reports (``AT+CGMM``, or the
manufacturer from ``AT+CGMI``), or by the name in ``agent.profile``. Each field
is read:

* ``boot_banners`` — indications the module prints when it (re)boots; seeing one
  while configured means its settings are gone (the agent's URC listener); the
  lines after the first (:func:`starts_boot`) belong to the same boot;
* ``storage`` — the message storage when ``agent.storage = "auto"`` (any other
  value is used as given);
* ``urc_port_query`` — how to read which port gets unsolicited codes (shown by
  ``smscmd probe``; if it is not the AT port the agent reads, no ``+CMTI``
  arrives and only the safety sweep finds messages);
* ``setup_commands`` — extra commands sent after the SMS set-up, in order (a
  failure fails the set-up step like any of its commands).

Facts are from the modules' AT command manuals (Quectel BG96/EG25-G, SIMCom
SIM7600, u-blox SARA-R4 series); ``generic`` holds for any 3GPP TS 27.005 module
and changes nothing on the wire. Profiles are matched in table order, so the
``quectel`` family entry catches Quectel models without an entry of their own.
"""

from __future__ import annotations

from dataclasses import dataclass

from device.at import commands as at
from device.at.commands import CommandDef


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    description: str
    #: Lower-case substrings of AT+CGMM / AT+CGMI that select this profile.
    matches: tuple[str, ...]
    #: Whole indication lines (upper case) a booting module prints.
    boot_banners: frozenset[str]
    storage: str = "SM"
    urc_port_query: CommandDef | None = None
    setup_commands: tuple[str, ...] = ()


#: The banner line a module prints first when it boots (Quectel BG96/EG25-G and
#: SIMCom SIM7600 manuals: ``RDY``); the others (``SMS DONE``, ``PB DONE`` …)
#: follow as its services come up, seconds later.
BOOT_START = frozenset({"RDY"})
_COMMON_BANNERS = frozenset({"RDY", "SMS DONE", "SMS READY", "PB DONE", "CALL READY", "+PBREADY"})
_QUECTEL_BANNERS = _COMMON_BANNERS | {"+QIND: SMS DONE", "+QIND: PB DONE"}

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "quectel-bg96",
            "Quectel BG96 (LTE-M/NB-IoT)",
            ("bg96",),
            _QUECTEL_BANNERS,
            urc_port_query=at.QURCCFG_URCPORT,
        ),
        Profile(
            "quectel-eg25g",
            "Quectel EG25-G (LTE Cat 4)",
            ("eg25",),
            _QUECTEL_BANNERS,
            urc_port_query=at.QURCCFG_URCPORT,
        ),
        Profile(
            "simcom-sim7600",
            "SIMCom SIM7600 series (LTE Cat 1/4)",
            ("sim7600", "simcom_sim7600"),
            _COMMON_BANNERS,
        ),
        Profile(
            "ublox-sara-r410m",
            "u-blox SARA-R410M (LTE-M/NB-IoT); prints no RDY, SMS in ME storage",
            ("sara-r41", "sara-r4"),
            _COMMON_BANNERS,
            storage="ME",
        ),
        Profile(
            "quectel",
            "other Quectel modules (AT+QURCCFG, +QIND banners)",
            ("quectel",),
            _QUECTEL_BANNERS,
            urc_port_query=at.QURCCFG_URCPORT,
        ),
        Profile("generic", "any 3GPP TS 27.005 module", (), _COMMON_BANNERS),
    )
}


def is_banner(profile: Profile, line: str) -> bool:
    """True when the indication ``line`` is one of ``profile``'s boot banners."""
    return " ".join(line.split()).upper() in profile.boot_banners


def starts_boot(line: str) -> bool:
    """True when the indication ``line`` is the first line of a boot (:data:`BOOT_START`)."""
    return " ".join(line.split()).upper() in BOOT_START


def detect(model: str, manufacturer: str = "") -> Profile:
    """The profile for what ``AT+CGMM`` / ``AT+CGMI`` said; ``generic`` when none matches."""
    text = f"{model} {manufacturer}".lower()
    for profile in PROFILES.values():
        if any(m in text for m in profile.matches):
            return profile
    return PROFILES["generic"]


def by_name(name: str) -> Profile:
    """The profile called ``name``; KeyError with the known names otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"unknown profile {name!r} (known: {', '.join(PROFILES)})") from None


def resolve(choice: str, model: str, manufacturer: str = "") -> Profile:
    """``choice`` is ``agent.profile``: ``"auto"`` detects from the identity, a name picks."""
    return detect(model, manufacturer) if choice == "auto" else by_name(choice)
