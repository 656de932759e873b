"""Retention while the agent runs (issue 14): finished rows pruned in bounded batches,
on an agent that is never idle as on an idle one (device/pruning.py), so that the
journal file stays at retention's size under continuous traffic. Before, pruning ran
only at an idle agent's sweep, and an agent under continuous traffic never pruned."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from harness import Line
from test_agent import WAIT, rig

from device.journal import InboxState, Journal, OutboxState
from device.pruning import BATCH
from hostsim.link import WHOLE
from hostsim.pty import SimulatedModem

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def answered(journal: Journal, n: int, *, on_modem: bool = False) -> None:
    """The journal's side of one command ``n`` and its sent reply."""
    row, _ = journal.record_incoming(
        sender="000", timestamp=T0, text=f"ping: {n}", storage="SM", index=n % 30
    )
    if not on_modem:
        journal.mark_deleted(row.id)
    journal.start(row.id, "ping", str(n))
    out = journal.finish(row.id, reply=f"pong: {n}", state=InboxState.DONE, reply_to="000")
    assert out is not None
    journal.mark_sent(out.id, n % 256)


def test_a_limited_prune_takes_the_oldest_and_never_a_pending_row(tmp_path: Path) -> None:
    """``limit`` bounds one call to that many inbox rows (oldest first, with their
    replies and attempts) and as many originated replies; pending, on-modem and queued
    rows are never taken, limited or not."""
    with Journal.open(tmp_path / "j.sqlite3", clock=lambda: T0) as journal:
        for n in range(5):
            answered(journal, n)
        answered(journal, 5, on_modem=True)
        pending, _ = journal.record_incoming(sender="000", timestamp=T0, text="ping: p",
                                             storage="SM", index=29)  # fmt: skip
        queued = journal.queue_outgoing("000", "originated, queued")
        for n in range(3):
            sent = journal.queue_outgoing("000", f"originated {n}")
            journal.mark_sent(sent.id, 200 + n)
        later = T0 + timedelta(days=1)
        assert journal.prune(older_than=later, limit=2) == 2 * 3 + 2 * 2
        assert {r.text for r in journal.inbox()} == {f"ping: {n}" for n in (2, 3, 4, 5, "p")}
        assert journal.prune(older_than=later, limit=2) == 2 * 3 + 1 * 2
        assert journal.prune(older_than=later, limit=2) == 1 * 3
        assert journal.prune(older_than=later, limit=2) == 0
        left = journal.inbox()
        assert {r.text for r in left} == {"ping: 5", "ping: p"}  # on the modem, pending
        assert pending.id in {r.id for r in left}
        assert [r.id for r in journal.outbox() if r.state is OutboxState.QUEUED] == [queued.id]
        with pytest.raises(ValueError, match="limit must be >= 1"):
            journal.prune(older_than=later, limit=0)


def keep_busy(gw: SimulatedModem, total: int, in_flight: int = 3) -> None:
    """Continuous traffic: ``in_flight`` commands delivered now, and one more each time
    a reply reaches the modem, up to ``total``: the agent never runs out of work
    (a ``+CMTI`` always arrives while it handles the one before)."""
    delivered = 0

    def deliver(count: int) -> None:
        nonlocal delivered
        for _ in range(min(count, total - delivered)):
            gw.deliver("000", f"ping: {delivered}")
            delivered += 1

    seen = 0

    def on_change() -> None:
        nonlocal seen
        if len(gw.sent) > seen:
            more, seen = len(gw.sent) - seen, len(gw.sent)
            asyncio.get_running_loop().call_soon(deliver, more)

    gw.add_change_listener(on_change)
    deliver(in_flight)


@pytest.mark.timeout(120)
async def test_a_busy_agent_prunes_and_its_journal_file_stays_bounded(tmp_path: Path) -> None:
    """An agent under continuous traffic (never idle; its sweeps, every hour here, never
    come), retention 10 ms and the last 20 rows kept: it prunes in batches as it goes,
    every command is answered once, the rows it keeps stay near 20, and the journal
    file does not grow from the 300th command to the 600th (pages freed by a prune are
    reused)."""
    line = Line.loopback(WHOLE)
    path = tmp_path / "journal.sqlite3"
    async with rig(
        tmp_path, line, keep_last=20, retention_days=0.01 / 86400, sweep_interval=0.2,
        health_interval=3600.0,
    ) as r:  # fmt: skip
        busy_at_first = r.agent.pruner.batches
        keep_busy(r.gw, 600)
        await r.gw.wait_until(lambda m: len(m.sent) >= 300, WAIT * 6)
        size_300 = path.stat().st_size
        rows_300 = len(r.journal.inbox(limit=None))
        await r.gw.wait_until(lambda m: len(m.sent) >= 600, WAIT * 6)
        size_600 = path.stat().st_size
        rows_600 = len(r.journal.inbox(limit=None))
        batches = r.agent.pruner.batches - busy_at_first
        texts = Counter(s.text for s in r.gw.sent)
    print(f"\nbusy agent: {batches} prune batches; rows kept {rows_300}/{rows_600}, "
          f"journal file {size_300}/{size_600} B after 300/600 commands")  # fmt: skip
    assert len(texts) == 600 and set(texts.values()) == {1}
    assert batches >= 2
    assert rows_300 <= 20 + BATCH and rows_600 <= 20 + BATCH
    assert size_600 <= size_300 * 1.2 + 8 * os.sysconf("SC_PAGE_SIZE")
