"""What the third-party client tests (``tests/test_clients_*.py``) share: finding the
clients (skip with the reason on a developer's machine without them, fail in CI), the
cloud side of a :func:`harness.running_hostsim` (deliver a command and wait for its
``delivered`` callback, wait for a ``from_sim`` command on the fleet webhook), running
a client bounded, and reading a client's debug log for the AT commands the module
refused, which every failure message carries with the log's path and tail.

The clients are installed by ``tests/clients/install`` (``.ci/run`` runs it): the
Debian packages ``gammu`` and ``gammu-smsd``, and python-gsmmodem-new in its own
virtual environment ``.venv-clients`` (another one with ``SMSCMD_CLIENTS_VENV``).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
from conftest import communicate
from harness import Listener, running_hostsim, sdk

from hostsim.modem.personas import PERSONAS

REPO = Path(__file__).resolve().parents[2]
INSTALL = "bash tests/clients/install"
#: Bound of every wait on hostsim's API (a callback, a webhook) and of a client's run.
WAIT = 20.0


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


class ClientMissing(RuntimeError):
    """A client is not installed, in CI: not among :data:`EXPECTED_FAILURES`."""


#: What a client test raises when hostsim answers wrongly (asserts, pytest.fail, a wait
#: that timed out): the ``raises=`` of an ``xfail`` on a command not emulated yet, so that
#: a missing client (:class:`ClientMissing`) still fails in CI; also what a test that
#: runs every persona at once collects per persona.
EXPECTED_FAILURES = (AssertionError, pytest.fail.Exception, TimeoutError)


def missing(what: str) -> NoReturn:
    """A client is not installed: skip on a developer's machine, fail in CI."""
    reason = f"{what} is not installed (install the clients with `{INSTALL}`)"
    if in_ci():
        raise ClientMissing(reason)
    pytest.skip(reason)


def require_tool(name: str) -> str:
    """The path of the executable ``name`` (a Debian package's), or skip / fail."""
    path = shutil.which(name)
    if path is None:
        missing(name)
    return path


def clients_venv() -> Path:
    return Path(os.environ.get("SMSCMD_CLIENTS_VENV", REPO / ".venv-clients"))


def require_gsmmodem() -> Path:
    """The Python of the clients' venv when python-gsmmodem-new is in it, or skip / fail."""
    python = clients_venv() / "bin" / "python"
    if not python.exists() or not list(clients_venv().glob("lib/python*/site-packages/gsmmodem")):
        missing(f"python-gsmmodem-new (in {clients_venv()})")
    return python


#: gammu's hex dump of each frame (``41A|54T|0D …``): left out of a failure's tail.
_HEX_DUMP = re.compile(r"(?:^|gammu: )[0-9A-F]{2}.\|")


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a debug log, without gammu's hex dumps."""
    if not path.exists():
        return f"({path} was not written)"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join([line for line in text if not _HEX_DUMP.search(line)][-lines:])


#: gammu's ``logformat = textall``: the command as line 1, the answer's lines after it
#: (gammu-smsd puts ``gammu: `` and a timestamp before each line).
_GAMMU_LINE = re.compile(r'(?:^|gammu: )(\d+) "(.*)"$')
#: python-gsmmodem's DEBUG log: ``write: AT…`` then ``response: ['…', 'OK']``.
_GSMMODEM_WRITE = re.compile(r"write: (.*)$")
_GSMMODEM_RESPONSE = re.compile(r"response: \[(.*)\]$")
_ERROR = re.compile(r"^(ERROR|\+CM[ES] ERROR: .*|[48])$")


def refused(log: Path) -> list[str]:
    """``AT… → ERROR`` for each command the module refused, in the order of the first
    refusal, from a gammu, gammu-smsd or python-gsmmodem debug log (empty when the log
    is missing)."""
    if not log.exists():
        return []
    out: list[str] = []
    command = ""
    for line in log.read_text(errors="replace").splitlines():
        if m := _GAMMU_LINE.search(line):
            number, text = m.groups()
            if number == "1":
                command = text
            elif _ERROR.match(text):
                out.append(f"{command} → {text}")
        elif m := _GSMMODEM_WRITE.search(line):
            command = m.group(1)
        elif m := _GSMMODEM_RESPONSE.search(line):
            answer = [part.strip().strip("'\"") for part in m.group(1).split(",")]
            if answer and _ERROR.match(answer[-1]):
                out.append(f"{command} → {answer[-1]}")
    return list(dict.fromkeys(out))


def evidence(what: str, log: Path) -> str:
    """A failure message: ``what``, the commands refused, the log's path and tail."""
    refusals = "\n".join(f"  {r}" for r in refused(log)) or "  (none)"
    return f"{what}\nrefused by hostsim:\n{refusals}\n--- {log} (tail) ---\n{tail(log)}"


@dataclass(frozen=True, slots=True)
class Cloud:
    """The cloud side of a running hostsim: its ready line and a :class:`Listener`
    that gets the status callbacks and (with ``--commands-webhook``) every ``from_sim``."""

    ready: dict[str, Any]
    hooks: Listener

    @property
    def link(self) -> str:
        link: str = self.ready["sims"][0]["link"]
        return link

    async def deliver(self, *payloads: str) -> None:
        """Create one to_sim command per payload, all at once (concurrent requests, so
        several arrive back to back); return when every one is ``delivered`` (stored
        in the modem: its ``+CMTI`` is on the line)."""
        client = sdk(self.ready)
        await asyncio.gather(*(
            asyncio.to_thread(
                client.supersim.v1.sms_commands.create,
                sim="sim0", payload=payload,
                callback_url=self.hooks.url + "/status", callback_method="POST",
            )
            for payload in payloads
        ))  # fmt: skip
        delivered = 0
        async with asyncio.timeout(WAIT):
            while delivered < len(payloads):
                status = await self.hooks.status.get()
                delivered += status["Status"] == "delivered"

    async def from_sim(self) -> str:
        """The payload of the next ``from_sim`` command (the fleet webhook)."""
        form = await asyncio.wait_for(self.hooks.fleet.get(), WAIT)
        assert form["Status"] == "received", form
        return form["Payload"]


@asynccontextmanager
async def persona_cloud(tmp: Path, persona: str) -> AsyncIterator[Cloud]:
    """``hostsim run`` with ``persona`` in ``tmp``, its fleet webhook pointed at a
    :class:`Listener`: the cloud side a client session talks to."""
    async with (
        Listener().serving() as hooks,
        running_hostsim(
            tmp, *hostsim_args(persona), "--commands-webhook", hooks.url + "/fleet"
        ) as ready,
    ):
        yield Cloud(ready, hooks)


async def on_every_persona(tmp: Path, session: Callable[[Path, str], Awaitable[None]]) -> None:
    """``session(tmp/NAME, NAME)`` for every persona at once (each starts a hostsim of its
    own: the clients mostly wait, so at once costs little more than one); one failure
    naming each persona that failed, and why."""

    async def outcome(persona: str) -> str | None:
        (tmp / persona).mkdir()
        try:
            await session(tmp / persona, persona)
        except EXPECTED_FAILURES as exc:
            return f"== {persona}: {type(exc).__name__}: {exc}"
        return None

    results = await asyncio.gather(*(outcome(name) for name in PERSONAS))
    failures = [why for why in results if why is not None]
    if failures:
        pytest.fail("\n\n".join(failures))


def hostsim_args(persona: str) -> tuple[str, ...]:
    """``hostsim run`` flags of the client tests (the webhook is added by the test)."""
    return ("--seed", "11", "--persona", persona, "--log-level", "DEBUG")


async def run_client(
    argv: Sequence[str], *, stdin: bytes | None = None, timeout: float = WAIT
) -> tuple[int, str]:
    """Run a client to its end, bounded (killed and TimeoutError after ``timeout``);
    its exit status and what it printed (stdout and stderr together)."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    if stdin is not None:
        assert proc.stdin is not None
        proc.stdin.write(stdin)
        await proc.stdin.drain()
        proc.stdin.close()
    out, _ = await communicate(proc, timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


async def stop(proc: asyncio.subprocess.Process, timeout: float = WAIT) -> int:
    """SIGTERM and reap (killed after ``timeout``, then AssertionError)."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"{proc.pid} did not stop within {timeout} s of SIGTERM") from None


def gammu_config(path: Path, device: str, log: Path | None, extra: str = "") -> Path:
    """A gammu(rc) for ``device`` over AT with its full debug log (``textall``) in ``log``
    (None: gammu-smsd's own log takes it); ``extra`` adds sections (``[smsd]``)."""
    logfile = f"logfile = {log}\n" if log is not None else ""
    path.write_text(
        f"[gammu]\ndevice = {device}\nconnection = at\n{logfile}logformat = textall\n{extra}"
    )
    return path
