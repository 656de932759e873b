"""gammu-smsd (the Debian package, unchanged) with its files backend, against
``hostsim run``, on the emulated modem's pty, on every persona at once (each on a
hostsim of its own).

A command delivered through the API lands in smsd's inbox directory; a reply placed in
its outbox directory (``OUT000.txt``) comes back out of the API as ``from_sim``. smsd
runs in the foreground (``gammu-smsd -c CONFIG``, no ``RunOnReceive``), polling the
modem and the outbox every second (``CommTimeout = 1``), and is stopped with SIGTERM,
which it must obey with exit status 0. Its log (``DebugLevel = 255``: gammu's AT
traffic included) stays in the test's ``tmp_path``; a failure names the commands
hostsim refused.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from clients.support import (
    WAIT,
    evidence,
    gammu_config,
    on_every_persona,
    persona_cloud,
    require_tool,
    stop,
)

pytestmark = pytest.mark.clients

COMMAND = "ping: from the cloud to gammu-smsd"
REPLY = "pong from gammu-smsd"
#: How often the test looks for smsd's progress: smsd gives no other sign of a message
#: saved (no RunOnReceive on purpose: the files backend alone is under test), nor of a
#: failure than its log, which is looked at in the same loop so a failure ends the wait.
POLL = 0.05
#: What smsd logs when it cannot go on: the phone's init failed (it would sleep 30 s
#: and try again), a send failed (it would retry the file later).
FAILURES = ("Error at init connection", "GSM_SendSMS failed")


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


def failure(log: Path) -> str | None:
    """The first line of smsd's log that says it cannot go on, if any."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return next((line for line in text.splitlines() if any(f in line for f in FAILURES)), None)


async def until(
    done: Callable[[], bool], what: str, smsd: asyncio.subprocess.Process, log: Path
) -> None:
    """Poll ``done()``; fail at once when smsd exits or logs a failure, or after WAIT."""
    deadline = time.monotonic() + WAIT
    while not done():
        if smsd.returncode is not None:
            pytest.fail(evidence(f"gammu-smsd exited {smsd.returncode} waiting for {what}", log))
        if (line := failure(log)) is not None:
            pytest.fail(evidence(f"waiting for {what}, gammu-smsd logged: {line}", log))
        if time.monotonic() > deadline:
            pytest.fail(evidence(f"no {what} within {WAIT} s", log))
        await asyncio.sleep(POLL)


@pytest.fixture(scope="module")
def smsd_bin() -> str:
    """In a fixture: a missing client is a skip (or, in CI, an error), never an xfail."""
    return require_tool("gammu-smsd")


async def session(tmp: Path, smsd_bin: str, persona: str) -> None:
    """A command in, a reply out, through smsd on a hostsim of its own with ``persona``."""
    log = tmp / "smsd.log"
    async with persona_cloud(tmp, persona) as cloud:
        await cloud.deliver(COMMAND)
        config = gammu_config(tmp / "smsdrc", cloud.link, None, smsd_section(tmp, log))
        (tmp / "outbox" / "OUT000.txt").write_text(REPLY)
        smsd = await asyncio.create_subprocess_exec(
            smsd_bin, "-c", str(config),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        inbox = tmp / "inbox"
        try:
            await until(lambda: any(inbox.glob("IN*.txt")), "a file in the inbox", smsd, log)
            [saved] = inbox.glob("IN*.txt")
            assert saved.name.split("_")[3] == "000", evidence(saved.name, log)
            assert saved.read_text().strip() == COMMAND, evidence(saved.read_text(), log)
            await until(lambda: not cloud.hooks.fleet.empty(), "from_sim command", smsd, log)
            assert await cloud.from_sim() == REPLY
        finally:
            code = await stop(smsd)
        assert code == 0, evidence(f"gammu-smsd exited {code} on SIGTERM", log)


@pytest.mark.timeout(60)
@pytest.mark.async_timeout(50)
async def test_gammu_smsd_on_every_persona(tmp_path: Path, smsd_bin: str) -> None:
    """Every persona at once, each on its own hostsim (smsd mostly waits: gammu's slow
    start, then one pass of its loop a second)."""
    await on_every_persona(tmp_path, lambda tmp, persona: session(tmp, smsd_bin, persona))
