"""PDU mode codecs: golden vectors, septet packing, round trips, fuzz, and an independent oracle.

Sources of golden vectors are cited next to each. 3GPP TS 23.040 / 23.038 give
layouts, not hex worked examples (23.038 §6.1.2.1.1 draws the septet packing,
which ``test_packing_layout_of_ts_23_038`` checks bit by bit); the hex vectors
come from widely published tutorials and from smspdudecoder's own doctests.
Vectors built here are marked "built here" and cross-checked with smspdudecoder.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device.errors import SmsFormatError
from device.sms import (
    Address,
    Concat,
    Encoding,
    PduError,
    PduKind,
    Ton,
    UdhElement,
    decode_pdu,
    encode_deliver,
    encode_submit,
    gsm7,
    septets,
    split_for_concat,
)
from device.sms import pdu as pdu_module
from device.sms.pdu import data_coding, relative_validity

try:
    from smspdudecoder.easy import read_incoming_sms
except ImportError:  # pragma: no cover - the oracle is in the `test` extra
    read_incoming_sms = None

needs_oracle = pytest.mark.skipif(read_incoming_sms is None, reason="smspdudecoder not installed")


def _phone_like(text: str) -> bool:
    return text != "" and all(ch in "0123456789*#" for ch in text)


GSM_BASIC = "".join(ch for code, ch in enumerate(gsm7.BASIC) if code != gsm7.ESCAPE)
TZ_PLUS_2 = timezone(timedelta(hours=2))

gsm_text = st.text(alphabet=st.sampled_from(gsm7.REPERTOIRE), max_size=160)
# Any Unicode scalar value except surrogates (a lone surrogate is not text).
unicode_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=70).filter(
    lambda t: len(t.encode("utf-16-be")) <= 140
)
emoji_text = st.text(alphabet=st.sampled_from("😀🎉👍🏽𝄞€日本語aé"), max_size=30)
timestamps = st.builds(
    lambda naive, quarters: naive.replace(tzinfo=timezone(timedelta(minutes=15 * quarters))),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31, 23, 59, 59)),
    st.integers(min_value=-79, max_value=79),
).map(lambda dt: dt.replace(microsecond=0))
numbers = st.builds(
    lambda plus, digits: ("+" if plus else "") + digits,
    st.booleans(),
    st.text(alphabet="0123456789", min_size=1, max_size=20),
)
alphanumerics = st.text(alphabet=st.sampled_from(GSM_BASIC), min_size=1, max_size=11).filter(
    lambda t: not _phone_like(t) and not (t.startswith("+") and _phone_like(t[1:]))
)


# --- golden vectors ---------------------------------------------------------------------------

#: The classic SMS-DELIVER of the dreamfabric.com "SMS and the PDU format" tutorial, mirrored at
#: http://subnets.ru/saved/sms_pdu_format.html and in many modem manuals.
CLASSIC_DELIVER = "07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37"


def test_classic_deliver_field_by_field() -> None:
    msg = decode_pdu(CLASSIC_DELIVER)
    assert msg.kind is PduKind.DELIVER
    assert msg.smsc == "+27381000015"  # 07 91 7283010010F5
    # 0B C8 7238880900F1: TOA 0xC8 is TON 4 (subscriber), NPI 8 (national), *not* international,
    # so there is no "+": the tutorial's "+27838890001" is loose wording.
    assert msg.address == Address("27838890001", Ton.SUBSCRIBER, 8)
    assert msg.sender == "27838890001"
    assert msg.recipient is None
    assert msg.pid == 0
    assert msg.dcs == 0
    assert msg.encoding == "gsm7"
    # 99 30 92 51 61 95 80: 99-03-29 15:16:59, TZ 0x80 = +8 quarter hours = UTC+2. The year is
    # read as 2000+yy like device.sms.textmode.parse_scts (and smspdudecoder): 2099, not 1999.
    assert msg.timestamp == datetime(2099, 3, 29, 15, 16, 59, tzinfo=TZ_PLUS_2)
    assert msg.text == "hellohello"
    assert msg.data == gsm7.encode("hellohello")
    assert msg.concat is None
    assert msg.udh == ()
    assert msg.tpdu_length == 28  # what +CMGR would print as <length>
    assert msg.message_class is None


def test_classic_deliver_tolerates_whitespace_case_and_bytes() -> None:
    spaced = " 07 917283010010f5\r\n040BC87238880900F10000993092516195800AE8329BFD4697D9EC37 \r\n"
    assert decode_pdu(spaced) == decode_pdu(CLASSIC_DELIVER)
    assert decode_pdu(bytes.fromhex(CLASSIC_DELIVER)) == decode_pdu(CLASSIC_DELIVER)


#: The classic SMS-SUBMIT of the same tutorial: to +46708251358, VP 0xAA (4 days), "hellohello".
CLASSIC_SUBMIT = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37"


def test_classic_submit_decodes_and_encodes_identically() -> None:
    msg = decode_pdu(CLASSIC_SUBMIT)
    assert msg.kind is PduKind.SUBMIT
    assert msg.smsc is None
    assert msg.recipient == msg.destination == "+46708251358"
    assert msg.sender is None
    assert msg.reference == 0
    assert msg.validity == timedelta(days=4)
    assert msg.timestamp is None
    assert msg.text == "hellohello"
    assert encode_submit("+46708251358", "hellohello", validity=timedelta(days=4)) == (
        CLASSIC_SUBMIT,
        23,
    )


#: A +CDS status report from amro.blogspot.com/2007/09/receiving-sms-status-report-message.html;
#: the blog printed it without an SMSC prefix, so "00" is prepended as +CMGR would show it.
STATUS_REPORT = "00" + "06000B910221815716F2709021510121807090215101718000"


def test_status_report_field_by_field() -> None:
    msg = decode_pdu(STATUS_REPORT)
    assert msg.kind is PduKind.STATUS_REPORT
    assert msg.reference == 0
    assert msg.recipient == "+20121875612"
    assert msg.timestamp == datetime(2007, 9, 12, 15, 10, 12, tzinfo=TZ_PLUS_2)
    assert msg.discharge_time == datetime(2007, 9, 12, 15, 10, 17, tzinfo=TZ_PLUS_2)
    assert msg.status == 0  # short message received by the SME
    assert msg.text == ""
    assert msg.tpdu_length == 25


def test_status_report_with_optional_parameters() -> None:
    # Built here: the report above + TP-PI 0x07 (PID, DCS, UDL present), PID 00, DCS 08 (UCS-2),
    # UDL 4, "hi"; TS 23.040 §9.2.2.3 / §9.2.3.27.
    msg = decode_pdu(STATUS_REPORT + "0700080400680069")
    assert msg.encoding == "ucs2"
    assert msg.text == "hi"
    # TP-PI with the extension bit: one more PI octet is skipped.
    assert decode_pdu(STATUS_REPORT + "8700" + "00080400680069").text == "hi"


@pytest.mark.parametrize(
    ("octets", "expected"),
    [
        # http://gsmworld.it/smspdu_scts.htm: "12. Feb 1999 05:57:30 GMT+3" (year read as 2099).
        ("99202150750321", datetime(2099, 2, 12, 5, 57, 30, tzinfo=timezone(timedelta(hours=3)))),
        # smspdudecoder elements.Date doctest: 2013-03-25 23:01:56 US/Pacific (PDT, UTC-7);
        # TZ octet 0x8A: sign bit 3 set, tens 2, units 8 → -28 quarter hours.
        ("3130523210658A", datetime(2013, 3, 25, 23, 1, 56, tzinfo=timezone(timedelta(hours=-7)))),
        # smspdudecoder doctest: 2020-01-29 13:25:41 Europe/Paris (UTC+1, 0x40 = +4 quarters).
        ("02109231521440", datetime(2020, 1, 29, 13, 25, 41, tzinfo=timezone(timedelta(hours=1)))),
    ],
)
def test_published_timestamps(octets: str, expected: datetime) -> None:
    decoded = pdu_module.TIMESTAMP.parse(bytes.fromhex(octets))
    assert decoded == expected
    assert decoded.utcoffset() == expected.utcoffset()
    assert pdu_module.TIMESTAMP.build(expected).hex().upper() == octets


def test_negative_time_zone_in_a_deliver() -> None:
    # Built here: the classic DELIVER with TZ octet 0x8A (UTC-7); cross-checked with the oracle.
    vector = CLASSIC_DELIVER[:38] + "3130523210658A" + CLASSIC_DELIVER[52:]
    msg = decode_pdu(vector)
    assert msg.timestamp == datetime(2013, 3, 25, 23, 1, 56, tzinfo=timezone(timedelta(hours=-7)))
    if read_incoming_sms is not None:
        assert read_incoming_sms(vector)["date"] == msg.timestamp


@pytest.mark.parametrize(
    ("hex_address", "expected"),
    [
        # smspdudecoder fields.Address doctests (alphanumeric senders, length in semi-octets).
        ("0BD0CDE6DB5DCE03", Address("MMoney", Ton.ALPHANUMERIC, 0)),
        ("14D0C4F23C7D760390EF7619", Address("Design@Home", Ton.ALPHANUMERIC, 0)),
        ("0B915155214365F7", Address("15551234567", Ton.INTERNATIONAL, 1)),
        # The tutorial's "unknown format" note: 0708251358 with TOA 0x81 is 7080523185.
        ("0A817080523185", Address("0708251358", Ton.UNKNOWN, 1)),
    ],
)
def test_published_addresses(hex_address: str, expected: Address) -> None:
    assert pdu_module.ADDRESS.parse(bytes.fromhex(hex_address)) == expected
    assert pdu_module.ADDRESS.build(expected).hex().upper() == hex_address


def test_alphanumeric_sender_deliver() -> None:
    # Built here; smspdudecoder agrees on sender and text.
    vector = encode_deliver("Twilio", "hi", timestamp=datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC))
    assert vector == "00040BD0D47B9A9D7E03000042506070809000" + "02E834"
    msg = decode_pdu(vector)
    assert msg.sender == "Twilio"
    assert msg.address.ton is Ton.ALPHANUMERIC
    if read_incoming_sms is not None:
        assert read_incoming_sms(vector)["sender"] == "Twilio"


def test_ucs2_deliver_with_emoji() -> None:
    # Built here: "Hi 😀" from +15551234567, DCS 08; UTF-16-BE with the surrogate pair D83D DE00.
    vector = (
        "00" + "04" + "0B915155214365F7" + "00" + "08" + "42506070809000"
        "0A" + "004800690020" + "D83DDE00"
    )
    msg = decode_pdu(vector)
    assert msg.encoding == "ucs2"
    assert msg.text == "Hi 😀"
    assert msg.data == "Hi 😀".encode("utf-16-be")
    assert (
        encode_deliver("+15551234567", "Hi 😀", timestamp=datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC))
        == vector
    )
    if read_incoming_sms is not None:
        assert read_incoming_sms(vector)["content"] == "Hi 😀"


def test_concatenated_gsm7_part_with_fill_bit() -> None:
    # Built here: part 1 of 2, reference 0x42, "hello"; UDH 05 00 03 42 02 01 is 6 octets = 48
    # bits, so one fill bit brings the text to septet 7 (TS 23.040 §9.2.3.24); UDL 7 + 5 = 12.
    vector = (
        "00" + "44" + "0B915155214365F7" + "0000" + "42506070809000" + "0C" + "050003420201" + "D0"
        "6536FB0D"
    )
    msg = decode_pdu(vector)
    assert msg.text == "hello"
    assert msg.concat == Concat(0x42, 2, 1)
    assert msg.udh == (UdhElement(0x00, b"\x42\x02\x01"),)
    assert (
        encode_deliver(
            "+15551234567",
            "hello",
            timestamp=datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC),
            concat=Concat(0x42, 2, 1),
        )
        == vector
    )
    if read_incoming_sms is not None:
        oracle = read_incoming_sms(vector)
        assert oracle["content"] == "hello"
        assert oracle["partial"]["parts_count"] == 2
        assert oracle["partial"]["part_number"] == 1


def test_sixteen_bit_reference_and_unknown_iei_skipped() -> None:
    # Built here: UDH with IEI 0x05 (application port addressing, 16 bit; skipped by its length,
    # as in the operator-logo layout of traud.de/gsm/largeop.htm) then IEI 0x08 (concatenation,
    # 16-bit reference 0x1234, part 3 of 3). 8-bit data "ok".
    udh = "0C" + "0504158A0000" + "08041234" + "0303"
    vector = "00" + "44" + "0B915155214365F7" + "0004" + "42506070809000" + "0F" + udh + "6F6B"
    msg = decode_pdu(vector)
    assert msg.encoding == "8bit"
    assert msg.text == "ok"
    assert msg.data == b"ok"
    assert msg.concat == Concat(0x1234, 3, 3, wide=True)
    assert [e.iei for e in msg.udh] == [0x05, 0x08]


def test_invalid_concat_numbers_are_ignored_per_ts_23_040() -> None:
    # Sequence 0 (and sequence > total) make the receiver ignore the element (§9.2.3.24.1).
    for tail in ("050003420200", "050003420203"):
        body = tail + "D06536FB0D"
        vector = "00440B915155214365F7000042506070809000" + "0C" + body
        assert decode_pdu(vector).concat is None


def test_extension_table_characters() -> None:
    # smspdudecoder codecs.GSM doctest: "2 € par mois" = 32D0A60C8287E5A0F63B3D07 (13 septets).
    vector = "00040B915155214365F70000425060708090000D" + "32D0A60C8287E5A0F63B3D07"
    assert decode_pdu(vector).text == "2 € par mois"


# --- septet packing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "packed"),
    [
        ("hellohello", "E8329BFD4697D9EC37"),  # the tutorial's TP-UD
        ("How are you?", "C8F71D14969741F977FD07"),  # smspdudecoder doctest
        ("1234567", "31D98C56B3DD00"),  # smspdudecoder doctest: 7 spare bits stay zero
    ],
)
def test_published_packings(text: str, packed: str) -> None:
    codes = gsm7.encode(text)
    assert septets.pack(codes).hex().upper() == packed
    assert septets.unpack(bytes.fromhex(packed), len(codes)) == codes


def test_packing_layout_of_ts_23_038() -> None:
    # TS 23.038 §6.1.2.1.1: septet 1 fills bits 0-6 of octet 1; bit 0 of septet 2 is bit 7 of
    # octet 1; ... 8 septets fill 7 octets exactly.
    packed = septets.pack(bytes([0x01, 0x01, 0, 0, 0, 0, 0, 0x7F]))
    assert packed == bytes([0x81, 0x00, 0, 0, 0, 0, 0xFE])
    assert septets.pack(b"\x7f" * 8) == b"\xff" * 7


def test_fill_bits_shift_the_first_septet() -> None:
    assert septets.pack(b"\x7f", fill_bits=1) == b"\xfe"
    assert septets.pack(b"\x7f", fill_bits=2) == b"\xfc\x01"
    assert septets.pack(b"", fill_bits=3) == b"\x00"
    assert septets.unpack(b"\xfc\x01", 1, fill_bits=2) == b"\x7f"


def test_septet_errors() -> None:
    with pytest.raises(SmsFormatError):
        septets.pack(b"\x80")
    with pytest.raises(SmsFormatError):
        septets.unpack(b"\x00", 2)
    with pytest.raises(SmsFormatError):
        septets.pack(b"", fill_bits=7)


@given(st.binary(max_size=200).map(lambda b: bytes(x & 0x7F for x in b)), st.integers(0, 6))
def test_pack_unpack_round_trip(codes: bytes, fill: int) -> None:
    packed = septets.pack(codes, fill)
    assert len(packed) == septets.packed_length(len(codes), fill)
    assert septets.unpack(packed, len(codes), fill) == codes


# --- DCS --------------------------------------------------------------------------------------


def test_dcs_groups() -> None:
    assert data_coding(0x00).encoding is Encoding.GSM7
    assert data_coding(0x04).encoding is Encoding.EIGHT_BIT
    assert data_coding(0x08).encoding is Encoding.UCS2
    flash = data_coding(0x10)  # general group, class meaningful, class 0 (flash)
    assert flash.message_class == 0
    assert data_coding(0x18).message_class == 0 and data_coding(0x18).encoding is Encoding.UCS2
    assert data_coding(0x20).compressed
    assert data_coding(0x48).auto_delete and data_coding(0x48).encoding is Encoding.UCS2
    assert data_coding(0x0C).reserved and data_coding(0x0C).encoding is Encoding.GSM7
    for value in range(0x80, 0xC0):  # reserved coding groups read as GSM 7-bit (23.038 §4)
        assert data_coding(value).reserved and data_coding(value).encoding is Encoding.GSM7
    discard = data_coding(0xC8)  # MWI discard, active, voicemail
    assert discard.waiting is not None and discard.waiting.active and not discard.waiting.store
    assert data_coding(0xD1).waiting is not None and data_coding(0xD1).waiting.kind == 1
    assert data_coding(0xE0).encoding is Encoding.UCS2 and data_coding(0xE0).waiting is not None
    assert data_coding(0xF5).encoding is Encoding.EIGHT_BIT and data_coding(0xF5).message_class == 1
    assert data_coding(0xF2).encoding is Encoding.GSM7 and data_coding(0xF2).message_class == 2


def test_compressed_user_data_raises() -> None:
    # DCS 0x20: general group, compressed; TP-UDL then counts octets (here the 9 that follow).
    vector = CLASSIC_DELIVER.replace("0000993092", "0020993092").replace("800A", "8009")
    with pytest.raises(PduError, match="compressed"):
        decode_pdu(vector)


def test_reserved_group_decodes_as_gsm7() -> None:
    vector = CLASSIC_DELIVER.replace("0000993092", "0085993092")
    assert decode_pdu(vector).text == "hellohello"


# --- validity period --------------------------------------------------------------------------


@pytest.mark.parametrize("vp", range(256))
def test_relative_validity_round_trips_every_octet(vp: int) -> None:
    assert relative_validity(pdu_module.VALIDITY.cases[2].parse(bytes([vp]))) == vp


def test_relative_validity_values() -> None:
    assert relative_validity(timedelta(minutes=5)) == 0
    assert relative_validity(timedelta(hours=12)) == 143
    assert relative_validity(timedelta(days=1)) == 167
    assert relative_validity(timedelta(days=4)) == 170
    assert relative_validity(timedelta(weeks=63)) == 255
    assert relative_validity(timedelta(weeks=100)) == 255
    assert relative_validity(timedelta(minutes=6)) == 1  # rounds up
    with pytest.raises(PduError):
        relative_validity(timedelta(0))


def test_submit_absolute_and_enhanced_validity() -> None:
    base = "00" + "{fo}" + "00" + "0B916407281553F8" + "0000" + "{vp}" + "0AE8329BFD4697D9EC37"
    absolute = decode_pdu(base.format(fo="19", vp="3130523210658A"))
    assert absolute.validity == datetime(
        2013, 3, 25, 23, 1, 56, tzinfo=timezone(timedelta(hours=-7))
    )
    seconds = decode_pdu(base.format(fo="09", vp="02" + "1E" + "0000000000"))
    assert seconds.validity == timedelta(seconds=30)
    hms = decode_pdu(base.format(fo="09", vp="03" + "100302" + "000000"))
    assert hms.validity == timedelta(hours=1, minutes=30, seconds=20)
    none = decode_pdu(base.format(fo="01", vp=""))
    assert none.validity is None


# --- encoders ---------------------------------------------------------------------------------


def test_encode_submit_length_excludes_smsc() -> None:
    hex_pdu, length = encode_submit("+46708251358", "hellohello", smsc="+27381000015")
    assert hex_pdu.startswith("07917283010010F5")
    assert len(hex_pdu) // 2 - 8 == length
    msg = decode_pdu(hex_pdu)
    assert msg.smsc == "+27381000015"
    assert msg.validity == timedelta(days=1)


def test_encode_submit_errors() -> None:
    with pytest.raises(PduError):
        encode_submit("+1", "x" * 161)
    with pytest.raises(PduError):
        encode_submit("+1", "😀" * 36)
    with pytest.raises(PduError):
        encode_submit("Twilio", "hi")
    with pytest.raises(PduError):
        encode_submit("+1", "hi", reference=256)
    with pytest.raises(PduError):
        encode_submit("+1", "😀", encoding="gsm7")
    with pytest.raises(PduError):
        encode_submit("+1", "hi", encoding="klingon")
    with pytest.raises(PduError):
        encode_deliver("+1", "hi", timestamp=datetime(2024, 1, 1))  # naive
    with pytest.raises(PduError):
        encode_deliver("TwilioTwilio", "hi", timestamp=datetime(2024, 1, 1, tzinfo=UTC))
    with pytest.raises(PduError):
        Concat(1, 2, 3)
    with pytest.raises(PduError):
        Concat(256, 2, 1)


def test_split_sizes() -> None:
    parts = split_for_concat("a" * 307, 7)
    assert [len(str(p)) for p, _ in parts] == [153, 153, 1]
    assert [c for _, c in parts] == [Concat(7, 3, 1), Concat(7, 3, 2), Concat(7, 3, 3)]
    assert [len(str(p)) for p, _ in split_for_concat("日" * 135, 7)] == [67, 67, 1]
    wide = split_for_concat("a" * 153, 300)
    assert [len(str(p)) for p, _ in wide] == [152, 1]
    assert wide[0][1].wide
    # An escape never separates from its character; an emoji never loses half its pair.
    assert [len(str(p)) for p, _ in split_for_concat("a" * 152 + "€", 1)] == [152, 1]
    assert [str(p) for p, _ in split_for_concat("日" * 66 + "😀", 1)][1] == "😀"
    assert split_for_concat("", 1) == [("", Concat(1, 1, 1))]
    assert [len(p) for p, _ in split_for_concat(b"x" * 135, 1)] == [134, 1]
    with pytest.raises(PduError):
        split_for_concat("a" * 153 * 256, 1)


# --- round trips ------------------------------------------------------------------------------


@given(numbers | alphanumerics, gsm_text, timestamps)
def test_deliver_round_trip_gsm7(sender: str, text: str, when: datetime) -> None:
    if gsm7.septet_length(text) > 160:
        return
    msg = decode_pdu(encode_deliver(sender, text, timestamp=when))
    assert (msg.sender, msg.text, msg.timestamp, msg.encoding) == (sender, text, when, "gsm7")
    assert msg.timestamp is not None and msg.timestamp.utcoffset() == when.utcoffset()


@given(numbers, unicode_text | emoji_text, timestamps, st.one_of(st.none(), st.just("+4477")))
def test_deliver_round_trip_ucs2(sender: str, text: str, when: datetime, smsc: str | None) -> None:
    msg = decode_pdu(encode_deliver(sender, text, timestamp=when, smsc=smsc, encoding="ucs2"))
    assert (msg.sender, msg.text, msg.timestamp, msg.smsc) == (sender, text, when, smsc)
    assert msg.encoding == "ucs2"


@given(numbers, st.binary(max_size=140), timestamps)
def test_deliver_round_trip_8bit(sender: str, data: bytes, when: datetime) -> None:
    msg = decode_pdu(encode_deliver(sender, data, timestamp=when))
    assert msg.encoding == "8bit"
    assert msg.data == data
    assert msg.text.encode("latin-1") == data


@given(
    numbers,
    gsm_text | unicode_text,
    st.integers(0, 255),
    st.one_of(
        st.none(), st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(weeks=70))
    ),
)
def test_submit_round_trip(
    destination: str, text: str, reference: int, validity: timedelta | None
) -> None:
    try:
        hex_pdu, length = encode_submit(destination, text, reference=reference, validity=validity)
    except PduError:
        return  # too long for one PDU
    msg = decode_pdu(hex_pdu)
    assert (msg.recipient, msg.text, msg.reference) == (destination, text, reference)
    assert msg.tpdu_length == length == len(hex_pdu) // 2 - 1
    if validity is None:
        assert msg.validity is None
    else:
        assert isinstance(msg.validity, timedelta)
        assert msg.validity >= min(validity, timedelta(weeks=63))


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=50)
@given(
    st.text(alphabet=st.sampled_from(gsm7.REPERTOIRE), max_size=1000)
    | st.text(alphabet=st.sampled_from("ab€😀日"), max_size=400),
    st.integers(0, 0xFFFF),
)
def test_split_for_concat_reassembles_and_fits(text: str, reference: int) -> None:
    parts = split_for_concat(text, reference)
    assert "".join(str(p) for p, _ in parts) == text
    for part, concat in parts:
        assert isinstance(part, str)
        hex_pdu, length = encode_submit("+1555", part, concat=concat)
        msg = decode_pdu(hex_pdu)
        assert msg.text == part
        assert msg.concat == concat
        assert length <= 140 + 20  # the user data itself fits 140 octets (checked by the encoder)


# --- fuzz -------------------------------------------------------------------------------------


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_fuzzed_bytes_raise_only_pdu_error(data: bytes) -> None:
    with contextlib.suppress(PduError):
        decode_pdu(data)


@settings(max_examples=300)
@given(st.text(alphabet="0123456789abcdefABCDEF \r\nxg", max_size=300))
def test_fuzzed_hex_raises_only_pdu_error(text: str) -> None:
    with contextlib.suppress(PduError):
        decode_pdu(text)


@settings(max_examples=500)
@given(st.data())
def test_mutated_valid_pdus_raise_only_pdu_error(data: st.DataObject) -> None:
    base = bytearray(
        bytes.fromhex(data.draw(st.sampled_from([CLASSIC_DELIVER, CLASSIC_SUBMIT, STATUS_REPORT])))
    )
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(base) - 1))
        base[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(base)))
    with contextlib.suppress(PduError):
        decode_pdu(bytes(base[:cut]))


def test_specific_malformations() -> None:
    for bad in ("", "00", "0", "zz", CLASSIC_DELIVER[:-2], CLASSIC_DELIVER + "00", "0003"):
        with pytest.raises(PduError):
            decode_pdu(bad)
    with pytest.raises(ValueError):  # PduError is a ValueError and an SmsFormatError
        decode_pdu("07")


# --- oracle -----------------------------------------------------------------------------------


def _oracle_text_matches(ours: str, theirs: str) -> bool:
    """smspdudecoder slices decoded *characters* by the septet count, so each escape in the text
    can leave one padding septet ('@') at the end of its result; nothing else may differ."""
    escapes = sum(1 for ch in ours if gsm7.char_septets(ch) == 2)
    extra = theirs[len(ours) :]
    return theirs.startswith(ours) and len(extra) <= escapes and set(extra) <= {"@"}


@needs_oracle
@settings(max_examples=200)
@given(
    numbers | alphanumerics,
    gsm_text | unicode_text,
    timestamps,
    st.one_of(st.none(), st.builds(Concat, st.integers(0, 255), st.just(3), st.integers(1, 3))),
)
def test_oracle_agrees_on_generated_delivers(
    sender: str, text: str, when: datetime, concat: Concat | None
) -> None:
    try:
        vector = encode_deliver(sender, text, timestamp=when, concat=concat)
    except PduError:
        return  # does not fit one PDU
    ours = decode_pdu(vector)
    assert read_incoming_sms is not None
    theirs = read_incoming_sms(vector)
    # The oracle decodes every septet of an alphanumeric address's octets: when 7 bits are left
    # over (7, 15... septets) it appends an "@" for them.
    assert ours.sender is not None
    assert theirs["sender"] in (ours.sender, ours.sender + "@")
    assert theirs["sender"] == ours.sender or ours.address.ton is Ton.ALPHANUMERIC
    assert theirs["date"] == ours.timestamp  # same instant (the oracle converts to UTC)
    if ours.encoding == "gsm7":
        assert _oracle_text_matches(ours.text, theirs["content"])
    else:
        assert theirs["content"] == ours.text
    if concat is None:
        assert theirs["partial"] is False
    else:
        assert theirs["partial"]["part_number"] == concat.sequence


@needs_oracle
def test_oracle_agrees_on_golden_delivers() -> None:
    assert read_incoming_sms is not None
    theirs = read_incoming_sms(CLASSIC_DELIVER)
    ours = decode_pdu(CLASSIC_DELIVER)
    assert (theirs["sender"], theirs["content"], theirs["date"]) == (
        ours.sender,
        ours.text,
        ours.timestamp,
    )
