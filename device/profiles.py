"""What differs between cellular modules, as data: one :class:`Profile` per family.

The agent picks a profile from the model the module reports (``AT+CGMM``, or the
manufacturer from ``AT+CGMI``), or from ``agent.profile`` in the configuration,
and uses it for:

* ``boot_banners`` — indications the module prints when it (re)boots; seeing one
  while configured means its settings are gone;
* ``storage`` — the preferred message storage when the configuration keeps the
  default;
* ``urc_port_query`` — how to read which port gets unsolicited codes (shown by
  ``smscmd probe``; if it is not the AT port the agent reads, no ``+CMTI``
  arrives and only the safety sweep finds messages).

Facts are from the modules' AT command manuals (Quectel BG96/EG25-G, SIMCom
SIM7600, u-blox SARA-R4 series); ``generic`` holds for any 3GPP TS 27.005 module.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    description: str
    #: Lower-case substrings of AT+CGMM / AT+CGMI that select this profile.
    matches: tuple[str, ...]
    #: Whole indication lines (upper case) a booting module prints.
    boot_banners: frozenset[str]
    storage: str = "SM"
    urc_port_query: str | None = None


_COMMON_BANNERS = frozenset({"RDY", "SMS DONE", "SMS READY", "PB DONE", "CALL READY", "+PBREADY"})

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "quectel-bg96",
            "Quectel BG96 (LTE-M/NB-IoT)",
            ("bg96",),
            _COMMON_BANNERS | {"+QIND: SMS DONE", "+QIND: PB DONE"},
            urc_port_query='AT+QURCCFG="urcport"',
        ),
        Profile(
            "quectel-eg25g",
            "Quectel EG25-G (LTE Cat 4)",
            ("eg25",),
            _COMMON_BANNERS | {"+QIND: SMS DONE", "+QIND: PB DONE"},
            urc_port_query='AT+QURCCFG="urcport"',
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
        Profile("generic", "any 3GPP TS 27.005 module", (), _COMMON_BANNERS),
    )
}


def is_banner(profile: Profile, line: str) -> bool:
    """True when the indication ``line`` is one of ``profile``'s boot banners."""
    return " ".join(line.split()).upper() in profile.boot_banners


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
