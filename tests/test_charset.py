"""TE character sets (AT+CSCS): wire strings to text and back."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device.errors import SmsFormatError
from device.sms import gsm7
from device.sms.charset import (
    Charset,
    address_from_wire,
    from_wire,
    hex_decode,
    to_wire,
    ucs2_decode,
    ucs2_encode,
)

gsm_text = st.text(alphabet=st.sampled_from(gsm7.REPERTOIRE), max_size=200)
ira_text = st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=200)
# Any Unicode scalar value; hypothesis leaves out lone surrogates (category Cs) by default.
any_text = st.text(max_size=100)
latin1_wire = st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=200)


@pytest.mark.parametrize(
    ("name", "charset"),
    [("GSM", Charset.GSM), ('"ucs2"', Charset.UCS2), (" IRA ", Charset.IRA), ("hex", Charset.HEX)],
)
def test_parse(name: str, charset: Charset) -> None:
    assert Charset.parse(name) is charset


@pytest.mark.parametrize("name", ["UTF-8", "", "8859-1", '"PCCP437"'])
def test_parse_unsupported(name: str) -> None:
    with pytest.raises(SmsFormatError):
        Charset.parse(name)


@pytest.mark.parametrize(
    ("text", "charset", "wire"),
    [
        ("@$_", Charset.GSM, "\x00\x02\x11"),
        ("€", Charset.GSM, "\x1be"),
        ("000", Charset.UCS2, "003000300030"),
        ("😀", Charset.UCS2, "D83DDE00"),
        ("é", Charset.UCS2, "00E9"),
        ("abc", Charset.IRA, "abc"),
        ("\x03/é", Charset.HEX, "032FE9"),
        ("", Charset.UCS2, ""),
    ],
)
def test_known_wire_forms(text: str, charset: Charset, wire: str) -> None:
    assert to_wire(text, charset) == wire
    assert from_wire(wire, charset) == text


def test_ucs2_decode_accepts_lower_case() -> None:
    assert ucs2_decode("d83dde00") == "😀"


@pytest.mark.parametrize(
    "wire", ["003", "00300", "00G0", "D83D", "DE00D83D", "0030 0030", "+0030", "٠٠٣٠"]
)
def test_ucs2_decode_rejects(wire: str) -> None:
    with pytest.raises(SmsFormatError):
        ucs2_decode(wire)


@pytest.mark.parametrize("wire", ["0", "GG", "0 1"])
def test_hex_decode_rejects(wire: str) -> None:
    with pytest.raises(SmsFormatError):
        hex_decode(wire)


@pytest.mark.parametrize(
    ("text", "charset"),
    [("😀", Charset.GSM), ("é", Charset.IRA), ("€", Charset.HEX), ("`", Charset.GSM)],
)
def test_to_wire_refuses_unrepresentable_text(text: str, charset: Charset) -> None:
    with pytest.raises(SmsFormatError):
        to_wire(text, charset)


@given(gsm_text)
def test_gsm_round_trip(text: str) -> None:
    wire = to_wire(text, Charset.GSM)
    assert all(ord(ch) <= 0x7F for ch in wire)
    assert from_wire(wire, Charset.GSM) == text


@given(ira_text)
def test_ira_round_trip(text: str) -> None:
    assert from_wire(to_wire(text, Charset.IRA), Charset.IRA) == text


@given(any_text)
def test_ucs2_round_trip(text: str) -> None:
    wire = to_wire(text, Charset.UCS2)
    assert len(wire) == 4 * len(text.encode("utf-16-be")) // 2
    assert from_wire(wire, Charset.UCS2) == text


@given(st.lists(st.characters(min_codepoint=0x10000), min_size=1, max_size=10).map("".join))
def test_ucs2_round_trip_astral_as_surrogate_pairs(text: str) -> None:
    wire = to_wire(text, Charset.UCS2)
    assert len(wire) == 8 * len(text)
    assert from_wire(wire, Charset.UCS2) == text


@given(latin1_wire)
def test_hex_round_trip(text: str) -> None:
    assert from_wire(to_wire(text, Charset.HEX), Charset.HEX) == text


@given(st.text(max_size=100), st.sampled_from(list(Charset)))
def test_from_wire_random_only_raises_sms_format_error(wire: str, charset: Charset) -> None:
    with contextlib.suppress(SmsFormatError):
        from_wire(wire, charset)


@given(st.text(max_size=100), st.sampled_from(list(Charset)))
def test_to_wire_random_only_raises_sms_format_error(text: str, charset: Charset) -> None:
    with contextlib.suppress(SmsFormatError):
        to_wire(text, charset)


@pytest.mark.parametrize(
    ("wire", "charset", "address"),
    [
        ("003000300030", Charset.UCS2, "000"),
        ("002B0034003900310037", Charset.UCS2, "+4917"),
        ("1234", Charset.UCS2, "1234"),  # not U+1234: plain digits kept
        ("+491701234567", Charset.UCS2, "+491701234567"),
        ("+491701234567", Charset.GSM, "+491701234567"),
        ("+491701234567", Charset.IRA, "+491701234567"),
        ("000", Charset.GSM, "000"),
        ("", Charset.UCS2, ""),
        ("\x80", Charset.GSM, "\x80"),  # undecodable under GSM: kept as printed
    ],
)
def test_address_from_wire(wire: str, charset: Charset, address: str) -> None:
    assert address_from_wire(wire, charset) == address


@given(st.text(max_size=40), st.sampled_from(list(Charset)))
def test_address_from_wire_never_raises(wire: str, charset: Charset) -> None:
    address_from_wire(wire, charset)


@given(st.text(alphabet="+0123456789*#", min_size=1, max_size=20))
def test_address_ucs2_round_trip(address: str) -> None:
    assert address_from_wire(ucs2_encode(address), Charset.UCS2) == address
