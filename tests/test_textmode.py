"""Text-mode +CMGR / +CMGL / +CMT headers, timestamps and bodies."""

from __future__ import annotations

import contextlib
import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device.errors import SmsFormatError
from device.sms import gsm7
from device.sms.charset import Charset, to_wire, ucs2_encode
from device.sms.textmode import (
    MAX_QUARTER_HOURS,
    MessageStatus,
    TextHeader,
    decode_body,
    format_scts,
    parse_cmgl_header,
    parse_cmgr_header,
    parse_cmt_header,
    parse_scts,
    split_fields,
)

PLUS_1H = timezone(timedelta(hours=1))
MINUS_5H = timezone(timedelta(hours=-5))
SUPER_SIM = '"REC UNREAD","000",,"26/11/25,10:00:00+04"'
CSDH = '"REC READ","+447700900123",,"21/03/04,12:34:56-20",145,4,0,0,"+447700900000",145,5'


def header(**changes: object) -> TextHeader:
    base = TextHeader(
        MessageStatus.REC_UNREAD,
        "000",
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


# --- field splitting --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("", [("", False)]),
        ("1", [("1", False)]),
        ('"a,b",,3', [("a,b", True), ("", False), ("3", False)]),
        ('"a" , "b" ,', [("a", True), ("b", True), ("", False)]),
        ('"",1', [("", True), ("1", False)]),
        (" 1 ,\t2", [("1", False), ("2", False)]),
    ],
)
def test_split_fields(text: str, fields: list[tuple[str, bool]]) -> None:
    assert split_fields(text) == fields


@pytest.mark.parametrize("text", ['"abc', '"a"b,1', '1,a"b', '"a""b"'])
def test_split_fields_rejects(text: str) -> None:
    with pytest.raises(SmsFormatError):
        split_fields(text)


# --- timestamps -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("26/11/25,10:00:00+04", datetime(2026, 11, 25, 10, 0, 0, tzinfo=PLUS_1H)),
        ('"21/03/04,12:34:56-20"', datetime(2021, 3, 4, 12, 34, 56, tzinfo=MINUS_5H)),
        ("00/01/01,00:00:00+00", datetime(2000, 1, 1, tzinfo=UTC)),
        (
            "99/12/31,23:59:59-48",
            datetime(2099, 12, 31, 23, 59, 59, tzinfo=timezone(-timedelta(hours=12))),
        ),
        (
            "24/02/29,01:02:03+56",
            datetime(2024, 2, 29, 1, 2, 3, tzinfo=timezone(timedelta(hours=14))),
        ),
        (
            "24/06/01,12:00:00+22",
            datetime(2024, 6, 1, 12, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        ),
        (
            "24/06/01,12:00:00+9",
            datetime(2024, 6, 1, 12, tzinfo=timezone(timedelta(hours=2, minutes=15))),
        ),
    ],
)
def test_parse_scts(text: str, expected: datetime) -> None:
    parsed = parse_scts(text)
    assert parsed == expected
    assert parsed.utcoffset() == expected.utcoffset()


def test_parse_scts_same_instant_different_zones() -> None:
    assert parse_scts("26/11/25,10:00:00+04") == parse_scts("26/11/25,09:00:00+00")
    assert parse_scts("21/03/04,12:34:56-20") == datetime(2021, 3, 4, 17, 34, 56, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "26/11/25,10:00:00",  # no zone
        "26/13/25,10:00:00+04",
        "23/02/29,10:00:00+04",  # not a leap year
        "26/04/31,10:00:00+04",
        "26/11/25,24:00:00+04",
        "26/11/25,10:60:00+04",
        "26/11/25,10:00:60+04",
        "26/11/25,10:00:00+80",
        "26/11/25,10:00:00+004",
        "26/11/25,10:00:00±04",
        "２６/11/25,10:00:00+04",  # full-width digits
        '"26/11/25,10:00:00+04',
        "26/11/25,10:00:00+04\n",
    ],
)
def test_parse_scts_rejects(text: str) -> None:
    with pytest.raises(SmsFormatError):
        parse_scts(text)


def test_format_scts() -> None:
    assert format_scts(datetime(2026, 11, 25, 10, tzinfo=PLUS_1H)) == "26/11/25,10:00:00+04"
    assert format_scts(datetime(2021, 3, 4, 12, 34, 56, tzinfo=MINUS_5H)) == "21/03/04,12:34:56-20"
    assert format_scts(datetime(2000, 1, 1, tzinfo=UTC)) == "00/01/01,00:00:00+00"
    # Microseconds are dropped.
    assert format_scts(datetime(2030, 5, 6, 7, 8, 9, 999999, tzinfo=UTC)) == "30/05/06,07:08:09+00"


@pytest.mark.parametrize(
    "dt",
    [
        datetime(2026, 1, 1),  # naive
        datetime(1999, 12, 31, tzinfo=UTC),
        datetime(2100, 1, 1, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=timezone(timedelta(minutes=10))),
        datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=20))),
        datetime(2026, 1, 1, tzinfo=timezone(timedelta(minutes=15, seconds=1))),
    ],
)
def test_format_scts_rejects(dt: datetime) -> None:
    with pytest.raises(SmsFormatError):
        format_scts(dt)


scts_datetimes = st.builds(
    lambda naive, quarters: naive.replace(tzinfo=timezone(timedelta(minutes=15 * quarters))),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31, 23, 59, 59)).map(
        lambda d: d.replace(microsecond=0)
    ),
    st.integers(-MAX_QUARTER_HOURS, MAX_QUARTER_HOURS),
)


@given(scts_datetimes)
def test_scts_round_trip(dt: datetime) -> None:
    text = format_scts(dt)
    parsed = parse_scts(text)
    assert parsed == dt
    assert parsed.utcoffset() == dt.utcoffset()
    assert parsed.replace(tzinfo=None) == dt.replace(tzinfo=None)  # wall clock kept
    assert format_scts(parsed) == text


@given(st.text(alphabet='0123456789/,:+- "', max_size=25) | st.text(max_size=25))
def test_parse_scts_random_only_raises_sms_format_error(text: str) -> None:
    try:
        parsed = parse_scts(text)
    except SmsFormatError:
        return
    assert parsed.tzinfo is not None


# --- +CMGR ------------------------------------------------------------------------------------


def test_cmgr_super_sim() -> None:
    assert parse_cmgr_header(SUPER_SIM, Charset.GSM) == header(
        timestamp=datetime(2026, 11, 25, 10, tzinfo=PLUS_1H)
    )


def test_cmgr_with_csdh() -> None:
    assert parse_cmgr_header(CSDH, Charset.IRA) == header(
        stat=MessageStatus.REC_READ,
        address="+447700900123",
        timestamp=datetime(2021, 3, 4, 12, 34, 56, tzinfo=MINUS_5H),
        tooa=145,
        fo=4,
        pid=0,
        dcs=0,
        sca="+447700900000",
        tosca=145,
        length=5,
    )


def test_cmgr_ucs2_addresses_status_and_alpha() -> None:
    text = ",".join(
        [
            f'"{ucs2_encode("REC UNREAD")}"',
            f'"{ucs2_encode("000")}"',
            f'"{ucs2_encode("Twilio, Inc. 😀")}"',
            '"26/11/25,10:00:00+04"',
            "129,4,0,8",
            f'"{ucs2_encode("+447700900000")}"',
            "145,10",
        ]
    )
    parsed = parse_cmgr_header(text, Charset.UCS2)
    assert parsed.stat is MessageStatus.REC_UNREAD
    assert parsed.address == "000"
    assert parsed.alpha == "Twilio, Inc. 😀"
    assert parsed.sca == "+447700900000"
    assert (parsed.tooa, parsed.fo, parsed.pid, parsed.dcs, parsed.tosca, parsed.length) == (
        129,
        4,
        0,
        8,
        145,
        10,
    )


def test_cmgr_ucs2_plain_status_and_address() -> None:
    parsed = parse_cmgr_header('"REC READ","+4917",,"26/11/25,10:00:00+04"', Charset.UCS2)
    assert parsed.stat is MessageStatus.REC_READ
    assert parsed.address == "+4917"


def test_cmgr_ucs2_hex_timestamp_tolerated() -> None:
    scts = ucs2_encode("26/11/25,10:00:00+04")
    parsed = parse_cmgr_header(f'"REC READ","003000300030",,"{scts}"', Charset.UCS2)
    assert parsed.timestamp == datetime(2026, 11, 25, 10, tzinfo=PLUS_1H)


def test_cmgr_gsm_alpha_and_prefix_and_spaces() -> None:
    text = '+CMGR: "REC READ", "000", "\x00home, sweet", "26/11/25,10:00:00+04"\r\n'
    parsed = parse_cmgr_header(text, Charset.GSM)
    assert parsed.alpha == "@home, sweet"
    assert parsed.address == "000"


@pytest.mark.parametrize(
    ("stat", "expected"),
    [
        ("0", MessageStatus.REC_UNREAD),
        ("1", MessageStatus.REC_READ),
        ('"rec read"', MessageStatus.REC_READ),
        ('"REC  UNREAD"', MessageStatus.REC_UNREAD),
    ],
)
def test_cmgr_status_variants(stat: str, expected: MessageStatus) -> None:
    parsed = parse_cmgr_header(f'{stat},"000",,"26/11/25,10:00:00+04"', Charset.IRA)
    assert parsed.stat is expected


def test_cmgr_stored_submit_short() -> None:
    parsed = parse_cmgr_header('"STO UNSENT","000",', Charset.IRA)
    assert parsed == header(stat=MessageStatus.STO_UNSENT)


def test_cmgr_stored_submit_with_empty_fourth_field() -> None:
    parsed = parse_cmgr_header('"STO SENT","000","",', Charset.IRA)
    assert parsed == header(stat=MessageStatus.STO_SENT)


def test_cmgr_stored_submit_with_details() -> None:
    text = '"STO SENT","003000300030",,129,17,0,0,167,"002B0034003900310037",145,12'
    parsed = parse_cmgr_header(text, Charset.UCS2)
    assert parsed == header(
        stat=MessageStatus.STO_SENT,
        tooa=129,
        fo=17,
        pid=0,
        dcs=0,
        sca="+4917",
        tosca=145,
        length=12,
    )


def test_cmgr_stored_submit_with_absolute_vp_and_empty_sca() -> None:
    text = '"STO UNSENT","+4917",,145,25,0,8,"26/11/25,10:00:00+04",,,4'
    parsed = parse_cmgr_header(text, Charset.IRA)
    assert parsed.sca is None
    assert parsed.tosca is None
    assert parsed.dcs == 8
    assert parsed.length == 4


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        '"REC UNREAD","000"',
        '"REC UNREAD","000",,"26/11/25,10:00:00+04',
        '"STO SENT"',
        '"STO SENT","000",,1,2',
        # A status report record is not an SMS-DELIVER.
        '"REC UNREAD",6,12,"+4917",145,"26/11/25,10:00:00+04","26/11/25,10:00:05+04",0',
        '"REC UNREAD","000",,"26/11/25,10:00:00+04"\x00',
    ],
)
def test_cmgr_malformed(text: str) -> None:
    with pytest.raises(SmsFormatError):
        parse_cmgr_header(text, Charset.IRA)


def test_cmgr_unreadable_alpha_costs_the_alpha() -> None:
    """27.005 §3.1: ``<alpha>`` is manufacturer specific; one that cannot be read is dropped."""
    parsed = parse_cmgr_header('"REC READ","000","Ā",' + '"26/11/25,10:00:00+04"', Charset.GSM)
    assert (parsed.address, parsed.alpha) == ("000", None)
    assert any("<alpha>" in note for note in parsed.notes)
    parsed = parse_cmgr_header('"REC READ","000","D83D","26/11/25,10:00:00+04"', Charset.UCS2)
    assert (parsed.address, parsed.alpha) == ("000", None)


# --- +CMGL ------------------------------------------------------------------------------------


def test_cmgl_lines() -> None:
    parsed = parse_cmgl_header('3,"REC UNREAD","000",,"26/11/25,10:00:00+04"', Charset.GSM)
    assert parsed == header(index=3, timestamp=datetime(2026, 11, 25, 10, tzinfo=PLUS_1H))

    parsed = parse_cmgl_header('+CMGL: 12,"REC READ","+4917","Bob",,145,27', Charset.IRA)
    assert parsed == header(
        stat=MessageStatus.REC_READ,
        address="+4917",
        alpha="Bob",
        index=12,
        tooa=145,
        length=27,
    )


def test_cmgl_stored_outgoing_variants() -> None:
    assert parse_cmgl_header('0,"STO UNSENT","",""', Charset.IRA) == header(
        stat=MessageStatus.STO_UNSENT, address="", index=0
    )
    assert parse_cmgl_header('1,"STO SENT","000",,', Charset.IRA) == header(
        stat=MessageStatus.STO_SENT, index=1
    )
    assert parse_cmgl_header('2,3,"000",,', Charset.IRA).stat is MessageStatus.STO_SENT


def test_cmgl_ucs2() -> None:
    text = f'7,"{ucs2_encode("REC UNREAD")}","003000300030",,"26/11/25,10:00:00-20",129,20'
    parsed = parse_cmgl_header(text, Charset.UCS2)
    assert parsed == header(
        index=7,
        timestamp=datetime(2026, 11, 25, 10, tzinfo=MINUS_5H),
        tooa=129,
        length=20,
    )


@pytest.mark.parametrize(
    "text",
    [
        '"REC UNREAD","000",,"26/11/25,10:00:00+04"',  # no index
        'x,"REC UNREAD","000",,"26/11/25,10:00:00+04"',
        ',"REC UNREAD","000",,"26/11/25,10:00:00+04"',
        '1,"REC UNREAD"',
        '99999999999,0,"000",,',
    ],
)
def test_cmgl_malformed(text: str) -> None:
    with pytest.raises(SmsFormatError):
        parse_cmgl_header(text, Charset.IRA)


# --- +CMT -------------------------------------------------------------------------------------


def test_cmt() -> None:
    parsed = parse_cmt_header('"000",,"26/11/25,10:00:00+04"', Charset.GSM)
    assert parsed == header(timestamp=datetime(2026, 11, 25, 10, tzinfo=PLUS_1H))


def test_cmt_with_csdh_and_prefix() -> None:
    text = '+CMT: "+447700900123","",  "21/03/04,12:34:56-20",145,4,0,8,"+447700900000",145,4'
    parsed = parse_cmt_header(text, Charset.IRA)
    assert parsed == header(
        address="+447700900123",
        timestamp=datetime(2021, 3, 4, 12, 34, 56, tzinfo=MINUS_5H),
        tooa=145,
        fo=4,
        pid=0,
        dcs=8,
        sca="+447700900000",
        tosca=145,
        length=4,
    )


@pytest.mark.parametrize(
    "text",
    [
        '"000","26/11/25,10:00:00+04"',
    ],
)
def test_cmt_malformed(text: str) -> None:
    with pytest.raises(SmsFormatError):
        parse_cmt_header(text, Charset.IRA)


header_alphabet = st.sampled_from(list('0123456789,"+ /:-RECUNADSTOLx\x00'))


@given(
    st.text(alphabet=header_alphabet, max_size=80) | st.text(max_size=80),
    st.sampled_from(list(Charset)),
)
def test_random_headers_only_raise_sms_format_error(text: str, charset: Charset) -> None:
    for parse in (parse_cmgr_header, parse_cmgl_header, parse_cmt_header):
        try:
            parsed = parse(text, charset)
        except SmsFormatError:
            continue
        assert isinstance(parsed.stat, MessageStatus)


@st.composite
def deliver_headers(draw: st.DrawFn) -> TextHeader:
    """SMS-DELIVER headers with every CSDH detail field."""
    alpha = draw(st.none() | st.text(min_size=1, max_size=20))
    return TextHeader(
        draw(st.sampled_from([MessageStatus.REC_UNREAD, MessageStatus.REC_READ])),
        draw(st.text(alphabet="+0123456789", min_size=1, max_size=20)),
        alpha,
        draw(scts_datetimes),
        draw(st.integers(0, 255)),
        draw(st.integers(0, 255)),
        draw(st.integers(0, 255)),
        draw(st.integers(0, 255)),
        draw(st.text(alphabet="+0123456789", min_size=1, max_size=20)),
        draw(st.integers(0, 255)),
        draw(st.integers(0, 1000)),
        None,
    )


@given(deliver_headers())
def test_ucs2_cmgr_round_trip(expected: TextHeader) -> None:
    assert expected.timestamp is not None
    assert expected.sca is not None
    alpha_wire = "" if expected.alpha is None else ucs2_encode(expected.alpha)
    text = (
        f'"{ucs2_encode(expected.stat.value)}","{ucs2_encode(expected.address)}",'
        f'"{alpha_wire}","{format_scts(expected.timestamp)}",'
        f"{expected.tooa},{expected.fo},{expected.pid},{expected.dcs},"
        f'"{ucs2_encode(expected.sca)}",{expected.tosca},{expected.length}'
    )
    assert parse_cmgr_header(text, Charset.UCS2) == expected
    cmt = text[text.index(",") + 1 :]
    assert parse_cmt_header(cmt, Charset.UCS2) == dataclasses.replace(
        expected, stat=MessageStatus.REC_UNREAD
    )


# --- bodies -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "dcs", "charset", "text"),
    [
        ("checkin: firmware update", None, Charset.IRA, "checkin: firmware update"),
        ("ping \x00 home\x1be", None, Charset.GSM, "ping @ home€"),
        ("ping \x00 home\x1be", 0x00, Charset.GSM, "ping @ home€"),
        ("ping \x00", 0xF0, Charset.GSM, "ping @"),
        ("ping \x00", 0xF1, Charset.GSM, "ping @"),
        ("ping", 0x11, Charset.IRA, "ping"),  # general group, class 1, GSM 7-bit
        ("ping", 0xC0, Charset.IRA, "ping"),  # MWI discard, GSM 7-bit
        ("ping", 0x8C, Charset.IRA, "ping"),  # reserved group: GSM 7-bit
        ("0070", None, Charset.UCS2, "p"),
        ("0070", 0x00, Charset.UCS2, "p"),  # GSM 7-bit SMS shown under CSCS UCS2
        ("00700069006E0067D83DDE00", 0x08, Charset.GSM, "ping😀"),
        ("00700069006E0067", 0x08, Charset.IRA, "ping"),
        ("0070 \r\n", 0x08, Charset.IRA, "p"),
        ("0070", 0x18, Charset.IRA, "p"),  # class 0 UCS2
        ("0070", 0x48, Charset.IRA, "p"),  # automatic deletion group, UCS2
        ("0070", 0xE0, Charset.IRA, "p"),  # MWI store, UCS2
        ("00FF7F", 0x04, Charset.GSM, "\x00\xff\x7f"),
        ("00ff7f", 0xF4, Charset.UCS2, "\x00\xff\x7f"),
        ("", 0x04, Charset.IRA, ""),
        ("", 0x08, Charset.IRA, ""),
        ("", None, Charset.GSM, ""),
    ],
)
def test_decode_body(wire: str, dcs: int | None, charset: Charset, text: str) -> None:
    assert decode_body(wire, header(dcs=dcs, fo=None if dcs is None else 4), charset) == text


def test_decode_body_of_a_part_is_the_text_after_the_header() -> None:
    """27.005 §3.1 ``<data>``: with TP-UDHI in ``<fo>`` the body is hex of the whole TP-UD."""
    udh = header(fo=0x44, dcs=0x08)
    assert decode_body("050003A70201" + "0070", udh, Charset.IRA) == "p"


@pytest.mark.parametrize(
    ("wire", "dcs", "charset"),
    [
        ("007", 0x08, Charset.IRA),
        ("D83D", 0x08, Charset.IRA),
        ("hello", 0x08, Charset.IRA),
        ("0G", 0x04, Charset.IRA),
        ("abc", 0x04, Charset.IRA),
        ("\x80", 0x00, Charset.GSM),
        ("Ā", None, Charset.GSM),
        ("abc", None, Charset.UCS2),
        ("abc", 0x20, Charset.IRA),  # compressed
        ("abc", 0x68, Charset.IRA),  # compressed, automatic deletion group
    ],
)
def test_decode_body_malformed(wire: str, dcs: int | None, charset: Charset) -> None:
    with pytest.raises(SmsFormatError):
        decode_body(wire, header(dcs=dcs), charset)


@given(st.text(alphabet=st.sampled_from(gsm7.REPERTOIRE), max_size=160))
def test_gsm_body_round_trip(text: str) -> None:
    for charset in (Charset.GSM, Charset.UCS2):
        assert decode_body(to_wire(text, charset), header(dcs=0), charset) == text


@given(st.text(max_size=70))
def test_ucs2_body_round_trip(text: str) -> None:
    for charset in (Charset.GSM, Charset.IRA, Charset.UCS2):
        assert decode_body(ucs2_encode(text), header(dcs=0x08), charset) == text


@given(st.binary(max_size=140))
def test_8bit_body_round_trip(data: bytes) -> None:
    decoded = decode_body(data.hex(), header(dcs=0x04), Charset.GSM)
    assert decoded.encode("latin-1") == data


@given(
    st.text(max_size=60),
    st.none() | st.integers(0, 255),
    st.none() | st.integers(0, 255),
    st.sampled_from(list(Charset)),
)
def test_decode_body_random_only_raises_sms_format_error(
    wire: str, dcs: int | None, fo: int | None, charset: Charset
) -> None:
    with contextlib.suppress(SmsFormatError):
        decode_body(wire, header(dcs=dcs, fo=fo), charset)


def test_message_status_codes() -> None:
    assert [s.code for s in MessageStatus] == [0, 1, 2, 3, 4]
    assert MessageStatus.STO_SENT.stored_outgoing
    assert not MessageStatus.REC_READ.stored_outgoing


def test_header_is_frozen() -> None:
    parsed = parse_cmgr_header(SUPER_SIM, Charset.GSM)
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.address = "123"  # type: ignore[misc]
