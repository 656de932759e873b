"""hostsim.modem: the 27.005 SMS command set beyond what the agent uses (prompt editing,
CSMS/CNMA, CMGW/CMSS, status reports, CNMI buffering)."""

from __future__ import annotations

import asyncio
import itertools
import logging
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from device.sms.pdu import PduKind, decode_pdu, encode_deliver, encode_submit
from hostsim.cloud import network
from hostsim.cloud.network import Status as CommandStatus
from hostsim.modem import AWAITING_ACK, DIRECT_DELIVERY, EmulatedModem
from hostsim.modem.settings import ModemConfig, RegStat
from hostsim.modem.storage import Status
from hostsim.pty import SimulatedModem
from hostsim.sim import HostSim

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


# ---------------------------------------------------------------- AT+CSMS, AT+CNMA


def test_csms_forms() -> None:
    modem = text_modem()
    assert run(modem, b"AT+CSMS=?\r") == b"\r\n+CSMS: (0,1)\r\n\r\nOK\r\n"
    assert run(modem, b"AT+CSMS?\r") == b"\r\n+CSMS: 0,1,1,1\r\n\r\nOK\r\n"
    assert run(modem, b"AT+CSMS=1\r") == b"\r\n+CSMS: 1,1,1\r\n\r\nOK\r\n"
    assert run(modem, b"AT+CSMS?\r") == b"\r\n+CSMS: 1,1,1,1\r\n\r\nOK\r\n"
    assert run(modem, b"AT+CSMS=2\r") == b"\r\n+CMS ERROR: 302\r\n"
    assert run(modem, b"AT+CSMS\r") == b"\r\nERROR\r\n"
    run(modem, b"ATZ\r")
    assert modem.settings.csms == 0


def test_cnma_is_needed_only_under_service_1_with_cmt() -> None:
    modem = text_modem()
    run(modem, b"AT+CNMI=2,2\r")
    assert modem.deliver_sms("000", "a", timestamp=WHEN) == DIRECT_DELIVERY
    modem.data_to_send()
    assert run(modem, b"AT+CNMA\r") == b"\r\n+CMS ERROR: 340\r\n"
    run(modem, b"AT+CSMS=1;+CNMI=2,1\r")
    assert modem.deliver_sms("000", "b", timestamp=WHEN) == 0  # stored: +CMTI needs no ack
    assert not modem.awaiting_ack


def test_cnma_acknowledges_and_blocks_the_next_cmt_until_then() -> None:
    modem = text_modem()
    settled: list[bool] = []
    modem.on_acknowledged(settled.append)
    run(modem, b"AT+CSMS=1;+CNMI=2,2\r")
    assert modem.deliver_sms("000", "first", timestamp=WHEN) == AWAITING_ACK
    assert modem.data_to_send().startswith(b'\r\n+CMT: "000",,')
    assert modem.deliver_sms("000", "second", timestamp=WHEN) is None
    assert modem.data_to_send() == b""
    assert run(modem, b"AT+CNMA\r") == b"\r\nOK\r\n"
    assert settled == [True] and not modem.awaiting_ack
    assert modem.deliver_sms("000", "second", timestamp=WHEN) == AWAITING_ACK
    assert run(modem, b"AT+CNMA=1\r").endswith(b"\r\nERROR\r\n")  # text mode: bare form only
    assert run(modem, b"AT+CNMA=?\r").endswith(b"\r\nOK\r\n")


def test_cnma_timeout_disables_routing_and_keeps_the_message_unacknowledged() -> None:
    modem = text_modem()
    settled: list[bool] = []
    modem.on_acknowledged(settled.append)
    run(modem, b"AT+CSMS=1;+CNMI=2,2,0,1\r")
    modem.deliver_sms("000", "lost", timestamp=WHEN)
    modem.data_to_send()
    modem.ack_timeout()
    assert settled == [False]
    assert [m.text for m in modem.unacknowledged] == ["lost"]
    assert run(modem, b"AT+CNMI?\r") == b"\r\n+CNMI: 2,0,0,0,0\r\n\r\nOK\r\n"
    assert modem.deliver_sms("000", "again", timestamp=WHEN) == 0  # stored, no indication
    assert modem.data_to_send() == b""
    modem.ack_timeout()  # nothing waits: nothing happens
    assert settled == [False]


def test_cnma_in_pdu_mode_ack_and_negative_ack() -> None:
    modem = EmulatedModem()
    run(modem, b"ATE0;+CSMS=1;+CNMI=2,2\r")
    settled: list[bool] = []
    modem.on_acknowledged(settled.append)
    assert run(modem, b"AT+CNMA=?\r") == b"\r\n+CNMA: (0-2)\r\n\r\nOK\r\n"
    modem.deliver_sms("000", "x", timestamp=WHEN)
    assert modem.data_to_send().startswith(b"\r\n+CMT: ,")
    assert run(modem, b"AT+CNMA=2\r") == b"\r\nOK\r\n"
    modem.deliver_sms("000", "y", timestamp=WHEN)
    assert run(modem, b"AT+CNMA=0,5\r").endswith(b"+CMS ERROR: 304\r\n")
    assert run(modem, b"AT+CNMA=0,0\r").endswith(b"\r\nOK\r\n")
    assert settled == [False, True]
    assert [m.text for m in modem.unacknowledged] == ["x"]


def test_reboot_leaves_a_waiting_cmt_unacknowledged() -> None:
    modem = text_modem()
    run(modem, b"AT+CSMS=1;+CNMI=2,2\r")
    modem.deliver_sms("000", "x", timestamp=WHEN)
    modem.reboot()
    assert not modem.awaiting_ack and [m.text for m in modem.unacknowledged] == ["x"]


def test_network_and_modem_agree_on_awaiting_ack() -> None:
    assert AWAITING_ACK == network.AWAITING_ACK


async def _cmt_network(ack_timeout: float) -> tuple[HostSim, SimulatedModem]:
    sim = HostSim(config=ModemConfig(ack_timeout=ack_timeout), retry_initial=0.01)
    await sim.start()
    gw = sim[0]
    gw.modem.feed(b"ATE0;+CMGF=1;+CSMS=1;+CNMI=2,2\r")
    return sim, gw


async def test_network_marks_delivered_only_after_cnma() -> None:
    sim, gw = await _cmt_network(30.0)
    try:
        command = sim.network.create(sim.sims[0], "status")
        await gw.wait_until(lambda m: m.awaiting_ack, timeout=5)
        assert sim.network.get(command.sid).status is CommandStatus.SENT  # type: ignore[union-attr]
        second = sim.network.create(sim.sims[0], "second")
        await asyncio.sleep(0.05)  # the network must not push a second +CMT meanwhile
        assert sim.network.get(second.sid).status is CommandStatus.QUEUED  # type: ignore[union-attr]
        gw.modem.feed(b"AT+CNMA\r")
        assert sim.network.get(command.sid).status is CommandStatus.DELIVERED  # type: ignore[union-attr]
        await gw.wait_until(lambda m: m.awaiting_ack, timeout=5)
        gw.modem.feed(b"AT+CNMA\r")
        assert sim.network.get(second.sid).status is CommandStatus.DELIVERED  # type: ignore[union-attr]
    finally:
        await sim.close()


async def test_network_redelivers_what_was_not_acknowledged() -> None:
    sim, gw = await _cmt_network(0.05)
    try:
        command = sim.network.create(sim.sims[0], "status")
        await gw.wait_until(lambda m: bool(m.unacknowledged), timeout=5)
        # After the timeout the module stops routing to the TE: the network's
        # second attempt is stored, silently, and is then delivered.
        await gw.wait_until(lambda m: m.storages["SM"].used == 1, timeout=5)
        await asyncio.sleep(0)
        assert sim.network.get(command.sid).status is CommandStatus.DELIVERED  # type: ignore[union-attr]
        assert gw.modem.storages["SM"].get(0).text == "status"  # type: ignore[union-attr]
        assert gw.modem.settings.cnmi.mt == 0
    finally:
        await sim.close()


async def test_network_redelivers_after_a_negative_ack() -> None:
    sim, gw = await _cmt_network(30.0)
    try:
        gw.modem.feed(b"AT+CMGF=0\r")
        command = sim.network.create(sim.sims[0], "status")
        await gw.wait_until(lambda m: m.awaiting_ack, timeout=5)
        gw.modem.feed(b"AT+CNMA=2\r")
        await gw.wait_until(lambda m: m.awaiting_ack, timeout=5)  # shown again
        gw.modem.feed(b"AT+CNMA=1\r")
        assert sim.network.get(command.sid).status is CommandStatus.DELIVERED  # type: ignore[union-attr]
        assert len(gw.modem.unacknowledged) == 1
    finally:
        await sim.close()


# ---------------------------------------------------------------- AT+CMGW, AT+CMSS


def test_cmgw_text_mode_forms_and_statuses() -> None:
    modem = text_modem()
    assert run(modem, b'AT+CMGW="000"\rdraft\x1a') == b"\r\n> \r\n+CMGW: 0\r\n\r\nOK\r\n"
    assert run(modem, b'AT+CMGW="+447700900123",145,"STO SENT"\rsent\x1a').endswith(
        b"\r\n+CMGW: 1\r\n\r\nOK\r\n"
    )
    assert run(modem, b'AT+CMGW="+447700900123",145,"REC READ"\rin\x1a').endswith(
        b"+CMGW: 2\r\n\r\nOK\r\n"
    )
    assert run(modem, b"AT+CMGW\rno address\x1a").endswith(b"+CMGW: 3\r\n\r\nOK\r\n")
    assert run(modem, b'AT+CMGW="000"\rcancelled\x1b') == b"\r\n> \r\nOK\r\n"
    assert run(modem, b'AT+CMGW="000",129,"BOGUS"\r') == b"\r\n+CMS ERROR: 305\r\n"
    assert run(modem, b'AT+CMGW="000",129,2\r') == b"\r\n+CMS ERROR: 305\r\n"
    assert run(modem, b"AT+CMGW=000\r") == b"\r\n+CMS ERROR: 305\r\n"
    listed = run(modem, b'AT+CMGL="ALL"\r')
    assert b'+CMGL: 0,"STO UNSENT","000",,\r\ndraft\r\n' in listed
    assert b'+CMGL: 1,"STO SENT","+447700900123",,\r\nsent\r\n' in listed
    assert b'+CMGL: 2,"REC READ","+447700900123",,"' in listed
    assert b'+CMGL: 3,"STO UNSENT","",,\r\nno address\r\n' in listed
    assert modem.sent == []


def test_cmgw_writes_to_mem2_and_memory_full_is_322() -> None:
    modem = text_modem(storages=(("SM", 1), ("ME", 5)))
    run(modem, b'AT+CPMS="SM","ME","SM"\r')
    assert run(modem, b'AT+CMGW="000"\ra\x1a').endswith(b"+CMGW: 0\r\n\r\nOK\r\n")
    assert modem.storages["ME"].used == 1 and modem.storages["SM"].used == 0
    run(modem, b'AT+CPMS="SM","SM","SM"\rAT+CMGW="000"\rb\x1a')
    assert run(modem, b'AT+CMGW="000"\rc\x1a') == b"\r\n> \r\n+CMS ERROR: 322\r\n"


def test_cmgw_pdu_mode_submit_and_deliver() -> None:
    modem = EmulatedModem()
    run(modem, b"ATE0\r")
    submit_hex, length = encode_submit("000", "hi", status_report=True)
    out = run(modem, f"AT+CMGW={length}\r{submit_hex}\x1a".encode())
    assert out == b"\r\n> \r\n+CMGW: 0\r\n\r\nOK\r\n"
    stored = modem.storages["SM"].get(0)
    assert stored is not None and (stored.status, stored.text, stored.srr) == (
        Status.STO_UNSENT,
        "hi",
        True,
    )
    deliver_hex = encode_deliver("+447700900123", "in", timestamp=WHEN)
    deliver_length = len(bytes.fromhex(deliver_hex)) - 1
    out = run(modem, f"AT+CMGW={deliver_length},1\r{deliver_hex}\x1a".encode())
    assert out.endswith(b"+CMGW: 1\r\n\r\nOK\r\n")
    assert modem.storages["SM"].get(1).address == "+447700900123"  # type: ignore[union-attr]
    # A DELIVER with a stored-MO status (and the other way round) is refused.
    assert run(modem, f"AT+CMGW={deliver_length},2\r{deliver_hex}\x1a".encode()).endswith(
        b"+CMS ERROR: 304\r\n"
    )
    assert run(modem, f"AT+CMGW={length},0\r{submit_hex}\x1a".encode()).endswith(
        b"+CMS ERROR: 304\r\n"
    )
    assert run(modem, f"AT+CMGW={length},4\r".encode()) == b"\r\n+CMS ERROR: 304\r\n"
    assert run(modem, b'AT+CMGW="000"\r') == b"\r\n+CMS ERROR: 304\r\n"
    # Read back as the PDU it was written with (TP-SRR kept).
    pdu = run(modem, b"AT+CMGR=0\r").split(b"\r\n")[2].decode()
    assert decode_pdu(pdu).status_report


def test_cmss_sends_from_storage_with_optional_destination() -> None:
    modem = text_modem()
    run(modem, b'AT+CMGW="000"\rfrom storage\x1a')
    assert run(modem, b"AT+CMSS=0\r") == b"\r\n+CMSS: 0\r\n\r\nOK\r\n"
    assert [(s.destination, s.text, s.reference) for s in modem.sent] == [
        ("000", "from storage", 0)
    ]
    assert modem.storages["SM"].get(0).status is Status.STO_SENT  # type: ignore[union-attr]
    assert run(modem, b'AT+CMSS=0,"+447700900123",145\r') == b"\r\n+CMSS: 1\r\n\r\nOK\r\n"
    assert modem.sent[-1].destination == "+447700900123"
    assert run(modem, b"AT+CMSS=5\r") == b"\r\n+CMS ERROR: 321\r\n"
    assert run(modem, b"AT+CMSS=99999\r") == b"\r\n+CMS ERROR: 321\r\n"
    assert run(modem, b"AT+CMSS=0,000\r") == b"\r\n+CMS ERROR: 305\r\n"
    run(modem, b"AT+CMGW\rnowhere\x1a")
    assert run(modem, b"AT+CMSS=1\r") == b"\r\n+CMS ERROR: 305\r\n"
    assert run(modem, b"AT+CMSS=?\r") == b"\r\nOK\r\n"


def test_cmss_failure_keeps_sto_unsent() -> None:
    modem = text_modem()
    run(modem, b'AT+CMGW="000"\rx\x1a')
    modem.fail_next_send(331)
    assert run(modem, b"AT+CMSS=0\r") == b"\r\n+CMS ERROR: 331\r\n"
    assert modem.storages["SM"].get(0).status is Status.STO_UNSENT  # type: ignore[union-attr]
    assert modem.sent == []


async def test_cmgw_cmss_round_trip_through_the_api_network() -> None:
    async with HostSim() as sim:
        gw = sim[0]
        gw.modem.feed(b"ATE0;+CMGF=1\r")
        gw.modem.feed(b'AT+CMGW="000"\rstatus: ok\x1a')
        gw.modem.feed(b'AT+CMGW="+447700900123"\rnot for us\x1a')
        assert gw.modem.storages["SM"].used == 2
        gw.modem.feed(b"AT+CMSS=0\r")
        gw.modem.feed(b"AT+CMSS=1\r")  # refused by the network: CMS 21
        assert [s.text for s in gw.sent] == ["status: ok"]
        statuses = [gw.modem.storages["SM"].get(i).status for i in (0, 1)]  # type: ignore[union-attr]
        assert statuses == [Status.STO_SENT, Status.STO_UNSENT]
        (command,) = sim.network.commands(direction=network.Direction.FROM_SIM)
        assert (command.payload, command.status) == ("status: ok", CommandStatus.RECEIVED)


# ---------------------------------------------------------------- status reports


def test_status_report_direct_in_text_mode_after_the_final_result() -> None:
    modem = text_modem()
    run(modem, b"AT+CSMP=49,167,0,0;+CNMI=2,1,0,1,0\r")
    out = run(modem, b'AT+CMGS="000"\rreport me\x1a')
    head, cds = out.split(b"\r\n\r\nOK\r\n")
    assert head == b"\r\n> \r\n+CMGS: 0"
    sent = modem.sent[0]
    scts = sent.timestamp.strftime("%y/%m/%d,%H:%M:%S+00").encode()
    assert cds == b'\r\n+CDS: 6,0,"000",129,"' + scts + b'","' + scts + b'",0\r\n'
    assert sent.srr


def test_no_status_report_without_srr_or_with_ds_0() -> None:
    modem = text_modem()
    run(modem, b"AT+CNMI=2,1,0,1,0\r")
    assert run(modem, b'AT+CMGS="000"\rx\x1a') == b"\r\n> \r\n+CMGS: 0\r\n\r\nOK\r\n"
    run(modem, b"AT+CSMP=49;+CNMI=2,1,0,0,0\r")
    assert run(modem, b'AT+CMGS="000"\rx\x1a') == b"\r\n> \r\n+CMGS: 1\r\n\r\nOK\r\n"
    assert modem.deliver_status_report("000", 1) is None


def test_status_report_stored_with_cdsi_and_read_back() -> None:
    modem = text_modem()
    run(modem, b"AT+CSMP=49;+CNMI=2,1,0,2,0\r")
    run(modem, b'AT+CMGW="000"\rstored\x1a')
    assert run(modem, b"AT+CMSS=0\r") == b'\r\n+CMSS: 0\r\n\r\nOK\r\n\r\n+CDSI: "SM",1\r\n'
    when = modem.sent[0].timestamp.strftime("%y/%m/%d,%H:%M:%S+00")
    fields = f'6,0,"000",129,"{when}","{when}",0'
    assert run(modem, b"AT+CMGR=1\r") == f'\r\n+CMGR: "REC UNREAD",{fields}\r\n\r\nOK\r\n'.encode()
    listed = run(modem, b'AT+CMGL="ALL"\r')
    assert f'\r\n+CMGL: 1,"REC READ",{fields}\r\n'.encode() in listed
    assert run(modem, b"AT+CMSS=1\r") == b"\r\n+CMS ERROR: 321\r\n"  # a report is not sendable


def test_status_report_in_pdu_mode_direct_and_stored() -> None:
    modem = EmulatedModem()
    run(modem, b"ATE0;+CNMI=2,1,0,1,0\r")
    submit_hex, length = encode_submit("000", "pdu", status_report=True)
    out = run(modem, f"AT+CMGS={length}\r{submit_hex}\x1a".encode())
    lines = out.split(b"\r\n")
    assert lines[2:5] == [b"+CMGS: 0", b"", b"OK"]
    assert lines[6].startswith(b"+CDS: ")
    report = decode_pdu(lines[7].decode())
    assert (report.kind, report.reference, report.recipient, report.status) == (
        PduKind.STATUS_REPORT,
        0,
        "000",
        0,
    )
    assert int(lines[6][6:]) == report.tpdu_length
    run(modem, b"AT+CNMI=2,1,0,2,0\r")
    assert modem.deliver_status_report("+447700900123", 7, status=0x41, timestamp=WHEN) == 0
    assert modem.data_to_send() == b'\r\n+CDSI: "SM",0\r\n'
    out = run(modem, b"AT+CMGR=0\r").split(b"\r\n")
    assert out[1].startswith(b"+CMGR: 0,,")
    stored = decode_pdu(out[2].decode())
    assert (stored.reference, stored.recipient, stored.status, stored.timestamp) == (
        7,
        "+447700900123",
        0x41,
        WHEN,
    )


def test_status_report_direct_waits_for_cnma_under_service_1() -> None:
    modem = text_modem()
    run(modem, b"AT+CSMS=1;+CNMI=2,1,0,1,0\r")
    assert modem.deliver_status_report("000", 3, timestamp=WHEN) == AWAITING_ACK
    assert modem.data_to_send().startswith(b"\r\n+CDS: 6,3,")
    assert modem.deliver_status_report("000", 4, timestamp=WHEN) is None
    assert run(modem, b"AT+CNMA\r") == b"\r\nOK\r\n"
    assert [m.report.reference for m in modem.unacknowledged if m.report] == [4]


# ---------------------------------------------------------------- AT+CNMI buffering


def test_mode_0_keeps_indications_in_the_module_until_mode_2() -> None:
    modem = text_modem()
    run(modem, b"AT+CNMI=0,1\r")
    modem.deliver_sms("000", "a", timestamp=WHEN)
    modem.deliver_sms("000", "b", timestamp=WHEN)
    assert modem.data_to_send() == b""
    assert run(modem, b"AT\r") == b"\r\nOK\r\n"  # still kept
    assert run(modem, b"AT+CNMI=2,1,0,0,0\r") == (
        b'\r\nOK\r\n\r\n+CMTI: "SM",0\r\n\r\n+CMTI: "SM",1\r\n'
    )


def test_mode_0_buffer_cleared_with_bfr_1() -> None:
    modem = text_modem()
    run(modem, b"AT+CNMI=0,1\r")
    modem.deliver_sms("000", "a", timestamp=WHEN)
    assert run(modem, b"AT+CNMI=1,1,0,0,1\r") == b"\r\nOK\r\n"
    assert run(modem, b"AT+CNMI=2,1,0,0,0\r") == b"\r\nOK\r\n"
    assert modem.storages["SM"].used == 1  # the message itself is stored


def test_mode_0_does_not_keep_registration_codes() -> None:
    modem = text_modem()
    run(modem, b"AT+CNMI=0,1;+CREG=1\r")
    modem.set_registration(RegStat.HOME)
    assert modem.data_to_send() == b"\r\n+CREG: 1\r\n"


def test_a_burst_during_the_prompt_flushes_back_to_back_after_the_result() -> None:
    modem = text_modem()
    run(modem, b'AT+CMGS="000"\r')
    for text in ("one", "two", "three"):
        modem.deliver_sms("000", text, timestamp=WHEN)
    assert modem.data_to_send() == b""
    assert run(modem, b"reply\x1a") == (
        b'\r\n+CMGS: 0\r\n\r\nOK\r\n\r\n+CMTI: "SM",0\r\n\r\n+CMTI: "SM",1\r\n\r\n+CMTI: "SM",2\r\n'
    )


def test_indications_wait_for_the_final_result_of_a_command_in_progress() -> None:
    modem = text_modem()
    run(modem, b'AT+CNMI=1,1,0,2;+CSMP=49\rAT+CMGW="000"\rx\x1a')
    # The status report of AT+CMSS arrives while the command runs: after its OK,
    # in mode 1 as in mode 2.
    assert run(modem, b"AT+CMSS=0;+CPMS?\r").endswith(b'\r\nOK\r\n\r\n+CDSI: "SM",1\r\n')


_LINES = [
    b"AT+CMGF=0",
    b"AT+CMGF=1",
    b"AT+CSMS=1",
    b"AT+CSMS?",
    b"AT+CNMA",
    b"AT+CNMA=2",
    b"AT+CNMA=?",
    b"AT+CNMI=0,2,0,1,0",
    b"AT+CNMI=2,2,0,2,0",
    b"AT+CNMI=1,1,0,1,1",
    b"AT+CSMP=49",
    b'AT+CMGW="000"',
    b"AT+CMGW=11,2",
    b"AT+CMGW",
    b"AT+CMSS=0",
    b'AT+CMSS=1,"000"',
    b'AT+CMGL="ALL"',
    b"AT+CMGL=4",
    b"AT+CMGR=0",
    b"AT+CMGR=1",
    b"AT+CMGD=0,4",
    b"AT+CSMS=0;+CNMA",
]
#: Whole command lines, and what may follow inside a prompt.
_TOKENS = st.one_of(
    st.sampled_from([line + b"\r" for line in _LINES]),
    st.sampled_from([b"\x08", b"\x1a", b"\x1b", b"000100038100F0000002E834", b"hi", b"\r"]),
)


@given(st.lists(_TOKENS, max_size=50), st.lists(st.integers(0, 3), max_size=10))
@settings(max_examples=300, deadline=None)
def test_sms_command_fuzz_never_raises(tokens: list[bytes], events: list[int]) -> None:
    """Random SMS traffic: no handler bug (feed logs those and answers ERROR), no raise."""
    bugs = _Bugs()
    logger = logging.getLogger("hostsim.modem")
    logger.addHandler(bugs)
    try:
        modem = EmulatedModem()
        for i, token in enumerate(tokens):
            modem.feed(token)
            if i < len(events):
                event = events[i]
                if event == 0:
                    modem.deliver_sms("000", "x", timestamp=WHEN)
                elif event == 1:
                    modem.deliver_status_report("000", i, timestamp=WHEN)
                elif event == 2:
                    modem.ack_timeout()
                else:
                    modem.reboot()
            modem.data_to_send()
    finally:
        logger.removeHandler(bugs)
    assert bugs.records == []


class _Bugs(logging.Handler):
    """Collects the ``LOGGER.exception`` records of handler failures."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage())


def test_stored_status_report_listed_in_pdu_mode() -> None:
    modem = EmulatedModem()
    run(modem, b"ATE0;+CNMI=2,1,0,2,0\r")
    modem.deliver_status_report("000", 9, timestamp=WHEN, discharge=WHEN)
    modem.data_to_send()
    lines = run(modem, b"AT+CMGL=4\r").split(b"\r\n")
    assert lines[1].startswith(b"+CMGL: 0,0,,")
    report = decode_pdu(lines[2].decode())
    assert (report.kind, report.reference, report.discharge_time) == (
        PduKind.STATUS_REPORT,
        9,
        WHEN,
    )
    assert int(lines[1].rsplit(b",", 1)[1]) == report.tpdu_length
    assert run(modem, b"AT+CMGL=1\r").startswith(b"\r\n+CMGL: 0,1,,")  # now read
