"""``smscmd probe --port PATH``: is this modem ready to receive SMS Commands?

Reads the module's identity, the SIM, registration, signal, SMS storage and
(when the module's profile says how, as on Quectel modules) which port gets the
unsolicited codes, changing nothing but the error format (``AT+CMEE=2``) and
echo (``ATE0``). Every check that fails
is a reason; the probe is *ready* only when there is none.

The Super SIM line is a hint, not a proof: Super SIM ICCIDs carry the issuer
prefix ``8988307`` in Twilio's documentation and examples; a SIM with another
prefix may still be a Twilio SIM of another product.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from device.at import commands as at
from device.at.channel import AtChannel
from device.at.errors import CommandError, ModemError
from device.modem import REGISTERED, Modem, SmsSettings, signal_text
from device.modem import settings as sms

SUPER_SIM_ICCID_PREFIX = "8988307"


@dataclass
class ProbeReport:
    port: str
    manufacturer: str = ""
    model: str = ""
    revision: str = ""
    imei: str = ""
    iccid: str = ""
    super_sim: bool | None = None
    sim: str = "unknown"
    registration: str = "unknown"
    signal: str = "unknown"
    sms_storage: str = "unknown"
    urc_port: str | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return not self.reasons

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ready": self.ready}


async def probe(port: str, *, baudrate: int = 115200, timeout: float = 5.0) -> ProbeReport:
    """Probe the modem on ``port``; connection problems become reasons, not exceptions."""
    report = ProbeReport(port)
    try:
        channel = await AtChannel.open(port, baudrate=baudrate, default_timeout=timeout)
    except ModemError as exc:
        report.reasons.append(str(exc))
        return report
    try:
        await _probe(Modem(channel, SmsSettings(), command_timeout=timeout), report)
    except ModemError as exc:
        report.reasons.append(f"the modem stopped answering: {exc}")
    finally:
        await channel.close()
    return report


async def _probe(modem: Modem, report: ProbeReport) -> None:
    await modem.probe(modem.command_timeout)
    await modem.apply((sms.CMEE,))
    await modem.identify()
    identity = modem.identity
    report.manufacturer, report.model = identity.manufacturer, identity.model
    report.revision, report.imei = identity.revision, identity.imei
    ready, detail = await modem.sim_status()
    report.sim = "ready" if ready else detail
    if not ready:
        report.reasons.append(f"SIM not ready: {detail}")
    else:
        report.iccid = await modem.read_iccid()
        report.super_sim = report.iccid.startswith(SUPER_SIM_ICCID_PREFIX) if report.iccid else None
    stat = await modem.refresh_registration()
    report.registration = modem.registration_text
    if stat not in REGISTERED:
        report.reasons.append(f"not registered ({modem.registration_text})")
    report.signal = signal_text(await modem.refresh_signal())
    try:
        values = (await modem.run(at.CPMS_READ)).prefixed("+CPMS")
        report.sms_storage = values[0] if values else "no +CPMS answer"
    except CommandError as exc:
        report.sms_storage = f"not available: {exc.meaning}"
        report.reasons.append(f"SMS storage not available ({exc.meaning}): SMS not ready yet?")
    query = modem.profile.urc_port_query
    if query is not None:
        try:
            values = (await modem.run(query)).prefixed(query.prefix or "")
            report.urc_port = values[0] if values else None
        except CommandError:
            report.urc_port = None


def render(report: ProbeReport) -> str:
    """The report as lines for a person."""
    rows = [
        ("port", report.port),
        ("module", f"{report.manufacturer} {report.model}".strip() or "unknown"),
        ("firmware", report.revision or "unknown"),
        ("IMEI", report.imei or "unknown"),
        ("ICCID", report.iccid or "unknown"),
        (
            "Super SIM",
            "unknown"
            if report.super_sim is None
            else ("yes (ICCID prefix 8988307)" if report.super_sim else "no (other ICCID prefix)"),
        ),
        ("SIM", report.sim),
        ("registration", report.registration),
        ("signal", report.signal),
        ("SMS storage", report.sms_storage),
    ]
    if report.urc_port is not None:
        rows.append(("URC port", report.urc_port))
    lines = [f"{name:<13} {value}" for name, value in rows]
    if report.ready:
        lines.append("ready         yes: SMS Commands can be received")
    else:
        lines += [f"not ready     {reason}" for reason in report.reasons]
    return "\n".join(lines)
