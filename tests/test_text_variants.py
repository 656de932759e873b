"""Text-mode output as real modules print it: each variant from a cited source.

The parsers (device.sms.textmode, device.modem.modes.TextMode) read each
header field on its own; these tests feed them the variants, then run the
agent against hostsim personas that print them (in-memory tier).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from harness import Line
from hypothesis import given
from hypothesis import strategies as st
from test_agent import WAIT, rig

from device.at.codec import AtCodec, Info
from device.errors import SmsFormatError
from device.journal import InboxState
from device.modem import StoredSms, UndecodableSms
from device.modem.modes import TextMode
from device.sms import gsm7, septets
from device.sms.charset import Charset, ucs2_encode
from device.sms.textbody import looks_like_part, user_data
from device.sms.textmode import (
    MessageStatus,
    parse_cmgl_header,
    parse_cmgr_header,
    parse_cmt_header,
    parse_scts,
    read_body,
    read_scts,
)
from hostsim.modem.settings import ModemConfig, Quirk
from hostsim.pty import SimulatedModem

PLUS_1H = timezone(timedelta(hours=1))
WHEN = datetime(2026, 11, 25, 10, 0, 0, tzinfo=PLUS_1H)
UCS2 = TextMode(Charset.UCS2)
ZERO = ucs2_encode("000")


def hex_text(text: str) -> str:
    return ucs2_encode(text)


# --- time stamps ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026/11/25,10:00:00+04", WHEN),
        ("6/11/25,10:00:00+04", datetime(2006, 11, 25, 10, tzinfo=PLUS_1H)),
        ("26/11/25 10:00:00+04", WHEN),
        ("2026/11/25 10:00:00+4", WHEN),
    ],
)
def test_scts_year_and_separator_variants(text: str, expected: datetime) -> None:
    """gammu libgammu/phone/at/atgen.c ``ATGEN_DecodeDateTime`` reads
    ``[YY[YY]/MM/DD,]hh:mm[:ss[+TZ]]`` and notes that Samsung phones print the year
    as ``%d`` (one digit); 27.005 §3.1 ``<scts>`` / 27.007 §8.15 give ``yy/MM/dd,hh:mm:ss±zz``
    with ``zz`` in quarter hours (``+4`` one digit is that zone too)."""
    assert parse_scts(text) == expected
    assert read_scts(text) == (expected, None)


def test_scts_without_zone_is_read_as_utc_with_a_note() -> None:
    """gammu ``ATGEN_DecodeDateTime``: the ``+TZ`` is optional (``[:ss[+TZ]]``)."""
    when, note = read_scts('"26/11/25,10:00:00"')
    assert when == datetime(2026, 11, 25, 10, tzinfo=UTC)
    assert note is not None and "no zone" in note
    with pytest.raises(SmsFormatError):
        parse_scts("26/11/25,10:00:00")


@pytest.mark.parametrize("garbled", ["26/11/25,10:00", "yesterday", "26/13/45,99:00:00+04", "%%"])
def test_garbled_scts_is_kept_raw_and_the_message_read(garbled: str) -> None:
    """27.005 §3.4.3: ``<scts>`` is only a time stamp; the sender, index and text
    are what a command needs, so a time stamp that cannot be read is kept raw (in
    the notes) and the message is read."""
    header = parse_cmgr_header(f'"REC UNREAD","000",,"{garbled}"', Charset.IRA)
    assert (header.address, header.timestamp) == ("000", None)
    assert any("kept raw" in n and garbled[:10] in n for n in header.notes)
    listed = parse_cmgl_header(f'3,"REC UNREAD","000",,"{garbled}"', Charset.IRA)
    assert (listed.index, listed.address, listed.timestamp) == (3, "000", None)


def test_unquoted_timestamp_split_at_its_comma_is_joined() -> None:
    """gammu libgammu/phone/at/at-sms.c (status reports) joins the two parameters
    ``ATGEN_ExtractOneParameter`` splits a time stamp into at its comma: modules print
    ``<scts>`` unquoted, so a comma-splitter sees two fields."""
    header = parse_cmgr_header('"REC READ","000",,26/11/25,10:00:00+04', Charset.IRA)
    assert (header.timestamp, header.notes) == (WHEN, ())


# --- senders ----------------------------------------------------------------------------------


def test_alphanumeric_sender_under_ucs2_is_decoded_and_typed() -> None:
    """Quectel EC25 AT manual (SMS chapter, ``<oa>``): "BCD numbers (or GSM 7 bit
    default alphabet characters) are converted to characters of the currently selected
    TE character set … The type of address is given by <tooa>"; 23.040 §9.1.2.5: TON
    101 is alphanumeric (``<tooa>`` 208). Under UCS2 the name is UCS2 hex too."""
    text = (
        f'"REC UNREAD","{hex_text("Twilio")}",,"26/11/25,10:00:00+04",208,4,0,0,'
        f'"{hex_text("+447937405250")}",145,4'
    )
    message = UCS2.read("SM", 1, f"+CMGR: {text}", hex_text("ping"))
    assert isinstance(message, StoredSms)
    assert (message.sender, message.sender_type, message.text) == ("Twilio", 208, "ping")


def test_alphanumeric_sender_that_spells_digits_keeps_its_type() -> None:
    """23.040 §9.1.2.5: an alphanumeric ``000`` is not the number 000; its type (208)
    goes with it so that admission can tell (issue 12, "only 000, by type")."""
    text = f'"REC UNREAD","{ZERO}",,"26/11/25,10:00:00+04",208,4,0,0,"",145,4'
    message = UCS2.read("SM", 1, f"+CMGR: {text}", hex_text("ping"))
    assert isinstance(message, StoredSms)
    assert (message.sender, message.sender_type) == ("000", 208)


def test_alphanumeric_sender_in_the_gsm_character_set() -> None:
    """27.005 §3.1 ``<oa>``: converted to the TE character set (``AT+CSCS="GSM"``:
    GSM 7-bit bytes, ``@`` is 0x00)."""
    header = parse_cmt_header('"Tw\x00lio",,"26/11/25,10:00:00+04",208,4,0,0,"+44",145,4',
                              Charset.GSM)  # fmt: skip
    assert (header.address, header.tooa) == ("Tw@lio", 208)


def test_numeric_tooa_is_kept() -> None:
    """27.005 §3.4.1 ``+CMT`` with ``AT+CSDH=1`` shows ``<tooa>`` (129 national or
    unknown, 145 international; Telit HE910 AT reference, ``+CNMI``)."""
    header = parse_cmt_header('"000",,"26/11/25,10:00:00+04",129,4,0,0,"+44",145,4', Charset.IRA)
    assert (header.address, header.tooa, header.alphanumeric) == ("000", 129, False)


# --- parts of multipart messages --------------------------------------------------------------


def gsm_part(text: str, reference: int, total: int, sequence: int) -> str:
    """The hex TP-UD of a GSM 7-bit part: 8-bit concatenation header, then septets
    packed from the septet boundary after it (23.040 §9.2.3.24)."""
    udh = bytes([5, 0, 3, reference, total, sequence])
    return (udh + septets.pack(gsm7.encode(text), fill_bits=1)).hex().upper()


def test_udhi_part_in_cmgr_is_decoded_with_its_place() -> None:
    """27.005 §3.1 ``<data>`` and the Telit LE910C AT reference (``+CMGR``): "If <fo>
    indicates that a UDH is present each 8-bit octet will be converted into two IRA
    character long hexadecimal number" — in every character set, GSM 7-bit included."""
    text = f'"REC UNREAD","{ZERO}",,"26/11/25,10:00:00+04",129,68,0,0,"",145,159'
    message = UCS2.read("SM", 4, f"+CMGR: {text}", gsm_part("ping: long", 42, 2, 1))
    assert isinstance(message, StoredSms)
    assert message.text == "ping: long"
    assert message.concat is not None
    assert (message.concat.reference, message.concat.total, message.concat.sequence) == (42, 2, 1)


def test_udhi_part_ucs2_and_16_bit_reference() -> None:
    """23.040 §9.2.3.24.8: IEI 0x08, a 16-bit reference; DCS 8 (23.038 §4): UCS2."""
    body = "060804ABCD0302" + hex_text("ß€")
    header = parse_cmt_header(f'"000",,"26/11/25,10:00:00+04",129,68,0,8,"",145,{len(body) // 2}',
                              Charset.IRA)  # fmt: skip
    decoded = read_body(body, header, Charset.IRA)
    assert decoded.text == "ß€"
    assert decoded.part is not None
    assert (decoded.part.reference, decoded.part.total, decoded.part.sequence) == (0xABCD, 3, 2)
    assert decoded.part.wide


@pytest.mark.parametrize("text", ["", "a", "1234567", "abcdefgh", "@", "x@"])
def test_gsm_part_septet_counts(text: str) -> None:
    """23.038 §6.1.2.3.1: seven spare bits at the end are padding (zero, or CR), not an
    ``@``: the septet count comes from the octets, whatever ``<length>`` says."""
    decoded = user_data(gsm_part(text, 1, 2, 2), 0)
    assert decoded.text == text or (text.endswith("@") and decoded.text == text[:-1])


def test_udhi_with_an_unknown_dcs_reads_gsm_with_a_note() -> None:
    """23.038 §4: GSM 7-bit is the default alphabet; a damaged ``<dcs>`` costs only that."""
    decoded = user_data(gsm_part("ping", 7, 2, 1), None)
    assert decoded.text == "ping" and decoded.notes


def test_a_listed_part_is_read_again_with_cmgr() -> None:
    """27.005 §3.4.2: a ``+CMGL`` header has no ``<fo>`` (only ``<tooa>,<length>``),
    so a body that starts with a concatenation header is read again with ``AT+CMGR``."""
    lines = [
        f'+CMGL: 1,"REC UNREAD","{ZERO}",,"26/11/25,10:00:00+04",129,16',
        gsm_part("ping: long", 9, 2, 2),
        f'+CMGL: 2,"REC UNREAD","{ZERO}",,"26/11/25,10:00:00+04",129,4',
        hex_text("ping"),
    ]
    part, single = UCS2.listed("SM", lines)
    assert isinstance(part, UndecodableSms) and UCS2.needs_reading(part)
    assert isinstance(single, StoredSms) and single.text == "ping"
    assert not UCS2.needs_reading(single)
    assert looks_like_part(lines[1]) and not looks_like_part(lines[3])


# --- listings and line endings ----------------------------------------------------------------


def test_listing_with_echo_and_an_indication_between_header_and_body() -> None:
    """V.250 §6.2.4 (``ATE1``: the command line is echoed) and 27.007 §5.1 (indications
    may come while the TE waits; SIMCom SIM7600 and Quectel modules print ``+CMTI``
    wherever a message arrives): neither is part of a message."""
    lines = [
        'AT+CMGL="ALL"',
        f'+CMGL: 0,"REC READ","{ZERO}",,"26/11/25,10:00:00+04"',
        '+CMTI: "SM",1',
        hex_text("ping: one"),
    ]
    (message,) = UCS2.listed("SM", lines)
    assert isinstance(message, StoredSms) and message.text == "ping: one"


@pytest.mark.parametrize("eol", [b"\r\n", b"\n", b"\r"])
def test_cmgl_response_with_any_line_ending(eol: bytes) -> None:
    """V.250 §5.2.1 says ``S3`` (CR) ``S4`` (LF) end a line; modules and serial
    bridges also send a bare LF or a bare CR (gammu ``GSM_CutLines`` splits at either)."""
    codec = AtCodec()
    codec.begin('AT+CMGL="ALL"')
    lines = [
        f'+CMGL: 0,"REC UNREAD","{ZERO}",,"2026/11/25 10:00:00+04"',
        hex_text("ping"),
        "OK",
    ]
    events = codec.feed(eol.join(line.encode() for line in lines) + eol)
    infos = [e.text for e in events if isinstance(e, Info)]
    (message,) = UCS2.listed("SM", infos)
    assert isinstance(message, StoredSms)
    assert (message.index, message.sender, message.text, message.timestamp) == (0, "000", "ping",
                                                                                 WHEN)  # fmt: skip


# --- one damaged field ------------------------------------------------------------------------

#: Garbage for one field: no comma or quote (the field structure stays), at least one letter.
garbage = st.text(alphabet="0123456789xq!~/:-+ .", min_size=1, max_size=12).filter(
    lambda s: "x" in s or "q" in s
)
senders = st.text(alphabet="+0123456789", min_size=1, max_size=15)
texts = st.text(alphabet=st.sampled_from(gsm7.REPERTOIRE), max_size=40)

#: Field positions of a CSDH=1 ``+CMGR`` SMS-DELIVER header other than the sender.
CMGR_DAMAGEABLE = [0, 2, 3, 4, 5, 6, 7, 8, 9, 10]
CMGL_DAMAGEABLE = [1, 3, 4, 5, 6]


@given(senders, texts, st.sampled_from(CMGR_DAMAGEABLE), garbage)
def test_cmgr_with_one_damaged_field_keeps_sender_and_text(
    sender: str, text: str, position: int, junk: str
) -> None:
    """Issue 12, Done when: for any text-mode header with one field damaged, the sender,
    index and text that can be read still are (27.005 §3.4.3 layout, ``AT+CSDH=1``)."""
    fields = ['"REC UNREAD"', f'"{hex_text(sender)}"', '""', '"26/11/25,10:00:00+04"',
              "129", "4", "0", "0", f'"{hex_text("+44")}"', "145", str(len(text))]  # fmt: skip
    fields[position] = junk
    message = UCS2.read("SM", 7, "+CMGR: " + ",".join(fields), hex_text(text))
    assert isinstance(message, StoredSms), message
    assert (message.index, message.sender, message.text) == (7, sender, text)
    assert message.notes or position in (2, 8)  # <alpha>/<sca> text is never refused


@given(senders, texts, st.sampled_from(CMGL_DAMAGEABLE), garbage)
def test_cmgl_with_one_damaged_field_keeps_index_sender_and_text(
    sender: str, text: str, position: int, junk: str
) -> None:
    """As above for a ``+CMGL`` entry (27.005 §3.4.2, ``AT+CSDH=1``)."""
    fields = ["5", '"REC READ"', f'"{hex_text(sender)}"', '""', '"26/11/25,10:00:00+04"',
              "129", str(len(text))]  # fmt: skip
    fields[position] = junk
    (message,) = UCS2.listed("SM", ["+CMGL: " + ",".join(fields), hex_text(text)])
    assert isinstance(message, StoredSms), message
    assert (message.index, message.sender, message.text) == (5, sender, text)


@given(senders, texts, garbage)
def test_damaged_sender_costs_only_the_sender(sender: str, text: str, junk: str) -> None:
    """The sender kept as printed (it will not be admitted); index and text still read."""
    line = f'+CMGL: 5,"REC READ",{junk},"","26/11/25,10:00:00+04",129,{len(text)}'
    (message,) = UCS2.listed("SM", [line, hex_text(text)])
    assert isinstance(message, StoredSms)
    assert (message.index, message.text) == (5, text)


header_chars = st.sampled_from([*'0123456789,"+ /:-RECUNADSTOLx\x00\r\n', "0500", "1B"])


@given(
    st.lists(header_chars, max_size=40).map("".join) | st.text(max_size=80),
    st.text(max_size=60),
    st.sampled_from(list(Charset)),
)
def test_fuzzed_text_mode_raises_only_sms_format_error(
    header: str, body: str, charset: Charset
) -> None:
    """Fuzzing the text-mode parsers raises only the project's SmsFormatError; the
    mode's readers never raise (what cannot be read is an UndecodableSms)."""
    for parse in (parse_cmgr_header, parse_cmgl_header, parse_cmt_header):
        with contextlib.suppress(SmsFormatError):
            parsed = parse(header, charset)
            assert isinstance(parsed.stat, MessageStatus)
            read_body(body, parsed, charset)
    with contextlib.suppress(SmsFormatError):
        user_data(body, None)
    mode = TextMode(charset)
    mode.read("SM", 1, "+CMGR: " + header, body)
    mode.direct(header, body)
    mode.listed("SM", ["+CMGL: " + header, body, "+CMGL: " + body])
    assert looks_like_part(body) in (True, False)


# --- the agent against hostsim personas that print these variants -----------------------------


@pytest.mark.parametrize(
    "quirks",
    [
        frozenset({Quirk.SCTS_FOUR_DIGIT_YEAR}),
        frozenset({Quirk.SCTS_SPACE_SEPARATOR, Quirk.SCTS_ONE_DIGIT_ZONE}),
        frozenset({Quirk.SCTS_FOUR_DIGIT_YEAR, Quirk.SCTS_SPACE_SEPARATOR}),
    ],
    ids=lambda q: "+".join(sorted(x.value for x in q)),
)
async def test_agent_reads_time_stamp_variants(
    tmp_path: Path, line: Line, quirks: frozenset[Quirk]
) -> None:
    """gammu ``ATGEN_DecodeDateTime`` (``[YY[YY]/MM/DD,]hh:mm[:ss[+TZ]]``): hostsim
    prints the variants; the command runs and the time stamp is the same instant."""
    async with rig(tmp_path, line, modem_config=ModemConfig(quirks=quirks)) as r:
        r.gw.deliver("000", "ping: year", timestamp=WHEN)
        await r.gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        assert r.gw.sent[0].text == "pong: year"
        (row,) = r.journal.inbox()
        assert (row.timestamp, row.notes, row.state) == (WHEN, (), InboxState.DONE)


async def test_agent_runs_a_command_whose_time_stamp_has_no_zone(
    tmp_path: Path, line: Line
) -> None:
    """gammu ``ATGEN_DecodeDateTime``: ``+TZ`` is optional; the time is read as UTC and
    the journal row says so."""
    config = ModemConfig(quirks=frozenset({Quirk.SCTS_NO_ZONE}))
    async with rig(tmp_path, line, modem_config=config) as r:
        r.gw.deliver("000", "ping: zone", timestamp=WHEN)
        await r.gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        assert r.gw.sent[0].text == "pong: zone"
        (row,) = r.journal.inbox()
        assert row.timestamp == datetime(2026, 11, 25, 10, tzinfo=UTC)
        assert any("no zone" in note for note in row.notes)


async def test_agent_journals_an_alphanumeric_sender_with_its_type(
    tmp_path: Path, line: Line
) -> None:
    """23.040 §9.1.2.5 / Quectel EC25 ``<oa>``,``<tooa>``: hostsim prints a sender name
    with ``<tooa>`` 208 (UCS2 hex under ``AT+CSCS="UCS2"``); it is journaled by name
    and type, and refused (not an allowed sender)."""
    async with rig(tmp_path, line) as r:
        r.gw.deliver("Twilio", "ping: name")
        await r.gw.wait_until(lambda m: m.storages["SM"].used == 0, WAIT)
        (row,) = r.journal.inbox()
        assert (row.sender, row.sender_type, row.state) == ("Twilio", 208, InboxState.REFUSED)
        assert r.gw.sent == []


async def test_agent_reassembles_text_mode_parts(tmp_path: Path, line: Line) -> None:
    """27.005 §3.1 ``<data>`` with TP-UDHI (Telit LE910C ``+CMGR``): parts arrive as hex
    with their header, out of order and one twice; the command runs once."""
    text = "ping: " + "".join(f"{n:03d}," for n in range(60))
    async with rig(tmp_path, line) as r:
        assert r.gw.modem.settings.cmgf.value == 1
        r.gw.deliver_concatenated("000", text, order=[1, 0, 1], reference=77)
        await r.gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        await r.gw.wait_until(lambda m: m.storages["SM"].used == 0, WAIT)
        (row,) = r.journal.inbox()
        assert (row.text, row.concat, row.state) == (text, "77/2", InboxState.DONE)


async def test_agent_drains_text_mode_parts_from_a_listing(tmp_path: Path, line: Line) -> None:
    """27.005 §3.4.2: ``+CMGL`` shows no ``<fo>``; parts already in storage when the
    agent starts are found in the listing and read again with ``AT+CMGR``."""
    text = "ping: " + "z" * 200

    def stored_parts(gw: SimulatedModem) -> None:
        gw.deliver_concatenated("000", text, order=[0, 1], reference=5)

    async with rig(tmp_path, line, before_start=stored_parts) as r:
        await r.gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        await r.gw.wait_until(lambda m: m.storages["SM"].used == 0, WAIT)
        (row,) = r.journal.inbox()
        assert (row.text, row.state) == (text, InboxState.DONE)


def test_a_status_report_record_is_left_alone() -> None:
    """27.005 §3.4.3/§3.4.2: a stored status report reads ``<stat>,<fo>,<mr>,[<ra>],
    [<tora>],<scts>,<dt>,<st>`` (Telit ML865G1 AT reference, ``+CMGR``: "Message
    Delivery Confirm"); it is no message to run, and stays in storage."""
    report = '"REC UNREAD",6,12,"+4917",145,"26/11/25,10:00:00+04","26/11/25,10:00:05+04",0'
    assert UCS2.read("SR", 1, f"+CMGR: {report}", "") is None
    single = [f'+CMGL: 2,"REC UNREAD","{ZERO}",,"26/11/25,10:00:00+04"', hex_text("ping")]
    (message,) = UCS2.listed("SM", [f"+CMGL: 1,{report}", *single])
    assert isinstance(message, StoredSms) and message.index == 2


async def test_agent_leaves_a_stored_status_report_in_storage(tmp_path: Path, line: Line) -> None:
    """27.005 §3.4.1 ``+CNMI`` ``<ds>`` 2: a status report is stored and announced with
    ``+CDSI``; the sweep's listing shows it among the messages, and it is left there."""
    async with rig(tmp_path, line, sweep_interval=0.2) as r:
        m = r.gw.modem
        m.settings = dataclasses.replace(
            m.settings, cnmi=dataclasses.replace(m.settings.cnmi, ds=2)
        )
        assert r.gw.modem.deliver_status_report("000", 12) is not None
        r.gw.deliver("000", "ping: after")
        await r.gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        # Two more sweeps list the storage, report included: awaited, not slept.
        modem = r.agent.supervisor.modem
        assert modem is not None
        listings = 0
        two_more = asyncio.Event()
        list_received = modem.list_received

        async def counted() -> list[StoredSms | UndecodableSms]:
            nonlocal listings
            found = await list_received()
            listings += 1
            if listings >= 2:
                two_more.set()
            return found

        modem.list_received = counted  # type: ignore[method-assign]
        await asyncio.wait_for(two_more.wait(), WAIT)
        assert [row.text for row in r.journal.inbox()] == ["ping: after"]
        assert r.gw.modem.storages["SM"].used == 1
