"""hostsim in PDU mode (``AT+CMGF=0``): exact bytes, decoded PDUs, concatenated delivery."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device.sms.pdu import Concat, Encoding, PduKind, decode_pdu, encode_deliver, encode_submit
from hostsim.cloud.network import Network, SidFactory
from hostsim.cloud.network import Status as CommandStatus
from hostsim.modem import DIRECT_DELIVERY, EmulatedModem, InputState, SentSms, pdumode
from hostsim.modem.storage import Status, StoredMessage

CET = timezone(timedelta(hours=1))
WHEN = datetime(2026, 11, 25, 10, 0, 0, tzinfo=CET)
SMSC_HEX = "07914497730425" + "05"
#: "hello" from 000 at WHEN, as SMS-DELIVER with the default SMSC (+447937405250):
#: fo 04, OA 03 81 00F0, PID 00, DCS 00, SCTS 62115201000040 (+04 quarters), UDL 05.
HELLO_PDU = SMSC_HEX + "04038100F000006211520100004005E8329BFD06"
LONG = "The quick brown fox jumps over the lazy dog. " * 9  # 405 GSM characters: 3 parts


def run(modem: EmulatedModem, line: bytes) -> bytes:
    modem.feed(line)
    return modem.data_to_send()


def pdu_modem() -> EmulatedModem:
    """Echo off, PDU mode (the default), every URC emitted at once."""
    modem = EmulatedModem()
    assert run(modem, b"ATE0;+CMGF=0\r") == b"ATE0;+CMGF=0\r\r\nOK\r\n"
    return modem


def responses(out: bytes) -> list[str]:
    """The non-empty lines of ``out``."""
    return [line for line in out.decode("latin-1").split("\r\n") if line]


def read_pdu(modem: EmulatedModem, index: int) -> tuple[str, Any]:
    """``AT+CMGR=<index>``: the header line and the decoded PDU (length checked)."""
    modem.data_to_send()  # pending +CMTI
    head, pdu_hex, ok = responses(run(modem, f"AT+CMGR={index}\r".encode()))
    assert ok == "OK"
    pdu = decode_pdu(pdu_hex)
    assert head.endswith(f",,{pdu.tpdu_length}")
    return head, pdu


def submit(modem: EmulatedModem, length: int, body: str) -> bytes:
    return run(modem, f"AT+CMGS={length}\r".encode() + body.encode() + b"\x1a")


# ---------------------------------------------------------------- reading: CMGR / CMGL


def test_cmgr_exact_bytes_and_decoded_fields() -> None:
    modem = pdu_modem()
    assert modem.deliver_sms("000", "hello", timestamp=WHEN) == 0
    assert modem.data_to_send() == b'\r\n+CMTI: "SM",0\r\n'
    expected = b"\r\n+CMGR: 0,,20\r\n" + HELLO_PDU.encode() + b"\r\n\r\nOK\r\n"
    assert run(modem, b"AT+CMGR=0\r") == expected
    pdu = decode_pdu(HELLO_PDU)
    assert pdu.kind is PduKind.DELIVER and pdu.sender == "000" and pdu.text == "hello"
    assert pdu.smsc == "+447937405250" and pdu.timestamp == WHEN and pdu.concat is None
    assert pdu.tpdu_length == 20
    # Now read: stat 1; the PDU itself is unchanged.
    assert run(modem, b"AT+CMGR=0\r") == expected.replace(b"+CMGR: 0,", b"+CMGR: 1,")
    assert encode_deliver("000", "hello", timestamp=WHEN, smsc="+447937405250") == HELLO_PDU


def test_a_message_is_rendered_when_stored_and_cmgr_only_prints_it() -> None:
    """A module keeps the PDU it received; hostsim renders it when it stores it (PDU
    mode), so its AT+CMGR answer builds nothing (issue 14: hostsim's think time is
    every receiver's "not wire"), and the bytes are those of a fresh rendering."""
    modem = pdu_modem()
    modem.deliver_sms("000", "stored once", timestamp=WHEN)
    modem.data_to_send()  # the +CMTI
    before = pdumode.render.cache_info()
    _, pdu_hex, ok = responses(run(modem, b"AT+CMGR=0\r"))
    after = pdumode.render.cache_info()
    assert ok == "OK"
    assert (after.hits, after.misses) == (before.hits + 1, before.misses)
    assert pdu_hex == encode_deliver(
        "000", "stored once", timestamp=WHEN, smsc=modem.config.smsc or None
    )


def test_cmgr_ucs2_international_sender_and_errors() -> None:
    modem = pdu_modem()
    modem.deliver_sms("+447700900123", "hi ☃ 😀", timestamp=WHEN)
    modem.data_to_send()
    _, pdu = read_pdu(modem, 0)
    assert pdu.sender == "+447700900123" and pdu.text == "hi ☃ 😀"
    assert pdu.encoding is Encoding.UCS2 and pdu.dcs == 8
    assert run(modem, b"AT+CMGR=1\r") == b"\r\n+CMS ERROR: 321\r\n"
    assert run(modem, b"AT+CMGR=99\r") == b"\r\n+CMS ERROR: 321\r\n"
    assert run(modem, b"AT+CMGR=?\r") == b"\r\nOK\r\n"


def test_cmgl_numeric_stats_and_stored_mo_as_submit() -> None:
    modem = pdu_modem()
    store = modem.storages["SM"]
    modem.deliver_sms("000", "one", timestamp=WHEN)
    modem.deliver_sms("000", "two", timestamp=WHEN)
    store.store(StoredMessage(Status.STO_UNSENT, "000", "draft", WHEN))
    store.store(StoredMessage(Status.STO_SENT, "+447700900123", "gone", WHEN))
    modem.data_to_send()
    assert run(modem, b"AT+CMGR=0\r").startswith(b"\r\n+CMGR: 0,,")  # now read
    out = responses(run(modem, b"AT+CMGL=4\r"))
    assert out[-1] == "OK"
    heads, pdus = out[0:-1:2], [decode_pdu(p) for p in out[1:-1:2]]
    assert [h.split(",,")[0] for h in heads] == [
        "+CMGL: 0,1",
        "+CMGL: 1,0",
        "+CMGL: 2,2",
        "+CMGL: 3,3",
    ]
    for head, pdu in zip(heads, pdus, strict=True):
        assert head.endswith(f",,{pdu.tpdu_length}")
    assert [p.kind for p in pdus] == [PduKind.DELIVER] * 2 + [PduKind.SUBMIT] * 2
    assert [p.text for p in pdus] == ["one", "two", "draft", "gone"]
    assert pdus[2].recipient == "000" and pdus[3].recipient == "+447700900123"
    assert pdus[2].validity == timedelta(days=1)  # AT+CSMP vp 167
    # Listing marked "two" read: stat 0 is empty now, 1 has both received ones.
    assert run(modem, b"AT+CMGL=0\r") == b"\r\nOK\r\n"
    assert [h for h in responses(run(modem, b"AT+CMGL=1\r")) if h.startswith("+CMGL")] == [
        heads[0],
        heads[1].replace("+CMGL: 1,0", "+CMGL: 1,1"),
    ]
    assert len(responses(run(modem, b"AT+CMGL=2\r"))) == 3
    assert len(responses(run(modem, b"AT+CMGL=3\r"))) == 3


def test_cmgl_default_is_unread_and_marks_read() -> None:
    modem = pdu_modem()
    modem.deliver_sms("000", "hello", timestamp=WHEN)
    modem.data_to_send()
    expected = b"\r\n+CMGL: 0,0,,20\r\n" + HELLO_PDU.encode() + b"\r\n\r\nOK\r\n"
    assert run(modem, b"AT+CMGL\r") == expected
    assert run(modem, b"AT+CMGL\r") == b"\r\nOK\r\n"
    assert modem.storages["SM"].get(0) is not None
    assert modem.storages["SM"].get(0).status is Status.REC_READ  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b'AT+CMGL="ALL"\r', b"\r\n+CMS ERROR: 304\r\n"),
        (b'AT+CMGL="REC UNREAD"\r', b"\r\n+CMS ERROR: 304\r\n"),
        (b'AT+CMGL="4"\r', b"\r\n+CMS ERROR: 304\r\n"),
        (b"AT+CMGL=5\r", b"\r\n+CMS ERROR: 304\r\n"),
        (b"AT+CMGL=ALL\r", b"\r\n+CMS ERROR: 304\r\n"),
        (b"AT+CMGL=\r", b"\r\n+CMS ERROR: 304\r\n"),
        (b"AT+CMGL=?\r", b"\r\n+CMGL: (0-4)\r\n\r\nOK\r\n"),
    ],
)
def test_cmgl_pdu_mode_refuses_text_mode_stats(line: bytes, expected: bytes) -> None:
    modem = pdu_modem()
    modem.deliver_sms("000", "x", timestamp=WHEN)
    modem.data_to_send()
    assert run(modem, line) == expected


def test_text_mode_refuses_numeric_stat_and_cmee_2_names_304() -> None:
    modem = pdu_modem()
    assert run(modem, b"AT+CMGF=1\r") == b"\r\nOK\r\n"
    assert run(modem, b"AT+CMGL=4\r") == b"\r\n+CMS ERROR: 305\r\n"
    assert run(modem, b"AT+CMGF=0;+CMEE=2\r") == b"\r\nOK\r\n"
    assert run(modem, b'AT+CMGL="ALL"\r') == b"\r\n+CMS ERROR: invalid PDU mode parameter\r\n"


def test_message_without_a_pdu_is_cms_300_and_stays_unread() -> None:
    modem = pdu_modem()
    modem.deliver_sms("000", "x" * 200, timestamp=WHEN)  # fine in text mode only
    modem.data_to_send()
    assert run(modem, b"AT+CMGR=0\r") == b"\r\n+CMS ERROR: 300\r\n"
    assert run(modem, b"AT+CMGL=4\r") == b"\r\n+CMS ERROR: 300\r\n"
    assert modem.storages["SM"].list(Status.REC_UNREAD) != []
    assert run(modem, b"AT+CMGF=1;+CMGR=0\r").endswith(b"x" * 200 + b"\r\n\r\nOK\r\n")


# ---------------------------------------------------------------- sending: CMGS


def test_cmgs_exact_bytes_and_sent_record() -> None:
    modem = pdu_modem()
    pdu_hex, length = encode_submit("000", "pong: 42", reference=7)
    assert run(modem, f"AT+CMGS={length}\r".encode()) == b"\r\n> "
    assert modem.state is InputState.SMS_PROMPT
    assert run(modem, pdu_hex.encode() + b"\x1a") == b"\r\n+CMGS: 0\r\n\r\nOK\r\n"
    assert run(modem, b"AT+CMGS=%d\r" % length + pdu_hex.lower().encode() + b"\x1a") == (
        b"\r\n> \r\n+CMGS: 1\r\n\r\nOK\r\n"
    )
    assert [(s.destination, s.text, s.reference, s.dcs, s.concat) for s in modem.sent] == [
        ("000", "pong: 42", 0, 0, None),
        ("000", "pong: 42", 1, 0, None),
    ]


def test_cmgs_echo_smsc_prefix_ucs2_and_concat() -> None:
    modem = EmulatedModem()  # echo on
    run(modem, b"AT+CMGF=0\r")
    part = Concat(9, 2, 1)
    pdu_hex, length = encode_submit("+447700900123", "☃ snow", smsc="+447937405250", concat=part)
    body = pdu_hex[:20].encode() + b"\r" + pdu_hex[20:].encode()  # a CR re-prompts
    assert run(modem, f"AT+CMGS={length}\r".encode()) == f"AT+CMGS={length}\r\r\n> ".encode()
    assert run(modem, body + b"\x1a") == (
        pdu_hex[:20].encode() + b"\r\n> " + pdu_hex[20:].encode() + b"\r\n+CMGS: 0\r\n\r\nOK\r\n"
    )
    assert modem.sent[0].destination == "+447700900123" and modem.sent[0].text == "☃ snow"
    assert modem.sent[0].dcs == 8 and modem.sent[0].concat == part


@pytest.mark.parametrize(
    "body",
    [
        "zz",  # not hex
        "0",  # odd number of digits
        "",  # nothing
        HELLO_PDU,  # an SMS-DELIVER, not a SUBMIT
        encode_submit("000", "hi")[0] + "00",  # octets after the user data
        encode_submit("000", "hi")[0][:-2],  # truncated
        "00" + "31" + "00" + "0AD0" + "C8329BFD0E01" + "0000FF0568656C6C6F",  # alphanumeric DA
    ],
)
def test_cmgs_malformed_pdu_is_304_and_nothing_is_sent(body: str) -> None:
    modem = pdu_modem()
    length = max(1, len(body) // 2 - 1)
    assert submit(modem, length, body) == b"\r\n> \r\n+CMS ERROR: 304\r\n"
    assert modem.sent == [] and modem.state is InputState.COMMAND
    assert run(modem, b"AT\r") == b"\r\nOK\r\n"


@pytest.mark.parametrize("delta", [-1, 1, 100])
def test_cmgs_length_mismatch_is_304(delta: int) -> None:
    modem = pdu_modem()
    pdu_hex, length = encode_submit("000", "hello")
    assert submit(modem, length + delta, pdu_hex) == b"\r\n> \r\n+CMS ERROR: 304\r\n"
    assert modem.sent == []


@pytest.mark.parametrize(
    "line", [b'AT+CMGS="000"\r', b"AT+CMGS=0\r", b"AT+CMGS=165\r", b"AT+CMGS=\r", b"AT+CMGS=1,2\r"]
)
def test_cmgs_bad_length_parameter_gets_no_prompt(line: bytes) -> None:
    modem = pdu_modem()
    out = run(modem, line)
    assert out in (b"\r\n+CMS ERROR: 304\r\n", b"\r\nERROR\r\n")
    assert modem.state is InputState.COMMAND


def test_cmgs_escape_cancels_and_overlong_body_is_304() -> None:
    modem = pdu_modem()
    assert run(modem, b"AT+CMGS=20\r0011\x1b") == b"\r\n> \r\nOK\r\n"
    assert submit(modem, 20, "00" * 2000) == b"\r\n> \r\n+CMS ERROR: 304\r\n"
    assert modem.sent == []


class _Gateway:
    """Just enough of a SimulatedModem for Network.add_sim (no pty, no loop)."""

    def __init__(self, modem: EmulatedModem) -> None:
        self.modem = modem

    @property
    def registered(self) -> bool:
        return self.modem.registered

    def on_submit(self, decide: Any) -> None:
        self.modem.on_submit(decide)

    def add_change_listener(self, listener: Any) -> None:
        pass

    def on_acknowledged(self, listener: Any) -> None:
        pass


def test_refused_destination_is_cms_21_and_000_becomes_a_command() -> None:
    modem = pdu_modem()
    network = Network("AC" + "0" * 32, SidFactory(1))
    sim = network.add_sim(_Gateway(modem), "sim0")  # type: ignore[arg-type]
    pdu_hex, length = encode_submit("+447700900123", "hello there")
    assert submit(modem, length, pdu_hex) == b"\r\n> \r\n+CMS ERROR: 21\r\n"
    assert modem.sent == []
    pdu_hex, length = encode_submit("000", "status: ok")
    # The refused attempt used TP-MR 0, as in text mode.
    assert submit(modem, length, pdu_hex) == b"\r\n> \r\n+CMGS: 1\r\n\r\nOK\r\n"
    (command,) = network.commands(sim_sid=sim.sid)
    assert command.payload == "status: ok" and command.status is CommandStatus.RECEIVED


def test_send_fault_applies_in_pdu_mode() -> None:
    modem = pdu_modem()
    modem.fail_next_send(500, sent_anyway=True)
    pdu_hex, length = encode_submit("000", "x")
    assert submit(modem, length, pdu_hex) == b"\r\n> \r\n+CMS ERROR: 500\r\n"
    assert [s.text for s in modem.sent] == ["x"]


# ---------------------------------------------------------------- +CMT in PDU mode


def test_cmt_direct_delivery_in_pdu_mode() -> None:
    modem = pdu_modem()
    assert run(modem, b"AT+CNMI=2,2\r") == b"\r\nOK\r\n"
    assert modem.deliver_sms("000", "hello", timestamp=WHEN) == DIRECT_DELIVERY
    assert modem.data_to_send() == b"\r\n+CMT: ,20\r\n" + HELLO_PDU.encode() + b"\r\n"
    assert modem.storages["SM"].used == 0
    indexes = modem.deliver_concatenated("000", LONG, order=[1, 0, 2], timestamp=WHEN)
    assert indexes == [DIRECT_DELIVERY] * 3
    lines = responses(modem.data_to_send())
    assert [line.startswith("+CMT: ,") for line in lines] == [True, False] * 3
    pdus = [decode_pdu(line) for line in lines[1::2]]
    assert [p.concat.sequence for p in pdus if p.concat] == [2, 1, 3]


def test_cmt_held_while_in_the_pdu_prompt() -> None:
    modem = pdu_modem()
    run(modem, b"AT+CNMI=2,2\r")
    assert run(modem, b"AT+CMGS=20\r") == b"\r\n> "
    modem.deliver_sms("000", "hello", timestamp=WHEN)
    assert modem.data_to_send() == b""
    assert run(modem, b"\x1b") == b"\r\nOK\r\n\r\n+CMT: ,20\r\n" + HELLO_PDU.encode() + b"\r\n"


# ---------------------------------------------------------------- concatenated delivery


def read_all(modem: EmulatedModem, indexes: list[int | None]) -> list[Any]:
    return [read_pdu(modem, i)[1] for i in indexes if i is not None]


def reassemble(pdus: list[Any]) -> str:
    by_sequence = {p.concat.sequence: p.text for p in pdus}
    total = pdus[0].concat.total
    assert sorted(by_sequence) == list(range(1, total + 1))
    return "".join(by_sequence[n] for n in range(1, total + 1))


def test_concatenated_parts_in_given_order_each_with_cmti() -> None:
    modem = pdu_modem()
    indexes = modem.deliver_concatenated("000", LONG, order=[2, 0, 1], reference=42, timestamp=WHEN)
    assert indexes == [0, 1, 2]
    assert modem.data_to_send() == b"".join(b'\r\n+CMTI: "SM",%d\r\n' % i for i in indexes)
    pdus = read_all(modem, indexes)
    assert [p.concat for p in pdus] == [Concat(42, 3, 3), Concat(42, 3, 1), Concat(42, 3, 2)]
    assert all(p.sender == "000" and p.timestamp == WHEN for p in pdus)
    assert all(p.encoding is Encoding.GSM7 for p in pdus)
    assert reassemble(pdus) == LONG
    stored = modem.storages["SM"].get(0)
    assert stored is not None and stored.concat == Concat(42, 3, 3)


def test_duplicate_and_missing_parts_and_default_order() -> None:
    modem = pdu_modem()
    indexes = modem.deliver_concatenated("000", LONG, order=[0, 1, 1, 2], timestamp=WHEN)
    assert indexes == [0, 1, 2, 3]
    pdus = read_all(modem, indexes)
    assert [p.concat.sequence for p in pdus] == [1, 2, 2, 3]
    assert pdus[1].text == pdus[2].text
    assert reassemble(pdus) == LONG
    # Default order: all parts in sequence; a new reference each time.
    again = modem.deliver_concatenated("000", LONG, timestamp=WHEN)
    later = read_all(modem, again)
    assert [p.concat.sequence for p in later] == [1, 2, 3]
    assert later[0].concat.reference != pdus[0].concat.reference
    # A part left out: just fewer deliveries.
    assert len(modem.deliver_concatenated("000", LONG, order=[2], timestamp=WHEN)) == 1


def test_wide_reference_ucs2_and_short_text() -> None:
    modem = pdu_modem()
    text = "Snow ☃ and emoji 😀 " * 6
    indexes = modem.deliver_concatenated("+447700900123", text, reference=300, timestamp=WHEN)
    pdus = read_all(modem, indexes)
    assert all(p.concat.wide and p.concat.reference == 300 for p in pdus)
    assert all(p.encoding is Encoding.UCS2 for p in pdus)
    assert reassemble(pdus) == text
    (short,) = read_all(modem, modem.deliver_concatenated("000", "hi", timestamp=WHEN))
    assert short.concat == Concat(short.concat.reference, 1, 1) and short.text == "hi"


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"order": [3]}, "part 3"),
        ({"order": [-1]}, "part -1"),
        ({"reference": 70000}, "reference"),
        ({"reference": -1}, "reference"),
    ],
)
def test_bad_concatenated_delivery_delivers_nothing(kwargs: dict[str, Any], words: str) -> None:
    modem = pdu_modem()
    with pytest.raises(ValueError, match=words):
        modem.deliver_concatenated("000", LONG, timestamp=WHEN, **kwargs)
    with pytest.raises(ValueError):
        modem.deliver_concatenated("Way too long a sender", LONG, timestamp=WHEN)
    assert modem.storages["SM"].used == 0 and modem.data_to_send() == b""


def test_concatenated_delivery_into_a_nearly_full_memory() -> None:
    modem = EmulatedModem()
    modem.storages["SM"] = type(modem.storages["SM"])("SM", 2)
    assert modem.deliver_concatenated("000", LONG, timestamp=WHEN) == [0, 1, None]


@given(st.permutations(range(3)), st.integers(0, 255))
@settings(max_examples=50, deadline=None)
def test_any_order_reassembles(order: list[int], reference: int) -> None:
    modem = pdu_modem()
    indexes = modem.deliver_concatenated(
        "000", LONG, order=order, reference=reference, timestamp=WHEN
    )
    pdus = read_all(modem, indexes)
    assert [p.concat.sequence - 1 for p in pdus] == list(order)
    assert {p.concat.reference for p in pdus} == {reference}
    assert reassemble(pdus) == LONG


# ---------------------------------------------------------------- text mode of a concatenated part


def test_text_mode_shows_a_part_with_udhi_and_hex_user_data() -> None:
    modem = pdu_modem()
    modem.deliver_concatenated("000", LONG, order=[1], reference=7, timestamp=WHEN)
    modem.data_to_send()
    _, pdu = read_pdu(modem, 0)
    run(modem, b"AT+CMGF=1;+CSDH=1\r")
    head, body, ok = responses(run(modem, b"AT+CMGR=0\r"))
    assert ok == "OK"
    assert head.startswith('+CMGR: "REC READ","000",,"26/11/25,10:00:00+04",129,68,0,0,')
    ud = bytes.fromhex(body)
    assert ud[:6] == bytes([5, 0, 3, 7, 3, 2])  # UDHL, IEI 00, length 3, ref 7, 3 parts, #2
    assert head.endswith(f",{len(ud)}")
    # The hex is TP-UD as in the PDU: re-wrapping it as a DELIVER decodes to the part.
    deliver = "00" + "44038100F0000062115201000040" + f"{153 + 7:02X}" + body
    assert decode_pdu(deliver).text == pdu.text
    head, body, ok = responses(run(modem, b'AT+CMGL="ALL"\r'))
    assert head.endswith(f",129,{len(ud)}") and bytes.fromhex(body) == ud


# ---------------------------------------------------------------- robustness


SCRIPT = (
    b"ATE1\rAT+CMGF=0\rAT+CMGL=4\rAT+CMGR=0\rAT+CMGR=1\r"
    + b"AT+CMGS=%d\r\n" % encode_submit("000", "pong")[1]
    + encode_submit("000", "pong")[0].encode()
    + b'\x1aAT+CMGS=9\r00\x1aAT+CMGS=20\rno\x1bAT+CMGL="ALL"\rAT+CMGD=,4\rATI\r'
)


def transcript(chunks: list[bytes]) -> tuple[bytes, list[SentSms]]:
    modem = EmulatedModem()
    modem.deliver_sms("000", "stored", timestamp=WHEN)
    modem.deliver_concatenated("000", LONG, order=[1], reference=1, timestamp=WHEN)
    out = modem.data_to_send()
    for chunk in chunks:
        modem.feed(chunk)
        out += modem.data_to_send()
    return out, list(modem.sent)


@st.composite
def chunked(draw: st.DrawFn, data: bytes) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=20)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def test_script_transcript_is_as_expected() -> None:
    out, sent = transcript([SCRIPT])
    assert out.count(b"+CMGL: ") == 2 and b"+CMGS: 0\r\n" in out
    assert out.count(b"+CMS ERROR: 304") == 2  # the bad PDU and the "ALL" listing
    assert [(s.destination, s.text) for s in sent] == [("000", "pong")]


@given(chunked(SCRIPT))
@settings(max_examples=200, deadline=None)
def test_any_chunking_gives_same_output(chunks: list[bytes]) -> None:
    out, sent = transcript(chunks)
    expected_out, expected_sent = transcript([SCRIPT])
    assert out == expected_out
    assert [(s.destination, s.text) for s in sent] == [
        (s.destination, s.text) for s in expected_sent
    ]


@given(st.lists(st.binary(max_size=64), max_size=20))
@settings(max_examples=300, deadline=None)
def test_random_bytes_in_pdu_mode_never_raise(chunks: list[bytes]) -> None:
    modem = pdu_modem()
    modem.deliver_concatenated("000", LONG, timestamp=WHEN)
    modem.feed(b"AT+CMGS=20\r")
    for chunk in chunks:
        modem.feed(chunk)
        modem.data_to_send()
    modem.feed(b"\x1b\rAT+CMGL=4\r")
    modem.deliver_sms("000", "still alive")
    assert b"+CMTI" in modem.data_to_send()


@given(st.binary(min_size=0, max_size=180), st.integers(1, 164))
@settings(max_examples=300, deadline=None)
def test_random_pdus_are_sent_or_304(octets: bytes, length: int) -> None:
    modem = pdu_modem()
    out = submit(modem, length, octets.hex())
    assert out in (b"\r\n> \r\n+CMGS: 0\r\n\r\nOK\r\n", b"\r\n> \r\n+CMS ERROR: 304\r\n")
    assert (out.endswith(b"OK\r\n")) == (len(modem.sent) == 1)
    assert modem.state is InputState.COMMAND
