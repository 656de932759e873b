"""Durable commits on the path of one command (issue 14), counted by the journal itself.

The journal counts its own write transactions and which of them were synced
(:attr:`Journal.commit_counts`): a figure that does not depend on the machine. The
targets: at most two synced commits from ``+CMTI`` to ``AT+CMGS`` (the start of the run,
which also makes the received row durable, and the finish that queues the reply), at
most three per message in all, and the message deleted from the modem only after its
reply went out (reply before delete).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from harness import Line
from test_agent import WAIT, Recorder, rig

from device.journal import CommitCounts, InboxRow, InboxState, Journal, OutboxRow


class CountingRecorder(Recorder):
    """Takes the journal's counts when the reply is queued (just before ``AT+CMGS``:
    the outbox reads its row and sends) and when it is marked sent."""

    def __init__(self) -> None:
        super().__init__()
        self.journal: Journal | None = None
        self.at_replied: list[CommitCounts] = []
        self.at_sent: list[CommitCounts] = []

    def replied(self, row: InboxRow, outbox: OutboxRow | None) -> None:
        assert self.journal is not None
        self.at_replied.append(self.journal.commit_counts)
        self._poke()

    def sent(self, outbox: OutboxRow) -> None:
        assert self.journal is not None
        self.at_sent.append(self.journal.commit_counts)
        super().sent(outbox)


def test_the_store_counts_writes_and_syncs(tmp_path: Path) -> None:
    """A read-only transaction (a message read again) is no commit; a write is one,
    synced unless asked otherwise."""
    with Journal.open(tmp_path / "j.sqlite3") as journal:
        zero = journal.commit_counts
        row, new = journal.record_incoming(
            sender="000", timestamp=None, text="ping", storage="SM", index=0, durable=False
        )
        assert new
        assert journal.commit_counts - zero == CommitCounts(commits=1, synced=0)
        again, new = journal.record_incoming(
            sender="000", timestamp=None, text="ping", storage="SM", index=0
        )
        assert (again.id, new) == (row.id, False)
        assert journal.commit_counts - zero == CommitCounts(commits=1, synced=0)
        journal.start(row.id, "ping", None)
        assert journal.commit_counts - zero == CommitCounts(commits=2, synced=1)
        journal.mark_deleted(row.id, durable=False)
        assert journal.commit_counts - zero == CommitCounts(commits=3, synced=1)
        # Not synced means synchronous=NORMAL for that transaction only.
        assert journal._query("PRAGMA synchronous")[0][0] == 2  # FULL


async def test_one_command_costs_two_syncs_before_the_send_and_three_in_all(
    tmp_path: Path, line: Line
) -> None:
    """received → reply sent, the normal path: record (not synced), start (synced),
    finish with the reply queued (synced) | AT+CMGS | mark_sent (synced), AT+CMGD,
    mark_deleted (not synced). Before issue 14: 4 synced commits before the send, 5 in all."""
    recorder = CountingRecorder()
    async with rig(tmp_path, line, recorder=recorder) as r:
        recorder.journal = r.journal
        for n in range(3):
            before = r.journal.commit_counts
            r.gw.deliver("000", f"ping: {n}")
            await r.gw.wait_until(
                lambda m, n=n: len(m.sent) > n and not m.storages["SM"].used, WAIT
            )
            await recorder.until(lambda n=n: len(recorder.at_sent) > n)
            # The mark follows the modem's OK to the delete, which the modem has not yet
            # sent when its storage empties: bounded wait for the row's mark.
            for _ in range(int(WAIT / 0.01)):
                if not r.journal.inbox()[-1].on_modem:
                    break
                await asyncio.sleep(0.01)
            assert r.gw.sent[n].text == f"pong: {n}"
            before_send = recorder.at_replied[n] - before
            assert before_send.synced <= 2, before_send
            assert recorder.at_sent[n] - recorder.at_replied[n] == CommitCounts(1, 1)
            total = r.journal.commit_counts - before
            assert total.synced <= 3, total
            assert total == CommitCounts(commits=5, synced=3)
            row = r.journal.inbox()[-1]
            assert (row.state, row.on_modem) == (InboxState.DONE, False)
