"""The emulated module's radio: functionality level, operator selection, registration.

:class:`Radio` decides what ``+CREG`` / ``+CGREG`` / ``+CEREG`` report and
whether the network can reach the module (:attr:`Radio.registered`, which the
network's :class:`~hostsim.cloud.network.Gateway` ``registered`` is built on).
The network *offers* a registration status (:attr:`Radio.network_stat`, set by
tests and faults); the module only *has* it when

* its functionality is full (``AT+CFUN=1``; 0 and 4 switch the RF off),
* it is not deregistered (``AT+COPS=2``),
* its SIM asks for no PIN or PUK, and there is an operator to register on.

The packet-switched status (``+CGREG``, and ``+CEREG``: on LTE the EPS
registration is the packet attach) is additionally 0 after ``AT+CGATT=0``.

:meth:`Radio.urcs` turns a change into the unsolicited codes each ``<n>`` asks
for (27.007 §7.2, §10.1.20, §10.1.22): ``<n>`` 1 on a ``<stat>`` change, ``<n>`` 2
also with the location and ``<AcT>`` while registered.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from hostsim.modem.settings import ModemConfig, Operator, RegStat, Settings

REGISTERED = (RegStat.HOME, RegStat.ROAMING)


class Domain(enum.Enum):
    """The registration commands, and the ``Settings`` field holding their ``<n>``."""

    CREG = "creg"
    CGREG = "cgreg"
    CEREG = "cereg"

    @property
    def name_(self) -> str:
        """``+CREG`` …"""
        return "+" + self.name


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The circuit- and packet-switched statuses at one moment."""

    cs: RegStat
    ps: RegStat


class CopsMode(enum.IntEnum):
    """``AT+COPS`` ``<mode>`` (27.007 §7.3)."""

    AUTOMATIC = 0
    MANUAL = 1
    DEREGISTERED = 2
    MANUAL_AUTOMATIC = 4


class Radio:
    """Functionality level, operator choice and packet attach of one module."""

    def __init__(self, config: ModemConfig) -> None:
        self.config = config
        #: What the network offers (tests and faults change it).
        self.network_stat: RegStat = config.reg_stat
        #: ``AT+CFUN`` ``<fun>``: 1 full, 0 minimum, 4 RF off.
        self.fun = 1
        self.cops_mode = CopsMode.AUTOMATIC
        self.operator: Operator | None = config.operators[0] if config.operators else None
        #: ``AT+CGATT``: attached to the packet service.
        self.packet_attached = True
        #: False while the SIM asks for a PIN or PUK (set by the modem).
        self.sim_unlocked = True

    def power_on(self) -> None:
        """A boot: full functionality, automatic selection, attached."""
        self.fun = 1
        self.cops_mode = CopsMode.AUTOMATIC
        self.operator = self.config.operators[0] if self.config.operators else None
        self.packet_attached = True

    @property
    def cs_stat(self) -> RegStat:
        """``<stat>`` of ``+CREG``."""
        if (
            self.fun != 1
            or self.cops_mode is CopsMode.DEREGISTERED
            or not self.sim_unlocked
            or self.operator is None
        ):
            return RegStat.NOT_REGISTERED
        return self.network_stat

    @property
    def ps_stat(self) -> RegStat:
        """``<stat>`` of ``+CGREG`` / ``+CEREG``."""
        return self.cs_stat if self.packet_attached else RegStat.NOT_REGISTERED

    @property
    def registered(self) -> bool:
        """Registered (home or roaming) for SMS: the network can deliver."""
        return self.cs_stat in REGISTERED

    def snapshot(self) -> Snapshot:
        """The statuses now, to compare with after a change (:meth:`urcs`)."""
        return Snapshot(self.cs_stat, self.ps_stat)

    def stat(self, domain: Domain) -> RegStat:
        """The status ``domain`` reports."""
        return self.cs_stat if domain is Domain.CREG else self.ps_stat

    def fields(self, domain: Domain, n: int) -> str:
        """``<stat>[,<lac>,<ci>,<AcT>]`` as ``<n>`` asks (location only while registered)."""
        stat = self.stat(domain)
        text = str(int(stat))
        if n == 2 and stat in REGISTERED and self.operator is not None:
            text += f',"{self.config.lac}","{self.config.cell_id}",{self.operator.act}'
        return text

    def urcs(self, before: Snapshot, settings: Settings) -> list[str]:
        """The unsolicited codes for the change since ``before``, per each ``<n>``."""
        lines: list[str] = []
        for domain in Domain:
            n: int = getattr(settings, domain.value)
            old = before.cs if domain is Domain.CREG else before.ps
            if n and old != self.stat(domain):
                lines.append(f"{domain.name_}: {self.fields(domain, n)}")
        return lines
