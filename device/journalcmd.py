"""``smscmd journal``: find the agent's journal, filter its rows, print them, follow it.

Which journal: ``--journal FILE``, else the one ``--config FILE`` names, else the
one the running agent reports on its control socket (``journal_path`` in
``status``), else the configured default. The file is opened read-only beside
the running agent, also by an operator in its group who may read the files but
not write them (with the agent stopped it is read ``immutable``, and opened again
at each ``--follow`` poll: the agent may have started); an unreadable file (or
its ``-wal``/``-shm`` companion, or a directory on the way) is a JournalError
naming the file, its group and mode.

The options themselves are declared in :mod:`device.cli` (``journal_options``), so
that ``smscmd --help`` does not import this module and the journal.

Filters: ``--state`` (repeatable; a state of the listed table), ``--since`` (ISO
8601 date or time, local time when it has no offset, or an age such as ``30m``,
``2h``, ``7d``), ``--limit`` (the last N of what is left).

``--follow`` polls the read-only journal every :data:`FOLLOW_PERIOD` seconds and
prints each row that is new or whose state changed since it was printed, until
Ctrl-C. Polling, not a control-socket subscription: it works with the agent
stopped or restarting, needs nothing but read access to the file (what the
operator already has for the plain listing), and adds no long-lived clients to
the agent's socket; the price is up to a second of delay and one query a second.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from device.errors import JournalError, UsageError, ownership
from device.journal import InboxRow, InboxState, Journal, OutboxRow, OutboxState

LOGGER = logging.getLogger(__name__)

FOLLOW_PERIOD = 1.0
_AGE_RE = re.compile(r"(\d+)([smhd])")
_AGE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}

Row = InboxRow | OutboxRow


def parse_since(text: str, now: datetime) -> datetime:
    """``30m``/``2h``/``7d``/``45s`` before ``now``, or an ISO 8601 date/time (local if naive)."""
    age = _AGE_RE.fullmatch(text.strip())
    if age:
        return now - timedelta(**{_AGE_UNITS[age.group(2)]: int(age.group(1))})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"--since {text!r}: not an ISO 8601 date/time nor an age like 30m, 2h, 7d"
        ) from None
    return when.astimezone() if when.tzinfo is None else when


def parse_states(values: Sequence[str] | None, *, outbox: bool) -> frozenset[str] | None:
    """The state values asked for, checked against the listed table's states."""
    if not values:
        return None
    known = [s.value for s in (OutboxState if outbox else InboxState)]
    wanted = frozenset(v.strip().lower() for value in values for v in value.split(","))
    unknown = sorted(wanted - set(known))
    if unknown:
        table = "outbox" if outbox else "inbox"
        raise UsageError(f"--state {', '.join(unknown)}: {table} states are {', '.join(known)}")
    return wanted


def check_readable(path: Path) -> None:
    """JournalError naming the first directory or file the caller may not read."""
    for directory in [*reversed(path.parent.parents), path.parent]:
        if directory.is_dir() and not os.access(directory, os.X_OK):
            raise JournalError(
                f"cannot read the journal {path}: no search (x) permission on the directory "
                f"{directory}{ownership(directory)}; join its group"
            )
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if file.exists() and not os.access(file, os.R_OK):
            raise JournalError(
                f"cannot read the journal: no read permission on {file}{ownership(file)}; "
                "join its group (the agent's, usually smscmd)"
            )


def _when(row: Row) -> datetime:
    return row.created_at if isinstance(row, OutboxRow) else row.received_at


def select(
    rows: Sequence[Row],
    *,
    states: frozenset[str] | None,
    since: datetime | None,
    limit: int | None,
) -> list[Row]:
    """The rows that pass ``states`` and ``since``, then the last ``limit`` of them."""  # fmt: skip
    kept = [
        row for row in rows
        if (states is None or row.state.value in states) and (since is None or _when(row) >= since)
    ]  # fmt: skip
    return kept[-limit:] if limit is not None else kept


def render(row: Row) -> str:
    """One row as one line for a person."""
    if isinstance(row, OutboxRow):
        mr = "-" if row.mr is None else str(row.mr)
        error = "" if row.last_error is None else f" error={row.last_error!r}"
        return (
            f"{row.id:>6} {row.created_at:%Y-%m-%dT%H:%M:%S} {row.destination:>8} "
            f"{row.state.value:<7} attempts={row.attempts} mr={mr} {row.text!r}{error}"
        )
    stamp = row.timestamp.isoformat() if row.timestamp else "-"
    reply = "" if row.reply is None else f" -> {row.reply!r}"
    error = "" if row.error is None else f" error={row.error!r}"
    notes = "".join(f" [{note}]" for note in row.notes)
    return (
        f"{row.id:>6} {stamp} {row.sender or '?':>8} {row.state.value:<11} {row.text!r}"
        f"{reply}{error}{notes}"
    )


def _emit(rows: Sequence[Row], *, as_json: bool, array: bool) -> None:
    if as_json and array:
        json.dump([row.as_dict() for row in rows], sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    elif as_json:  # following: one object per line (JSON Lines), so each can be read at once
        for row in rows:
            sys.stdout.write(json.dumps(row.as_dict(), ensure_ascii=False) + "\n")
    else:
        for row in rows:
            print(render(row))
    sys.stdout.flush()  # a closed pipe raises here, inside cli.main's handler


def show(path: Path, args: argparse.Namespace) -> None:
    """List (and with ``args.follow`` keep listing) the journal at ``path``."""
    states = parse_states(args.state, outbox=args.outbox)
    since = parse_since(args.since, datetime.now(UTC)) if args.since else None
    check_readable(path)
    journal = Journal.open(path, readonly=True)
    try:

        def read() -> list[Row]:
            nonlocal journal
            if journal.immutable:  # read as a stopped agent left it: it may have started since
                journal.close()
                journal = Journal.open(path, readonly=True)
            return list(journal.outbox(limit=None) if args.outbox else journal.inbox(limit=None))

        first = read()
        _emit(select(first, states=states, since=since, limit=args.limit),
              as_json=args.json, array=not args.follow)  # fmt: skip
        if not args.follow:
            return
        seen = {row.id: row.updated_at for row in first}
        try:
            while True:
                time.sleep(FOLLOW_PERIOD)
                fresh = [row for row in read() if seen.get(row.id) != row.updated_at]
                for row in fresh:
                    seen[row.id] = row.updated_at
                _emit(select(fresh, states=states, since=since, limit=None),
                      as_json=args.json, array=False)  # fmt: skip
        except KeyboardInterrupt:
            return  # Ctrl-C is how --follow ends
    finally:
        journal.close()
