"""hostsim.modem: exact bytes of the sans-IO emulated modem."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hostsim.modem import DIRECT_DELIVERY, EmulatedModem, InputState
from hostsim.modem.settings import Cnmi, MessageMode, ModemConfig, RegStat, Settings
from hostsim.modem.storage import Status, StoredMessage

CET = timezone(timedelta(hours=1))
WHEN = datetime(2026, 11, 25, 10, 0, 0, tzinfo=CET)
SCTS = '"26/11/25,10:00:00+04"'


def run(modem: EmulatedModem, line: bytes) -> bytes:
    modem.feed(line)
    return modem.data_to_send()


def text_modem(**config: object) -> EmulatedModem:
    """A modem with echo off and text mode on (the setup most tests share)."""
    modem = EmulatedModem(ModemConfig(**config))  # type: ignore[arg-type]
    assert run(modem, b"ATE0\r") == b"ATE0\r\r\nOK\r\n"
    assert run(modem, b"AT+CMGF=1\r") == b"\r\nOK\r\n"
    return modem


# ---------------------------------------------------------------- framing and echo


def test_echo_default_on_and_off() -> None:
    modem = EmulatedModem()
    assert run(modem, b"AT\r") == b"AT\r\r\nOK\r\n"
    assert run(modem, b"at\r\n") == b"at\r\r\nOK\r\n\n"
    assert run(modem, b"ATE0\r") == b"ATE0\r\r\nOK\r\n"
    assert run(modem, b"AT\r") == b"\r\nOK\r\n"
    assert run(modem, b"ATE1\r") == b"\r\nOK\r\n"
    assert run(modem, b"AT\r") == b"AT\r\r\nOK\r\n"


def test_lf_ignored_and_backspace_edits() -> None:
    modem = text_modem()
    assert run(modem, b"\nAT+CSQ\r\n") == b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n"
    assert run(modem, b"ATX\x08\r") == b"\r\nOK\r\n"


def test_line_without_at_prefix_gets_no_answer_and_junk_before_at_is_ignored() -> None:
    modem = text_modem()
    assert run(modem, b"hello\r") == b""
    assert run(modem, b"\r") == b""
    assert run(modem, b"xxAT\r") == b"\r\nOK\r\n"


def test_unknown_command_and_syntax_error_are_plain_error_in_every_cmee_mode() -> None:
    modem = text_modem()
    for cmee in (b"0", b"1", b"2"):
        assert run(modem, b"AT+CMEE=" + cmee + b"\r") == b"\r\nOK\r\n"
        assert run(modem, b"AT+FOO\r") == b"\r\nERROR\r\n"
        assert run(modem, b'AT+CMGR="1\r') == b"\r\nERROR\r\n"


def test_several_commands_on_one_line_and_first_failure_stops() -> None:
    modem = text_modem()
    assert run(modem, b"AT+CMGF=1;+CNMI=2,1;+CMGF?\r") == b"\r\n+CMGF: 1\r\n\r\nOK\r\n"
    assert run(modem, b"AT+CSDH=1;+BOGUS;+CSDH=0\r") == b"\r\nERROR\r\n"
    assert modem.settings.csdh is True


def test_overlong_line_is_error() -> None:
    modem = text_modem()
    assert run(modem, b"AT" + b"A" * 5000 + b"\r") == b"\r\nERROR\r\n"
    assert run(modem, b"AT\r") == b"\r\nOK\r\n"


# ---------------------------------------------------------------- general commands


def test_identity_commands() -> None:
    modem = text_modem()
    assert run(modem, b"ATI\r") == b"\r\nQuectel\r\nBG96\r\nRevision: BG96MAR02A07M1G\r\n\r\nOK\r\n"
    assert run(modem, b"AT+CGMI\r") == b"\r\nQuectel\r\n\r\nOK\r\n"
    assert run(modem, b"AT+CGMM\r") == b"\r\nBG96\r\n\r\nOK\r\n"
    assert run(modem, b"AT+CGMR\r") == b"\r\nBG96MAR02A07M1G\r\n\r\nOK\r\n"
    assert run(modem, b"AT+CGSN\r") == b"\r\n866425031234562\r\n\r\nOK\r\n"
    assert run(modem, b"AT+CIMI\r") == b"\r\n732123200000001\r\n\r\nOK\r\n"
    assert run(modem, b"AT+CCID\r") == b"\r\n+CCID: 89883070000012345678\r\n\r\nOK\r\n"
    assert run(modem, b"AT+CGMI=?\r") == b"\r\nOK\r\n"


def test_imei_is_luhn_valid_and_iccid_is_super_sim() -> None:
    config = ModemConfig()
    digits = [int(c) for c in reversed(config.imei)]
    total = sum(
        d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2) for i, d in enumerate(digits)
    )
    assert len(config.imei) == 15 and total % 10 == 0
    assert config.iccid.startswith("89883")


def test_sim_signal_registration() -> None:
    modem = text_modem()
    assert run(modem, b"AT+CPIN?\r") == b"\r\n+CPIN: READY\r\n\r\nOK\r\n"
    assert run(modem, b"AT+CSQ\r") == b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n"
    assert run(modem, b"AT+CSQ=?\r") == b"\r\n+CSQ: (0-31,99),(0-7,99)\r\n\r\nOK\r\n"
    assert run(modem, b"AT+CREG?\r") == b"\r\n+CREG: 0,5\r\n\r\nOK\r\n"
    assert run(modem, b"AT+CEREG?\r") == b"\r\n+CEREG: 0,5\r\n\r\nOK\r\n"
    assert run(modem, b"AT+CREG=1;+CREG?\r") == b"\r\n+CREG: 1,5\r\n\r\nOK\r\n"
    assert run(modem, b"AT+CEREG=2;+CEREG?\r") == (
        b'\r\n+CEREG: 2,5,"2D0C","01A2B3C4",7\r\n\r\nOK\r\n'
    )
    assert run(modem, b"AT+CREG=?\r") == b"\r\n+CREG: (0-2)\r\n\r\nOK\r\n"
    modem.set_registration(RegStat.SEARCHING)
    assert modem.data_to_send() == b"\r\n+CREG: 2\r\n\r\n+CEREG: 2\r\n"


@pytest.mark.parametrize(
    ("cmee", "expected"),
    [
        (b"0", b"\r\nERROR\r\n"),
        (b"1", b"\r\n+CME ERROR: 14\r\n"),
        (b"2", b"\r\n+CME ERROR: SIM busy\r\n"),
    ],
)
def test_cme_errors_per_cmee(cmee: bytes, expected: bytes) -> None:
    modem = text_modem()
    modem.sim_ready = False
    run(modem, b"AT+CMEE=" + cmee + b"\r")
    assert run(modem, b"AT+CPIN?\r") == expected


@pytest.mark.parametrize(
    ("cmee", "expected"),
    [
        # +CMS ERROR is not governed by AT+CMEE (TS 27.005 §3.2.5, TS 27.007 §9.1).
        (b"0", b"\r\n+CMS ERROR: 321\r\n"),
        (b"1", b"\r\n+CMS ERROR: 321\r\n"),
        (b"2", b"\r\n+CMS ERROR: invalid memory index\r\n"),
    ],
)
def test_cms_errors_per_cmee(cmee: bytes, expected: bytes) -> None:
    modem = text_modem()
    run(modem, b"AT+CMEE=" + cmee + b"\r")
    assert run(modem, b"AT+CMGR=3\r") == expected


def test_cmee_read_test_and_range() -> None:
    modem = text_modem()
    assert run(modem, b"AT+CMEE?\r") == b"\r\n+CMEE: 1\r\n\r\nOK\r\n"
    assert run(modem, b"AT+CMEE=?\r") == b"\r\n+CMEE: (0-2)\r\n\r\nOK\r\n"
    assert run(modem, b"AT+CMEE=3\r") == b"\r\n+CME ERROR: 50\r\n"


def test_defaults_and_atz() -> None:
    modem = EmulatedModem()
    assert modem.settings == Settings()
    assert modem.settings.echo and modem.settings.cmee == 1
    assert modem.settings.cmgf is MessageMode.PDU
    assert modem.settings.cnmi == Cnmi(2, 1, 0, 0, 0)
    run(modem, b'ATE0;+CMEE=2;+CMGF=1;+CSCS="UCS2";+CSDH=1;+CNMI=1,2;+CPMS="ME","ME","ME"\r')
    assert modem.settings != Settings()
    assert run(modem, b"ATZ\r") == b"\r\nOK\r\n"
    assert modem.settings == Settings()
    assert run(modem, b"AT\r") == b"AT\r\r\nOK\r\n"


# ---------------------------------------------------------------- SMS settings


def test_sms_settings_read_and_test_forms() -> None:
    modem = text_modem()
    assert run(modem, b"AT+CMGF?\r") == b"\r\n+CMGF: 1\r\n\r\nOK\r\n"
    assert run(modem, b"AT+CMGF=?\r") == b"\r\n+CMGF: (0,1)\r\n\r\nOK\r\n"
    assert run(modem, b"AT+CSCS?\r") == b'\r\n+CSCS: "GSM"\r\n\r\nOK\r\n'
    assert run(modem, b"AT+CSCS=?\r") == b'\r\n+CSCS: ("GSM","IRA","UCS2")\r\n\r\nOK\r\n'
    assert run(modem, b"AT+CSDH?\r") == b"\r\n+CSDH: 0\r\n\r\nOK\r\n"
    assert run(modem, b"AT+CSMP?\r") == b"\r\n+CSMP: 17,167,0,0\r\n\r\nOK\r\n"
    assert run(modem, b"AT+CSMP=17,169\r") == b"\r\nOK\r\n"
    assert run(modem, b"AT+CSMP?\r") == b"\r\n+CSMP: 17,169,0,0\r\n\r\nOK\r\n"
    assert run(modem, b"AT+CNMI?\r") == b"\r\n+CNMI: 2,1,0,0,0\r\n\r\nOK\r\n"
    assert run(modem, b"AT+CNMI=?\r") == b"\r\n+CNMI: (0-3),(0-3),(0,2),(0-2),(0,1)\r\n\r\nOK\r\n"
    assert run(modem, b"AT+CMGF=2\r") == b"\r\n+CMS ERROR: 302\r\n"
    assert run(modem, b'AT+CSCS="KLINGON"\r') == b"\r\n+CME ERROR: 50\r\n"
    assert run(modem, b"AT+CNMI=2,1,1\r") == b"\r\n+CMS ERROR: 302\r\n"


def test_cpms() -> None:
    modem = text_modem()
    modem.deliver_sms("000", "a", timestamp=WHEN)
    modem.data_to_send()
    assert run(modem, b"AT+CPMS?\r") == b'\r\n+CPMS: "SM",1,30,"SM",1,30,"SM",1,30\r\n\r\nOK\r\n'
    assert run(modem, b"AT+CPMS=?\r") == (
        b'\r\n+CPMS: ("SM","ME"),("SM","ME"),("SM","ME")\r\n\r\nOK\r\n'
    )
    assert run(modem, b'AT+CPMS="ME"\r') == b"\r\n+CPMS: 0,100,1,30,1,30\r\n\r\nOK\r\n"
    assert run(modem, b'AT+CPMS="SM","ME","ME"\r') == b"\r\n+CPMS: 1,30,0,100,0,100\r\n\r\nOK\r\n"
    assert run(modem, b'AT+CPMS="XX"\r') == b"\r\n+CMS ERROR: 302\r\n"
    modem.deliver_sms("000", "b", timestamp=WHEN)
    assert modem.data_to_send() == b'\r\n+CMTI: "ME",0\r\n'


def test_pdu_mode_sms_commands_are_supported() -> None:
    # Details (exact PDUs, errors) are in test_hostsim_pdu.py.
    modem = text_modem()
    run(modem, b"AT+CMGF=0\r")
    assert run(modem, b"AT+CMGR=0\r") == b"\r\n+CMS ERROR: 321\r\n"
    assert run(modem, b"AT+CMGL=4\r") == b"\r\nOK\r\n"
    assert run(modem, b'AT+CMGS="000"\r') == b"\r\n+CMS ERROR: 304\r\n"
    assert modem.state is InputState.COMMAND


# ---------------------------------------------------------------- receiving and reading


def test_deliver_cmti_and_cmgr_marks_read() -> None:
    modem = text_modem()
    assert modem.deliver_sms("000", "checkin: now", timestamp=WHEN) == 0
    assert modem.data_to_send() == b'\r\n+CMTI: "SM",0\r\n'
    expected = (
        b'\r\n+CMGR: "REC UNREAD","000",,' + SCTS.encode() + b"\r\ncheckin: now\r\n\r\nOK\r\n"
    )
    assert run(modem, b"AT+CMGR=0\r") == expected
    assert run(modem, b"AT+CMGR=0\r").startswith(b'\r\n+CMGR: "REC READ"')


def test_cmgr_gsm_body_is_raw_septets() -> None:
    modem = text_modem()
    modem.deliver_sms("+447700900123", "@$_ok", timestamp=WHEN)
    modem.data_to_send()
    assert run(modem, b"AT+CMGR=0\r") == (
        b'\r\n+CMGR: "REC UNREAD","+447700900123",,'
        + SCTS.encode()
        + b"\r\n\x00\x02\x11ok\r\n\r\nOK\r\n"
    )


def test_cmgr_with_csdh() -> None:
    modem = text_modem()
    modem.deliver_sms("+447700900123", "hello", timestamp=WHEN)
    run(modem, b"AT+CSDH=1\r")
    assert run(modem, b"AT+CMGR=0\r") == (
        b'\r\n+CMGR: "REC UNREAD","+447700900123",,'
        + SCTS.encode()
        + b',145,4,0,0,"+447937405250",145,5\r\nhello\r\n\r\nOK\r\n'
    )


def test_cmgr_ira_and_ucs2() -> None:
    modem = text_modem()
    modem.deliver_sms("000", "£5 @ home", timestamp=WHEN)
    run(modem, b'AT+CSCS="IRA"\r')
    assert run(modem, b"AT+CMGR=0\r") == (
        b'\r\n+CMGR: "REC UNREAD","000",,' + SCTS.encode() + b"\r\n?5 @ home\r\n\r\nOK\r\n"
    )
    run(modem, b'AT+CSCS="UCS2"\r')
    assert run(modem, b"AT+CMGR=0\r") == (
        b'\r\n+CMGR: "REC READ","003000300030",,'
        + SCTS.encode()
        + b"\r\n00A300350020004000200068006F006D0065\r\n\r\nOK\r\n"
    )


def test_non_gsm_text_is_stored_as_ucs2_and_printed_as_hex() -> None:
    modem = text_modem()
    modem.deliver_sms("000", "hi ☃", timestamp=WHEN)
    stored = modem.storages["SM"].get(0)
    assert stored is not None and stored.dcs == 8
    run(modem, b"AT+CSDH=1\r")
    assert run(modem, b"AT+CMGR=0\r") == (
        b'\r\n+CMGR: "REC UNREAD","000",,'
        + SCTS.encode()
        + b',129,4,0,8,"+447937405250",145,8\r\n0068006900202603\r\n\r\nOK\r\n'
    )


def test_scts_negative_zone_and_utc() -> None:
    modem = text_modem()
    modem.deliver_sms(
        "000", "x", timestamp=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(-timedelta(hours=5)))
    )
    modem.deliver_sms("000", "y", timestamp=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    out = run(modem, b'AT+CMGL="ALL"\r')
    assert b'"26/01/02,03:04:05-20"' in out
    assert b'"26/01/02,03:04:05+00"' in out


def test_cmgl_default_unread_all_and_csdh() -> None:
    modem = text_modem()
    modem.deliver_sms("000", "one", timestamp=WHEN)
    modem.deliver_sms("000", "two", timestamp=WHEN)
    modem.data_to_send()
    assert run(modem, b"AT+CMGR=0\r").startswith(b"\r\n+CMGR")
    assert run(modem, b"AT+CMGL\r") == (
        b'\r\n+CMGL: 1,"REC UNREAD","000",,' + SCTS.encode() + b"\r\ntwo\r\n\r\nOK\r\n"
    )
    assert run(modem, b'AT+CMGL="REC UNREAD"\r') == b"\r\nOK\r\n"
    run(modem, b"AT+CSDH=1\r")
    assert run(modem, b'AT+CMGL="ALL"\r') == (
        b'\r\n+CMGL: 0,"REC READ","000",,'
        + SCTS.encode()
        + b",129,3\r\none\r\n"
        + b'+CMGL: 1,"REC READ","000",,'
        + SCTS.encode()
        + b",129,3\r\ntwo\r\n\r\nOK\r\n"
    )
    assert run(modem, b'AT+CMGL="BOGUS"\r') == b"\r\n+CMS ERROR: 305\r\n"
    assert run(modem, b"AT+CMGL=?\r") == (
        b'\r\n+CMGL: ("REC UNREAD","REC READ","STO UNSENT","STO SENT","ALL")\r\n\r\nOK\r\n'
    )


def test_cmgl_stored_mo_messages() -> None:
    modem = text_modem()
    modem.storages["SM"].store(StoredMessage(Status.STO_UNSENT, "000", "draft", WHEN))
    assert run(modem, b'AT+CMGL="STO UNSENT"\r') == (
        b'\r\n+CMGL: 0,"STO UNSENT","000",,\r\ndraft\r\n\r\nOK\r\n'
    )
    assert run(modem, b"AT+CMGR=0\r") == b'\r\n+CMGR: "STO UNSENT","000",\r\ndraft\r\n\r\nOK\r\n'


def test_cmt_direct_delivery() -> None:
    modem = text_modem()
    run(modem, b"AT+CNMI=2,2\r")
    assert modem.deliver_sms("000", "direct", timestamp=WHEN) == DIRECT_DELIVERY
    assert modem.data_to_send() == b'\r\n+CMT: "000",,' + SCTS.encode() + b"\r\ndirect\r\n"
    assert modem.storages["SM"].used == 0


def test_cnmi_mt0_stores_silently_and_mode0_holds() -> None:
    modem = text_modem()
    run(modem, b"AT+CNMI=2,0\r")
    assert modem.deliver_sms("000", "quiet", timestamp=WHEN) == 0
    assert modem.data_to_send() == b""
    run(modem, b"AT+CNMI=0,1\r")
    assert modem.deliver_sms("000", "held", timestamp=WHEN) == 1
    assert modem.data_to_send() == b""
    assert run(modem, b"AT+CNMI=2,1,0,0,0\r") == b'\r\nOK\r\n\r\n+CMTI: "SM",1\r\n'


def test_full_storage() -> None:
    modem = text_modem(storages=(("SM", 2), ("ME", 5)))
    assert modem.deliver_sms("000", "a", timestamp=WHEN) == 0
    assert modem.deliver_sms("000", "b", timestamp=WHEN) == 1
    modem.data_to_send()
    assert modem.deliver_sms("000", "c", timestamp=WHEN) is None
    assert modem.data_to_send() == b""
    assert run(modem, b"AT+CPMS?\r") == b'\r\n+CPMS: "SM",2,2,"SM",2,2,"SM",2,2\r\n\r\nOK\r\n'


def test_index_base_one() -> None:
    modem = text_modem(index_base=1)
    assert modem.deliver_sms("000", "a", timestamp=WHEN) == 1
    assert modem.data_to_send() == b'\r\n+CMTI: "SM",1\r\n'
    assert run(modem, b"AT+CMGR=0\r") == b"\r\n+CMS ERROR: 321\r\n"


# ---------------------------------------------------------------- deleting


def test_cmgd_index() -> None:
    modem = text_modem()
    modem.deliver_sms("000", "a", timestamp=WHEN)
    modem.data_to_send()
    assert run(modem, b"AT+CMGD=0\r") == b"\r\nOK\r\n"
    assert modem.storages["SM"].used == 0
    assert run(modem, b"AT+CMGD=0\r") == b"\r\nOK\r\n"  # empty in-range slot
    assert run(modem, b"AT+CMGD=30\r") == b"\r\n+CMS ERROR: 321\r\n"
    assert run(modem, b"AT+CMGD=\r") == b"\r\nERROR\r\n"
    assert run(modem, b"AT+CMGD=0,5\r") == b"\r\n+CMS ERROR: 302\r\n"


@pytest.mark.parametrize(("delflag", "left"), [(1, [0, 2, 3]), (2, [0, 2]), (3, [0]), (4, [])])
def test_cmgd_delflags(delflag: int, left: list[int]) -> None:
    modem = text_modem()
    store = modem.storages["SM"]
    for status in (Status.REC_UNREAD, Status.REC_READ, Status.STO_UNSENT, Status.STO_SENT):
        store.store(StoredMessage(status, "000", "x", WHEN))
    assert run(modem, b"AT+CMGD=,%d\r" % delflag) == b"\r\nOK\r\n"
    assert store.indices() == left


def test_cmgd_test_form_lists_used_indices() -> None:
    modem = text_modem()
    for _ in range(3):
        modem.deliver_sms("000", "x", timestamp=WHEN)
    run(modem, b"AT+CMGD=1\r")
    assert run(modem, b"AT+CMGD=?\r") == b"\r\n+CMGD: (0,2),(0-4)\r\n\r\nOK\r\n"


# ---------------------------------------------------------------- sending


def test_cmgs_prompt_and_ctrl_z() -> None:
    modem = text_modem()
    assert run(modem, b'AT+CMGS="000"\r') == b"\r\n> "
    assert modem.state is InputState.SMS_PROMPT
    assert run(modem, b"ok: done\x1a") == b"\r\n+CMGS: 0\r\n\r\nOK\r\n"
    assert modem.state.value == "command"
    assert [(s.destination, s.text, s.reference) for s in modem.sent] == [("000", "ok: done", 0)]
    run(modem, b'AT+CMGS="+447700900123",145\rsecond\x1a')
    assert modem.sent[-1].reference == 1
    assert modem.sent[-1].destination == "+447700900123"


def test_cmgs_echo_on_echoes_body() -> None:
    modem = text_modem()
    run(modem, b"ATE1\r")
    assert (
        run(modem, b'AT+CMGS="000"\r\nhi\x1a')
        == b'AT+CMGS="000"\r\r\n> hi\r\n+CMGS: 0\r\n\r\nOK\r\n'
    )
    assert modem.sent[0].text == "hi"


def test_cmgs_escape_cancels() -> None:
    modem = text_modem()
    assert run(modem, b'AT+CMGS="000"\rnever\x1b') == b"\r\n> \r\nOK\r\n"
    assert modem.sent == []


def test_cmgs_cr_in_body_reprompts() -> None:
    modem = text_modem()
    assert run(modem, b'AT+CMGS="000"\rline1\rline2\x1a') == (
        b"\r\n> \r\n> \r\n+CMGS: 0\r\n\r\nOK\r\n"
    )
    assert modem.sent[0].text == "line1\rline2"


def test_cmgs_gsm_body_decoding() -> None:
    modem = text_modem()
    run(modem, b'AT+CMGS="000"\r\x00\x02\x11\x1a')
    assert modem.sent[0].text == "@$_"


def test_cmgs_ucs2() -> None:
    modem = text_modem()
    run(modem, b'AT+CSCS="UCS2"\r')
    assert (
        run(modem, b'AT+CMGS="003000300030"\r00680069\x1a') == b"\r\n> \r\n+CMGS: 0\r\n\r\nOK\r\n"
    )
    assert (modem.sent[0].destination, modem.sent[0].text) == ("000", "hi")
    assert run(modem, b'AT+CMGS="000"\rnothex\x1a') == b"\r\n> \r\n+CMS ERROR: 305\r\n"


def test_cmgs_too_long_and_non_gsm() -> None:
    modem = text_modem()
    assert run(modem, b'AT+CMGS="000"\r' + b"a" * 160 + b"\x1a").endswith(b"+CMGS: 0\r\n\r\nOK\r\n")
    assert run(modem, b'AT+CMGS="000"\r' + b"a" * 161 + b"\x1a") == b"\r\n> \r\n+CMS ERROR: 305\r\n"
    run(modem, b'AT+CSCS="UCS2"\r')
    assert run(modem, b'AT+CMGS="000"\r2603\x1a').endswith(b"+CMS ERROR: 305\r\n")
    run(modem, b"AT+CSMP=17,167,0,8\r")
    assert run(modem, b'AT+CMGS="000"\r2603\x1a').endswith(b"+CMGS: 1\r\n\r\nOK\r\n")
    assert (modem.sent[-1].text, modem.sent[-1].dcs) == ("☃", 8)
    assert len(modem.sent) == 2


def test_cmgs_bad_address() -> None:
    modem = text_modem()
    assert run(modem, b"AT+CMGS=000\r") == b"\r\n+CMS ERROR: 305\r\n"
    assert run(modem, b'AT+CMGS="abc!"\r') == b"\r\n+CMS ERROR: 305\r\n"
    assert run(modem, b'AT+CMGS=""\r') == b"\r\n+CMS ERROR: 305\r\n"


def test_message_reference_wraps() -> None:
    modem = text_modem()
    for _ in range(257):
        run(modem, b'AT+CMGS="000"\rx\x1a')
    assert [s.reference for s in modem.sent[-3:]] == [254, 255, 0]


def test_urc_held_during_prompt() -> None:
    modem = text_modem()
    run(modem, b'AT+CMGS="000"\r')
    assert modem.deliver_sms("000", "meanwhile", timestamp=WHEN) == 0
    assert modem.data_to_send() == b""
    assert run(modem, b"reply\x1a") == b'\r\n+CMGS: 0\r\n\r\nOK\r\n\r\n+CMTI: "SM",0\r\n'


def test_on_change_called_and_its_errors_swallowed() -> None:
    calls: list[int] = []

    def boom() -> None:
        calls.append(1)
        raise RuntimeError("listener bug")

    modem = EmulatedModem(on_change=boom)
    run(modem, b"AT\r")
    modem.deliver_sms("000", "x", timestamp=WHEN)
    run(modem, b'AT+CMGF=1;+CMGS="000"\rx\x1a')
    assert len(calls) == 4


# ---------------------------------------------------------------- properties


SCRIPT = (
    b'ATE1\rAT+CMGF=1;+CSDH=1\rAT+CMGL="ALL"\rAT+CMGR=0\r'
    b'AT+CMGS="000"\r\nhello\rworld\x1aAT+CMGS="000"\rno\x1bAT+CMGD=,4\rATI\r'
)


def transcript(chunks: list[bytes]) -> bytes:
    modem = EmulatedModem()
    modem.deliver_sms("000", "stored", timestamp=WHEN)
    out = modem.data_to_send()
    for chunk in chunks:
        modem.feed(chunk)
        out += modem.data_to_send()
    return out


@st.composite
def chunked(draw: st.DrawFn, data: bytes) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=20)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@given(chunked(SCRIPT))
@settings(max_examples=200, deadline=None)
def test_any_chunking_gives_same_output(chunks: list[bytes]) -> None:
    assert transcript(chunks) == transcript([SCRIPT])


def test_byte_by_byte_gives_same_output() -> None:
    assert transcript([bytes([b]) for b in SCRIPT]) == transcript([SCRIPT])


@given(st.lists(st.binary(max_size=64), max_size=20))
@settings(max_examples=300, deadline=None)
def test_random_bytes_never_raise(chunks: list[bytes]) -> None:
    modem = EmulatedModem()
    for chunk in chunks:
        modem.feed(chunk)
        modem.data_to_send()
    modem.deliver_sms("000", "still alive")


_ALPHABET = st.sampled_from(
    [
        b"AT",
        b"+CMGF=1",
        b"+CMGS=",
        b'"000"',
        b"+CMGR=",
        b"+CMGL",
        b"+CPMS=",
        b";",
        b",",
        b"\r",
        b"\n",
        b"\x1a",
        b"\x1b",
        b"0",
        b"4",
        b'"ALL"',
        b"?",
        b"=?",
        b"E0",
        b"+CSCS=",
        b'"UCS2"',
        b"\x08",
    ]
)


@given(st.lists(_ALPHABET, max_size=60))
@settings(max_examples=300, deadline=None)
def test_command_like_fuzz_never_raises(tokens: list[bytes]) -> None:
    modem = EmulatedModem()
    modem.deliver_sms("000", "x", timestamp=WHEN)
    modem.feed(b"".join(tokens))
    modem.data_to_send()


def test_s_registers_and_v250_basics() -> None:
    modem = text_modem()
    run(modem, b"ATE0\r")
    assert run(modem, b"ATS3?\r") == b"\r\n013\r\n\r\nOK\r\n"
    assert run(modem, b"ATS0=2\r") == b"\r\nOK\r\n"
    assert run(modem, b"ATS0?\r") == b"\r\n002\r\n\r\nOK\r\n"
    assert run(modem, b"AT&C1&D2\r") == b"\r\nOK\r\n"
    assert run(modem, b"ATS=1\r") == b"\r\nERROR\r\n"


def test_send_faults_and_hang() -> None:
    modem = text_modem()
    run(modem, b"ATE0\r")
    modem.fail_next_send(500, sent_anyway=True)
    modem.fail_next_send(331)
    assert run(modem, b'AT+CMGS="000"\r') == b"\r\n> "
    assert run(modem, b"one\x1a") == b"\r\n+CMS ERROR: 500\r\n"
    run(modem, b'AT+CMGS="000"\r')
    assert run(modem, b"two\x1a") == b"\r\n+CMS ERROR: 331\r\n"
    run(modem, b'AT+CMGS="000"\r')
    assert run(modem, b"three\x1a").endswith(b"\r\nOK\r\n")
    assert [s.text for s in modem.sent] == ["one", "three"]
    modem.hung = True
    assert run(modem, b"AT\r") == b""
    modem.hung = False
    assert run(modem, b"AT\r") == b"\r\nOK\r\n"
