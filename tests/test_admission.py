"""Only ``000``, by type as well as by digits (issue 12): :mod:`device.admission`, and the
spoofing forms delivered by hostsim to the agent in PDU and in text mode.

Sources: 3GPP TS 23.040 §9.1.2.5 (type of number: 000 unknown, 001 international, 010
national, 011 network specific, 100 subscriber, 101 alphanumeric, 110 abbreviated, 111
reserved); 3GPP TS 27.005 §3.1 (``<oa>`` "converted to characters of the currently selected
TE character set", ``<tooa>`` the type-of-address octet, shown under ``AT+CSDH=1``); gammu
libgammu/phone/at/atgen.c ``ATGEN_DecodeText``, which has to guess whether a phone number
printed under UCS2 is hex or plain — the ambiguity a spoofer uses.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from harness import Line
from test_agent import WAIT, Rig, rig

from device.admission import refusal
from device.journal import InboxState
from device.modem.messages import StoredSms
from device.modem.modes import addresses_converted
from device.sms.charset import Charset
from device.sms.textmode import MessageStatus
from hostsim.modem.settings import ModemConfig, Quirk

WHEN = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def _sms(sender: str, sender_type: int | None = None, wire: str | None = None) -> StoredSms:
    return StoredSms("SM", 1, MessageStatus.REC_UNREAD, sender, WHEN, "ping",
                     sender_type=sender_type, sender_wire=wire)  # fmt: skip


@pytest.mark.parametrize("toa", [None, 0x81, 0x80, 0xB1, 0xE1])
def test_short_code_types_are_admitted(toa: int | None) -> None:
    """Unknown (0), network specific (3) and abbreviated (6) are how a short code is typed;
    None: text mode without ``<tooa>``, where only digits and wire form can be checked."""
    assert refusal(_sms("000", toa), ("000",), Charset.UCS2) is None


@pytest.mark.parametrize(
    ("toa", "kind"),
    [(0xD0, "alphanumeric"), (0xA1, "national"), (0xC1, "subscriber"), (0xF1, "reserved"),
     (0x91, "international")],
)  # fmt: skip
def test_other_types_of_000_are_refused(toa: int, kind: str) -> None:
    """Alphanumeric "000" is text any aggregator lets a sender choose; a national or
    subscriber 000 is another number than the short code (no prefix, 23.040 §9.1.2.5)."""
    reason = refusal(_sms("000", toa), ("000",), Charset.UCS2)
    assert reason is not None and kind in reason


def test_international_entries_need_the_international_type() -> None:
    assert refusal(_sms("+4915112345", 0x91), ("+4915112345",), Charset.UCS2) is None
    assert refusal(_sms("+4915112345", 0x81), ("+4915112345",), Charset.UCS2) is not None


def test_digits_are_still_compared() -> None:
    reason = refusal(_sms("0000", 0x81), ("000",), Charset.UCS2)
    assert reason == "sender '0000' is not allowed"


@pytest.mark.parametrize(
    ("wire", "charset", "admitted"),
    [
        ("003000300030", Charset.UCS2, True),
        ("003000300030".lower(), Charset.UCS2, True),  # hex digits in any case
        ("000", Charset.UCS2, False),  # plain where UCS2 hex was agreed
        ("000", Charset.IRA, True),
        ("003000300030", Charset.IRA, False),  # hex where the module prints plainly
        ("", Charset.UCS2, False),  # the field could not be found again
    ],
)
def test_text_mode_wire_form_must_be_the_agreed_one(
    wire: str, charset: Charset, admitted: bool
) -> None:
    assert (refusal(_sms("000", 0x81, wire), ("000",), charset) is None) is admitted


# --------------------------------------------------------------------------- through hostsim


@pytest.mark.parametrize("mode", ["pdu", "text"])
@pytest.mark.parametrize(("toa", "kind"), [(0xD0, "alphanumeric"), (0xA1, "national")])
async def test_typed_000_is_refused_end_to_end(
    tmp_path: Path, line: Line, mode: str, toa: int, kind: str
) -> None:
    """hostsim delivers "000" typed alphanumeric / national (TP-OA's type in PDU mode,
    ``<tooa>`` under ``AT+CSDH=1`` in text mode): journaled REFUSED with its type, never
    run; a genuine 000 after it runs."""
    async with rig(tmp_path, line, mode=mode) as r:
        r.gw.deliver("000", "ping: spoof", sender_type=toa)
        await r.gw.wait_until(lambda m: m.storages["SM"].used == 0, WAIT)
        await r.gw.wait_until(lambda _: len(r.journal.inbox()) == 1, WAIT)
        (row,) = r.journal.inbox()
        assert row.state is InboxState.REFUSED and row.sender == "000"
        assert row.sender_type == toa and row.error is not None and kind in row.error
        r.gw.deliver("000", "ping: genuine")
        await r.gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        assert [s.text for s in r.gw.sent] == ["pong: genuine"]
        assert r.journal.inbox()[1].sender_type == 0x81


async def test_number_whose_hex_reads_000_is_refused_in_text_mode(
    tmp_path: Path, line: Line
) -> None:
    """The phone number 003000300030 (digits that look like UCS2 hex for "000"): a module
    under UCS2 prints it as the hex of its digits, which reads back as 003000300030."""
    async with rig(tmp_path, line, mode="text") as r:
        r.gw.deliver("003000300030", "ping: spoof")
        await r.gw.wait_until(lambda _: len(r.journal.inbox()) == 1, WAIT)
        (row,) = r.journal.inbox()
        assert row.state is InboxState.REFUSED and row.sender == "003000300030"
        assert r.gw.sent == []


async def test_plain_000_under_ucs2_is_refused_in_text_mode(tmp_path: Path, line: Line) -> None:
    """A ``+CMT`` whose ``<oa>`` is a plain ``000`` although ``AT+CSCS="UCS2"`` was agreed
    (27.005 §3.4.1 layout with the ``AT+CSDH=1`` fields; the body "ping: plain" in UCS2):
    the character set did not say how to read it, so it is refused, and the same message
    with the sender in UCS2 hex runs."""
    body = "ping: plain".encode("utf-16-be").hex().upper()
    header = '"26/11/25,10:00:00+00",129,4,0,8,"002B0031",145,11'
    async with rig(tmp_path, line, mode="text") as r:
        r.gw.inject(f'\r\n+CMT: "000",,{header}\r\n{body}\r\n'.encode())
        await r.gw.wait_until(lambda _: len(r.journal.inbox()) == 1, WAIT)
        (row,) = r.journal.inbox()
        assert row.state is InboxState.REFUSED and row.error is not None
        assert "printed as '000'" in row.error
        r.gw.inject(f'\r\n+CMT: "003000300030",,{header}\r\n{body}\r\n'.encode())
        await r.gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        assert [s.text for s in r.gw.sent] == ["pong: plain"]


async def test_a_spoofed_part_never_joins_the_genuine_message(tmp_path: Path, line: Line) -> None:
    """Parts are held by sender, reference and number (23.040 §9.2.3.24.1). A part from
    alphanumeric "000" with the genuine message's reference is journaled REFUSED on its
    own, not held: it can neither fill the genuine message's slot nor take its place."""
    genuine = "ping: " + "g" * 200
    spoof = "ping: " + "s" * 200
    async with rig(tmp_path, line, mode="pdu") as r:
        r.gw.deliver_concatenated("000", spoof, order=[0], reference=42, sender_type=0xD0)
        r.gw.deliver_concatenated("000", genuine, order=[1, 0], reference=42)
        await r.gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        await r.gw.wait_until(lambda _: len(r.journal.inbox()) == 2, WAIT)
        refused, ran = r.journal.inbox()
        assert refused.state is InboxState.REFUSED and refused.concat == "42/2/1"
        assert refused.sender_type == 0xD0 and spoof.startswith(refused.text)
        assert ran.state is InboxState.DONE and ran.text == genuine


# --------------------------------------------------------------------------- plain-printing modules
#
# 27.005 §3.1: ``<oa>`` is "converted to characters of the currently selected TE character
# set"; §3.3.1: ``<sca>`` is a string of the same kind. gammu's ``ATGEN_DecodeText``
# (libgammu/phone/at/atgen.c) guesses per number whether a UCS2 phone number is hex or
# plain because modules do both; the agent asks the module once, through ``AT+CSCA?``.


@pytest.mark.parametrize(
    ("values", "charset", "converted"),
    [
        (['"002B003400340037003900330037",145'], Charset.UCS2, True),  # hex, like <oa>
        (['"002b00340034",145'], Charset.UCS2, True),  # hex digits in any case
        (['"+447937405250",145'], Charset.UCS2, False),  # plain where UCS2 was agreed
        (['"+447937405250"'], Charset.UCS2, False),  # no <tosca>
        (['"+447937405250",145'], Charset.IRA, True),  # plain and converted coincide
        (['"00310032",129'], Charset.UCS2, None),  # hex of 12 or the number 00310032
        (['"",129'], Charset.UCS2, None),  # no SCA on the SIM
        (["+447937405250,145"], Charset.UCS2, None),  # not a string
        (['"hello",145'], Charset.UCS2, None),  # neither
        ([], Charset.UCS2, None),  # no +CSCA line
    ],
)
def test_set_up_decision_from_the_sca(
    values: list[str], charset: Charset, converted: bool | None
) -> None:
    assert addresses_converted(values, charset) is converted


@pytest.mark.parametrize(
    ("sender", "wire", "converted", "admitted"),
    [
        ("000", "000", False, True),  # a plain module's genuine 000
        ("003000300030", "003000300030", False, False),  # its twelve-digit number
        ("000", "003000300030", False, False),  # hex from a plain module: not its form
        ("000", "003000300030", True, True),  # a converting module's 000
        ("000", "000", True, False),
        ("000", "003000300030", None, False),  # unknown: all digits, reads both ways
        ("000", "000", None, False),  # unknown: still not UCS2's form
        ("+49", "002B00340039", None, True),  # unknown but unambiguous: 'B' is not a digit
    ],
)
def test_wire_form_follows_how_the_module_prints(
    sender: str, wire: str, converted: bool | None, admitted: bool
) -> None:
    allowed = ("000", "+49")
    reason = refusal(_sms(sender, None, wire), allowed, Charset.UCS2, converted)
    assert (reason is None) is admitted


PLAIN = ModemConfig(quirks=frozenset({Quirk.PLAIN_ADDRESSES}))


def _learnt(r: Rig) -> bool | None:
    modem = r.agent.modem
    assert modem is not None
    return modem.mode.addresses_converted


async def test_plain_printing_module_refuses_003000300030_and_admits_000(
    tmp_path: Path, line: Line
) -> None:
    """hostsim with :attr:`Quirk.PLAIN_ADDRESSES` prints ``<oa>`` and ``<sca>`` plainly
    under ``AT+CSCS="UCS2"``: the set-up learns it from ``AT+CSCA?``, the number
    003000300030 is journaled as itself and refused, a genuine 000 runs."""
    async with rig(tmp_path, line, mode="text", modem_config=PLAIN) as r:
        assert _learnt(r) is False
        r.gw.deliver("003000300030", "ping: spoof")
        await r.gw.wait_until(lambda _: len(r.journal.inbox()) == 1, WAIT)
        (row,) = r.journal.inbox()
        assert row.state is InboxState.REFUSED and row.sender == "003000300030"
        r.gw.deliver("000", "ping: genuine")
        await r.gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        assert [s.text for s in r.gw.sent] == ["pong: genuine"]
        assert r.journal.inbox()[1].sender == "000"


async def test_converting_module_is_learnt_as_converting(tmp_path: Path, line: Line) -> None:
    """hostsim's default ``AT+CSCA?`` follows ``AT+CSCS`` (27.005 §3.3.1): converted, so
    the cases above (hex 000 runs, the number 003000300030 is refused) keep today's rule."""
    async with rig(tmp_path, line, mode="text") as r:
        assert _learnt(r) is True
