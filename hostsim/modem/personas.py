"""Personas: emulated modems that look and behave like real module families, as data.

Each persona is a :class:`~hostsim.modem.settings.ModemConfig`: identity (``ATI``,
``AT+CGMI``/``CGMM``/``CGMR``/``CGSN``, IMSI, ICCID), the AT commands
it has (``commands``: a base set of V.250 / 27.007 / 27.005 commands plus the
family's own), boot banner, storages, index base, default settings, quirks and
the ``sources`` (manual and section) of every fact that differs between
modules. ``hostsim run --persona NAME`` and ``HostSim(config=persona(NAME))``
select one; ``hostsim run`` defaults to ``quectel-bg96``. ``generic`` is a
module that has only the standard commands (no vendor ones, no boot banner).

A command in a persona's set is answered by the handler of that name in
:data:`hostsim.modem.handlers.HANDLERS`. A name without one is in
:data:`NOT_EMULATED` (the module has it, hostsim does not emulate it: the
reason is there; each persona lists them in ``not_emulated``), and such a
name answers as an absent command; ``tests/test_personas.py`` holds every name
to one of the two, so nothing claims support silently. A command outside the
set answers as that module answers an unknown command
(:meth:`~hostsim.modem.interpreter.EmulatedModem.absent`).

:func:`markdown` renders the per-persona command table that the README's
hostsim section embeds between markers (``hostsim personas`` prints it,
``hostsim personas --readme README.md`` rewrites it in place).
"""

from __future__ import annotations

import dataclasses

from hostsim.modem.handlers import HANDLERS
from hostsim.modem.settings import Cnmi, ModemConfig, Quirk, Settings, Source

BG96_MANUAL = "Quectel BG96 AT Commands Manual V2.3"
EG25_MANUAL = "Quectel EG25-G AT Commands Manual V1.0 (EC2x&EG2x&EM05 series)"
SIMCOM_MANUAL = "SIMCom SIM7500_SIM7600 Series AT Command Manual V1.10"
UBLOX_MANUAL = "u-blox SARA-R4 series AT commands manual UBX-17003787"

#: ITU-T V.250 basic commands every family has.
V250 = frozenset({
    "A", "D", "E", "H", "I", "O", "Q", "S", "V", "X", "Z", "&C", "&D", "&F", "&V", "&W",
})  # fmt: skip
#: 3GPP TS 27.007 commands every family has.
TS27007 = frozenset({
    "+CGMI", "+CGMM", "+CGMR", "+CGSN", "+GMI", "+GMM", "+GMR", "+GSN", "+GCAP",
    "+CIMI", "+CSCS", "+CLAC", "+CFUN", "+CMEE", "+CPIN", "+CPAS", "+CSQ", "+CESQ",
    "+CCLK", "+COPS", "+CREG", "+CGREG", "+CEREG", "+CGATT", "+CGDCONT", "+CGACT",
    "+CGPADDR", "+CNUM", "+CLCK", "+CPWD", "+CRSM", "+CSIM", "+IPR", "+IFC", "+ICF",
})  # fmt: skip
#: 3GPP TS 27.005 commands every family has.
TS27005 = frozenset({
    "+CSMS", "+CMGF", "+CSCA", "+CPMS", "+CSMP", "+CSDH", "+CNMI", "+CMGL", "+CMGR",
    "+CMGS", "+CMGW", "+CMSS", "+CMGD", "+CNMA", "+CMMS", "+CSCB",
})  # fmt: skip
BASE = V250 | TS27007 | TS27005

#: Quectel's own commands (both manuals, "Quectel-specific" sections of each chapter).
QUECTEL = frozenset({
    "+CBC", "+QCCID", "+QURCCFG", "+QINDCFG", "+QCFG", "+QPOWD", "+QCSQ", "+QNWINFO",
    "+QSPN", "+QCMGS", "+QCMGR", "+QPINC", "+QINISTAT", "+QSIMDET", "+QSIMSTAT",
})  # fmt: skip
#: SIMCom's own commands (SIM7500_SIM7600 manual, chapters 3–5) and V.250 ``&S``/``&E``.
SIMCOM = frozenset({
    "&S", "&E", "+CBC", "+CICCID", "+SPIC", "+CPSI", "+CNMP", "+CNSMOD", "+CSUB", "+CRESET",
    "+CPOF",
})  # fmt: skip
#: u-blox's own commands (SARA-R4 manual), and V.250 ``&K`` flow control.
UBLOX = frozenset({
    "&K", "+CCID", "+UPINCNT", "+CPWROFF", "+UPSV", "+URAT", "+UMNOPROF", "+USIMSTAT",
    "+UBANDMASK", "+UCGED",
})  # fmt: skip

#: Commands some module has that hostsim does not emulate, and why. Such a name
#: answers as an absent command does (the module itself would answer it).
NOT_EMULATED: dict[str, str] = {
    "A": "answering a call: no circuit-switched calls",
    "D": "dialling (voice, data, PPP): no calls or data sessions",
    "H": "hanging up: no calls",
    "O": "back to data mode: no data sessions",
    "+IPR": "baud rate: a pty has none",
    "+IFC": "flow control: a pty has none",
    "+ICF": "character framing: a pty has none",
    "+CGACT": "PDP context activation: no packet data",
    "+CGPADDR": "PDP addresses: no packet data",
    "+CRSM": "restricted SIM access (raw EF reads): no SIM file system",
    "+CSIM": "generic SIM access (APDUs): no SIM file system",
    "+CMMS": "keeping the SMS relay link open: no relay link timing",
    "+CSCB": "cell broadcast: no broadcast messages",
    "+CPAS": "activity status: no calls, the answer would always be ready",
    "+QCFG": "Quectel extended configuration: dozens of module-internal settings",
    "+QPOWD": "power down: use the /_hostsim/ reset route",
    "+QCSQ": "Quectel per-RAT signal: +CSQ and +CESQ are emulated",
    "+QNWINFO": "Quectel network information (band, channel): no radio",
    "+QSPN": "Quectel service provider name: +COPS is emulated",
    "+QCMGS": "Quectel concatenated send: +CMGS in PDU mode sends concatenated parts",
    "+QCMGR": "Quectel concatenated read: +CMGR in PDU mode shows the header",
    "+QINISTAT": "Quectel SIM initialisation status: the boot banner shows it",
    "+QSIMDET": "SIM hot-plug detection: the SIM is never removed",
    "+QSIMSTAT": "SIM inserted status report: the SIM is never removed",
    "&S": "DSR line mode: a pty has no DSR line",
    "&E": "CONNECT result code format: no data connections",
    "+CPSI": "SIMCom system information (serving cell, band): no radio",
    "+CNMP": "SIMCom preferred mode (GSM/LTE): no radio",
    "+CNSMOD": "SIMCom network system mode: no radio",
    "+CSUB": "SIMCom sub-version: +CGMR carries the revision",
    "+CRESET": "SIMCom reset: use the /_hostsim/ reset route",
    "+CPOF": "SIMCom power off: use the /_hostsim/ reset route",
    "+CPWROFF": "u-blox power off: use the /_hostsim/ reset route",
    "+UPSV": "u-blox power saving: the pty never sleeps",
    "+URAT": "u-blox radio access technology selection: no radio",
    "+UMNOPROF": "u-blox mobile network operator profile: no radio",
    "+USIMSTAT": "u-blox SIM state reporting: the SIM is never removed",
    "+UBANDMASK": "u-blox band mask: no radio",
    "+UCGED": "u-blox cell environment: no radio",
    "+QINDCFG": "Quectel URC indication switches: the +QIND boot indications are always on",
}


def _not_emulated(commands: frozenset[str]) -> frozenset[str]:
    """The names of ``commands`` that hostsim does not emulate (those with a reason
    in :data:`NOT_EMULATED`; a name there that gets a handler must leave it)."""
    return commands & NOT_EMULATED.keys()


_QUECTEL_COMMANDS = BASE | QUECTEL
_QUECTEL_SOURCES = (
    Source("command set", BG96_MANUAL, "the command chapters (V.250, 27.007, 27.005, Quectel)"),
    Source("ATI: manufacturer, model, Revision: lines; CMEE default 1", BG96_MANUAL,
           "ATI, AT+CMEE"),
    Source("AT+QCCID for the ICCID, no AT+CCID", BG96_MANUAL, "AT+QCCID (SIM related commands)"),
    Source("boot banner RDY, +CPIN: READY, +QIND: PB DONE / SMS DONE", BG96_MANUAL,
           "AT+QINDCFG, URC +QIND"),
    Source("unknown command answers ERROR", BG96_MANUAL,
           "chapter 1, AT command syntax: ERROR for an invalid command"),
)  # fmt: skip

PERSONAS: dict[str, ModemConfig] = {
    "generic": ModemConfig(
        name="generic",
        manufacturer="hostsim",
        model="GENERIC-27005",
        revision="hostsim-27005-1",
        imei="350000001234562",
        # No vendor banner: a module that only follows the standards prints none.
        boot_banner=(),
        defaults=Settings(cmee=0, cnmi=Cnmi(0, 0, 0, 0, 0)),
        commands=BASE,
        not_emulated=_not_emulated(BASE),
        sources=(
            Source("command set", "ITU-T V.250, 3GPP TS 27.007, 3GPP TS 27.005", "whole"),
            Source("CMEE default 0", "3GPP TS 27.007", "§9.1 +CMEE"),
            Source(
                "CNMI default 0,0,0,0,0 (indications kept in the MT)",
                "3GPP TS 27.005",
                "§3.4.1 +CNMI",
            ),
            Source("unknown command answers ERROR", "ITU-T V.250", "§5.7.1 result codes"),
        ),
    ),
    "quectel-bg96": ModemConfig(
        name="quectel-bg96",
        commands=_QUECTEL_COMMANDS,
        not_emulated=_not_emulated(_QUECTEL_COMMANDS),
        sources=(
            *_QUECTEL_SOURCES,
            Source("SMS storages SM 30 (SIM), ME 100", BG96_MANUAL, "AT+CPMS (SMS commands)"),
        ),
    ),
    "quectel-eg25g": ModemConfig(
        name="quectel-eg25g",
        manufacturer="Quectel",
        model="EG25",
        revision="EG25GGBR07A08M2G",
        imei="867698041234561",
        storages=(("SM", 50), ("ME", 255), ("MT", 305)),
        boot_banner=("RDY", "+CPIN: READY", "+QIND: PB DONE", "+QIND: SMS DONE"),
        commands=_QUECTEL_COMMANDS,
        not_emulated=_not_emulated(_QUECTEL_COMMANDS),
        sources=(
            *_QUECTEL_SOURCES[1:],
            Source("command set", EG25_MANUAL, "the command chapters"),
            Source("SMS storages SM, ME 255 and MT (SM+ME)", EG25_MANUAL, "AT+CPMS (SMS commands)"),
        ),
    ),
    "simcom-sim7600": ModemConfig(
        name="simcom-sim7600",
        manufacturer="SIMCOM INCORPORATED",
        model="SIMCOM_SIM7600E-H",
        revision="LE20B04SIM7600M22",
        imei="862636051234563",
        storages=(("SM", 30), ("ME", 100)),
        boot_banner=("RDY", "+CPIN: READY", "SMS DONE", "PB DONE"),
        # SIMCom powers up without new-message indications: the TE must ask for them.
        defaults=Settings(cnmi=Cnmi(0, 0, 0, 0, 0)),
        gcap="+GCAP: +CGSM,+FCLASS,+DS",
        ati=(
            "Manufacturer: {manufacturer}",
            "Model: {model}",
            "Revision: {revision}",
            "IMEI: {imei}",
            "{gcap}",
        ),
        commands=BASE | SIMCOM,
        not_emulated=_not_emulated(BASE | SIMCOM),
        sources=(
            Source(
                "command set; V.250 part: &S and &E, no &K",
                SIMCOM_MANUAL,
                "chapter 3 (AT commands according to V.25TER, §3.1-3.35), 4 (status control), SMS",
            ),
            Source(
                "ATI: Manufacturer:, Model:, Revision:, IMEI:, +GCAP: lines",
                SIMCOM_MANUAL,
                "§3.11 ATI; module output: github.com/Xinyuan-LilyGO/LilyGo-Modem-Series issue 380",
            ),
            Source(
                "AT+CICCID for the ICCID (+ICCID: line), no AT+CCID",
                SIMCOM_MANUAL,
                "§4.3 AT+CICCID (chapter 4, status control)",
            ),
            Source(
                "boot banner RDY, +CPIN: READY, SMS DONE, PB DONE",
                SIMCOM_MANUAL,
                "AT+CPIN and the SMS DONE / PB DONE indications",
            ),
            Source("CNMI default 0,0,0,0,0", SIMCOM_MANUAL, "AT+CNMI (SMS commands)"),
            Source(
                "+GCAP: +CGSM,+FCLASS,+DS; +SPIC: <pin1>,<puk1>,<pin2>,<puk2>",
                SIMCOM_MANUAL,
                "AT+GCAP (V.25TER chapter), AT+SPIC (status control)",
            ),
            Source(
                "an unknown or malformed command answers ERROR whatever AT+CMEE says",
                SIMCOM_MANUAL,
                "§2 AT interface synopsis; github.com/Xinyuan-LilyGO/T-SIM7600X issue 77 (CMEE=2)",
            ),
        ),
    ),
    "ublox-sara-r410m": ModemConfig(
        name="ublox-sara-r410m",
        manufacturer="u-blox",
        model="SARA-R410M-02B",
        revision="L0.0.00.00.05.06 [Feb 03 2018 13:00:41]",
        imei="352753091234565",
        storages=(("SM", 23), ("ME", 100)),
        index_base=0,
        # No RDY: u-blox modules boot silently; only settings reveal a restart.
        boot_banner=(),
        defaults=Settings(echo=True, cmee=0),
        gcap="+GCAP: +FCLASS, +CGSM",
        ati=(
            "Manufacturer: {manufacturer}",
            "Model: {model}",
            "Revision: {revision}",
            "SVN: 03",
            "IMEI: {imei}",
        ),
        commands=BASE | UBLOX,
        not_emulated=_not_emulated(BASE | UBLOX),
        quirks=frozenset({Quirk.ABSENT_COMMAND_IS_CME_UNKNOWN}),
        sources=(
            Source("command set", UBLOX_MANUAL, "the command chapters"),
            Source(
                "ATI: Manufacturer:, Model:, Revision:, SVN:, IMEI: lines",
                UBLOX_MANUAL,
                "ATI; module output in github.com/vshymanskyy/TinyGSM issues 244 and 257",
            ),
            Source(
                "AT+CCID for the ICCID (not 3GPP; Quectel and SIMCom lack it)",
                UBLOX_MANUAL,
                "AT+CCID; github.com/FreeRTOS/FreeRTOS-Cellular-Interface pull 158",
            ),
            Source("no greeting text at boot by default", UBLOX_MANUAL, "AT+CSGT"),
            Source("CMEE default 0", UBLOX_MANUAL, "AT+CMEE"),
            Source(
                "+GCAP: +FCLASS, +CGSM; +UPINCNT: <pin1>,<pin2>,<puk1>,<puk2>",
                UBLOX_MANUAL,
                "AT+GCAP, AT+UPINCNT (SIM management)",
            ),
            Source(
                "ERROR is formatted by AT+CMEE (an unknown command too)",
                UBLOX_MANUAL,
                "§1.1.6 Information text responses and result codes, table 1 (R16); "
                "SARA-R422S answers AT&C1 +CME ERROR: SIM busy under CMEE=2 "
                "(github.com/u-blox/ubxlib issue 287)",
            ),
        ),
    ),
}


def persona(name: str) -> ModemConfig:
    """The persona called ``name``; ValueError naming the known ones otherwise."""
    try:
        return dataclasses.replace(PERSONAS[name])
    except KeyError:
        raise ValueError(f"unknown persona {name!r} (known: {', '.join(PERSONAS)})") from None


def _cell(config: ModemConfig, name: str) -> str:
    if name not in (config.commands or frozenset()):
        return ""
    return "yes" if name in HANDLERS else "not emulated"


#: The README lines that enclose the generated table.
README_BEGIN = "<!-- personas:begin -->"
README_END = "<!-- personas:end -->"


def with_table(readme: str) -> str:
    """``readme`` with the text between :data:`README_BEGIN` and :data:`README_END`
    replaced by :func:`markdown`; ValueError when the markers are missing."""
    start = readme.find(README_BEGIN)
    end = readme.find(README_END, start)
    if start < 0 or end < 0:
        raise ValueError(f"no {README_BEGIN} … {README_END} markers")
    return readme[: start + len(README_BEGIN)] + "\n" + markdown() + readme[end:]


def _absent_answer(config: ModemConfig) -> str:
    if Quirk.ABSENT_COMMAND_IS_CME_UNKNOWN in config.quirks:
        return "`+CME ERROR: 100` (formatted per `AT+CMEE`)"
    return "`ERROR`"


def markdown() -> str:
    """The per-persona command table (Markdown) for the README's hostsim section.

    One row per command any persona has: "yes" (emulated), "not emulated" (the
    module has it; see :data:`NOT_EMULATED`), or empty (the module lacks it: it
    answers as an unknown command).
    """
    names = sorted(set().union(*(c.commands or () for c in PERSONAS.values())))
    header = ["command", *PERSONAS]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for name in names:
        cells = [_cell(config, name) for config in PERSONAS.values()]
        lines.append(f"| `AT{name}` | " + " | ".join(cells) + " |")
    lines.append("")
    answers = [f"{key}: {_absent_answer(config)}" for key, config in PERSONAS.items()]
    lines.append("A command the module lacks answers " + "; ".join(answers) + ".")
    lines.append("")
    lines.append("Not emulated, and why:")
    lines.append("")
    used = set().union(*(c.not_emulated for c in PERSONAS.values()))
    lines.extend(f"- `AT{name}`: {NOT_EMULATED[name]}" for name in sorted(used))
    return "\n".join(lines) + "\n"
