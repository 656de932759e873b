"""SMS operations over an :class:`~device.at.channel.AtChannel`: bring-up steps,
health reads, and list/read/delete/send, in the mode chosen once (text or PDU,
:mod:`device.modem.modes`).

Every command is sent through its :class:`~device.at.commands.CommandDef` (text,
timeout factor); the SMS settings come from the table in
:mod:`device.modem.settings`, which feeds both the set-up steps and the
"settings intact" check. Identifying the module also picks its
:class:`~device.modem.profiles.Profile` (:attr:`Modem.profile`): the storage
when ``agent.storage = "auto"``, extra set-up commands, the URC port query.
Steps that fail because the SIM or the SMS service is still starting
(``+CME ERROR: 14``, ``+CMS ERROR: 314``, or ``+CMS ERROR: 500`` during boot on
some modules) are retried by :func:`retry_while_busy`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from device.at import commands as at
from device.at.channel import AtChannel, Response
from device.at.commands import CommandDef, timeout_factor
from device.at.errors import CmsError, CommandError, ResponseError, shown_as
from device.modem import settings as sms
from device.modem.messages import (
    REGISTERED,
    REGISTRATION,
    ModuleIdentity,
    StoredSms,
    UndecodableSms,
)
from device.modem.modes import MessageMode, addresses_converted, mode_for
from device.modem.profiles import PROFILES, Profile, resolve
from device.sms.charset import to_wire

LOGGER = logging.getLogger(__name__)

#: ICCID queries, tried in order: the common one first, then the vendors' own.
ICCID_COMMANDS = (at.CCID, at.QCCID, at.CICCID)

DEFAULT_SEND_TIMEOUT = 60.0
#: ``SmsSettings.storage`` meaning "the profile's storage".
AUTO = "auto"
#: Most storage indices read one by one (:meth:`Modem.storage_indices`).
MAX_INDICES = 1000


@dataclass(frozen=True, slots=True)
class SmsSettings:
    """What the modem is set up with; all from the agent's configuration."""

    #: A memory name (``"SM"``), or ``"auto"`` for the profile's.
    storage: str = "SM"
    #: "text" (AT+CMGF=1, UCS2 strings) or "pdu" (AT+CMGF=0, TPDUs decoded here).
    mode: str = "text"
    #: ``agent.profile``: ``"auto"`` (detected when the module is identified) or a name.
    profile: str = AUTO


_CREG_RE = re.compile(r"^\s*(?:\d+\s*,\s*)?(\d+)")
_CSQ_RE = re.compile(r"^\s*(\d+)\s*,\s*(\d+)")
_CMGS_RE = re.compile(r"^\s*(\d+)")


class Modem:
    """SMS operations over an :class:`AtChannel`, in one :class:`MessageMode`."""

    def __init__(
        self, channel: AtChannel, settings: SmsSettings, *, command_timeout: float = 10.0
    ) -> None:
        """ValueError for an unknown mode; an unknown profile name fails at :meth:`identify`."""
        self.channel = channel
        self.settings = settings
        self.command_timeout = command_timeout
        self.mode: MessageMode = mode_for(settings.mode)
        self.identity = ModuleIdentity("", "", "", "")
        #: The SIM's ICCID once :meth:`read_iccid` found one, else "".
        self.iccid = ""
        self.profile: Profile = PROFILES["generic"]
        self.registration: int | None = None
        self.rssi: int | None = None
        self.storage = self._storage_for(self.profile)
        self.read_storage = self.storage
        #: Verified settings that read back otherwise right after being written:
        #: name -> what the module shows (see :meth:`note_read_backs`).
        self.not_sticking: dict[str, str] = {}

    def _storage_for(self, profile: Profile) -> str:
        return profile.storage if self.settings.storage == AUTO else self.settings.storage

    def _context(self) -> sms.Context:
        return sms.Context(self.mode, self.storage)

    async def at(self, command: str, **kwargs: Any) -> Response:
        """Run one command line; its timeout is the configured one times the factor
        its declaration gives (:func:`~device.at.commands.timeout_factor`)."""
        timeout = kwargs.pop("timeout", None)
        if timeout is None:
            timeout = self.command_timeout * timeout_factor(command)
        return await self.channel.command(command, timeout=timeout, **kwargs)

    async def run(
        self, command: CommandDef, *, timeout: float | None = None, **fields: Any
    ) -> Response:
        """Run a declared (non-prompting) command with ``fields`` filled in."""
        if timeout is None:
            timeout = self.command_timeout * command.timeout_factor
        return await self.channel.command(command.text(**fields), timeout=timeout)

    async def apply(self, settings: Sequence[sms.SmsSetting]) -> None:
        """Write ``settings`` in order (values for this mode and storage)."""
        ctx = self._context()
        for setting in settings:
            await self.run(setting.write, value=setting.value(ctx))

    # -- bring-up steps (each raises ModemError when it cannot complete) -----

    async def probe(self, timeout: float) -> None:
        """Check that something answers AT; turn echo off on the way."""
        await self.run(at.ECHO_OFF, timeout=timeout)

    async def configure(self) -> None:
        """Settings that do not need the SIM (verbose errors, message format, header
        detail), then :meth:`identify` (which picks the profile)."""
        await self.apply(sms.CONFIGURE)
        await self.identify()

    async def identify(self) -> None:
        """Read the identity and pick :attr:`profile` from it (or by its configured name).

        A query the module refuses leaves its field empty. KeyError for an
        unknown configured profile name.
        """
        manufacturer = await self._single_line(at.CGMI)
        model = await self._single_line(at.CGMM)
        revision = await self._single_line(at.CGMR)
        imei = await self._single_line(at.CGSN)
        self.identity = ModuleIdentity(manufacturer, model, revision, imei)
        self.profile = resolve(self.settings.profile, model, manufacturer)
        self.storage = self._storage_for(self.profile)
        LOGGER.debug("module profile: %s", self.profile.name)

    async def _single_line(self, command: CommandDef) -> str:
        try:
            response = await self.run(command)
        except CommandError as exc:
            LOGGER.info("%s not answered: %s", command.head, exc)
            return ""
        prefix = f"{command.prefix}:"
        for line in response.lines:
            text = line.strip()
            if text:
                return text[len(prefix) :].strip() if text.upper().startswith(prefix) else text
        return ""

    async def sim_status(self) -> tuple[bool, str]:
        """``(ready, detail)`` from ``AT+CPIN?``.

        A SIM that is busy, missing or locked is *not ready* (with the
        module's words as the detail), not an error: the caller keeps waiting.
        """
        try:
            response = await self.run(at.CPIN_READ)
        except CommandError as exc:
            return False, exc.meaning
        values = response.prefixed("+CPIN")
        if values and values[0].strip('"').upper() == "READY":
            return True, "READY"
        return False, values[0] if values else "no +CPIN line"

    async def read_iccid(self) -> str:
        """The SIM's ICCID (needs a ready SIM), remembered in :attr:`iccid`; "" when unknown.

        Tries ``AT+CCID`` (``+CCID:``, the common form; 27.007 has no ICCID command),
        then Quectel's ``AT+QCCID`` and SIMCom's ``AT+CICCID`` (``+ICCID:``); a refused
        command is skipped. An ICCID is 18 to 20 digits (ITU-T E.118), some modules
        append an ``F`` filler, kept as printed.
        """
        for command in ICCID_COMMANDS:
            try:
                response = await self.run(command)
            except CommandError:
                continue
            for line in response.lines:
                digits = re.sub(r"[^0-9A-Fa-f]", "", line.removeprefix(f"{command.prefix}:"))
                if len(digits) >= 18:
                    self.iccid = digits
                    return digits
        return ""

    async def setup_sms(self) -> None:
        """Storage, character set, send parameters and indications (needs the SIM's
        SMS service), then the profile's extra set-up commands."""
        await self.apply(sms.SMS_SETUP)
        self.read_storage = self.storage
        if self.mode.prints_addresses:
            await self._learn_address_form()
        for command in self.profile.setup_commands:
            await self.at(command)

    async def _learn_address_form(self) -> None:
        """Keep on :attr:`mode` whether this module prints addresses in the agreed
        character set, from ``AT+CSCA?`` (:func:`~device.modem.modes.addresses_converted`;
        a refusal of the command shows nothing: None)."""
        try:
            values = (await self.run(at.CSCA_READ)).prefixed("+CSCA")
        except CommandError as exc:
            LOGGER.warning("AT+CSCA? refused: %s", exc)
            values = []
        converted = addresses_converted(values, self.mode.charset)
        if converted is not True:
            LOGGER.warning("addresses printed plainly (False) or unknown (None): %s; AT+CSCA? "
                           "showed %r", converted, values)  # fmt: skip
        self.mode = replace(self.mode, addresses_converted=converted)

    async def prepare_send(self) -> None:
        """Just enough set-up to send one SMS (for ``smscmd send`` without an agent)."""
        await self.probe(self.command_timeout)
        await self.apply(sms.SEND_SETUP)

    async def _read_backs(self) -> dict[str, str]:
        """The verified settings that do not read back as written: name -> what is shown."""
        ctx = self._context()
        found: dict[str, str] = {}
        for setting in sms.HEALTH_CHECK:
            values = (await self.run(setting.read)).prefixed(f"+{setting.name}")
            shown = setting.wrong(values, ctx)
            if shown is not None:
                found[setting.name] = shown
        return found

    async def note_read_backs(self) -> dict[str, str]:
        """Right after the set-up: the verified settings that already read back otherwise
        (name -> what the module shows) do not stick on this module.

        They are kept in :attr:`not_sticking` (and returned): from now on
        :meth:`settings_intact` takes that read-back as intact, so that a module
        which accepts ``AT+CSCS="UCS2"`` and then shows ``"IRA"`` is run as it is
        instead of being re-initialised again and again. The price: for such a
        setting a restart that leaves it showing the same is not seen by it (the
        other settings, banners and echo still show one).
        """
        self.not_sticking = await self._read_backs()
        return dict(self.not_sticking)

    async def settings_intact(self) -> str | None:
        """None when the verified settings (message format, character set, ``+CMTI``
        indications) still read back as written, or, for one that does not stick
        (:meth:`note_read_backs`), as it read back right after it was written.

        Otherwise which one changed (``"AT+CMGF is 0"``): a module that restarted
        without a banner (or another program on the port) shows itself this way.
        """
        for name, shown in (await self._read_backs()).items():
            if self.not_sticking.get(name) != shown:
                return f"AT+{name} is {shown}"
        return None

    async def refresh_registration(self) -> int | None:
        """Read +CREG and +CEREG; the better of the two is kept (LTE-M reports via CEREG)."""
        best: int | None = None
        for command in (at.CREG_READ, at.CEREG_READ):
            try:
                response = await self.run(command)
            except CommandError:
                continue
            for value in response.prefixed(command.prefix or ""):
                match = _CREG_RE.match(value)
                if match:
                    stat = int(match.group(1))
                    if best is None or (stat in REGISTERED and best not in REGISTERED):
                        best = stat
        self.registration = best
        return best

    async def refresh_signal(self) -> int | None:
        response = await self.run(at.CSQ)
        for value in response.prefixed("+CSQ"):
            match = _CSQ_RE.match(value)
            if match:
                self.rssi = int(match.group(1))
                return self.rssi
        raise ResponseError(f"AT+CSQ: no +CSQ line in {response.lines!r}")

    @property
    def registration_text(self) -> str:
        if self.registration is None:
            return "unknown"
        return REGISTRATION.get(self.registration, f"status {self.registration}")

    # -- SMS operations ------------------------------------------------------

    async def _select_read_storage(self, storage: str) -> None:
        """Point ``<mem1>`` (read/delete) at ``storage``; the name in hex if plain is refused."""
        if storage == self.read_storage:
            return
        try:
            await self.run(at.CPMS_SET, value=f'"{storage}"')
        except CommandError as exc:
            LOGGER.info("plain AT+CPMS refused (%s); trying the UCS2 form", exc)
            await self.run(at.CPMS_SET, value=f'"{to_wire(storage, self.mode.charset)}"')
        self.read_storage = storage

    async def read(self, storage: str, index: int) -> StoredSms | UndecodableSms | None:
        """Read one message; None when the index holds no received message.

        ``+CMS ERROR: 321`` (empty index) also gives None. Messages that are
        not received ones (stored outgoing) give None too and stay untouched.
        """
        await self._select_read_storage(storage)
        try:
            response = await self.run(at.CMGR, index=index)
        except CmsError as exc:
            if exc.code == 321:
                return None
            raise
        if not response.lines:
            return None
        body = response.lines[1] if len(response.lines) > 1 else ""
        return self.mode.read(storage, index, response.lines[0], body)

    async def list_received(self) -> list[StoredSms | UndecodableSms]:
        """Every received message in the storage (``AT+CMGL``), oldest index first.

        When the mode's first "all" parameter is refused (under UCS2 some modules
        want the status string itself in hex) the next one is tried.
        """
        await self._select_read_storage(self.storage)
        first, *others = self.mode.list_stats
        try:
            response = await self.run(at.CMGL, stat=first)
        except CommandError as exc:
            if not others:
                raise
            LOGGER.info("plain AT+CMGL refused (%s); trying the UCS2 form", exc)
            response = await self.run(at.CMGL, stat=others[0])
        again = [
            await self._read_again(m) if self.mode.needs_reading(m) else m
            for m in self.mode.listed(self.read_storage, list(response.lines))
        ]
        found = [m for m in again if m is not None]
        found.sort(key=lambda m: -1 if m.index is None else m.index)
        return found

    async def _read_again(
        self, listed: StoredSms | UndecodableSms
    ) -> StoredSms | UndecodableSms | None:
        """A listed message read again on its own (``AT+CMGR`` shows what a listing does
        not, such as ``<fo>``); the listed one when that read is refused."""
        assert listed.storage is not None and listed.index is not None
        try:
            return await self.read(listed.storage, listed.index)
        except CommandError as exc:
            LOGGER.info("cannot read %s index %d again (%s)", listed.storage, listed.index, exc)
            return listed

    async def storage_indices(self) -> range:
        """Every index the storage may hold, for reading it index by index when the
        listing fails: 0 up to ``<total1>`` of ``AT+CPMS?`` (27.005 §3.2.2), which covers
        0-based (Quectel, SIMCom) and 1-based memories; a slot past the end or empty is
        ``+CMS ERROR: 321``, which :meth:`read` takes as empty. ResponseError when
        ``AT+CPMS?`` shows no total (at most :data:`MAX_INDICES` are given).
        """
        await self._select_read_storage(self.storage)
        values = (await self.run(at.CPMS_READ)).prefixed("+CPMS")
        fields = [f.strip() for f in values[0].split(",")] if values else []
        if len(fields) < 3 or not fields[2].isascii() or not fields[2].isdigit():
            raise ResponseError(f"AT+CPMS?: no <total1> in {values!r}")
        return range(min(int(fields[2]), MAX_INDICES - 1) + 1)

    async def delete(self, storage: str, index: int) -> None:
        """Delete exactly one index (delflag 0) — never a bulk delete."""
        await self._select_read_storage(storage)
        await self.run(at.CMGD, index=index)

    async def send_text(self, destination: str, text: str, *, timeout: float | None = None) -> int:
        """Send GSM-only ``text`` (≤160 septets) to ``destination``; returns the reference.
        Its errors show the command with ``destination`` decoded (:attr:`Submit.shown`)."""
        limit = timeout if timeout is not None else DEFAULT_SEND_TIMEOUT
        submit = self.mode.submit(destination, text)
        command = at.CMGS.text(destination=submit.parameter)
        shown = at.CMGS.text(destination=submit.shown)
        with shown_as(command, shown):
            response = await self.channel.command_with_body(command, submit.body, timeout=limit)
        return _reference(shown, response)


def _reference(command: str, response: Response) -> int:
    """The ``<mr>`` of ``command``'s answer; ResponseError when OK came without one."""
    for value in response.prefixed("+CMGS"):
        match = _CMGS_RE.match(value)
        if match:
            return int(match.group(1))
    raise ResponseError(f"{command}: OK without a +CMGS reference: {response.lines!r}")


async def retry_while_busy(
    step: Callable[[], Any], *, delay: float, what: str, stop: asyncio.Event
) -> bool:
    """Run the async ``step`` until it does not fail with a busy error.

    Returns False when ``stop`` was set while waiting. Non-busy errors propagate.
    """
    while not stop.is_set():
        try:
            await step()
            return True
        except CommandError as exc:
            if not (exc.busy or (isinstance(exc, CmsError) and exc.code == 500)):
                raise
            LOGGER.info("%s: modem not ready yet (%s); retrying in %.1f s", what, exc, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
    return False
