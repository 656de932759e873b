"""gammu-smsd (the Debian package, unchanged) with its files backend, against
``hostsim run``, on the emulated modem's pty.

A command delivered through the API lands in smsd's inbox directory; a reply placed
in its outbox directory (``OUT000.txt``) comes back out of the API as ``from_sim``.
smsd runs in the foreground (``gammu-smsd -c
CONFIG``, no ``RunOnReceive``), polling the modem and the outbox every second
(``CommTimeout = 1``), and is stopped with SIGTERM, which it must obey with exit
status 0. Its log (``DebugLevel = 255``: gammu's AT traffic included) stays in the
test's ``tmp_path``; a failure names the commands hostsim refused.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from clients.support import (
    WAIT,
    Cloud,
    evidence,
    gammu_config,
    hostsim_args,
    require_tool,
    stop,
)
from harness import Listener, running_hostsim

pytestmark = pytest.mark.clients

COMMAND = "ping: from the cloud to gammu-smsd"
REPLY = "pong from gammu-smsd"
#: How often the inbox directory is looked at: smsd gives no other sign of a message
#: saved (no RunOnReceive on purpose: the files backend alone is under test).
INBOX_POLL = 0.05
#: What smsd logs when the phone's init failed (then it sleeps 30 s and tries again).
INIT_FAILED = "Error at init connection"


def smsd_section(tmp: Path, log: Path) -> str:
    dirs = {name: tmp / name for name in ("inbox", "outbox", "sent", "error")}
    for path in dirs.values():
        path.mkdir()
    return (
        "\n[smsd]\nservice = files\n"
        f"logfile = {log}\ndebuglevel = 255\n"
        f"inboxpath = {dirs['inbox']}/\noutboxpath = {dirs['outbox']}/\n"
        f"sentsmspath = {dirs['sent']}/\nerrorsmspath = {dirs['error']}/\n"
        "commtimeout = 1\n"
    )


def look(inbox: Path, log: Path) -> Path | None:
    """The first file smsd saved in ``inbox``, if any; fails at once when smsd could not
    bring the modem up (it would sleep 30 s and try again)."""
    saved = sorted(inbox.glob("IN*.txt"))
    if not saved and log.exists() and INIT_FAILED in log.read_text(errors="replace"):
        pytest.fail(evidence("gammu-smsd could not bring the modem up", log))
    return saved[0] if saved else None


async def inbox_file(
    inbox: Path, smsd: asyncio.subprocess.Process, log: Path, deadline: float
) -> Path:
    """The first file smsd saves in ``inbox``; fails if smsd exits or time runs out."""
    while (saved := look(inbox, log)) is None:
        if smsd.returncode is not None:
            pytest.fail(evidence(f"gammu-smsd exited {smsd.returncode}", log))
        if time.monotonic() > deadline:
            pytest.fail(evidence(f"nothing in {inbox} after {WAIT} s", log))
        await asyncio.sleep(INBOX_POLL)
    return saved


@pytest.fixture(scope="module")
def smsd_bin() -> str:
    """In a fixture: a missing client is a skip (or, in CI, an error), never an xfail."""
    return require_tool("gammu-smsd")


@pytest.mark.timeout(60)
@pytest.mark.async_timeout(50)
async def test_gammu_smsd_files_backend(tmp_path: Path, smsd_bin: str) -> None:
    log = tmp_path / "smsd.log"
    async with (
        Listener().serving() as hooks,
        running_hostsim(
            tmp_path, *hostsim_args("quectel-bg96"), "--commands-webhook", hooks.url + "/fleet"
        ) as ready,
    ):
        cloud = Cloud(ready, hooks)
        await cloud.deliver(COMMAND)
        config = gammu_config(tmp_path / "smsdrc", cloud.link, None, smsd_section(tmp_path, log))
        (tmp_path / "outbox" / "OUT000.txt").write_text(REPLY)
        smsd = await asyncio.create_subprocess_exec(
            smsd_bin, "-c", str(config),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            saved = await inbox_file(tmp_path / "inbox", smsd, log, time.monotonic() + WAIT)
            assert saved.name.split("_")[3] == "000", evidence(saved.name, log)
            assert saved.read_text().strip() == COMMAND, evidence(saved.read_text(), log)
            try:
                assert await cloud.from_sim() == REPLY
            except TimeoutError:
                pytest.fail(evidence(f"no from_sim command within {WAIT} s", log))
        finally:
            code = await stop(smsd)
        assert code == 0, evidence(f"gammu-smsd exited {code} on SIGTERM", log)
