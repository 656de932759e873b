"""hostsim.modem: the 27.005 SMS command set beyond what the agent uses (prompt editing,
CSMS/CNMA, CMGW/CMSS, status reports, CNMI buffering)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from hostsim.modem import EmulatedModem
from hostsim.modem.settings import ModemConfig

WHEN = datetime(2026, 11, 25, 10, 0, 0, tzinfo=UTC)


def run(modem: EmulatedModem, line: bytes) -> bytes:
    modem.feed(line)
    return modem.data_to_send()


def text_modem(**config: object) -> EmulatedModem:
    """Echo off, text mode."""
    modem = EmulatedModem(ModemConfig(**config))  # type: ignore[arg-type]
    run(modem, b"ATE0\r")
    assert run(modem, b"AT+CMGF=1\r") == b"\r\nOK\r\n"
    return modem


# ---------------------------------------------------------------- the SMS prompt


def test_backspace_in_prompt_erases_the_last_character() -> None:
    modem = text_modem()
    assert run(modem, b'AT+CMGS="000"\rhelp\x08\x08lo\x1a') == b"\r\n> \r\n+CMGS: 0\r\n\r\nOK\r\n"
    assert modem.sent[0].text == "helo"


def test_backspace_on_an_empty_body_and_across_a_line_break() -> None:
    modem = text_modem()
    run(modem, b'AT+CMGS="000"\r\x08\x08ab\r\x08c\x1a')
    assert modem.sent[0].text == "abc"


def test_backspace_is_echoed_and_follows_s5() -> None:
    modem = text_modem()
    run(modem, b"ATE1\r")
    assert run(modem, b'AT+CMGS="000"\rax\x08b\x1a').startswith(b'AT+CMGS="000"\r\r\n> ax\x08b')
    assert modem.sent[0].text == "ab"
    run(modem, b"ATE0\rATS5=127\r")
    run(modem, b'AT+CMGS="000"\rax\x7fb\x1a')
    assert modem.sent[1].text == "ab"
    run(modem, b'AT+CMGS="000"\ra\x08b\x1a')  # with S5=127 a BS is no editing character
    assert modem.sent[2].text == "aòb"  # 0x08 is ò in GSM 03.38


def test_del_is_a_character_escape_cancels_and_cr_is_a_line_break() -> None:
    modem = text_modem()
    run(modem, b'AT+CMGS="000"\ra\x7f\x1a')
    assert modem.sent[0].text == "aà"  # GSM 03.38 0x7F
    assert run(modem, b'AT+CMGS="000"\rgone\x08\x1b') == b"\r\n> \r\nOK\r\n"
    assert len(modem.sent) == 1
    assert run(modem, b'AT+CMGS="000"\rone\rtwo\x1a').startswith(b"\r\n> \r\n> ")
    assert modem.sent[1].text == "one\rtwo"


def test_backspace_in_pdu_mode_prompt() -> None:
    modem = EmulatedModem()
    run(modem, b"ATE0\r")
    pdu = b"000100038100F0000002E834"
    run(modem, b"AT+CMGS=11\r" + pdu[:-1] + b"X\x08" + pdu[-1:] + b"\x1a")
    assert modem.sent[0].text == "hi"


PROMPT_INPUT = b'AT+CMGS="000"\r\x08ab\x08c\rde\x08\x08f\x1a'


def _sent_after(chunks: list[bytes]) -> tuple[bytes, str]:
    modem = text_modem()
    out = b""
    for chunk in chunks:
        modem.feed(chunk)
        out += modem.data_to_send()
    return out, modem.sent[0].text


@st.composite
def chunked(draw: st.DrawFn, data: bytes) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@given(chunked(PROMPT_INPUT))
@settings(max_examples=100, deadline=None)
def test_any_chunking_of_the_prompt_gives_the_same_message(chunks: list[bytes]) -> None:
    out, text = _sent_after(chunks)
    assert (out, text) == _sent_after([PROMPT_INPUT])
    assert text == "ac\rf"
