"""The outbox's decision after a failed send: a pure table of error x row x policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device.at.codec import parse_final
from device.at.errors import (
    CMS_MEANINGS,
    PERMANENT_CMS,
    CmeError,
    CmsError,
    CommandError,
    CommandTimeout,
    ConnectionLost,
    ModemError,
    ResponseError,
    SmsInputCancelled,
)
from device.journal import OutboxRow, OutboxState
from device.outbox import SendFailure, SendPolicy, Verdict, decide
from device.retry import Backoff

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
POLICY = SendPolicy(max_attempts=5, retry=Backoff(10.0, 600.0))
ONE_TRY = SendPolicy(max_attempts=1, retry=Backoff(10.0, 600.0))


def row(attempts: int = 0, age: timedelta = timedelta(0)) -> OutboxRow:
    created = NOW - age
    return OutboxRow(1, None, "000", "pong", OutboxState.QUEUED, attempts, None, None,
                     created, created)  # fmt: skip


CMS_304 = CmsError("AT+CMGS", 304, "invalid PDU mode parameter")
CMS_500 = CmsError("AT+CMGS", 500, "unknown error")
CMS_331 = CmsError("AT+CMGS", 331, "no network service")
CMS_21 = CmsError("AT+CMGS", 21, "short message transfer rejected")
CMS_42 = CmsError("AT+CMGS", 42, "congestion")
CMS_196 = CmsError("AT+CMGS", 196, "destination SME barred")
CMS_192 = CmsError("AT+CMGS", 192, "SC busy")
CMS_UNNAMED_RP = CmsError("AT+CMGS", 60, "unknown error code")  # not in Table 8.4: as 41
CME_10 = CmeError("AT+CMGS", 10, "SIM not inserted")
ERROR = CommandError("AT+CMGS", None, "error")
STALE = timedelta(hours=25)  # older than the reply validity
TIMEOUT = CommandTimeout("AT+CMGS", 60.0)
LOST = ConnectionLost("port closed")
GARBLED = ResponseError("OK without +CMGS reference")
CANCELLED = SmsInputCancelled("no prompt")

CASES: list[tuple[ModemError, OutboxRow, SendPolicy, SendFailure, Verdict, int, float]] = [
    # error, row, policy -> failure, verdict, limit, retry_in
    (CMS_304, row(0), POLICY, SendFailure.DEFINITE, Verdict.RETRY, 5, 10.0),
    (CMS_304, row(3), POLICY, SendFailure.DEFINITE, Verdict.RETRY, 5, 80.0),
    (CMS_304, row(4), POLICY, SendFailure.DEFINITE, Verdict.FINAL, 5, 160.0),
    (CME_10, row(0), ONE_TRY, SendFailure.DEFINITE, Verdict.FINAL, 1, 10.0),
    (ERROR, row(9), POLICY, SendFailure.DEFINITE, Verdict.FINAL, 5, 600.0),
    (CMS_500, row(0), POLICY, SendFailure.UNCERTAIN, Verdict.UNCERTAIN, 2, 10.0),
    (CMS_500, row(1), POLICY, SendFailure.UNCERTAIN, Verdict.FINAL, 2, 20.0),
    (TIMEOUT, row(0), POLICY, SendFailure.UNCERTAIN, Verdict.UNCERTAIN, 2, 10.0),
    (TIMEOUT, row(0), ONE_TRY, SendFailure.UNCERTAIN, Verdict.FINAL, 1, 10.0),
    (LOST, row(1), POLICY, SendFailure.UNCERTAIN, Verdict.FINAL, 2, 20.0),
    (GARBLED, row(0), POLICY, SendFailure.UNCERTAIN, Verdict.UNCERTAIN, 2, 10.0),
    (CANCELLED, row(0), POLICY, SendFailure.UNCERTAIN, Verdict.UNCERTAIN, 2, 10.0),
    # no network: retried past max_attempts while the reply is valid, then final
    (CMS_331, row(0), POLICY, SendFailure.NO_NETWORK, Verdict.RETRY, 5, 10.0),
    (CMS_331, row(7), POLICY, SendFailure.NO_NETWORK, Verdict.RETRY, 9, 600.0),
    (CMS_331, row(0), ONE_TRY, SendFailure.NO_NETWORK, Verdict.RETRY, 2, 10.0),
    (CMS_331, row(7, STALE), POLICY, SendFailure.NO_NETWORK, Verdict.FINAL, 8, 600.0),
    (CMS_331, row(0, STALE), POLICY, SendFailure.NO_NETWORK, Verdict.FINAL, 5, 10.0),
    # permanent RP-causes / TP-Failure-Causes: final at the first attempt (limit: this one)
    (CMS_21, row(0), POLICY, SendFailure.PERMANENT, Verdict.FINAL, 1, 10.0),
    (CMS_21, row(1), POLICY, SendFailure.PERMANENT, Verdict.FINAL, 2, 20.0),  # after an uncertain
    (CMS_196, row(0), POLICY, SendFailure.PERMANENT, Verdict.FINAL, 1, 10.0),
    # temporary ones are retried as any definite error
    (CMS_42, row(0), POLICY, SendFailure.DEFINITE, Verdict.RETRY, 5, 10.0),
    (CMS_42, row(4), POLICY, SendFailure.DEFINITE, Verdict.FINAL, 5, 160.0),
    (CMS_192, row(0), POLICY, SendFailure.DEFINITE, Verdict.RETRY, 5, 10.0),
    (CMS_UNNAMED_RP, row(0), POLICY, SendFailure.DEFINITE, Verdict.RETRY, 5, 10.0),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case[0]!s:.40}-{case[1].attempts}")
def test_decision_table(
    case: tuple[ModemError, OutboxRow, SendPolicy, SendFailure, Verdict, int, float],
) -> None:
    error, outbox, policy, failure, verdict, limit, retry_in = case
    decision = decide(error, outbox, policy, NOW)
    assert (decision.failure, decision.verdict) == (failure, verdict)
    assert decision.attempt == outbox.attempts + 1
    assert (decision.limit, decision.retry_in) == (limit, retry_in)
    assert decision.final is (verdict is Verdict.FINAL)
    assert decision.uncertain is (failure is SendFailure.UNCERTAIN)


def test_uncertain_error_text_says_so() -> None:
    assert decide(TIMEOUT, row(), POLICY, NOW).error == f"outcome unknown: {TIMEOUT}"
    assert decide(CMS_304, row(), POLICY, NOW).error == str(CMS_304)
    assert decide(CMS_331, row(), POLICY, NOW).error == str(CMS_331)
    assert decide(CMS_21, row(), POLICY, NOW).error == f"permanent: {CMS_21}"


@given(
    code=st.sampled_from(sorted(PERMANENT_CMS)),
    attempts=st.integers(0, 50),
    max_attempts=st.integers(1, 50),
    age=st.integers(0, 48 * 3600),
)
def test_a_permanent_cause_is_final_whatever_the_policy(
    code: int, attempts: int, max_attempts: int, age: int
) -> None:
    """Any permanent ``+CMS ERROR`` ends the reply at the attempt it answers, whatever
    ``max_attempts``, the attempts before it and the reply's age."""
    error = CmsError("AT+CMGS", code, CMS_MEANINGS[code])
    policy = SendPolicy(max_attempts, Backoff(10.0, 600.0))
    decision = decide(error, row(attempts, timedelta(seconds=age)), policy, NOW)
    assert decision.failure is SendFailure.PERMANENT and decision.final
    assert decision.limit == decision.attempt == attempts + 1
    assert CMS_MEANINGS[code] in decision.error


@given(code=st.integers(0, 255).filter(lambda code: code not in PERMANENT_CMS))
def test_any_other_sms_cause_is_retried_at_first(code: int) -> None:
    """An RP-cause or TP-Failure-Cause not known to be permanent (temporary, reserved,
    application-specific) is retried as before: not final at the first of five."""
    decision = decide(CmsError("AT+CMGS", code, "x"), row(0), POLICY, NOW)
    assert decision.failure is SendFailure.DEFINITE and decision.verdict is Verdict.RETRY


def test_temporary_causes_are_those_24011_types_temporary() -> None:
    """TS 24.011 §8.2.5.4 Table 8.4 (part 3) types 38, 41, 42 and 47 "T" (temporary) and
    its other causes "P"; part 1 (MO transfer) lists 21 and treats an unlisted cause as
    41; 23.040 §9.2.3.22 names 0xC0 "SC busy" and 0xC5 "SM rejected-duplicate SM"."""
    assert {21, 1, 8, 10, 27, 28, 29, 30, 50, 69, 81, 95, 96, 97, 98, 99, 111, 127} <= PERMANENT_CMS
    assert not {38, 41, 42, 47} & PERMANENT_CMS
    assert 0xC5 in PERMANENT_CMS and 0xC0 not in PERMANENT_CMS
    assert not PERMANENT_CMS & {300, 304, 330, 331, 332, 500}  # the ME's own errors: as today


@pytest.mark.parametrize(
    ("line", "code", "meaning"),
    [
        ("+CMS ERROR: 21", 21, "short message transfer rejected"),  # AT+CMEE=1
        ("+CMS ERROR: Short message transfer rejected", 21, "Short message transfer rejected"),
        ("+CMS ERROR: 42", 42, "congestion"),
        ("+CMS ERROR: Congestion", 42, "Congestion"),
        ("+CMS ERROR: Destination out of order", 27, "Destination out of order"),  # Table 8.4
        ("+CMS ERROR: destination out of service", 27, "destination out of service"),  # E.2
        ("+CMS ERROR: 196", 196, "destination SME barred"),
        ("+CMS ERROR: SC busy", 192, "SC busy"),
        ("+CMS ERROR: 200", 200, "unknown error code"),  # reserved TP-FCS
    ],
)
def test_sms_causes_are_named_and_read_back_from_text(line: str, code: int, meaning: str) -> None:
    """27.005 §3.2.5: ``<err>`` 0…127 are 24.011 Annex E.2 RP-causes, 128…255 23.040
    §9.2.3.22 TP-Failure-Causes; a number gets its name, a verbose text (``AT+CMEE=2``,
    in Annex E.2's or Table 8.4's wording) its number."""
    final = parse_final(line)
    assert final is not None and (final.code, final.meaning) == (code, meaning)


def test_validity_is_the_policys() -> None:
    short = SendPolicy(5, Backoff(1.0, 2.0), validity=timedelta(minutes=1))
    assert decide(CMS_331, row(0, timedelta(minutes=2)), short, NOW).final
    assert not decide(CMS_331, row(0, timedelta(seconds=30)), short, NOW).final
