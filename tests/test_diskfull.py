"""The journal on a small or full disk, and a journal deleted under the agent (issue 14).

The small partition is a real 2 MB tmpfs (``mount -t tmpfs -o size=2m``), so that
SQLite meets a real ENOSPC (``SQLITE_FULL``) wherever it writes: the WAL, the file
growing at a checkpoint. It needs root: skipped otherwise, a failure with ``CI=true``.
Run with ``-s`` to see the figures (WAL size at most, journal size after 1,000
commands) that RELIABILITY.md quotes.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import sqlite3
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from harness import AgentProcess, Line
from test_agent import WAIT, Recorder, rig

from device.agent import Agent
from device.cli import status_lines
from device.commands import CommandContext, Handler, default_registry
from device.config import Config
from device.errors import JournalCannotRecord, JournalError, JournalReplaced
from device.journal import InboxState, Journal
from device.journal.health import DISK_FULL, IO_ERROR, READ_ONLY, translate
from device.journal.store import WAL_SIZE_LIMIT
from device.modem import ModemState
from device.service import SystemdStatus
from device.sms.charset import Charset
from device.systemd import Notifier
from hostsim.link import WHOLE
from hostsim.sim import HostSim

#: The small partition of the issue: "on a 2 MB file system the agent answers 25 commands".
SMALL_FS = "2m"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs of its own, unmounted at the end (root only)."""
    if os.geteuid() != 0:
        _unavailable("mounting a 2 MB tmpfs needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SMALL_FS},mode=0700", "tmpfs", str(mount)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        _unavailable(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(fs: Path) -> Path:
    """Fill ``fs`` to the last byte with a file of its own; returns that file."""
    filler = fs / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def one_command(journal: Journal, n: int) -> None:
    """The journal's side of one command and its reply (as the agent writes it)."""
    row, _ = journal.record_incoming(
        sender="000", timestamp=datetime.now(UTC), text=f"ping: {n}", storage="SM", index=n % 30
    )
    journal.mark_deleted(row.id)
    journal.start(row.id, "ping", str(n))
    out = journal.finish(row.id, reply=f"pong: {n}", state=InboxState.DONE, error=None,
                         reply_to="000")  # fmt: skip
    assert out is not None
    journal.mark_sent(out.id, n % 256)


def delete_journal(path: Path) -> None:
    for side in ("", "-wal", "-shm"):
        Path(f"{path}{side}").unlink(missing_ok=True)


def wal_size(path: Path) -> int:
    try:
        return os.path.getsize(f"{path}-wal")
    except FileNotFoundError:
        return 0


# ---------------------------------------------------------------------- pure


@pytest.mark.parametrize(
    ("code", "condition"),
    [(13, DISK_FULL), (10, IO_ERROR), (10 | (13 << 8), IO_ERROR), (8, READ_ONLY), (1, None)],
)
def test_sqlite_errors_are_typed_by_result_code(code: int, condition: str | None) -> None:
    """Result codes from https://sqlite.org/rescode.html: SQLITE_FULL 13, SQLITE_IOERR 10
    (SQLITE_IOERR_FSYNC is 10 | 4 << 8: extended codes keep the primary in the low
    byte; 10 | 13 << 8 is SQLITE_IOERR_SEEK), SQLITE_READONLY 8; SQLITE_ERROR 1 is a
    plain JournalError."""
    exc = sqlite3.OperationalError("boom")
    exc.sqlite_errorcode = code  # type: ignore[attr-defined]
    error = translate(exc, Path("/j"))
    if condition is None:
        assert type(error) is JournalError
    else:
        assert isinstance(error, JournalCannotRecord)
        assert error.condition == condition


def test_a_journal_deleted_under_it_refuses_to_write(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    with Journal.open(path) as journal:
        one_command(journal, 1)
        delete_journal(path)
        with pytest.raises(JournalReplaced, match="deleted under the running agent"):
            journal.queue_outgoing("000", "lost?")
        with pytest.raises(JournalReplaced):
            journal.check_identity()


def test_a_journal_replaced_under_it_refuses_to_write(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    with Journal.open(tmp_path / "other.sqlite3"):
        pass
    with Journal.open(path) as journal:
        one_command(journal, 1)
        os.replace(tmp_path / "other.sqlite3", path)
        with pytest.raises(JournalReplaced, match="replaced under the running agent"):
            journal.queue_outgoing("000", "lost?")
    with Journal.open(path) as replacement:  # nothing was written into the new file
        assert replacement.counts()["outbox.queued"] == 0


# ---------------------------------------------------------------------- 2 MB


def test_1000_commands_on_2_mb_wal_and_file_bounded(small_fs: Path) -> None:
    """The issue: "on a 2 MB file system the agent answers 25 commands and then only
    'database or disk is full'". Now 2,000 cycles fit, with retention pruning as the
    agent does (keep_last 1,000, the default), and the file stops growing at
    retention's size: pages freed by a prune are reused (no VACUUM)."""
    path = small_fs / "journal.sqlite3"
    wal_max = 0
    sizes: dict[int, int] = {}
    with Journal.open(path) as journal:
        for n in range(1, 2001):
            one_command(journal, n)
            wal_max = max(wal_max, wal_size(path))
            if n % 100 == 0:
                journal.prune(older_than=datetime.now(UTC) + timedelta(days=1), keep_last=1000)
                journal.checkpoint()
            if n in (1000, 1500, 2000):
                sizes[n] = path.stat().st_size
        counts = journal.counts()
    print(f"\n2 MB tmpfs: WAL at most {wal_max} B; journal file after 1000/1500/2000 commands "
          f"{sizes[1000]}/{sizes[1500]}/{sizes[2000]} B")  # fmt: skip
    assert counts["outbox.sent"] == 1000  # the last 1000 kept, the rest pruned
    assert wal_max <= WAL_SIZE_LIMIT + 16 * 4120  # the limit, plus one transaction's frames
    assert sizes[2000] <= sizes[1000] * 1.2  # bounded by retention


def test_a_full_disk_is_a_condition_that_clears_by_itself(small_fs: Path) -> None:
    """Measured on a real tmpfs: after SQLITE_FULL the connection stays usable and the
    next transaction succeeds as soon as there is room (no reopening needed)."""
    path = small_fs / "journal.sqlite3"
    with Journal.open(path) as journal:
        one_command(journal, 1)
        journal._query("PRAGMA wal_checkpoint(TRUNCATE)")  # the next write must grow the WAL
        filler = fill(small_fs)
        with pytest.raises(JournalCannotRecord) as caught:
            journal.queue_outgoing("000", "first")
        assert caught.value.condition == DISK_FULL
        assert journal.health.text() == "journal cannot record: disk full"
        with pytest.raises(JournalCannotRecord):
            journal.probe()
        filler.unlink()
        journal.probe()
        assert journal.health.condition is None
        journal.queue_outgoing("000", "second")
        assert [r.text for r in journal.outbox()][-1:] == ["second"]
        assert journal.counts()["outbox.queued"] == 1  # "first" was never written


def test_a_full_disk_is_logged_once_per_condition(
    small_fs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = small_fs / "journal.sqlite3"
    with Journal.open(path) as journal:
        journal._query("PRAGMA wal_checkpoint(TRUNCATE)")
        filler = fill(small_fs)
        with caplog.at_level(logging.DEBUG, logger="device.journal.health"):
            for _ in range(5):
                with pytest.raises(JournalCannotRecord):
                    journal.probe()
            filler.unlink()
            journal.probe()
            journal.probe()
    logged = [(r.levelno, r.getMessage()) for r in caplog.records if r.levelno > logging.DEBUG]
    assert len(logged) == 2
    assert logged[0][0] == logging.ERROR and "disk is full" in logged[0][1]
    assert logged[1][0] == logging.WARNING and "records again" in logged[1][1]


# ---------------------------------------------------------------------- the agent

#: The journal operations of one command, in the order the agent calls them.
STEPS = ("record_incoming", "mark_deleted", "start", "finish", "mark_sent")


def fill_before(journal: Journal, step: str, fs: Path, filled: list[Path]) -> None:
    """The first time ``step`` is called: WAL truncated (so the write must grow it),
    ``fs`` filled, then the step itself -- which meets a full disk."""
    original: Callable[..., Any] = getattr(journal, step)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not filled:
            journal._query("PRAGMA wal_checkpoint(TRUNCATE)")
            filled.append(fill(fs))
        return original(*args, **kwargs)

    setattr(journal, step, wrapped)


@pytest.mark.parametrize("step", STEPS)
async def test_disk_full_at_any_step_pauses_then_answers_exactly_once(
    small_fs: Path, step: str
) -> None:
    """A full disk met at each journal step of a command: nothing is deleted from the
    modem before it is journaled, no reply goes out while the journal cannot record
    it (before, "the same reply goes out again at every reconnect (11 copies in 20 s)"),
    the condition is in ``smscmd status`` and the observer's STATUS= hook while it
    lasts, and once space is freed every command is answered exactly once."""
    line = Line.loopback(WHOLE)
    conditions: list[str | None] = []
    async with rig(small_fs, line, reconnect_initial=0.05, reconnect_max=0.2) as r:

        def heard(text: str | None) -> None:
            conditions.append(text)
            r.recorder._poke()

        r.recorder.journal_condition = heard  # type: ignore[method-assign]
        r.gw.deliver("000", "ping: 1")
        await r.gw.wait_until(lambda m: len(m.sent) == 1, WAIT)
        filled: list[Path] = []
        fill_before(r.journal, step, small_fs, filled)
        for n in (2, 3, 4):
            r.gw.deliver("000", f"ping: {n}")
        await asyncio.wait_for(
            r.recorder.until(lambda: "journal cannot record: disk full" in conditions), WAIT
        )
        report = await r.agent.status_report()
        assert "journal cannot record: disk full" in report["trouble"]
        sent_while_full = len(r.gw.sent)
        await asyncio.sleep(1.0)  # several suspensions and resumes (holds 0.05 … 0.2 s)
        went_out = len(r.gw.sent) - sent_while_full
        assert went_out == 0, "a reply went out while it could not be recorded"
        if step == "record_incoming":
            assert r.gw.modem.storages["SM"].used == 3  # nothing deleted unjournaled
        os.unlink(filled[0])
        await r.gw.wait_until(lambda m: len(m.sent) >= 4, WAIT)
        await asyncio.sleep(0.3)  # a duplicate would go out now
        await asyncio.wait_for(r.recorder.until(lambda: conditions[-1] is None), WAIT)
        texts = Counter(s.text for s in r.gw.sent)
        suspensions = r.recorder.states.count(ModemState.SUSPENDED)
        print(f"\nFULL at {step}: commands=4 answered={len(texts)} copies={max(texts.values())}"
              f" sent in the 1 s full={went_out}"
              f" suspensions={suspensions}")  # fmt: skip
        assert all(count == 1 for count in texts.values()), texts
        assert len(texts) == 4
        assert (await r.agent.status_report())["trouble"] == []
        counts = r.journal.counts()
        assert counts["outbox.sent"] == 4 and counts["outbox.queued"] == 0


async def test_1000_commands_answered_by_the_agent_on_2_mb(small_fs: Path) -> None:
    """The agent itself on the 2 MB partition, pruning as configured (kept: the last
    100, retention 1 s; a batch every 0.5 s, busy or not: device/pruning.py), with a
    pause after each 100 commands for the rows of the last second to age (a busy agent
    keeps what is younger than its retention: tests/test_retention.py): every command
    answered once, the WAL and the file bounded."""
    line = Line.loopback(WHOLE)
    path = small_fs / "journal.sqlite3"
    wal_max = 0
    async with rig(
        small_fs, line, keep_last=100, retention_days=1 / 86400, sweep_interval=0.5,
        health_interval=0.5,
    ) as r:  # fmt: skip
        for batch in range(100):
            for n in range(batch * 10, batch * 10 + 10):
                r.gw.deliver("000", f"ping: {n}")
            await r.gw.wait_until(lambda m, b=batch: len(m.sent) >= (b + 1) * 10, WAIT)
            wal_max = max(wal_max, wal_size(path))
            if batch % 10 == 9:  # the last second's rows age past the retention
                await asyncio.sleep(0.6)
        await asyncio.sleep(1.2)  # the last batch prunes them
        size = path.stat().st_size
        texts = Counter(s.text for s in r.gw.sent)
    print(f"\nagent, 1000 commands on 2 MB: WAL at most {wal_max} B, journal file {size} B")
    assert len(texts) == 1000 and set(texts.values()) == {1}
    assert wal_max <= WAL_SIZE_LIMIT + 16 * 4120
    assert size <= 200 * 1024  # what 100 kept rows and those since the last sweep take


# ---------------------------------------------------------------------- deleted


async def test_a_journal_deleted_under_the_agent_stops_it_and_logs_what_is_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Before, "a journal file deleted under the running agent goes unnoticed, and
    replies queued after that are lost at the next restart". Now the next write (here:
    the next command's) notices: the message stays on the modem for the next start,
    the queued reply is logged, and the agent stops with JournalReplaced (exit 1)."""
    line = Line.loopback(WHOLE)
    path = tmp_path / "journal.sqlite3"
    with pytest.raises(JournalReplaced):  # the rig's exit re-raises it
        async with rig(tmp_path, line, send_retry_max=1e12) as r:
            r.gw.deliver("000", "ping: 1")
            await r.gw.wait_until(lambda m: len(m.sent) == 1, WAIT)
            # Reply before delete (issue 14): ping: 1 leaves the modem after its reply.
            await r.gw.wait_until(lambda m: m.storages["SM"].used == 0, WAIT)
            await asyncio.sleep(0.2)  # and its mark, which follows the delete's OK
            r.journal.queue_outgoing("+15551230000", "held back")  # due later: not sent
            r.journal._conn.execute(  # type: ignore[union-attr]
                "UPDATE outbox SET next_attempt_at = '2999-01-01T00:00:00+00:00'"
                " WHERE text = 'held back'"
            )
            delete_journal(path)
            r.gw.deliver("000", "ping: 2")
            with caplog.at_level(logging.ERROR):
                await asyncio.wait_for(r.recorder.reached(ModemState.STOPPED), WAIT)
    assert r.gw.modem.storages["SM"].used == 1  # ping: 2, for the next start
    assert [s.text for s in r.gw.sent] == ["pong: 1"]
    messages = [rec.getMessage() for rec in caplog.records]
    assert any("deleted under the running agent; stopping" in m for m in messages)
    assert any("lost with the journal" in m and "'held back'" in m for m in messages)
    assert r.agent.state.value == "stopped"
    assert not path.exists()  # the next start creates it anew


def test_status_line_says_the_journal_cannot_record_while_it_lasts() -> None:
    status = SystemdStatus(Notifier(None), "/dev/ttyUSB2")
    status.state_changed(ModemState.READY, ModemState.SUSPENDED)
    status.journal_condition("journal cannot record: disk full")
    status.trouble(("re-initialised 3 times in a row",))
    assert status.line() == (
        "modem suspended on /dev/ttyUSB2; journal cannot record: disk full;"
        " re-initialised 3 times in a row"
    )
    status.journal_condition(None)
    status.trouble(())
    assert status.line() == "modem suspended on /dev/ttyUSB2"
    assert status_lines_of_trouble(["journal cannot record: disk full"]) == [
        "trouble       journal cannot record: disk full"
    ]


def status_lines_of_trouble(trouble: list[str]) -> list[str]:
    """``smscmd status``'s trouble rows for a report with ``trouble``."""
    report: dict[str, Any] = {
        "state": "suspended", "state_since": "x", "port": "p", "registration": "r",
        "signal": "s", "uptime_seconds": 1.0, "counters": {}, "journal": {},
        "module": {"manufacturer": None, "model": None, "revision": None, "imei": None},
        "trouble": trouble,
    }  # fmt: skip
    return [line for line in status_lines(report) if line.startswith("trouble")]


async def test_smscmd_run_exits_1_when_its_journal_is_deleted(tmp_path: Path) -> None:
    """The process: the CRITICAL log line says why, exit status 1 -- which the unit's
    ``Restart=on-failure`` restarts (2, a configuration error, it does not): the next
    start creates a journal at the path, and the command that noticed is still on
    the modem for it."""
    async with HostSim() as sim:
        gw = sim.modems[0]
        proc = AgentProcess(tmp_path, gw.path)
        await proc.start()
        try:
            # Configured (UCS2, header detail): from here every byte reaches the agent.
            await gw.wait_until(lambda m: m.settings.cscs is Charset.UCS2 and m.settings.csdh, WAIT)
            gw.deliver("000", "ping: 1")
            await gw.wait_until(lambda m: len(m.sent) == 1, WAIT)
            # Reply before delete (issue 14): ping: 1 leaves the modem after its reply.
            await gw.wait_until(lambda m: m.storages["SM"].used == 0, WAIT)
            await asyncio.sleep(0.2)  # and its mark, which follows the delete's OK
            delete_journal(proc.journal)
            gw.deliver("000", "ping: 2")
            assert proc.proc is not None
            code = await asyncio.wait_for(proc.proc.wait(), WAIT)
        finally:
            await proc.cleanup()
        assert code == 1, proc.stderr()[-3000:]
        assert "was deleted under the running agent; stopping" in proc.stderr()
        assert gw.modem.storages["SM"].used == 1



async def test_an_agent_started_on_a_full_disk_comes_up_and_waits_for_room(
    small_fs: Path,
) -> None:
    """Its start-up housekeeping (pruning rows older than the retention) cannot be
    written: the agent comes up all the same (before, agent.run raised and the service
    exited), says so, sends nothing, and answers once there is room. (A journal that
    cannot even be opened -- SQLite creates its ``-shm`` and ``-wal`` at the first
    open -- is a JournalError at start: exit status 1, and systemd tries again every
    ``RestartSec``.)"""
    path = small_fs / "journal.sqlite3"
    old = datetime.now(UTC) - timedelta(days=60)
    with Journal.open(path, clock=lambda: old) as journal:
        for n in range(5):
            one_command(journal, n)
    line = Line.loopback(WHOLE)
    async with line.hostsim() as sim:
        gw = sim.modems[0]
        config = Config(
            port=line.port(gw), journal=path, reconnect_initial=0.05, reconnect_max=0.2,
            command_timeout=2.0, keep_last=0,
        )  # fmt: skip
        with Journal.open(path) as journal:
            journal._query("PRAGMA wal_checkpoint(TRUNCATE)")
            filler = fill(small_fs)
            recorder = Recorder()
            agent = Agent(
                config, journal, default_registry(), observer=recorder,
                open_channel=line.open_channel(gw, default_timeout=2.0),
            )  # fmt: skip
            task = asyncio.create_task(agent.run())
            try:
                await asyncio.wait_for(recorder.ready.wait(), WAIT)
                report = await agent.status_report()
                assert report["trouble"] == ["journal cannot record: disk full"]
                gw.deliver("000", "ping: after")
                await asyncio.wait_for(recorder.reached(ModemState.SUSPENDED), WAIT)
                assert gw.sent == [] and gw.modem.storages["SM"].used == 1
                os.unlink(filler)
                await gw.wait_until(lambda m: len(m.sent) == 1, WAIT)
                assert gw.sent[0].text == "pong: after"
            finally:
                agent.stop()
                await asyncio.wait_for(task, WAIT)
        with pytest.raises(JournalError, match="cannot open journal"):
            fill(small_fs)
            Journal.open(path)


async def test_a_handler_outcome_a_full_disk_cannot_record_is_sent_once_there_is_room(
    small_fs: Path,
) -> None:
    """A non-idempotent handler ran, and ``finish`` met a full disk: its outcome is
    held, and once there is room its own reply goes out -- it is not run again, and
    not answered ``error: interrupted`` (which the "never twice" rule answers for a
    row found RUNNING that is not held)."""
    calls: list[str] = []

    async def once(ctx: CommandContext) -> str:
        calls.append(ctx.argument or "")
        return f"counted: {ctx.argument}"

    registry = default_registry()
    registry.register(Handler("once", once, idempotent=False, summary="not idempotent"))
    line = Line.loopback(WHOLE)
    async with rig(small_fs, line, registry) as r:
        filled: list[Path] = []
        fill_before(r.journal, "finish", small_fs, filled)
        r.gw.deliver("000", "once: x")
        await asyncio.wait_for(r.recorder.reached(ModemState.SUSPENDED, 2), WAIT)
        assert calls == ["x"] and r.gw.sent == []
        assert list(r.agent.executor.unfinished) == [1]
        os.unlink(filled[0])
        await r.gw.wait_until(lambda m: len(m.sent) == 1, WAIT)
        await asyncio.sleep(0.3)  # a second reply would go out now
        assert [s.text for s in r.gw.sent] == ["counted: x"]
        assert calls == ["x"] and r.agent.executor.unfinished == {}
        rows = r.journal.inbox()
        assert [(row.state, row.reply) for row in rows] == [(InboxState.DONE, "counted: x")]
