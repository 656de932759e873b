"""Settings and identity of the emulated modem, as immutable records.

:class:`Settings` is what ``ATZ`` restores; :class:`ModemConfig` is fixed for
the modem's lifetime (identity, storages, defaults). Defaults follow a Quectel
module with a Twilio Super SIM: echo on, ``CMEE=1``, PDU mode (``CMGF=0``, the
27.005 default: clients must select text mode as Twilio's samples do),
``CSCS="GSM"``, ``CNMI=2,1,0,0,0``, ``CPMS="SM","SM","SM"``, registered roaming,
verbose result codes (``ATV1``, ``ATQ0``).

The general-command data that differs by module (operators, capabilities,
vendor extras) sits in :class:`ModemConfig` too, with the BG96 / Super SIM
values as defaults; the personas override them.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any

from device.sms.charset import Charset


class MessageMode(enum.IntEnum):
    """``AT+CMGF`` values."""

    PDU = 0
    TEXT = 1


class RegStat(enum.IntEnum):
    """``<stat>`` of ``+CREG`` / ``+CEREG`` (27.007 §7.2)."""

    NOT_REGISTERED = 0
    HOME = 1
    SEARCHING = 2
    DENIED = 3
    UNKNOWN = 4
    ROAMING = 5


@dataclass(frozen=True, slots=True)
class Cnmi:
    """``AT+CNMI=<mode>,<mt>,<bm>,<ds>,<bfr>``."""

    mode: int = 2
    mt: int = 1
    bm: int = 0
    ds: int = 0
    bfr: int = 0

    def render(self) -> str:
        """The values as ``+CNMI?`` prints them."""
        return f"{self.mode},{self.mt},{self.bm},{self.ds},{self.bfr}"


@dataclass(frozen=True, slots=True)
class Csmp:
    """``AT+CSMP=<fo>,<vp>,<pid>,<dcs>`` (text-mode submit parameters)."""

    fo: int = 17
    vp: int = 167
    pid: int = 0
    dcs: int = 0

    def render(self) -> str:
        """The values as ``+CSMP?`` prints them."""
        return f"{self.fo},{self.vp},{self.pid},{self.dcs}"


@dataclass(frozen=True, slots=True)
class Settings:
    """Volatile settings; ``ATZ`` / ``AT&F`` restore the configured defaults."""

    echo: bool = True
    cmee: int = 1
    cmgf: MessageMode = MessageMode.PDU
    cscs: Charset = Charset.GSM
    csdh: bool = False
    csmp: Csmp = field(default_factory=Csmp)
    cnmi: Cnmi = field(default_factory=Cnmi)
    cpms: tuple[str, str, str] = ("SM", "SM", "SM")
    creg: int = 0
    cereg: int = 0
    #: ``AT+CSMS`` ``<service>``: 0 (phase 2, no acknowledgements), 1 (phase 2+:
    #: ``+CMT``/``+CDS`` routed to the TE wait for ``AT+CNMA``).
    csms: int = 0
    #: ``AT+CGREG=<n>`` (GPRS registration URCs, 27.007 §10.1.20).
    cgreg: int = 0
    #: ``ATV``: True verbose (``OK``), False numeric (``0``) result codes (V.250 §6.2.6).
    verbose: bool = True
    #: ``ATQ1``: no result codes at all (V.250 §6.2.5).
    quiet: bool = False
    #: ``AT+COPS=3,<format>``: 0 long alphanumeric, 1 short, 2 numeric operator names.
    cops_format: int = 0
    #: ``AT&C`` (DCD), ``AT&D`` (DTR), ``AT&K`` (flow control), ``ATX`` (result-code set).
    dcd_mode: int = 1
    dtr_mode: int = 2
    flow_control: int = 3
    result_set: int = 4


def with_setting(settings: Settings, name: str, value: object) -> Settings:
    """``settings`` with the field called ``name`` set to ``value`` (a table-driven handler's
    write; the caller passes a value of the field's type)."""
    changes: dict[str, Any] = {name: value}
    return dataclasses.replace(settings, **changes)


@dataclass(frozen=True, slots=True)
class Operator:
    """A network the module sees (``AT+COPS=?``): names in the three ``<format>`` s."""

    long_name: str
    short_name: str
    numeric: str
    #: ``<AcT>`` of 27.007 §7.3: 0 GSM, 2 UTRAN, 7 E-UTRAN, 8 EC-GSM-IoT, 9 E-UTRAN NB-S1.
    act: int = 7

    def name(self, fmt: int) -> str:
        """The name in ``AT+COPS`` ``<format>`` ``fmt`` (0 long, 1 short, 2 numeric)."""
        return (self.long_name, self.short_name, self.numeric)[fmt]


#: What a Twilio Super SIM sees in London: the network it roams on first, then others.
DEFAULT_OPERATORS: tuple[Operator, ...] = (
    Operator("vodafone UK", "voda UK", "23415"),
    Operator("O2 - UK", "O2 - UK", "23410"),
    Operator("EE", "EE", "23430"),
)


class Quirk(enum.Enum):
    """A way a module family departs from the common behaviour (read by the interpreter)."""

    #: A command the module lacks answers ``+CME ERROR: 100`` ("unknown"), formatted
    #: per ``AT+CMEE`` (plain ``ERROR`` under ``CMEE=0``), instead of a plain ``ERROR``.
    ABSENT_COMMAND_IS_CME_UNKNOWN = "absent-command-is-cme-unknown"
    #: Text-mode ``<scts>`` with a four-digit year (``2026/11/25,…``), where 27.005
    #: §3.1 / 27.007 §8.15 have ``yy``.
    SCTS_FOUR_DIGIT_YEAR = "scts-four-digit-year"
    #: Text-mode ``<scts>`` with a space instead of the comma between date and time.
    SCTS_SPACE_SEPARATOR = "scts-space-separator"
    #: Text-mode ``<scts>`` without the ``±zz`` time zone.
    SCTS_NO_ZONE = "scts-no-zone"
    #: Text-mode ``<scts>`` with a one-digit zone (``+4``, not ``+04``).
    SCTS_ONE_DIGIT_ZONE = "scts-one-digit-zone"
    #: Numbers (``<oa>``/``<da>``, ``<sca>`` in ``AT+CSCA?`` and the ``AT+CSDH=1`` header)
    #: printed plainly whatever ``AT+CSCS`` says, where 27.005 §3.1/§3.3.1 convert them
    #: (gammu's ``ATGEN_DecodeText`` guesses per number for this reason). Alphanumeric
    #: senders stay converted.
    PLAIN_ADDRESSES = "plain-addresses"


@dataclass(frozen=True, slots=True)
class Source:
    """Where a persona fact comes from: ``document`` and ``section`` (or page)."""

    fact: str
    document: str
    section: str


@dataclass(frozen=True, slots=True)
class ModemConfig:
    """Identity, command set, storages, defaults and quirks of one emulated modem.

    ``storages`` maps memory names to capacities; ``index_base`` is the first
    index of every memory (0 on Quectel and SIMCom modules). ``commands`` are
    the names (``E``, ``&V``, ``+CFUN``, ``+QCCID`` …) the module has; None (a
    bare ``ModemConfig()``, what most tests build) means every command
    hostsim emulates. A name outside the set answers as the module answers an
    unknown command (see :class:`Quirk`); :mod:`hostsim.modem.personas` holds
    the named personas, with ``sources`` for what differs between modules.
    """

    #: The persona's name (``hostsim run --persona``); "bare" for a config built directly
    #: (BG96 identity, every emulated command: what most tests use), not a persona.
    name: str = "bare"
    manufacturer: str = "Quectel"
    model: str = "BG96"
    revision: str = "BG96MAR02A07M1G"
    imei: str = "866425031234562"
    imsi: str = "732123200000001"
    iccid: str = "89883070000012345678"
    smsc: str = "+447937405250"
    rssi: int = 20
    reg_stat: RegStat = RegStat.ROAMING
    lac: str = "2D0C"
    cell_id: str = "01A2B3C4"
    storages: tuple[tuple[str, int], ...] = (("SM", 30), ("ME", 100))
    index_base: int = 0
    defaults: Settings = field(default_factory=Settings)
    #: Seconds the module waits for the TE's ``AT+CNMA`` after a ``+CMT``/``+CDS``
    #: under ``AT+CSMS=1`` (TS 24.011 §10 timer TR2M, 12–20 s) before it gives up.
    ack_timeout: float = 15.0
    #: Lines a (re)booting module prints, in order (Quectel style).
    boot_banner: tuple[str, ...] = ("RDY", "+CPIN: READY", "+QIND: PB DONE", "+QIND: SMS DONE")
    #: ``ATI`` lines, :meth:`str.format` templates over the identity fields (Quectel style).
    ati: tuple[str, ...] = ("{manufacturer}", "{model}", "Revision: {revision}")
    #: The command names the module has, vendor ones included (gates the whole handler table).
    commands: frozenset[str] | None = None
    #: Names in ``commands`` that hostsim has no handler for (they answer as absent);
    #: :data:`hostsim.modem.personas.NOT_EMULATED` says why for each.
    not_emulated: frozenset[str] = frozenset()
    quirks: frozenset[Quirk] = frozenset()
    sources: tuple[Source, ...] = ()
    #: Networks seen (``AT+COPS=?``); the first is the one the module registers on.
    operators: tuple[Operator, ...] = DEFAULT_OPERATORS
    #: The SIM's MSISDN for ``AT+CNUM``; empty (a Super SIM has no phone number): no line.
    msisdn: str = ""
    #: The SIM's PIN and PUK; with ``pin_lock`` the SIM asks for the PIN at every boot
    #: (``+CPIN: SIM PIN``), else it is ``READY`` (``AT+CLCK="SC"`` turns the lock on/off).
    pin: str = "1234"
    puk: str = "12345678"
    pin_lock: bool = False
    #: ``AT+GCAP`` (V.250 §6.1.9): the Quectel manuals list ``+CGSM``.
    gcap: str = "+GCAP: +CGSM"
    #: ``AT+CESQ`` (27.007 §8.69) LTE fields: ``<rsrq>`` 0–34, ``<rsrp>`` 0–97.
    rsrq: int = 20
    rsrp: int = 50
    #: ``AT+CBC`` (27.007 §8.4): battery connection status, charge %, voltage in mV.
    battery: tuple[int, int, int] = (0, 80, 3900)
    #: The default PDP context (``AT+CGDCONT``): Super SIM's APN.
    apn: str = "super"

    def identification(self) -> list[str]:
        """The ``ATI`` information lines: :attr:`ati` filled with this identity
        (``{manufacturer}``, ``{model}``, ``{revision}``, ``{imei}``, ``{gcap}``)."""
        fields = {
            "manufacturer": self.manufacturer,
            "model": self.model,
            "revision": self.revision,
            "imei": self.imei,
            "gcap": self.gcap,
        }
        return [line.format(**fields) for line in self.ati]
