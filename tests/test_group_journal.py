"""An operator in the agent's group reads the journal; nobody else does (issue 13, "The
operator's commands": "an operator in the smscmd group reads it without a traceback (or
gets a one-line error saying which permission is missing)").

For real, not with a patched ``os.access``: the agent and the operators are other users,
made with util-linux ``setpriv`` (numeric ids that need no passwd entry), against a state
directory laid out as the unit makes /var/lib/smscmd (``StateDirectoryMode=0750``,
``UMask=0027``: the agent's user and group own it). SQLite's read-only WAL access
(https://www.sqlite.org/wal.html, "Read-Only Databases": since 3.22.0 a reader that cannot
write the ``-shm`` reads beside a live writer) is what the operator relies on while the
agent runs; once it has stopped (no ``-wal``/``-shm`` left) the file is read ``immutable``.
Needs root (to become those users); skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
AGENT_UID, GROUP = 64001, 64002  # the smscmd user and group
OPERATOR_UID = 65534  # nobody, made a member of GROUP
OUTSIDER_GID = 65534  # nogroup

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as other users (setpriv)"),
    pytest.mark.skipif(shutil.which("setpriv") is None, reason="util-linux setpriv not found"),
]

WRITER = """
import os, sys
os.umask(0o027)  # the unit's UMask=
from device.journal import Journal
with Journal.open(sys.argv[1]) as journal:
    journal.queue_outgoing("000", "hello operator")
    print("ready", flush=True)
    sys.stdin.readline()
"""


def as_user(uid: int, gid: int, groups: tuple[int, ...] = ()) -> list[str]:
    wanted = ",".join(str(g) for g in groups)
    who = ["--groups", wanted] if groups else ["--clear-groups"]
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", *who, "--"]


def interpreter() -> str:
    """This interpreter when other users may run it, else the system's python3."""
    for candidate in (sys.executable, "/usr/bin/python3"):
        probe = subprocess.run(
            [*as_user(OPERATOR_UID, GROUP, (GROUP,)), candidate, "-c", "import device.journalcmd"],
            cwd="/", env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if probe.returncode == 0:
            return candidate
    pytest.skip(f"no Python another user may run with this checkout: {probe.stderr[-300:]}")


@pytest.fixture
def state_dir() -> Iterator[Path]:
    """``base/smscmd``: agent:group 0750 in a directory everyone may search."""
    base = Path(tempfile.mkdtemp(prefix="smscmd-group-", dir="/tmp"))
    base.chmod(0o755)
    state = base / "smscmd"
    state.mkdir(mode=0o750)
    os.chown(state, AGENT_UID, GROUP)
    try:
        yield state
    finally:
        shutil.rmtree(base)


def journal_cli(python: str, who: list[str], path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*who, python, "-m", "device.cli", "journal", "--outbox", "--json", "--journal",
         str(path)],
        cwd="/", env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_an_operator_in_the_group_reads_the_journal_and_an_outsider_is_told_why(
    state_dir: Path,
) -> None:
    python = interpreter()
    path = state_dir / "journal.sqlite3"
    operator = as_user(OPERATOR_UID, GROUP, (GROUP,))
    writer = subprocess.Popen(
        [*as_user(AGENT_UID, GROUP, (GROUP,)), python, "-c", WRITER, str(path)],
        cwd="/", env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert writer.stdout is not None and writer.stdin is not None
        assert writer.stdout.readline() == "ready\n", writer.stderr
        # The agent's files: its own, the group's to read, nobody else's.
        for suffix in ("", "-wal", "-shm"):
            st = Path(f"{path}{suffix}").stat()
            assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (
                AGENT_UID, GROUP, 0o640,
            ), suffix  # fmt: skip
        live = journal_cli(python, operator, path)
        assert live.returncode == 0, live.stderr
        assert [row["text"] for row in json.loads(live.stdout)] == ["hello operator"]
        writer.stdin.close()
        assert writer.wait(timeout=30) == 0, writer.stderr
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    # Stopped: its last connection checkpointed and removed the -wal and -shm, which the
    # operator could not create again.
    assert not Path(f"{path}-wal").exists() and not Path(f"{path}-shm").exists()
    stopped = journal_cli(python, operator, path)
    assert stopped.returncode == 0, stopped.stderr
    assert [row["text"] for row in json.loads(stopped.stdout)] == ["hello operator"]
    assert not Path(f"{path}-shm").exists()  # the reader wrote nothing
    # Not in the group: the existing one-line error naming the missing permission.
    outsider = journal_cli(python, as_user(OPERATOR_UID, OUTSIDER_GID), path)
    assert outsider.returncode == 1 and outsider.stderr.count("\n") == 1, outsider.stderr
    assert outsider.stderr.startswith(
        f"smscmd: journal error: cannot read the journal {path}: no search (x) permission "
        f"on the directory {state_dir} (group {GROUP}, mode 0750); join its group"
    )
    assert "Traceback" not in outsider.stderr
