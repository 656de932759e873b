"""Personas: emulated modems that look and behave like real module families.

Each persona is a :class:`~hostsim.modem.settings.ModemConfig`: identity (``ATI``,
``AT+CGMI``/``CGMM``/``CGMR``), boot banner, storages, index base and default
settings, following the modules' AT manuals. ``hostsim run --persona NAME`` and
``HostSim(persona=NAME)`` select one; the default is ``quectel-bg96``.
"""

from __future__ import annotations

import dataclasses

from hostsim.modem.settings import Cnmi, ModemConfig, Settings

PERSONAS: dict[str, ModemConfig] = {
    "quectel-bg96": ModemConfig(),
    "quectel-eg25g": ModemConfig(
        manufacturer="Quectel",
        model="EG25",
        revision="EG25GGBR07A08M2G",
        imei="867698041234563",
        storages=(("SM", 50), ("ME", 255), ("MT", 305)),
        boot_banner=("RDY", "+CPIN: READY", "+QIND: PB DONE", "+QIND: SMS DONE"),
    ),
    "simcom-sim7600": ModemConfig(
        manufacturer="SIMCOM INCORPORATED",
        model="SIMCOM_SIM7600E-H",
        revision="LE20B04SIM7600M22",
        imei="862636051234569",
        storages=(("SM", 30), ("ME", 100)),
        boot_banner=("RDY", "+CPIN: READY", "SMS DONE", "PB DONE"),
        # SIMCom powers up without new-message indications: the TE must ask for them.
        defaults=Settings(cnmi=Cnmi(0, 0, 0, 0, 0)),
    ),
    "ublox-sara-r410m": ModemConfig(
        manufacturer="u-blox",
        model="SARA-R410M-02B",
        revision="L0.0.00.00.05.06 [Feb 03 2018 13:00:41]",
        imei="352753091234566",
        storages=(("SM", 23), ("ME", 100)),
        index_base=0,
        # No RDY: u-blox modules boot silently; only settings reveal a restart.
        boot_banner=(),
        defaults=Settings(echo=True, cmee=0),
    ),
}


def persona(name: str) -> ModemConfig:
    """The persona called ``name``; ValueError naming the known ones otherwise."""
    try:
        return dataclasses.replace(PERSONAS[name])
    except KeyError:
        raise ValueError(f"unknown persona {name!r} (known: {', '.join(PERSONAS)})") from None
