"""hostsim.modem: the general (V.250 / 27.007 / vendor) commands and their effects."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hostsim.cloud.network import NO_NETWORK_CMS, Network, SidFactory, SmsCommand, Status
from hostsim.modem import EmulatedModem
from hostsim.modem.personas import persona
from hostsim.modem.settings import ModemConfig, Quirk, RegStat

WAIT = 5.0


def run(modem: EmulatedModem, line: bytes) -> bytes:
    modem.feed(line)
    return modem.data_to_send()


def quiet_modem(config: ModemConfig | None = None) -> EmulatedModem:
    """A modem with echo off."""
    modem = EmulatedModem(config)
    assert run(modem, b"ATE0\r") == b"ATE0\r\r\nOK\r\n"
    return modem


def ok(*answers: str) -> bytes:
    """The answers of the commands of one line, then OK (a multi-line answer is one string)."""
    return b"".join(b"\r\n" + answer.encode() + b"\r\n" for answer in answers) + b"\r\nOK\r\n"


def rows(*lines: str) -> str:
    """One command's multi-line answer."""
    return "\r\n".join(lines)


# ---------------------------------------------------------------- result-code formats


def test_v0_numeric_result_codes_and_framing() -> None:
    modem = quiet_modem()
    assert run(modem, b"ATV0\r") == b"0\r"
    assert run(modem, b"AT+CSQ\r") == b"+CSQ: 20,99\r\n0\r"
    assert run(modem, b"AT+BOGUS\r") == b"4\r"
    assert run(modem, b"AT+CMEE=5\r") == b"+CME ERROR: 50\r"
    assert run(modem, b"ATV1\r") == b"\r\nOK\r\n"
    assert run(modem, b"AT+CSQ\r") == ok("+CSQ: 20,99")


def test_v0_prompt_and_urcs_have_no_header() -> None:
    modem = quiet_modem()
    run(modem, b"ATV0;+CMGF=1;+CREG=1\r")
    assert run(modem, b'AT+CMGS="000"\r') == b"> "
    assert run(modem, b"\x1b") == b"0\r"
    modem.set_registration(RegStat.SEARCHING)
    assert modem.data_to_send() == b"+CREG: 2\r\n"


def test_q1_suppresses_result_codes_only() -> None:
    modem = quiet_modem()
    assert run(modem, b"ATQ1\r") == b""
    assert run(modem, b"AT+CSQ\r") == b"\r\n+CSQ: 20,99\r\n"
    assert run(modem, b"AT+BOGUS\r") == b""
    assert run(modem, b"ATQ0\r") == b"\r\nOK\r\n"
    assert run(modem, b"ATQ2\r") == b"\r\nERROR\r\n"


def test_s3_and_s4_change_the_framing_and_the_line_end() -> None:
    modem = quiet_modem()
    assert run(modem, b"ATS4?\r") == ok("010")
    assert run(modem, b"ATS4=33\r") == b"\r!OK\r!"
    assert run(modem, b"ATS4=10;S3=64\r") == b"@\nOK@\n"
    assert run(modem, b"AT+CSQ@") == b"@\n+CSQ: 20,99@\n@\nOK@\n"
    assert run(modem, b"AT\r") == b""  # \r no longer ends a line: it is in the next one
    assert run(modem, b"@") == b"@\nERROR@\n"
    assert run(modem, b"ATS3=200@") == b"@\nERROR@\n"  # S3 is 0–127
    assert run(modem, b"ATZ@") == b"\r\nOK\r\n"
    assert run(modem, b"ATS3?\r") == b"ATS3?\r" + ok("013")  # ATZ: echo is back


def test_s5_is_the_backspace() -> None:
    modem = quiet_modem()
    run(modem, b"ATS5=35\r")
    assert run(modem, b"AT+CSQX#\r") == ok("+CSQ: 20,99")


def test_a_slash_repeats_the_last_line_at_once() -> None:
    modem = EmulatedModem()
    assert run(modem, b"A/") == b"A/\r\nOK\r\n"  # nothing before: the empty line
    assert run(modem, b"AT+CSQ;+CFUN?\r") == b"AT+CSQ;+CFUN?\r" + ok("+CSQ: 20,99", "+CFUN: 1")
    assert run(modem, b"a/") == b"a/" + ok("+CSQ: 20,99", "+CFUN: 1")
    assert run(modem, b"ATE0\r") == b"ATE0\r\r\nOK\r\n"
    assert run(modem, b"A/") == b"\r\nOK\r\n"
    assert run(modem, b"AT+C/\r") == b"\r\nERROR\r\n"  # A/ only without AT before it


@given(st.lists(st.integers(1, 8), min_size=1, max_size=30))
@settings(max_examples=60, deadline=None)
def test_any_chunking_gives_the_same_output(sizes: list[int]) -> None:
    script = b"ATE0\rATV0\rAT+CSQ\rA/ATV1;S4=33\rAT+COPS?\rAT&V\rATZ\rAT+CFUN=0\rA/AT+CFUN?\r"
    whole = EmulatedModem()
    expected = run(whole, script)
    chunked = EmulatedModem()
    out = b""
    pos = 0
    for size in itertools.cycle(sizes):
        if pos >= len(script):
            break
        out += run(chunked, script[pos : pos + size])
        pos += size
    assert out == expected


_GENERAL = st.sampled_from(
    [
        b"AT",
        b"ATV0",
        b"ATV1",
        b"ATQ1",
        b"ATQ0",
        b"ATS3=13",
        b"ATS4=10",
        b"AT&V",
        b"AT&W",
        b"ATZ",
        b"AT&F",
        b"A/",
        b"AT+CFUN=",
        b"AT+CFUN=1,1",
        b"AT+COPS=",
        b"AT+CREG=2",
        b"AT+CGATT=",
        b'AT+CPIN="',
        b"AT+CLCK=",
        b'AT+CSCA="',
        b"AT+CCLK=",
        b"AT+CGDCONT=",
        b"AT+QURCCFG=",
        b"?",
        b"=?",
        b",",
        b'"',
        b"0",
        b"1",
        b"4",
        b"1234",
        b"\r",
        b"\x08",
    ]
)


@given(st.lists(_GENERAL, max_size=60))
@settings(max_examples=300, deadline=None)
def test_general_command_fuzz_never_raises(tokens: list[bytes]) -> None:
    modem = EmulatedModem(ModemConfig(pin_lock=True))
    modem.feed(b"".join(tokens))
    modem.data_to_send()


# ---------------------------------------------------------------- profiles and identity


def test_at_v_reads_back_what_was_set_and_atz_at_f_at_w() -> None:
    modem = quiet_modem()
    assert run(modem, b"AT&V\r") == ok(
        rows(
            "ACTIVE PROFILE:",
            "&C: 1; &D: 2; &K: 3; E: 0; Q: 0; V: 1; X: 4",
            "S0: 0; S3: 13; S4: 10; S5: 8; S7: 60; S10: 14",
        )
    )
    run(modem, b"AT&C0&D0X0S0=3\r")
    assert run(modem, b"AT&V\r").split(b"\r\n")[2:4] == [
        b"&C: 0; &D: 0; &K: 3; E: 0; Q: 0; V: 1; X: 0",
        b"S0: 3; S3: 13; S4: 10; S5: 8; S7: 60; S10: 14",
    ]
    assert run(modem, b"AT&W\r") == b"\r\nOK\r\n"
    run(modem, b"ATE1;&C1\r")
    assert run(modem, b"ATZ\r") == b"ATZ\r\r\nOK\r\n"  # the saved profile: echo off
    assert modem.settings.dcd_mode == 0 and modem.s_registers[0] == 3
    assert run(modem, b"AT&F\r") == b"\r\nOK\r\n"  # factory: echo back on
    assert modem.settings == modem.config.defaults and modem.s_registers[0] == 0
    modem.reboot()  # a boot loads the saved profile
    modem.data_to_send()
    assert not modem.settings.echo


def test_gcap_clac_and_vendor_commands_per_persona() -> None:
    bg96 = quiet_modem(persona("quectel-bg96"))
    assert run(bg96, b"AT+GCAP\r") == ok("+GCAP: +CGSM")
    listed = run(bg96, b"AT+CLAC\r").split(b"\r\n")
    assert b"AT+CFUN" in listed and b"AT+QCCID" in listed and b"AT+CICCID" not in listed
    assert run(bg96, b"AT+QCCID\r") == ok("+QCCID: 89883070000012345678")
    assert run(bg96, b"AT+CICCID\r") == b"\r\nERROR\r\n"
    simcom = quiet_modem(persona("simcom-sim7600"))
    assert run(simcom, b"AT+GCAP\r") == ok("+GCAP: +CGSM,+FCLASS,+DS")
    assert run(simcom, b"AT+CICCID\r") == ok("+ICCID: 89883070000012345678")
    assert run(simcom, b"AT+QCCID\r") == b"\r\nERROR\r\n"
    assert run(simcom, b"AT+SPIC\r") == ok("+SPIC: 3,10,3,10")
    ublox = quiet_modem(persona("ublox-sara-r410m"))
    assert run(ublox, b"AT+CCID\r") == ok("+CCID: 89883070000012345678")
    assert run(ublox, b"AT+UPINCNT\r") == ok("+UPINCNT: 3,3,10,10")
    assert run(ublox, b"AT+QURCCFG=?\r") == b"\r\nERROR\r\n"


# ---------------------------------------------------------------- AT+CFUN and the radio


def test_cfun_forms() -> None:
    modem = quiet_modem()
    assert run(modem, b"AT+CFUN?\r") == ok("+CFUN: 1")
    assert run(modem, b"AT+CFUN=?\r") == ok("+CFUN: (0,1,4),(0-1)")
    assert run(modem, b"AT+CFUN=2\r") == b"\r\n+CME ERROR: 50\r\n"
    assert run(modem, b"AT+CFUN=4,1\r") == b"\r\n+CME ERROR: 50\r\n"
    assert run(modem, b"AT+CFUN=x\r") == b"\r\nERROR\r\n"
    assert run(modem, b"AT+CFUN=4;+CFUN?\r") == ok("+CFUN: 4")


@pytest.mark.parametrize("fun", [b"0", b"4"])
def test_cfun_off_drops_registration_with_urcs_after_the_result(fun: bytes) -> None:
    modem = quiet_modem()
    run(modem, b"AT+CREG=2;+CEREG=1;+CGREG=1\r")
    assert modem.registered
    assert run(modem, b"AT+CFUN=" + fun + b"\r") == (
        b"\r\nOK\r\n\r\n+CREG: 0\r\n\r\n+CGREG: 0\r\n\r\n+CEREG: 0\r\n"
    )
    assert not modem.registered
    assert run(modem, b"AT+CREG?;+COPS?;+CSQ;+CGATT?\r") == ok(
        "+CREG: 2,0", "+COPS: 0", "+CSQ: 99,99", "+CGATT: 0"
    )
    assert run(modem, b"AT+CESQ\r") == ok("+CESQ: 99,99,255,255,255,255")
    assert run(modem, b"AT+COPS=?\r") == b"\r\n+CME ERROR: 30\r\n"
    assert run(modem, b"AT+CGATT=1\r") == b"\r\n+CME ERROR: 30\r\n"
    assert run(modem, b"AT+CFUN=1\r") == (
        b'\r\nOK\r\n\r\n+CREG: 5,"2D0C","01A2B3C4",7\r\n\r\n+CGREG: 5\r\n\r\n+CEREG: 5\r\n'
    )
    assert modem.registered


def test_cfun_reset_reboots_after_ok_with_the_banner() -> None:
    modem = quiet_modem()
    run(modem, b"AT+CMEE=2\r")
    assert run(modem, b"AT+CFUN=1,1\r") == (
        b"\r\nOK\r\n\r\nRDY\r\n\r\n+CPIN: READY\r\n\r\n+QIND: PB DONE\r\n\r\n+QIND: SMS DONE\r\n"
    )
    assert modem.settings == modem.config.defaults
    assert run(modem, b"AT\r") == b"AT\r\r\nOK\r\n"


def test_set_registration_while_radio_off_reports_nothing_until_back() -> None:
    modem = quiet_modem()
    run(modem, b"AT+CREG=1;+CFUN=0\r")
    modem.set_registration(RegStat.HOME)
    assert modem.data_to_send() == b""
    assert run(modem, b"AT+CFUN=1\r") == b"\r\nOK\r\n\r\n+CREG: 1\r\n"


# ---------------------------------------------------------------- AT+COPS, registration, attach


def test_cops_read_formats_test_and_selection() -> None:
    modem = quiet_modem()
    assert run(modem, b"AT+COPS?\r") == ok('+COPS: 0,0,"vodafone UK",7')
    assert run(modem, b"AT+COPS=3,1;+COPS?\r") == ok('+COPS: 0,1,"voda UK",7')
    assert run(modem, b"AT+COPS=3,2;+COPS?\r") == ok('+COPS: 0,2,"23415",7')
    assert run(modem, b"AT+COPS=?\r") == ok(
        '+COPS: (2,"vodafone UK","voda UK","23415",7),(1,"O2 - UK","O2 - UK","23410",7),'
        '(1,"EE","EE","23430",7),,(0-4),(0-2)'
    )
    assert run(modem, b'AT+COPS=1,2,"23410";+COPS?\r') == ok('+COPS: 1,2,"23410",7')
    assert run(modem, b'AT+COPS=1,0,"Nowhere"\r') == b"\r\n+CME ERROR: 30\r\n"
    assert run(modem, b'AT+COPS=4,0,"Nowhere";+COPS?\r') == ok('+COPS: 4,0,"vodafone UK",7')
    assert run(modem, b"AT+COPS=3\r") == b"\r\n+CME ERROR: 50\r\n"
    assert run(modem, b"AT+COPS=1\r") == b"\r\nERROR\r\n"
    assert run(modem, b"AT+COPS=5\r") == b"\r\n+CME ERROR: 50\r\n"


def test_cops_deregister_and_automatic_with_urcs() -> None:
    modem = quiet_modem()
    run(modem, b"AT+CREG=1\r")
    assert run(modem, b"AT+COPS=2\r") == b"\r\nOK\r\n\r\n+CREG: 0\r\n"
    assert not modem.registered
    assert run(modem, b"AT+COPS?\r") == ok("+COPS: 2")
    assert run(modem, b"AT+COPS=0\r") == b"\r\nOK\r\n\r\n+CREG: 5\r\n"
    assert modem.registered


def test_registration_read_forms_per_n_and_n2_urcs() -> None:
    modem = quiet_modem()
    for name in (b"CREG", b"CGREG", b"CEREG"):
        assert run(modem, b"AT+" + name + b"?\r") == ok(f"+{name.decode()}: 0,5")
        assert run(modem, b"AT+" + name + b"=?\r") == ok(f"+{name.decode()}: (0-2)")
        assert run(modem, b"AT+" + name + b"=2;+" + name + b"?\r") == ok(
            f'+{name.decode()}: 2,5,"2D0C","01A2B3C4",7'
        )
    assert run(modem, b"AT+CREG=3\r") == b"\r\n+CME ERROR: 50\r\n"
    modem.set_registration(RegStat.SEARCHING)
    assert modem.data_to_send() == b"\r\n+CREG: 2\r\n\r\n+CGREG: 2\r\n\r\n+CEREG: 2\r\n"
    modem.set_registration(RegStat.SEARCHING)
    assert modem.data_to_send() == b""  # no change, no code
    modem.set_registration(RegStat.HOME)
    assert modem.data_to_send() == b"".join(
        b"\r\n+" + name + b': 1,"2D0C","01A2B3C4",7\r\n' for name in (b"CREG", b"CGREG", b"CEREG")
    )


def test_cgatt_detaches_the_packet_service_only() -> None:
    modem = quiet_modem()
    run(modem, b"AT+CREG=1;+CGREG=1;+CEREG=1\r")
    assert run(modem, b"AT+CGATT?\r") == ok("+CGATT: 1")
    assert run(modem, b"AT+CGATT=?\r") == ok("+CGATT: (0,1)")
    assert run(modem, b"AT+CGATT=0\r") == b"\r\nOK\r\n\r\n+CGREG: 0\r\n\r\n+CEREG: 0\r\n"
    assert run(modem, b"AT+CGATT?;+CREG?\r") == ok("+CGATT: 0", "+CREG: 1,5")
    assert modem.registered  # SMS still arrive
    assert run(modem, b"AT+CGATT=1\r") == b"\r\nOK\r\n\r\n+CGREG: 5\r\n\r\n+CEREG: 5\r\n"
    assert run(modem, b"AT+CGATT=2\r") == b"\r\n+CME ERROR: 50\r\n"


# ---------------------------------------------------------------- the network follows the radio


class ModemGateway:
    """A :class:`~hostsim.cloud.network.Gateway` around a sans-IO modem (no pty)."""

    def __init__(self, modem: EmulatedModem) -> None:
        self.modem = modem
        self._listeners: list[Callable[[], None]] = []
        modem.on_change = self._changed

    @property
    def attached(self) -> bool:
        return True

    @property
    def registered(self) -> bool:
        return self.modem.registered

    def deliver(self, sender: str, text: str) -> int | None:
        return self.modem.deliver_sms(sender, text)

    def on_submit(self, decide: Callable[[str, str], int | None]) -> None:
        self.modem.on_submit(decide)

    def on_acknowledged(self, listener: Callable[[bool], None]) -> None:
        self.modem.on_acknowledged(listener)

    def add_change_listener(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()


async def _status_becomes(network: Network[ModemGateway], sid: str, status: Status) -> None:
    """Wait (on the network's listeners, no polling) until command ``sid`` has ``status``."""
    reached = asyncio.Event()

    def listener(command: SmsCommand) -> None:
        if command.sid == sid and command.status is status:
            reached.set()

    current = network.get(sid)
    if current is not None and current.status is status:
        return
    network.listeners.append(listener)
    try:
        await asyncio.wait_for(reached.wait(), WAIT)
    finally:
        network.listeners.remove(listener)


async def test_cfun_0_stops_delivery_and_cfun_1_resumes_it() -> None:
    gateway = ModemGateway(quiet_modem())
    network: Network[ModemGateway] = Network("AC" + "0" * 32, SidFactory(1), retry_initial=60)
    sim = network.add_sim(gateway, "gw")
    try:
        gateway.modem.feed(b"AT+CFUN=0\r")
        command = network.create(sim, "ping")
        # SENT is set by the delivery attempt itself, which then found the radio off.
        await _status_becomes(network, command.sid, Status.SENT)
        assert gateway.modem.storages["SM"].used == 0
        gateway.modem.feed(b"AT+CFUN=1\r")  # the change notice retries at once, not in 60 s
        await _status_becomes(network, command.sid, Status.DELIVERED)
        assert gateway.modem.storages["SM"].used == 1
    finally:
        network.close()


async def test_an_sms_sent_while_not_registered_is_refused() -> None:
    gateway = ModemGateway(quiet_modem())
    network: Network[ModemGateway] = Network("AC" + "0" * 32, SidFactory(1))
    network.add_sim(gateway, "gw")
    try:
        modem = gateway.modem
        run(modem, b"AT+CMGF=1;+COPS=2\r")
        run(modem, b'AT+CMGS="000"\r')
        assert run(modem, b"hi\x1a") == f"\r\n+CMS ERROR: {NO_NETWORK_CMS}\r\n".encode()
        run(modem, b"AT+COPS=0\r")
        run(modem, b'AT+CMGS="000"\r')
        assert run(modem, b"hi\x1a") == ok("+CMGS: 1")
        assert [c.payload for c in network.commands()] == ["hi"]
    finally:
        network.close()


# ---------------------------------------------------------------- the SIM


def test_pin_countdown_puk_and_registration() -> None:
    modem = EmulatedModem(ModemConfig(pin_lock=True))
    run(modem, b"ATE0;+CREG=1\r")
    assert run(modem, b"AT+CPIN?\r") == ok("+CPIN: SIM PIN")
    assert not modem.registered
    assert run(modem, b"AT+CREG?\r") == ok("+CREG: 1,0")
    assert run(modem, b"AT+CIMI\r") == b"\r\n+CME ERROR: 11\r\n"
    assert run(modem, b'AT+CPIN="0000"\r') == b"\r\n+CME ERROR: 16\r\n"
    assert run(modem, b"AT+CPINR\r") == ok(rows("+CPINR: SIM PIN,2,3", "+CPINR: SIM PUK,10,10"))
    assert run(modem, b'AT+QPINC="SC"\r') == ok('+QPINC: "SC",2,10')
    assert run(modem, b"AT+CPIN=1111\r") == b"\r\n+CME ERROR: 16\r\n"
    assert run(modem, b'AT+CPIN="2222"\r') == b"\r\n+CME ERROR: 16\r\n"
    assert run(modem, b"AT+CPIN?\r") == ok("+CPIN: SIM PUK")
    assert run(modem, b'AT+CPIN="1234"\r') == b"\r\n+CME ERROR: 12\r\n"  # too late for the PIN
    assert run(modem, b"AT+CIMI\r") == b"\r\n+CME ERROR: 12\r\n"
    assert run(modem, b'AT+CPIN="00000000","4321"\r') == b"\r\n+CME ERROR: 16\r\n"
    assert run(modem, b'AT+CPINR="SIM PUK"\r') == ok("+CPINR: SIM PUK,9,10")
    assert run(modem, b'AT+CPIN="12345678","43"\r') == b"\r\n+CME ERROR: 50\r\n"
    assert run(modem, b'AT+CPIN="12345678","4321"\r') == (
        b"\r\nOK\r\n\r\n+CREG: 5\r\n"
        b"\r\n+CPIN: READY\r\n\r\n+QIND: PB DONE\r\n\r\n+QIND: SMS DONE\r\n"
    )
    assert modem.registered
    assert run(modem, b"AT+CPIN?;+CPINR\r") == ok(
        "+CPIN: READY", rows("+CPINR: SIM PIN,3,3", "+CPINR: SIM PUK,10,10")
    )
    assert run(modem, b'AT+CPIN="4321"\r') == b"\r\n+CME ERROR: 3\r\n"
    modem.reboot()  # the lock is still on: the banner stops at the PIN
    assert modem.data_to_send() == b"\r\nRDY\r\n\r\n+CPIN: SIM PIN\r\n"
    assert run(modem, b"AT+CPIN=4321\r").startswith(b"AT+CPIN=4321\r\r\nOK\r\n")


def test_ten_wrong_puks_block_the_sim() -> None:
    modem = quiet_modem(ModemConfig(pin_lock=True))
    for _ in range(3):
        run(modem, b"AT+CPIN=9999\r")
    for _ in range(9):
        assert run(modem, b"AT+CPIN=1,1234\r") == b"\r\n+CME ERROR: 16\r\n"
    assert run(modem, b"AT+CPIN=1,1234\r") == b"\r\n+CME ERROR: 13\r\n"
    assert run(modem, b"AT+CPIN?\r") == b"\r\n+CME ERROR: 13\r\n"
    assert run(modem, b"AT+CPIN=12345678,1234\r") == b"\r\n+CME ERROR: 13\r\n"
    assert not modem.registered


def test_clck_turns_the_pin_lock_on_and_cpwd_changes_the_pin() -> None:
    modem = quiet_modem()
    assert run(modem, b'AT+CLCK="SC",2\r') == ok("+CLCK: 0")
    assert run(modem, b'AT+CPWD="SC","1234","5678"\r') == b"\r\n+CME ERROR: 3\r\n"
    assert run(modem, b'AT+CLCK="SC",1,"9999"\r') == b"\r\n+CME ERROR: 16\r\n"
    assert run(modem, b'AT+CLCK="SC",1,"1234";+CLCK="SC",2\r') == ok("+CLCK: 1")
    assert run(modem, b'AT+CPWD="SC","1234","5678"\r') == b"\r\nOK\r\n"
    assert run(modem, b'AT+CLCK="AO",2\r') == b"\r\n+CME ERROR: 4\r\n"
    assert run(modem, b"AT+CLCK=?\r") == ok('+CLCK: ("SC")')
    modem.reboot()
    assert modem.data_to_send() == b"\r\nRDY\r\n\r\n+CPIN: SIM PIN\r\n"
    run(modem, b"ATE0\r")
    assert run(modem, b'AT+CPIN="5678"\r').startswith(b"\r\nOK\r\n\r\n+CPIN: READY\r\n")


def test_cnum_and_csca() -> None:
    modem = quiet_modem()
    assert run(modem, b"AT+CNUM\r") == b"\r\nOK\r\n"  # a Super SIM has no MSISDN
    numbered = quiet_modem(ModemConfig(msisdn="+447700900123"))
    assert run(numbered, b"AT+CNUM\r") == ok('+CNUM: "","+447700900123",145')
    assert run(modem, b"AT+CSCA?\r") == ok('+CSCA: "+447937405250",145')
    assert run(modem, b'AT+CSCA="+4412345";+CSCA?\r') == ok('+CSCA: "+4412345",145')
    assert run(modem, b'AT+CSCA="12345";+CSCA?\r') == ok('+CSCA: "12345",129')
    assert run(modem, b'AT+CSCA="12345",145;+CSCA?\r') == ok('+CSCA: "12345",145')
    assert run(modem, b'AT+CSCA="+44x"\r') == b"\r\n+CMS ERROR: 304\r\n"
    assert run(modem, b'AT+CSCA="+44",100\r') == b"\r\n+CMS ERROR: 304\r\n"
    assert run(modem, b"AT+CSCA=+44\r") == b"\r\nERROR\r\n"
    run(modem, b'AT+CSCS="UCS2"\r')
    assert run(modem, b'AT+CSCA="002B0034003400390039";+CSCA?\r') == ok(
        '+CSCA: "002B0034003400390039",145'
    )
    assert modem.module.sca == ("+4499", 145)
    modem.sim_ready = False
    assert run(modem, b"AT+CSCA?\r") == b"\r\n+CMS ERROR: 314\r\n"


def test_csca_of_a_module_that_prints_addresses_plainly() -> None:
    """Quirk.PLAIN_ADDRESSES: ``<sca>`` stays plain under UCS2, where 27.005 §3.3.1
    converts it per ``AT+CSCS`` (gammu's ``ATGEN_DecodeText`` meets both kinds)."""
    modem = quiet_modem(ModemConfig(quirks=frozenset({Quirk.PLAIN_ADDRESSES})))
    run(modem, b'AT+CSCS="UCS2"\r')
    assert run(modem, b"AT+CSCA?\r") == ok('+CSCA: "+447937405250",145')


# ---------------------------------------------------------------- signal, battery, PDP, clock, URCs


def test_cesq_cbc_and_cgdcont() -> None:
    modem = quiet_modem()
    assert run(modem, b"AT+CESQ\r") == ok("+CESQ: 99,99,255,255,20,50")
    assert run(modem, b"AT+CBC\r") == ok("+CBC: 0,80,3900")
    assert run(modem, b"AT+CGDCONT?\r") == ok('+CGDCONT: 1,"IP","super","0.0.0.0",0,0')
    assert run(modem, b"AT+CGDCONT=?\r").count(b"+CGDCONT: (1-15)") == 3
    run(modem, b'AT+CGDCONT=2,"IPV4V6","iot"\r')
    assert run(modem, b"AT+CGDCONT?\r").count(b"+CGDCONT:") == 2
    assert run(modem, b"AT+CGDCONT=1;+CGDCONT?\r") == ok(
        '+CGDCONT: 2,"IPV4V6","iot","0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0",0,0'
    )
    assert run(modem, b'AT+CGDCONT=16,"IP"\r') == b"\r\n+CME ERROR: 50\r\n"
    assert run(modem, b'AT+CGDCONT=1,"X25"\r') == b"\r\n+CME ERROR: 50\r\n"
    assert run(modem, b"AT+CGDCONT=1,IP\r") == b"\r\nERROR\r\n"


def test_cclk_set_and_read_keeps_running() -> None:
    modem = quiet_modem()
    host = [datetime(2026, 12, 2, 0, 0, 0, tzinfo=UTC)]
    modem.module.host_clock = lambda: host[0]
    assert run(modem, b"AT+CCLK?\r") == ok('+CCLK: "26/12/02,00:00:00+00"')
    assert run(modem, b'AT+CCLK="27/01/05,10:30:00+04"\r') == b"\r\nOK\r\n"
    host[0] += timedelta(seconds=90)
    assert run(modem, b"AT+CCLK?\r") == ok('+CCLK: "27/01/05,10:31:30+04"')
    assert run(modem, b'AT+CCLK="26/02/30,10:00:00+00"\r') == b"\r\n+CME ERROR: 50\r\n"
    assert run(modem, b'AT+CCLK="26/02/03,10:00:00"\r') == b"\r\n+CME ERROR: 50\r\n"
    assert run(modem, b'AT+CCLK="26/02/03,10:00:00-08";+CCLK?\r') == ok(
        '+CCLK: "26/02/03,10:00:00-08"'
    )


def test_qurccfg_moves_urcs_off_this_port() -> None:
    modem = quiet_modem()
    assert run(modem, b'AT+QURCCFG="urcport"\r') == ok('+QURCCFG: "urcport","usbat"')
    assert run(modem, b"AT+QURCCFG=?\r") == ok('+QURCCFG: "urcport",("usbat","usbmodem","uart1")')
    assert run(modem, b'AT+QURCCFG="urcport","usbmodem"\r') == b"\r\nOK\r\n"
    modem.deliver_sms("000", "hidden")
    assert modem.data_to_send() == b""  # +CMTI went to the other port
    assert run(modem, b'AT+QURCCFG="urcport","usbat"\r') == b"\r\nOK\r\n"
    modem.deliver_sms("000", "seen")
    assert modem.data_to_send() == b'\r\n+CMTI: "SM",1\r\n'
    assert run(modem, b'AT+QURCCFG="urcport","nowhere"\r') == b"\r\n+CME ERROR: 50\r\n"
    assert run(modem, b'AT+QURCCFG="other"\r') == b"\r\n+CME ERROR: 50\r\n"
