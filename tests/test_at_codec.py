"""The sans-IO AT codec: framing, classification, chunking invariance, fuzzing."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from device.at.codec import (
    AtCodec,
    Echo,
    Event,
    Final,
    Garbage,
    GarbageKind,
    Info,
    Prompt,
    ResultKind,
    Urc,
    parse_final,
    response_prefixes,
)


def run(
    stream: bytes,
    command: str | None = None,
    chunks: list[int] | None = None,
    *,
    hex_bodies: bool = True,
) -> list[Event]:
    codec = AtCodec(hex_bodies=hex_bodies)
    if command is not None:
        codec.begin(command)
    events: list[Event] = []
    if chunks is None:
        events += codec.feed(stream)
    else:
        pos = 0
        for size in chunks:
            events += codec.feed(stream[pos : pos + size])
            pos += size
        events += codec.feed(stream[pos:])
    return events


def test_ok_with_echo() -> None:
    assert run(b"AT\r\r\nOK\r\n", "AT") == [Echo("AT"), Final(ResultKind.OK, None, "OK", "OK")]


def test_ok_without_echo_and_bare_line_endings() -> None:
    for stream in (b"\r\nOK\r\n", b"\nOK\n", b"\rOK\r", b"\r\n\r\n\nOK\r\n\r\n"):
        assert run(stream, "AT") == [Final(ResultKind.OK, None, "OK", "OK")], stream


def test_information_response() -> None:
    events = run(b"\r\n+CSQ: 21,99\r\n\r\nOK\r\n", "AT+CSQ")
    assert events[0] == Info("+CSQ: 21,99")
    assert isinstance(events[1], Final) and events[1].ok


def test_cmgr_body_line_taken_verbatim_even_if_it_looks_like_a_result() -> None:
    stream = b'\r\n+CMGR: "REC UNREAD","000",,"26/11/25,10:00:00+04"\r\nOK\r\n\r\nOK\r\n'
    events = run(stream, "AT+CMGR=0", hex_bodies=False)
    assert events == [
        Info('+CMGR: "REC UNREAD","000",,"26/11/25,10:00:00+04"'),
        Info("OK"),
        Final(ResultKind.OK, None, "OK", "OK"),
    ]


def test_cmgr_empty_body() -> None:
    stream = b'\r\n+CMGR: "REC READ","000",,"26/11/25,10:00:00+04"\r\n\r\n\r\nOK\r\n'
    events = run(stream, "AT+CMGR=0")
    assert events[1] == Info("")
    assert isinstance(events[2], Final)


def test_cmgl_several_messages() -> None:
    stream = (
        b'\r\n+CMGL: 0,"REC UNREAD","000",,"26/11/25,10:00:00+04"\r\n0070'
        b'\r\n+CMGL: 1,"REC READ","000",,"26/11/25,10:00:01+04"\r\n0071\r\n\r\nOK\r\n'
    )
    events = run(stream, 'AT+CMGL="ALL"')
    assert [type(e) for e in events] == [Info, Info, Info, Info, Final]
    assert events[1] == Info("0070") and events[3] == Info("0071")


def test_urc_in_the_middle_of_a_response_is_not_swallowed() -> None:
    stream = (
        b'\r\n+CMGL: 0,"REC UNREAD","000",,"26/11/25,10:00:00+04"\r\n0070'
        b'\r\n+CMTI: "SM",1\r\n'
        b'\r\n+CMGL: 1,"REC READ","000",,"26/11/25,10:00:01+04"\r\n0071\r\n'
        b"\r\nRING\r\n\r\nOK\r\n"
    )
    events = run(stream, 'AT+CMGL="ALL"')
    urcs = [e for e in events if isinstance(e, Urc)]
    assert urcs == [Urc("+CMTI", '"SM",1', '+CMTI: "SM",1'), Urc("RING", "", "RING")]
    assert isinstance(events[-1], Final)


def test_errors_numeric_and_verbose() -> None:
    (final,) = run(b"\r\n+CMS ERROR: 321\r\n", "AT+CMGR=9")
    assert isinstance(final, Final)
    assert final.kind is ResultKind.CMS_ERROR and final.code == 321
    assert final.meaning == "invalid memory index"
    (final,) = run(b"\r\n+CME ERROR: SIM busy\r\n", "AT+CPIN?")
    assert isinstance(final, Final)
    assert final.kind is ResultKind.CME_ERROR and final.code == 14
    (final,) = run(b"\r\n+CME ERROR: frobnicated\r\n", "AT+CPIN?")
    assert isinstance(final, Final) and final.code is None and final.meaning == "frobnicated"
    assert parse_final("ERROR") == Final(ResultKind.ERROR, None, "ERROR", "ERROR")
    assert parse_final("+CMS ERROR: 999") is not None


def test_prompt_and_body_echo() -> None:
    stream = b'AT+CMGS="000"\r\r\n> pong\x1a\r\n+CMGS: 7\r\n\r\nOK\r\n'
    events = run(stream, 'AT+CMGS="000"')
    assert events == [
        Echo('AT+CMGS="000"'),
        Prompt(),
        Echo("pong\x1a"),
        Info("+CMGS: 7"),
        Final(ResultKind.OK, None, "OK", "OK"),
    ]


def test_prompt_without_echo() -> None:
    assert run(b"\r\n> ", 'AT+CMGS="000"') == [Prompt()]


def test_two_line_urc_cmt() -> None:
    stream = b'\r\n+CMT: "000",,"26/11/25,10:00:00+04"\r\n00700069006E0067\r\n'
    assert run(stream) == [
        Urc(
            "+CMT",
            '"000",,"26/11/25,10:00:00+04"',
            '+CMT: "000",,"26/11/25,10:00:00+04"',
            "00700069006E0067",
        )
    ]


def test_bare_urcs_and_vendor_urcs() -> None:
    events = run(b"\r\nRDY\r\n\r\n+CPIN: READY\r\n\r\n+QIND: SMS DONE\r\n\r\nSMS Ready\r\n")
    assert [e.name for e in events if isinstance(e, Urc)] == ["RDY", "+CPIN", "+QIND", "SMS READY"]


def test_bare_info_lines() -> None:
    events = run(b"\r\nQuectel\r\nBG96\r\nRevision: BG96MAR02A07M1G\r\n\r\nOK\r\n", "ATI")
    assert events[:3] == [Info("Quectel"), Info("BG96"), Info("Revision: BG96MAR02A07M1G")]
    events = run(b"\r\n866425031234567\r\n\r\nOK\r\n", "AT+CGSN")
    assert events[0] == Info("866425031234567")


def test_garbage_is_reported_not_fatal() -> None:
    events = run(b'\x00\xff\xfejunk\r\n\r\n+CMTI: "SM",3\r\n')
    assert isinstance(events[0], Garbage)
    assert events[1] == Urc("+CMTI", '"SM",3', '+CMTI: "SM",3')
    events = run(b"\r\nnoise\r\n\r\n+CSQ: 1,2\r\n\r\nOK\r\n", "AT+CSQ")
    assert isinstance(events[0], Garbage)
    assert events[1] == Info("+CSQ: 1,2")


def test_bounded_buffer() -> None:
    codec = AtCodec(max_line=64)
    events = codec.feed(b"x" * 1000)
    assert len(events) == 1 and isinstance(events[0], Garbage)
    assert len(codec._buf) <= 64
    assert codec.feed(b"y" * 1000) == []
    assert codec.feed(b'\r\n+CMTI: "SM",1\r\n') == [Urc("+CMTI", '"SM",1', '+CMTI: "SM",1')]


def test_stray_final_after_abandon() -> None:
    codec = AtCodec()
    codec.begin("AT+CSQ")
    codec.abandon()
    assert codec.pending is None
    events = codec.feed(b"\r\nOK\r\n")
    assert isinstance(events[0], Final)


def test_response_prefixes() -> None:
    assert response_prefixes("AT+CMGR=3") == (("+CMGR",), False)
    assert response_prefixes("ATI") == ((), True)
    assert response_prefixes("AT+CGSN") == (("+CGSN",), True)
    assert response_prefixes("at+creg?") == (("+CREG",), False)


# A transcript with everything at once: echo, URCs mid-response, body lines,
# prompt, errors, garbage, both line-ending styles.
TRANSCRIPT = (
    b'AT+CMGL="ALL"\r\r\n+CMGL: 0,"REC UNREAD","003000300030",,"26/11/25,10:00:00+04"'
    b'\r\n00700069006E0067\r\n+CMTI: "SM",1\r\n\r\nOK\r\n'
    b'\r\n+CMT: "000",,"26/11/25,10:00:00+04"\r\n0070\r\n'
    b"\nRDY\n\n+CME ERROR: 14\n\r\n> \x1a\r\n+CMGS: 3\r\n\r\nOK\r\n"
    b"\x01\x02\x03garbage\r\r\r\n\r\n+CMS ERROR: invalid memory index\r\n"
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=40), max_size=60))
def test_any_chunking_gives_the_same_events(chunks: list[int]) -> None:
    whole = run(TRANSCRIPT, 'AT+CMGL="ALL"')
    assert run(TRANSCRIPT, 'AT+CMGL="ALL"', chunks) == whole


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600), st.lists(st.integers(min_value=1, max_value=50), max_size=30))
def test_random_bytes_any_chunking_same_events(data: bytes, chunks: list[int]) -> None:
    assert run(data, "AT+CSQ", chunks) == run(data, "AT+CSQ")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_fuzzed_input_never_raises_and_stays_bounded(data: bytes) -> None:
    codec = AtCodec(max_line=128)
    codec.begin("AT+CMGR=1")
    for event in codec.feed(data):
        assert isinstance(event, Echo | Info | Final | Prompt | Urc | Garbage)
        assert not (isinstance(event, Garbage) and event.kind is GarbageKind.FAULT), event
    assert len(codec._buf) <= 128


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=4, max_value=40),
    st.binary(max_size=300),
    st.lists(st.integers(min_value=1, max_value=50), max_size=30),
)
def test_overflow_is_chunking_invariant(max_line: int, data: bytes, chunks: list[int]) -> None:
    def feed(pieces: list[bytes]) -> list[Event]:
        codec = AtCodec(max_line=max_line)
        codec.begin("AT+CMGR=1")
        return [e for piece in pieces for e in codec.feed(piece)]

    pieces, pos = [], 0
    for size in chunks:
        pieces.append(data[pos : pos + size])
        pos += size
    pieces.append(data[pos:])
    assert feed(pieces) == feed([data])


def test_cmti_in_a_body_slot_is_not_swallowed() -> None:
    stream = (
        b'\r\n+CMGR: "REC UNREAD","003000300030",,"26/11/25,10:00:00+04"\r\n'
        b'+CMTI: "SM",4\r\n00700069006E0067\r\n\r\nOK\r\n'
    )
    events = run(stream, "AT+CMGR=3")
    assert events[1] == Urc("+CMTI", '"SM",4', '+CMTI: "SM",4')
    assert events[2] == Info("00700069006E0067")
    assert isinstance(events[3], Final)


def test_byte_by_byte_transcript() -> None:
    assert run(TRANSCRIPT, 'AT+CMGL="ALL"', [1] * len(TRANSCRIPT)) == run(
        TRANSCRIPT, 'AT+CMGL="ALL"'
    )


def test_hex_bodies_tolerate_indications_and_blank_framing_in_the_body_slot() -> None:
    stream = (
        b'\r\n+CMGR: "REC UNREAD","003000300030",,"26/11/25,10:00:00+04"\r\n'
        b'\r\n+QIND: "csq",20,99\r\n\r\n+QIND: "csq",20,99\r\n0070\r\n\r\nOK\r\n'
    )
    events = run(stream, "AT+CMGR=0")
    assert [type(e).__name__ for e in events] == ["Info", "Urc", "Urc", "Info", "Final"]
    assert events[3] == Info("0070")
    # An empty body is still an empty body.
    empty = b'\r\n+CMGR: "REC READ","003000300030",,"26/11/25,10:00:00+04"\r\n\r\n\r\nOK\r\n'
    assert run(empty, "AT+CMGR=0")[1:] == [Info(""), Final(ResultKind.OK, None, "OK", "OK")]
    listing = b"\r\n+CMGL: 0,1,,0\r\n\r\n+CMGL: 1,1,,2\r\n00AB\r\n\r\nOK\r\n"
    assert [e for e in run(listing, "AT+CMGL=4") if isinstance(e, Info)] == [
        Info("+CMGL: 0,1,,0"),
        Info(""),
        Info("+CMGL: 1,1,,2"),
        Info("00AB"),
    ]


def test_error_codes_are_ascii_digits_only() -> None:
    """``str.isdigit()`` accepts the latin-1 superscripts ``¹²³`` (and ``int()`` then
    raises): a bit error on bit 7 of ``1``/``2``/``3`` prints them. They are a verbose
    text with no code, like any text the tables do not know (27.007 §9.2: ``<err>``
    is a number or a verbose text)."""
    for digit in ("\xb9", "\xb2", "\xb3", "1\xb2", "\u0663"):
        final = parse_final(f"+CME ERROR: {digit}")
        assert final is not None and final.kind is ResultKind.CME_ERROR
        assert final.code is None and final.meaning == digit
        cms = parse_final(f"+CMS ERROR: {digit}")
        assert cms is not None and cms.code is None
    assert parse_final("+CME ERROR: 0010") == Final(
        ResultKind.CME_ERROR, 10, "SIM not inserted", "+CME ERROR: 0010"
    )
    # More digits than int() takes from a string (4300 in Python 3.11) or any code has.
    huge = parse_final("+CMS ERROR: " + "9" * 5000)
    assert huge is not None and huge.code is None and huge.meaning == "unknown error code"


def test_superscript_error_between_lines_keeps_the_rest_of_the_read() -> None:
    events = run(b"\r\n+CSQ: 1,2\r\n\r\nOK\r\n\r\n+CME ERROR: \xb2\r\n\r\nRING\r\n", "AT+CSQ")
    assert [type(e).__name__ for e in events] == ["Info", "Final", "Final", "Urc"]


def test_overlong_line_names_the_pending_command_and_spends_the_body_slot() -> None:
    """A listing whose first body is over-long: the next header is framed as a header,
    never taken as that message's body."""
    codec = AtCodec(max_line=64)
    codec.begin("AT+CMGL=4")
    events = codec.feed(
        b"\r\n+CMGL: 0,1,,3\r\n" + b"A" * 100 + b"\r\n+CMGL: 1,1,,2\r\n00AB\r\n\r\nOK\r\n"
    )
    garbage = [e for e in events if isinstance(e, Garbage)]
    assert garbage == [
        Garbage(b"A" * 64, "line longer than 64 bytes dropped", GarbageKind.OVERLONG, "AT+CMGL=4")
    ]
    assert [e for e in events if isinstance(e, Info)] == [
        Info("+CMGL: 0,1,,3"),
        Info("+CMGL: 1,1,,2"),
        Info("00AB"),
    ]
    # Between commands it names none.
    (stray,) = AtCodec(max_line=8).feed(b"x" * 20 + b"\r\n")
    assert isinstance(stray, Garbage) and stray.pending is None


def test_a_huge_unterminated_line_is_not_copied_into_the_buffer() -> None:
    codec = AtCodec(max_line=64)
    codec.feed(b"x" * 1_000_000)
    assert len(codec._buf) == 0 and codec.feed(b"\r\nRING\r\n") == [Urc("RING", "", "RING")]


def _scanned(stream: bytes) -> int:
    codec = AtCodec()
    codec.feed(stream)
    return codec.scanned


def test_work_is_linear_in_one_feed_for_any_line_endings() -> None:
    """Searching CR and LF afresh from each line start rescans the rest of a bare-LF
    (or bare-CR) stream once per line: quadratic in one feed() call. The codec counts
    the bytes its searches cover (a work counter, not a clock: no timing flakiness);
    it must stay within twice the input, and grow tenfold for tenfold input."""
    for line_end in (b"\n", b"\r", b"\r\n"):
        small = (b"RING" + line_end) * 2_000
        large = (b"RING" + line_end) * 20_000
        assert _scanned(small) <= 2 * len(small), line_end
        assert _scanned(large) <= 2 * len(large), line_end
        assert _scanned(large) <= 11 * _scanned(small), line_end
