"""The outbox's decision after a failed send: a pure table of error x row x policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from device.at.errors import (
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


def test_validity_is_the_policys() -> None:
    short = SendPolicy(5, Backoff(1.0, 2.0), validity=timedelta(minutes=1))
    assert decide(CMS_331, row(0, timedelta(minutes=2)), short, NOW).final
    assert not decide(CMS_331, row(0, timedelta(seconds=30)), short, NOW).final
