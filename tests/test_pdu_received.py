"""Stored PDUs as real modules print them, read by :func:`device.sms.pdu.decode_received`
and :func:`device.modem.messages.from_pdu` (issue 12, "Read what modules print (PDU mode)").

Vectors are real PDUs from other projects' test suites, cited in each test: python-gsmmodem
``test/test_pdu.py`` (``TestSmsPdu.test_decode``) and gammu ``tests/at-sms/*.dump``.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from harness import Line
from hypothesis import given
from hypothesis import strategies as st
from test_agent import WAIT, rig

from device.journal import InboxState
from device.modem.messages import StoredSms, UndecodableSms, from_pdu
from device.sms.pdu import PduError, decode_pdu, decode_received, encode_deliver
from device.sms.textmode import MessageStatus
from hostsim.modem.storage import Status, StoredMessage

try:
    from smspdudecoder.easy import read_incoming_sms
except ImportError:  # pragma: no cover - the oracle is in the `test` extra
    read_incoming_sms = None

#: python-gsmmodem test/test_pdu.py, TestSmsPdu.test_decode, second vector (an SMS-DELIVER).
GSMMODEM_DELIVER = (
    "07915892000000F0040B915892214365F700007040213252242331493A283D0795C3F33C88FE06C9CB"
    "6132885EC6D341EDF27C1E3E97E7207B3A0C0A5241E377BB1D7693E72E"
)
GSMMODEM_TEXT = "It is easy to read text messages via AT commands."
#: gammu tests/at-sms/41.dump: ``+CMGR: 0,,93`` (REC UNREAD) but the first octet 0x41 says
#: SMS-SUBMIT, and the user data is 79 of the 82 octets TP-UDL needs.
GAMMU_41 = (
    "0041000b817777777777f700005d060504157800004de1135b851283d4e2afdd8bd576f3b2dc5e96f7dc61"
    "7a788e2ebbd761173c2ca7e777f0b79cdecbe5663bf8bdc74e57cdcfbcf5b97387dbe59e1be00ed3c373"
    "74d9bd0ebbe06139"
)
#: python-gsmmodem test_decode: the status report vector (TP-MTI 2).
GSMMODEM_STATUS_REPORT = "0006D60B911326880736F4111011719551401110117195714000"

WHEN = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)

needs_oracle = pytest.mark.skipif(read_incoming_sms is None, reason="smspdudecoder not installed")


def test_a_clean_pdu_has_no_notes() -> None:
    received = decode_received(GSMMODEM_DELIVER)
    assert received is not None
    assert received.notes == () and not received.truncated
    assert received.sms == decode_pdu(GSMMODEM_DELIVER)
    assert received.sms.text == GSMMODEM_TEXT


@pytest.mark.parametrize("tail", ["FF", "FF" * 40, "0000", "89FF"])
def test_octets_after_the_user_data_are_ignored(tail: str) -> None:
    """gammu libgammu/phone/at/at-sms.c ATGEN_DecodePDUMessage: "Assuming broken phone which
    pads SMS data with FF" (its tests/at-sms/32.dump is such a record), and data starting
    with 0x89 after the message (tests/at-sms/39.dump). The strict decoder refuses them."""
    with pytest.raises(PduError):
        decode_pdu(GSMMODEM_DELIVER + tail)
    received = decode_received(GSMMODEM_DELIVER + tail)
    assert received is not None and not received.truncated
    assert received.sms.text == GSMMODEM_TEXT and received.sms.sender == "+85291234567"
    (note,) = received.notes
    assert f"{len(tail) // 2} octet(s) after the user data ignored" in note
    assert ("FF padding" in note) == (set(tail) == {"F"})


@needs_oracle
def test_oracle_reads_the_padded_pdu_alike() -> None:
    """smspdudecoder reads TP-UDL characters and ignores what follows, as we now do."""
    assert read_incoming_sms is not None
    padded = GSMMODEM_DELIVER + "FF" * 12
    received = decode_received(padded)
    assert received is not None
    theirs = read_incoming_sms(padded)
    assert (theirs["sender"], theirs["content"]) == (received.sms.sender, received.sms.text)


@pytest.mark.parametrize("cut", [1, 5, 20])
def test_truncated_user_data_keeps_what_is_complete(cut: int) -> None:
    """python-gsmmodem test_decode's UCS-2 vector "User data length is invalid in this PDU
    (too long)" and gammu tests/at-sms/41.dump: real modules print user data shorter than
    TP-UDL. The complete septets are kept (smspdudecoder reads the same prefix)."""
    short = GSMMODEM_DELIVER[: -2 * cut]
    received = decode_received(short)
    assert received is not None and received.truncated
    assert GSMMODEM_TEXT.startswith(received.sms.text)
    assert len(received.sms.text) == (43 - cut) * 8 // 7  # TP-UD is 43 octets
    assert received.notes == (f"user data truncated: {43 - cut} of 43 octets",)
    if read_incoming_sms is not None:
        assert read_incoming_sms(short)["content"].startswith(received.sms.text)


def test_truncated_ucs2_drops_the_half_character() -> None:
    """UCS-2 cut in the middle of a code unit (python-gsmmodem's "too long" UCS-2 vector)."""
    full = encode_deliver("000", "日本語", timestamp=decode_pdu(GSMMODEM_DELIVER).timestamp)
    received = decode_received(full[:-2])
    assert received is not None and received.truncated and received.sms.text == "日本"


@pytest.mark.parametrize(
    ("dcs", "note"),
    [
        ("85", "reserved DCS 0x85 read as the GSM 7-bit alphabet"),  # coding group 1000
        ("0C", "reserved DCS 0x0C read as the GSM 7-bit alphabet"),  # alphabet 11
        ("F8", "reserved bit 3 of DCS 0xF8 ignored"),  # group 1111, bit 3 set
        ("C4", "reserved bit 2 of DCS 0xC4 ignored"),  # message waiting, bit 2 set
    ],
)
def test_reserved_dcs_is_read_as_23038_says_and_noted(dcs: str, note: str) -> None:
    """TS 23.038 §4: "Any reserved codings shall be assumed to be the GSM 7 bit default
    alphabet ... by a receiving entity"; reserved bits are ignored. (gammu's
    GSM_GetMessageCoding warns and reads them as 8-bit; smspdudecoder reads bits 3-2 in
    every group; python-gsmmodem reads every non-general group as GSM 7-bit: we follow
    the spec and say so in the journal.)"""
    vector = GSMMODEM_DELIVER.replace("F70000704021", f"F700{dcs}704021")
    received = decode_received(vector)
    assert received is not None
    assert received.sms.text == GSMMODEM_TEXT
    assert any(n.startswith(note) for n in received.notes)


def test_first_octet_saying_submit_is_read_as_deliver_when_stat_says_received() -> None:
    """A received message (``<stat>`` 0/1) whose TP-MTI says SMS-SUBMIT (TS 23.040 §9.2.3.1):
    the header's ``<stat>`` is trusted (issue 12), with a note."""
    vector = GSMMODEM_DELIVER.replace("F0040B91", "F0050B91")  # TP-MTI 01
    received = decode_received(vector)
    assert received is not None
    assert received.sms.text == GSMMODEM_TEXT and received.sms.sender == "+85291234567"
    assert "says SMS-SUBMIT" in received.notes[0]
    message = from_pdu("SM", 3, "+CMGR: 0,,67", MessageStatus.REC_UNREAD, vector)
    assert isinstance(message, StoredSms) and message.notes == received.notes


def test_a_submit_that_does_not_read_as_deliver_is_undecodable_not_skipped() -> None:
    """gammu tests/at-sms/41.dump: stat 0 (REC UNREAD), a SUBMIT layout. Before, from_pdu
    skipped it (left in storage, read again on every drain); now it is journaled
    undecodable with the raw PDU. It is never read as a SUBMIT: its destination would
    pass for a sender."""
    with pytest.raises(PduError, match="does not read as an SMS-DELIVER"):
        decode_received(GAMMU_41)
    message = from_pdu("SM", 1, "+CMGR: 0,,93", MessageStatus.REC_UNREAD, GAMMU_41)
    assert isinstance(message, UndecodableSms) and message.raw_body == GAMMU_41


def test_status_report_stays_in_storage() -> None:
    """python-gsmmodem's status report vector, listed as received (``+CDSI`` storage)."""
    assert decode_received(GSMMODEM_STATUS_REPORT) is None
    assert from_pdu("SM", 2, "+CMGL: 2,1,,26", MessageStatus.REC_READ,
                    GSMMODEM_STATUS_REPORT) is None  # fmt: skip


def test_from_pdu_carries_notes_type_and_truncation() -> None:
    message = from_pdu("SM", 4, "+CMGR: 1,,60", MessageStatus.REC_READ, GSMMODEM_DELIVER[:-4])
    assert isinstance(message, StoredSms)
    assert message.truncated and message.notes and message.sender_type == 0x91


@given(st.binary(max_size=200))
def test_random_octets_raise_only_pdu_error(raw: bytes) -> None:
    with contextlib.suppress(PduError):
        decode_received(raw)


@given(st.integers(0, 60), st.binary(max_size=60))
def test_any_cut_or_tail_of_a_real_pdu_raises_only_pdu_error(cut: int, tail: bytes) -> None:
    raw = bytes.fromhex(GSMMODEM_DELIVER)
    with contextlib.suppress(PduError):
        received = decode_received(raw[: len(raw) - cut] + tail)
        assert received is not None
        if cut == 0:
            assert received.sms.text == GSMMODEM_TEXT


# --------------------------------------------------------------------------- through the agent


def _ping_pdu() -> str:
    return encode_deliver("000", "ping: padded", timestamp=decode_pdu(GSMMODEM_DELIVER).timestamp)


async def test_padded_pdu_runs_and_truncated_pdu_never_does(tmp_path: Path, line: Line) -> None:
    """Direct deliveries (``+CMT: ,<length>`` then the PDU, 27.005 §3.4.1) as real modules
    print them: FF padding after the user data (gammu at-sms.c) runs, with a note in the
    journal; a user data cut short is journaled undecodable with what was complete (and
    a note), and never run."""
    padded = _ping_pdu() + "FF" * 16
    truncated = _ping_pdu()[:-6]
    async with rig(tmp_path, line, mode="pdu") as r:
        r.gw.inject(f"\r\n+CMT: ,{len(padded) // 2 - 1}\r\n{truncated}\r\n".encode())
        await r.gw.wait_until(lambda _: len(r.journal.inbox()) == 1, WAIT)
        r.gw.inject(f"\r\n+CMT: ,{len(padded) // 2 - 1}\r\n{padded}\r\n".encode())
        await r.gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        cut, ran = r.journal.inbox()
        assert cut.state is InboxState.UNDECODABLE and cut.error is not None
        assert "truncated" in cut.error and "ping: padded".startswith(cut.text)
        assert cut.notes and cut.notes[0].startswith("user data truncated")
        assert ran.state is InboxState.DONE and ran.notes == (
            "16 octet(s) after the user data ignored (FF padding)",
        )
        assert [s.text for s in r.gw.sent] == ["pong: padded"]


async def test_stored_padded_and_cut_pdus_from_hostsim(tmp_path: Path, line: Line) -> None:
    """hostsim prints stored PDUs with SIM-record ``FF`` padding (gammu tests/at-sms/32.dump)
    and cut short (gammu tests/at-sms/41.dump, 79 of 82 octets): read by ``+CMGR`` on the
    indication, the padded one runs, the cut one is journaled undecodable, never run."""
    async with rig(tmp_path, line, mode="pdu") as r:
        sm = r.gw.modem.storages["SM"]
        for text, extra in (("ping: cut", -3), ("ping: padded", 40)):
            message = StoredMessage(Status.REC_UNREAD, "000", text, WHEN, printed_extra=extra)
            r.gw.inject(f'\r\n+CMTI: "SM",{sm.store(message)}\r\n'.encode())
        await r.gw.wait_until(lambda m: len(m.sent) >= 1 and m.storages["SM"].used == 0, WAIT)
        await r.gw.wait_until(lambda _: len(r.journal.inbox()) == 2, WAIT)
        cut, ran = r.journal.inbox()
        assert (cut.state, ran.state) == (InboxState.UNDECODABLE, InboxState.DONE)
        assert cut.text == "ping:" and cut.notes == ("user data truncated: 5 of 8 octets",)
        assert ran.notes == ("40 octet(s) after the user data ignored (FF padding)",)
        assert [s.text for s in r.gw.sent] == ["pong: padded"]
