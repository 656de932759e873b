"""GSM 03.38 alphabet: tables, encode/decode, counting, sanitizing and cutting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device.errors import SmsFormatError
from device.sms import gsm7

BASIC_CHARS = [ch for code, ch in enumerate(gsm7.BASIC) if code != gsm7.ESCAPE]
EXT_CHARS = list(gsm7.EXTENSION.values())

gsm_text = st.text(alphabet=st.sampled_from(gsm7.REPERTOIRE), max_size=400)


def test_tables_have_expected_sizes() -> None:
    assert len(gsm7.BASIC) == 128
    assert len(set(gsm7.REPERTOIRE)) == len(gsm7.REPERTOIRE) == 127 + len(gsm7.EXTENSION)


@pytest.mark.parametrize("ch", BASIC_CHARS)
def test_basic_character_round_trips_in_one_septet(ch: str) -> None:
    encoded = gsm7.encode(ch)
    assert len(encoded) == 1
    assert encoded[0] == gsm7.BASIC.index(ch)
    assert gsm7.decode(encoded) == ch
    assert gsm7.char_septets(ch) == 1


@pytest.mark.parametrize("ch", EXT_CHARS)
def test_extension_character_round_trips_as_escape_pair(ch: str) -> None:
    encoded = gsm7.encode(ch)
    assert len(encoded) == 2
    assert encoded[0] == gsm7.ESCAPE
    assert gsm7.EXTENSION[encoded[1]] == ch
    assert gsm7.decode(encoded) == ch
    assert gsm7.char_septets(ch) == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@", b"\x00"),
        ("$", b"\x02"),
        ("_", b"\x11"),
        ("€", b"\x1b\x65"),
        ("¤", b"\x24"),
        ("{}", b"\x1b\x28\x1b\x29"),
        ("A@b", b"\x41\x00\x62"),
        ("", b""),
    ],
)
def test_known_codes(text: str, expected: bytes) -> None:
    assert gsm7.encode(text) == expected


@pytest.mark.parametrize("ch", ["\x1b", "é\u0301", "😀", "`", "ç", "\t"])
def test_encode_refuses_characters_outside_the_repertoire(ch: str) -> None:
    assert not all(gsm7.is_gsm(c) for c in ch)
    with pytest.raises(SmsFormatError):
        gsm7.encode(ch)
    with pytest.raises(SmsFormatError):
        gsm7.septet_length(ch)


def test_escape_is_not_a_character() -> None:
    assert not gsm7.is_gsm("\x1b")
    assert gsm7.char_septets("\x1b") == 0


@pytest.mark.parametrize(
    ("text", "septets"),
    [("", 0), ("hello", 5), ("€", 2), ("a[b]c", 7), ("@" * 160, 160), ("^" * 80, 160)],
)
def test_septet_length(text: str, septets: int) -> None:
    assert gsm7.septet_length(text) == septets


def test_decode_fallbacks() -> None:
    # Escape + undefined extension code: the basic-table character of that code.
    assert gsm7.decode(b"\x1b\x41") == "A"
    # Trailing lone escape and escape-escape read as a space.
    assert gsm7.decode(b"a\x1b") == "a "
    assert gsm7.decode(b"\x1b\x1bA") == " A"


@pytest.mark.parametrize("byte", [0x80, 0x9B, 0xFF])
def test_decode_refuses_bytes_above_0x7f(byte: int) -> None:
    with pytest.raises(SmsFormatError, match=f"0x{byte:02X}"):
        gsm7.decode(bytes([0x41, byte]))


def test_sanitize_replaces_and_counts() -> None:
    assert gsm7.sanitize("héllo wörld") == ("héllo wörld", 0)  # é, ö are GSM
    assert gsm7.sanitize("naïve 😀 ç") == ("na?ve ? ?", 3)
    assert gsm7.sanitize("x😀", replacement="_") == ("x_", 1)
    assert gsm7.sanitize("") == ("", 0)


def test_sanitize_refuses_non_gsm_replacement() -> None:
    with pytest.raises(SmsFormatError):
        gsm7.sanitize("😀", replacement="😀")


def test_fit_leaves_short_text_alone() -> None:
    assert gsm7.fit("a" * 160) == ("a" * 160, False)
    assert gsm7.fit("€" * 80) == ("€" * 80, False)
    assert gsm7.fit("") == ("", False)


def test_fit_cuts_with_marker() -> None:
    assert gsm7.fit("a" * 161) == ("a" * 157 + "...", True)


def test_fit_does_not_split_an_extension_character() -> None:
    # 156 basic + "€" would need 158 septets > 157 budget: the € goes entirely.
    text = "a" * 156 + "€" + "b" * 10
    cut, was_cut = gsm7.fit(text)
    assert was_cut
    assert cut == "a" * 156 + "..."
    assert gsm7.septet_length(cut) == 159


def test_fit_marker_too_long() -> None:
    with pytest.raises(SmsFormatError):
        gsm7.fit("abcdef", limit=2)


@given(gsm_text)
def test_fit_property(text: str) -> None:
    cut, was_cut = gsm7.fit(text)
    assert gsm7.septet_length(cut) <= gsm7.SMS_SEPTETS
    if was_cut:
        assert cut.endswith("...")
        assert text.startswith(cut[:-3])
        assert gsm7.septet_length(text) > gsm7.SMS_SEPTETS
        # Greedy: the next character would not have fitted before the marker.
        kept = len(cut) - 3
        assert gsm7.septet_length(text[: kept + 1]) > gsm7.SMS_SEPTETS - 3
    else:
        assert cut == text


@given(gsm_text)
def test_decode_encode_round_trip(text: str) -> None:
    encoded = gsm7.encode(text)
    assert len(encoded) == gsm7.septet_length(text)
    assert all(b <= 0x7F for b in encoded)
    assert gsm7.decode(encoded) == text


@given(st.text(max_size=50))
def test_sanitized_text_always_encodes(text: str) -> None:
    clean, replaced = gsm7.sanitize(text)
    assert len(clean) == len(text)
    assert replaced == sum(1 for ch in text if not gsm7.is_gsm(ch))
    assert gsm7.decode(gsm7.encode(clean)) == clean


@given(st.binary(max_size=200))
def test_decode_random_bytes_only_raises_sms_format_error(data: bytes) -> None:
    try:
        text = gsm7.decode(data)
    except SmsFormatError:
        assert any(b > 0x7F for b in data)
    else:
        assert all(gsm7.is_gsm(ch) for ch in text)
