"""The outbox: sending queued replies, and what to do when a send fails.

A reply stays in the journal's outbox until the modem answers ``+CMGS: <mr>``
and OK. When a send fails, :func:`decide` — a pure function of the error, the
row and the :class:`SendPolicy` — says what the failure was and whether the
reply is tried again:

- a permanent cause (``+CMS ERROR`` 21 "short message transfer rejected" and the
  other RP-causes and TP-Failure-Causes of :data:`~device.at.errors.PERMANENT_CMS`:
  the destination, the subscription or the message is refused) is final at the
  first attempt, whatever ``max_attempts`` says: the same SMS would be refused again;
- any other definite error (``+CMS ERROR`` the module is sure about, ``+CME ERROR``) is
  retried with capped exponential backoff (:mod:`device.retry`; ``outbox.retry_initial`` …
  ``outbox.retry_max``), at most ``outbox.max_attempts`` times in all;
- an uncertain outcome (a timeout, a lost port, an answer that cannot be read,
  ``+CMS ERROR: 500`` — which some modules answer although the SMS went out —
  or ``OK`` without a reference) is tried at most :data:`MAX_UNCERTAIN_ATTEMPTS`
  times, because each retry may duplicate the SMS;
- no network (``+CMS ERROR`` 330/331/332) is not the message's fault: it is
  retried for as long as the reply is valid (:data:`REPLY_VALIDITY`, the
  validity period set with ``AT+CSMP``), whatever ``max_attempts`` says.

A timeout or a lost port also ends the pass (the error is re-raised after the
attempt is journaled): the line is not to be trusted until the supervisor has
looked at it.

Nothing is sent that the journal could not record. While the journal's last write
failed (:attr:`Journal.health <device.journal.store.JournalStore.health>`: a full
disk, an I/O error) a send is preceded by a probe write, and none goes out until one
succeeds. A send whose outcome (``sent``, or the failed attempt) cannot be committed
is held in memory as :class:`Unrecorded` and the journal error re-raised (the
supervisor suspends, then retries): every later pass first records what is held,
and sends nothing before that succeeded -- so the row, still ``queued`` in the file,
is not sent again. At a stop what is held is tried once more; only a stop while it still
cannot be recorded loses that (logged at ERROR with the reply and its reference: the next
start sends it again). A stop never interrupts a send: the agent asks the outbox to stop
between rows, so an ``AT+CMGS`` in flight gets its answer (or its timeout) and its
outcome is recorded before the agent exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from device.at.errors import PERMANENT_CMS, CmsError, CommandError, ModemError, ResponseError
from device.config import Config
from device.crash import CrashPoints
from device.errors import JournalError
from device.journal import OutboxRow
from device.journal.worker import AsyncJournal
from device.modem import Modem
from device.observer import AgentObserver, Counters, notify
from device.retry import Backoff

LOGGER = logging.getLogger(__name__)

#: Attempts when the outcome of a send is unknown: each retry may duplicate it.
MAX_UNCERTAIN_ATTEMPTS = 2
#: ``+CMS ERROR`` codes after which the SMS may nevertheless have gone out.
UNCERTAIN_CMS = frozenset({500})
#: ``+CMS ERROR`` codes that say the network is not there (SMSC unknown, no network
#: service, network timeout): retried for as long as the reply is valid.
NETWORK_CMS = frozenset({330, 331, 332})
#: How long a reply stays worth sending (the validity period set with AT+CSMP).
REPLY_VALIDITY = timedelta(hours=24)


class SendFailure(enum.Enum):
    """What a failed send says about the SMS."""

    DEFINITE = "definite"  # it did not go out
    UNCERTAIN = "uncertain"  # it may have gone out: a retry may duplicate it
    NO_NETWORK = "no_network"  # it did not go out, and the network is not there
    PERMANENT = "permanent"  # it did not go out, and the same SMS never will


class Verdict(enum.Enum):
    """What becomes of the reply after a failed send."""

    RETRY = "retry"  # it did not go out: try again after ``retry_in``
    UNCERTAIN = "uncertain"  # it may have gone out: try again after ``retry_in`` all the same
    FINAL = "final"  # no more attempts: the row is FAILED


@dataclass(frozen=True, slots=True)
class SendPolicy:
    """How often (``max_attempts`` in all), and how far apart (``retry``), a failed
    send is tried again."""

    max_attempts: int
    retry: Backoff
    max_uncertain_attempts: int = MAX_UNCERTAIN_ATTEMPTS
    validity: timedelta = REPLY_VALIDITY

    @classmethod
    def from_config(cls, config: Config) -> SendPolicy:
        return cls(
            config.send_max_attempts, Backoff(config.send_retry_initial, config.send_retry_max)
        )


@dataclass(frozen=True, slots=True)
class SendDecision:
    """The outcome of :func:`decide`: ``attempt`` of ``limit`` (for the log line),
    the delay before the next attempt, and the error text to journal."""

    failure: SendFailure
    verdict: Verdict
    attempt: int
    limit: int
    retry_in: float
    error: str

    @property
    def final(self) -> bool:
        return self.verdict is Verdict.FINAL

    @property
    def uncertain(self) -> bool:
        return self.failure is SendFailure.UNCERTAIN


def classify(error: ModemError) -> SendFailure:
    """The kind of a send failure: only a ``+CMS``/``+CME`` error the module is sure
    about is definite; any other modem error (timeout, lost port, garbled answer)
    leaves the outcome unknown."""
    if isinstance(error, CmsError) and error.code in NETWORK_CMS:
        return SendFailure.NO_NETWORK
    if isinstance(error, CmsError) and error.code in PERMANENT_CMS:
        return SendFailure.PERMANENT
    if isinstance(error, CmsError) and error.code in UNCERTAIN_CMS:
        return SendFailure.UNCERTAIN
    if isinstance(error, CommandError):
        return SendFailure.DEFINITE
    return SendFailure.UNCERTAIN


def decide(error: ModemError, row: OutboxRow, policy: SendPolicy, now: datetime) -> SendDecision:
    """What to do after ``row``'s send failed with ``error`` at ``now`` (pure).

    ``row.attempts`` counts the attempts before this one. A no-network failure is
    final only once the reply is older than ``policy.validity``; its ``limit`` is
    then reported one past the attempt while it is still retried. A permanent one
    is final at once: its ``limit`` is this attempt, its error says "permanent".
    """
    failure = classify(error)
    limit = policy.max_attempts
    if failure is SendFailure.UNCERTAIN:
        limit = min(limit, policy.max_uncertain_attempts)
    attempt = row.attempts + 1
    final = attempt >= limit
    if failure is SendFailure.NO_NETWORK:
        final = now - row.created_at > policy.validity
        limit = max(limit, attempt + (0 if final else 1))
    text = str(error)
    if failure is SendFailure.PERMANENT:
        final, limit, text = True, attempt, f"permanent: {text}"
    if failure is SendFailure.UNCERTAIN:
        text = f"outcome unknown: {text}"
        verdict = Verdict.FINAL if final else Verdict.UNCERTAIN
    else:
        verdict = Verdict.FINAL if final else Verdict.RETRY
    retry_in = policy.retry.delay(attempt)
    return SendDecision(failure, verdict, attempt, limit, retry_in, text)


@dataclass(frozen=True, slots=True)
class Unrecorded:
    """A send whose outcome the journal could not commit: ``mr`` when it went out,
    else ``decision`` (how it failed). The row is still ``queued`` in the file."""

    row: OutboxRow
    mr: int | None = None
    decision: SendDecision | None = None

    def describe(self) -> str:
        if self.mr is not None:
            return f"sent (reference {self.mr})"
        return f"failed ({self.decision.error if self.decision else 'unknown'})"


class Outbox:
    """Sends what the journal holds due, one row at a time, oldest first."""

    def __init__(
        self,
        journal: AsyncJournal,
        policy: SendPolicy,
        *,
        counters: Counters,
        observer: AgentObserver,
        crash: CrashPoints,
        stop: asyncio.Event,
        send_timeout: float,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        """``on_error`` hears each failed send as one line (the agent's last error)."""
        self.journal = journal
        self.policy = policy
        self._counters = counters
        self._observer = observer
        self._crash = crash
        self._stop = stop
        #: Seconds one AT+CMGS may take; a reload sets it for the next send.
        self.send_timeout = send_timeout
        self._on_error = on_error or (lambda text: None)
        #: Outcomes sent or failed but not yet committed, by outbox id (see the module).
        self.unrecorded: dict[int, Unrecorded] = {}

    async def flush(self, modem: Modem, before_send: Callable[[], None]) -> None:
        """Send every due row. ``before_send`` runs before each send and may raise
        to stop the pass (a restart seen); a timeout or a lost port is journaled as
        an uncertain attempt and re-raised; other failures go on to the next row.

        First records what is held :attr:`unrecorded`; a JournalError there, or from
        the probe while the journal cannot record, ends the pass before any send."""
        await self._record_held()
        for row in await self.journal.pending_outbox():
            if self._stop.is_set():
                return
            before_send()
            if self.journal.health.condition is not None:
                await self.journal.probe()  # raises while the journal still cannot record
            try:
                mr = await modem.send_text(row.destination, row.text, timeout=self.send_timeout)
            except (CommandError, ResponseError) as exc:
                await self._failed(row, exc)
                continue
            except ModemError as exc:
                # Timed out or the port went away in the middle: it may have gone out.
                await self._failed(row, exc)
                raise
            self._crash.reached("after_send")
            await self._record(Unrecorded(row, mr=mr))

    async def record_held_at_stop(self) -> None:
        """One more try, as the agent stops, to record what is held :attr:`unrecorded`
        (the journal may write again by now); what still cannot be stays held, for the
        agent to log as a reply that the next start sends again."""
        with contextlib.suppress(JournalError):
            await self._record_held()

    async def _record_held(self) -> None:
        for held in list(self.unrecorded.values()):
            await self._record(held)
            LOGGER.warning("outbox %d: %s recorded at last", held.row.id, held.describe())

    async def _record(self, outcome: Unrecorded) -> None:
        """Commit ``outcome``; on a JournalError hold it in :attr:`unrecorded` and re-raise."""
        row = outcome.row
        try:
            if outcome.mr is not None:
                sent = await self.journal.mark_sent(row.id, outcome.mr)
            elif outcome.decision is not None:
                failed = await self.journal.mark_send_failed(
                    row.id,
                    outcome.decision.error,
                    final=outcome.decision.final,
                    retry_in=outcome.decision.retry_in,
                    uncertain=outcome.decision.uncertain,
                )
        except JournalError as exc:
            if row.id not in self.unrecorded:
                LOGGER.error(
                    "outbox %d: %s to %s, but the journal cannot record it (%s); held in"
                    " memory, nothing more is sent until it is recorded",
                    row.id, outcome.describe(), row.destination, exc,
                )  # fmt: skip
            self.unrecorded[row.id] = outcome
            raise
        self.unrecorded.pop(row.id, None)
        if outcome.mr is not None:
            self._counters.sent += 1
            LOGGER.info("outbox %d: sent to %s (reference %d)", row.id, row.destination, outcome.mr)
            notify(self._observer.sent, sent)
        elif outcome.decision is not None:
            notify(self._observer.send_failed, failed)

    async def _failed(self, row: OutboxRow, error: ModemError) -> None:
        decision = decide(error, row, self.policy, datetime.now(UTC))
        self._counters.send_failures += 1
        LOGGER.error(
            "outbox %d: send to %s failed (attempt %d of %d%s): %s",
            row.id,
            row.destination,
            decision.attempt,
            decision.limit,
            ", giving up" if decision.final else f", next in {decision.retry_in:g} s",
            decision.error,
        )
        self._on_error(f"send to {row.destination} failed: {decision.error}")
        await self._record(Unrecorded(row, decision=decision))

    async def wait(self) -> float:
        """Seconds until a queued reply is due again (infinity when none waits).

        A retry never waits longer than ``outbox.retry_max``: when the wall clock
        jumped backwards, the schedule is pulled in rather than waited out.
        """
        due = await self.journal.next_outbox_due()
        if due is None:
            return float("inf")
        now = datetime.now(UTC)
        wait = (due - now).total_seconds()
        if wait > self.policy.retry.maximum:
            latest = now + timedelta(seconds=self.policy.retry.maximum)
            moved = await self.journal.reschedule_outbox(latest)
            LOGGER.warning("outbox: %d retry(ies) scheduled past the maximum delay (clock "
                           "moved back?); due now", moved)  # fmt: skip
            return 0.0
        return max(0.0, wait)


__all__ = [
    "MAX_UNCERTAIN_ATTEMPTS",
    "NETWORK_CMS",
    "PERMANENT_CMS",
    "REPLY_VALIDITY",
    "UNCERTAIN_CMS",
    "Outbox",
    "SendDecision",
    "SendFailure",
    "SendPolicy",
    "Unrecorded",
    "Verdict",
    "classify",
    "decide",
]
