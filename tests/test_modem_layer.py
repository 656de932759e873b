"""The modem layer as data: the command table, the SMS settings table (set-up
sequences and read-back), text/PDU mode objects, and module profiles."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from device.at import commands as at
from device.at.channel import AtChannel, Response
from device.at.codec import Final, ResultKind
from device.at.errors import (
    CmsError,
    CommandError,
    CommandTimeout,
    ConnectionLost,
    ModemError,
    ResponseError,
    shown_as,
)
from device.modem import (
    MODES,
    Modem,
    PduMode,
    SmsSettings,
    StoredSms,
    TextMode,
    UndecodableSms,
    mode_for,
)
from device.modem import profiles as profiles_module
from device.modem import settings as sms
from device.modem.profiles import PROFILES, Profile, detect, resolve
from device.sms.charset import Charset
from hostsim.modem.personas import PERSONAS, persona
from hostsim.sim import HostSim

OK = Final(ResultKind.OK, None, "", "OK")


class ScriptedChannel:
    """Stands in for AtChannel: records what is sent, answers from a script."""

    def __init__(self, answers: dict[str, list[str] | Exception] | None = None) -> None:
        self.answers = answers or {}
        self.sent: list[tuple[str, float | None]] = []
        self.bodies: list[str] = []

    def _answer(self, command: str) -> Response:
        answer = self.answers.get(command, [])
        if isinstance(answer, Exception):
            raise answer
        return Response(command, tuple(answer), OK)

    async def command(self, command: str, *, timeout: float | None = None) -> Response:
        self.sent.append((command, timeout))
        return self._answer(command)

    async def command_with_body(
        self, command: str, body: str, *, timeout: float | None = None
    ) -> Response:
        self.sent.append((command, timeout))
        self.bodies.append(body)
        if command in self.answers:
            return self._answer(command)
        return Response(command, ("+CMGS: 7",), OK)

    @property
    def commands(self) -> list[str]:
        return [c for c, _ in self.sent]


def modem(channel: ScriptedChannel, **settings: Any) -> Modem:
    return Modem(channel, SmsSettings(**settings), command_timeout=2.0)  # type: ignore[arg-type]


IDENTITY = {"AT+CGMI": ["Quectel"], "AT+CGMM": ["BG96"], "AT+CGMR": ["R1"], "AT+CGSN": ["1"]}


# -- the command table ---------------------------------------------------------


def test_timeouts_come_from_the_table() -> None:
    assert at.timeout_factor('AT+CMGL="ALL"') == at.CMGL.timeout_factor == 3.0
    assert at.timeout_factor('AT+CPMS="SM"') == at.timeout_factor("AT+CPMS?") == 1.5
    assert at.timeout_factor("AT+CMGF=1") == at.timeout_factor("AT+XYZ") == 1.0
    assert [c for c in at.COMMANDS if c.prompt] == [at.CMGS]
    assert at.CMGD.text(index=4) == "AT+CMGD=4,0"
    assert at.CMGL.head == "AT+CMGL" and at.ECHO_OFF.head == "ATE0"
    with pytest.raises(KeyError):
        at.CMGR.text()


async def test_modem_sends_with_the_declared_timeouts() -> None:
    channel = ScriptedChannel()
    m = modem(channel)
    await m.list_received()
    await m.at("AT+CPMS?")
    await m.run(at.CSQ)
    assert channel.sent == [('AT+CMGL="ALL"', 6.0), ("AT+CPMS?", 3.0), ("AT+CSQ", 2.0)]


# -- the settings table: set-up sequences ----------------------------------------

TEXT_CONFIGURE = ["AT+CMEE=2", "AT+CMGF=1", "AT+CSDH=1", "AT+CGMI", "AT+CGMM", "AT+CGMR", "AT+CGSN"]
SMS_SETUP = ['AT+CPMS="SM","SM","SM"', 'AT+CSCS="UCS2"', "AT+CSMP=17,167,0,0", "AT+CNMI=2,1,0,0,0"]


@pytest.mark.parametrize("mode", sorted(MODES))
async def test_set_up_sequences_on_the_wire(mode: str) -> None:
    cmgf = f"AT+CMGF={MODES[mode].cmgf}"
    channel = ScriptedChannel(dict(IDENTITY))
    m = modem(channel, mode=mode)
    await m.probe(1.0)
    await m.configure()
    await m.setup_sms()
    # Text mode learns how the module prints addresses (AT+CSCA?, device.admission);
    # PDU mode's addresses are semi-octets: its wire traffic has no AT+CSCA?.
    learn = ["AT+CSCA?"] if mode == "text" else []
    assert channel.commands == ["ATE0", *[cmgf if c == "AT+CMGF=1" else c for c in TEXT_CONFIGURE],
                                *SMS_SETUP, *learn]  # fmt: skip
    channel.sent.clear()
    await m.prepare_send()
    assert channel.commands == ["ATE0", "AT+CMEE=2", cmgf, 'AT+CSCS="UCS2"', "AT+CSMP=17,167,0,0"]


def test_the_sequences_are_drawn_from_one_table() -> None:
    for sequence in (sms.CONFIGURE, sms.SMS_SETUP, sms.SEND_SETUP, sms.HEALTH_CHECK):
        assert set(sequence) <= set(sms.SETTINGS)
    assert [s.name for s in sms.SETTINGS] == ["CMEE", "CMGF", "CSDH", "CPMS", "CSCS", "CSMP",
                                              "CNMI"]  # fmt: skip
    assert [s.name for s in sms.HEALTH_CHECK] == ["CMGF", "CSCS", "CNMI"]


# -- the settings table: read-back -------------------------------------------------


@pytest.mark.parametrize("name", sorted(PERSONAS))
@pytest.mark.parametrize("mode", sorted(MODES))
async def test_every_setting_reads_back_as_written(name: str, mode: str) -> None:
    async with HostSim(config=persona(name)) as sim:
        channel = await AtChannel.open(sim.modems[0].path, default_timeout=2.0)
        try:
            m = Modem(channel, SmsSettings(mode=mode), command_timeout=2.0)
            await m.probe(2.0)
            await m.configure()
            await m.setup_sms()
            ctx = sms.Context(m.mode, m.storage)
            for setting in sms.SETTINGS:
                values = (await m.run(setting.read)).prefixed(f"+{setting.name}")
                assert setting.wrong(values, ctx) is None, (setting.name, values)
            assert await m.settings_intact() is None
        finally:
            await channel.close()


@pytest.mark.parametrize(
    ("answers", "complaint"),
    [
        ({"AT+CMGF?": ["+CMGF: 0"]}, "AT+CMGF is 0"),
        ({"AT+CMGF?": []}, "AT+CMGF is ?"),
        ({"AT+CSCS?": ['+CSCS: "IRA"']}, "AT+CSCS is IRA"),
        ({"AT+CNMI?": ["+CNMI: 2,0,0,0,0"]}, "AT+CNMI is 2,0,0,0,0"),
        ({"AT+CSCS?": ['+CSCS: "0055004300530032"']}, None),  # UCS2 printed in UCS2
    ],
)
async def test_settings_intact_names_the_first_changed_setting(
    answers: dict[str, list[str]], complaint: str | None
) -> None:
    good = {"AT+CMGF?": ["+CMGF: 1"], "AT+CSCS?": ['+CSCS: "UCS2"'], "AT+CNMI?": ["+CNMI: 2,1"]}
    channel = ScriptedChannel({**good, **answers})
    assert await modem(channel).settings_intact() == complaint
    assert channel.commands[0] == "AT+CMGF?"


def test_read_back_of_the_unverified_settings() -> None:
    ctx = sms.Context(TextMode(), "SM")
    assert sms.CPMS.wrong(['"SM",1,30,"SM",1,30,"SM",1,30'], ctx) is None
    assert sms.CPMS.wrong(['"0053004D",1,30,"SM",1,30,"SM",1,30'], ctx) is None
    assert sms.CPMS.wrong(['"ME",1,30,"SM",1,30,"SM",1,30'], ctx) == '"ME",1,30,"SM",1,30,"SM",1,30'
    assert sms.CSMP.wrong(["17, 167, 0, 0"], ctx) is None
    assert sms.CSMP.wrong(["17,71,0,0"], ctx) == "17,71,0,0"
    assert sms.CMEE.wrong([], ctx) == "?"


# -- mode objects --------------------------------------------------------------------


def test_the_mode_is_chosen_once() -> None:
    text, pdu = modem(ScriptedChannel()), modem(ScriptedChannel(), mode="pdu")
    assert isinstance(text.mode, TextMode) and isinstance(pdu.mode, PduMode)
    assert text.mode.charset is pdu.mode.charset is Charset.UCS2
    with pytest.raises(ValueError, match="unknown SMS mode"):
        mode_for("morse")


async def test_text_mode_list_falls_back_to_the_hex_status() -> None:
    refused = CmsError('AT+CMGL="ALL"', 302, "operation not allowed")
    channel = ScriptedChannel({'AT+CMGL="ALL"': refused})
    assert await modem(channel).list_received() == []
    assert channel.commands == ['AT+CMGL="ALL"', 'AT+CMGL="0041004C004C"']
    pdu_channel = ScriptedChannel({"AT+CMGL=4": refused})
    with pytest.raises(CmsError):
        await modem(pdu_channel, mode="pdu").list_received()


async def test_submit_per_mode() -> None:
    text = ScriptedChannel()
    assert await modem(text).send_text("000", "hi") == 7
    assert (text.commands, text.bodies) == (['AT+CMGS="003000300030"'], ["00680069"])
    pdu = ScriptedChannel()
    await modem(pdu, mode="pdu").send_text("000", "hi")
    assert pdu.commands[0].startswith("AT+CMGS=") and pdu.commands[0][8:].isdigit()
    assert bytes.fromhex(pdu.bodies[0])  # a hex TPDU


WIRE_000 = 'AT+CMGS="003000300030"'  # "000" in UCS2 hex, as text mode sends it


@pytest.mark.parametrize(
    "answer",
    [
        CmsError(WIRE_000, 21, "Short message transfer rejected"),
        CommandError(WIRE_000, None, "ERROR"),
        CommandTimeout(WIRE_000, 60.0),
        ["OK without +CMGS"],  # no reference: ResponseError
    ],
    ids=["cms", "error", "timeout", "no-reference"],
)
async def test_a_failed_send_shows_the_destination_decoded(answer: Any) -> None:
    """Under AT+CSCS="UCS2" the number in AT+CMGS is UCS2 hex (27.005 §3.1: <da> in the
    TE character set); the error a send raises (the outbox's log line, the journal's
    error, the status's last error) names ``AT+CMGS="000"``, its type and code kept."""
    channel = ScriptedChannel({WIRE_000: answer})
    with pytest.raises(ModemError) as caught:
        await modem(channel).send_text("000", "hi")
    assert channel.commands == [WIRE_000]
    assert 'AT+CMGS="000"' in str(caught.value) and "0030" not in str(caught.value)
    if isinstance(answer, Exception):
        assert type(caught.value) is type(answer)
        assert getattr(caught.value, "code", None) == getattr(answer, "code", None)
        assert getattr(caught.value, "command", None) == 'AT+CMGS="000"'
    else:
        assert isinstance(caught.value, ResponseError)


def test_the_pdu_codec_is_loaded_when_pdu_mode_is_chosen_and_never_in_text_mode() -> None:
    """Imported by the first message it delayed that reply by ~35 ms (issue 14); a
    text-mode agent stays without construct."""
    probe = (
        "import sys\n"
        "from device.modem.modes import mode_for\n"
        "mode_for('text')\n"
        "assert 'construct' not in sys.modules and 'device.sms.pdu' not in sys.modules\n"
        "mode_for('pdu')\n"
        "assert 'device.sms.pdu' in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_shown_as_leaves_other_commands_and_errors_alone() -> None:
    other = CmsError("AT+CMGR=1", 321, "invalid memory index")
    for error in (other, ConnectionLost("gone"), CommandTimeout("AT", 1.0)):
        with pytest.raises(type(error)) as caught, shown_as(WIRE_000, 'AT+CMGS="000"'):
            raise error
        assert caught.value is error


def test_direct_delivery_per_mode() -> None:
    args, body = '"003000300030",,"26/01/01,00:00:00+00"', "00700069006E0067"
    message = TextMode().direct(args, body)
    assert isinstance(message, StoredSms) and (message.sender, message.text) == ("000", "ping")
    assert (message.storage, message.index) == (None, None)
    garbled = TextMode().direct("garbage", "zz")
    assert isinstance(garbled, UndecodableSms) and garbled.raw_header == "+CMT: garbage"
    broken = PduMode().direct(",1", "zz")
    assert isinstance(broken, UndecodableSms) and broken.raw_header == "+CMT: ,1"


# -- profiles --------------------------------------------------------------------------


@pytest.fixture
def custom_profile() -> Iterator[Profile]:
    profile = Profile(
        "test-module",
        "a module that wants two extra commands",
        ("frob",),
        frozenset(),
        storage="MT",
        setup_commands=("AT+CMGL=4", "AT+XTRA=1"),
    )
    PROFILES[profile.name] = profile
    try:
        yield profile
    finally:
        del PROFILES[profile.name]


async def test_profile_is_detected_when_the_module_is_identified() -> None:
    m = modem(ScriptedChannel(dict(IDENTITY)))
    await m.configure()
    assert m.profile.name == "quectel-bg96" and m.storage == "SM"
    forced = modem(ScriptedChannel(dict(IDENTITY)), profile="generic")
    await forced.configure()
    assert forced.profile.name == "generic"


async def test_profile_storage_and_extra_commands_are_read(custom_profile: Profile) -> None:
    channel = ScriptedChannel({**IDENTITY, "AT+CGMI": ["ACME"], "AT+CGMM": ["Frobnicator"]})
    m = modem(channel, storage="auto")
    await m.configure()
    channel.sent.clear()
    await m.setup_sms()
    assert m.profile is custom_profile and m.storage == m.read_storage == "MT"
    assert channel.sent == [('AT+CPMS="MT","MT","MT"', 3.0), ('AT+CSCS="UCS2"', 2.0),
                            ("AT+CSMP=17,167,0,0", 2.0), ("AT+CNMI=2,1,0,0,0", 2.0),
                            ("AT+CSCA?", 2.0), ("AT+CMGL=4", 6.0), ("AT+XTRA=1", 2.0)]  # fmt: skip
    explicit = modem(
        ScriptedChannel({**IDENTITY, "AT+CGMI": ["ACME"], "AT+CGMM": ["Frobnicator"]}), storage="SM"
    )
    await explicit.configure()
    assert explicit.storage == "SM"


async def test_ublox_storage_auto_is_me_on_the_emulator() -> None:
    async with HostSim(config=persona("ublox-sara-r410m")) as sim:
        gw = sim.modems[0]
        channel = await AtChannel.open(gw.path, default_timeout=2.0)
        try:
            m = Modem(channel, SmsSettings(storage="auto"), command_timeout=2.0)
            await m.probe(2.0)
            await m.configure()
            await m.setup_sms()
            assert (m.profile.name, m.read_storage) == ("ublox-sara-r410m", "ME")
            gw.deliver("000", "ping: me")
            (message,) = await m.list_received()
            assert (message.storage, gw.modem.storages["ME"].used) == ("ME", 1)
        finally:
            await channel.close()


def test_generic_profile_changes_nothing() -> None:
    generic = PROFILES["generic"]
    default = Profile("x", "", (), frozenset())
    assert (generic.storage, generic.urc_port_query, generic.setup_commands) == (
        default.storage, default.urc_port_query, default.setup_commands)  # fmt: skip


def test_profile_resolution() -> None:
    assert detect("EC21", "Quectel").name == "quectel"  # other Quectel models keep AT+QURCCFG
    assert resolve("auto", "BG96", "Quectel").name == "quectel-bg96"
    assert resolve("simcom-sim7600", "BG96", "Quectel").name == "simcom-sim7600"
    with pytest.raises(KeyError, match="unknown profile"):
        resolve("nope", "", "")
    assert all(p.urc_port_query is at.QURCCFG_URCPORT for p in PROFILES.values()
               if "quectel" in p.name)  # fmt: skip
    assert profiles_module.PROFILES is PROFILES
    assert dataclasses.is_dataclass(Profile)


@pytest.mark.parametrize(
    ("answer", "converted"),
    [
        (['+CSCA: "002B00340034",145'], True),
        (['+CSCA: "+44",145'], False),
        (CmsError("AT+CSCA?", 330, "SMSC address unknown"), None),  # refused: not shown
        ([], None),  # no +CSCA line
    ],
)
async def test_text_set_up_learns_how_addresses_are_printed(
    answer: list[str] | Exception, converted: bool | None
) -> None:
    """27.005 §3.3.1: ``<sca>`` is converted per ``AT+CSCS`` like ``<oa>`` (§3.1), so the
    SCA read under UCS2 shows whether this module converts addresses (device.admission)."""
    m = modem(ScriptedChannel({**IDENTITY, "AT+CSCA?": answer}), mode="text")
    await m.configure()
    await m.setup_sms()
    assert m.mode.addresses_converted is converted and m.mode.charset is Charset.UCS2
