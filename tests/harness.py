"""Shared test harnesses: how an in-process agent reaches hostsim (:class:`Line`), and
the agent as a child process (:class:`AgentProcess`, :func:`running_agent`), a
scripted end of a pseudo-terminal (:class:`PtyPeer`), ``hostsim run`` as a child
process (:func:`running_hostsim`) with the official SDK on its API (:func:`sdk`), and
a local HTTP endpoint for its status callbacks and fleet webhook (:class:`Listener`).

The in-memory tier runs the agent's behaviour tests over each loopback variant
of :mod:`hostsim.link`; the pty tier (``Line.pty()``) keeps a real terminal for
what needs one (device files, symlinks, termios, the CLI end to end).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import termios
import tty
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from twilio.rest import Client

from device.at.channel import AtChannel
from hostsim.link import LinkVariant, LoopbackPorts
from hostsim.pty import SimulatedModem
from hostsim.sim import HostSim


@dataclass(frozen=True, slots=True)
class Line:
    """The line between an in-process agent and hostsim: a pty, or a loopback variant.

    Build a fresh one per test (the loopback names live in it).
    """

    name: str
    ports: LoopbackPorts | None = None

    @classmethod
    def pty(cls) -> Line:
        return cls("pty")

    @classmethod
    def loopback(cls, variant: LinkVariant) -> Line:
        return cls(variant.name, LoopbackPorts(variant))

    def hostsim(self, *args: Any, **kwargs: Any) -> HostSim:
        """A :class:`HostSim` whose modems sit on this line."""
        if self.ports is not None:
            kwargs["endpoint"] = self.ports.endpoint
        return HostSim(*args, **kwargs)

    def port(self, gw: SimulatedModem) -> str:
        """What the agent is told to open: the stable link when there is one, else the path."""
        return os.fspath(gw.link) if gw.link is not None else gw.path

    def open_channel(
        self, gw: SimulatedModem, *, default_timeout: float
    ) -> Callable[[], Awaitable[AtChannel]] | None:
        """``Agent(open_channel=...)`` for this line (None: the agent opens the pty)."""
        if self.ports is None:
            return None
        return self.ports.opener(self.port(gw), default_timeout=default_timeout)


#: How long a child agent gets to stop on SIGTERM.
STOP_WAIT = 15.0


class AgentProcess:
    """``smscmd run --port PORT --journal JOURNAL ARGS…`` as a child process, startable
    again after a kill (each start logs its stderr to a file of its own).

    Without ``--socket`` or ``--config`` in ARGS the control socket is ``TMP/NAME.sock``:
    agents on one socket refuse to start (device.control.SocketInUse), so tests running
    side by side must not share the default one.

    ``env`` is the child's environment (a copy of ``os.environ`` by default; edit it
    between starts). Nothing is read from the child's stdout.
    """

    def __init__(
        self,
        tmp: Path,
        port: str,
        *args: str,
        journal: Path | None = None,
        name: str = "agent",
        env: dict[str, str] | None = None,
        stop_timeout: float = STOP_WAIT,
    ) -> None:
        self.tmp = tmp
        self.stop_timeout = stop_timeout
        self.port = port
        self.args = args
        self.journal = journal if journal is not None else tmp / "journal.sqlite3"
        self.name = name
        self.env = dict(os.environ) if env is None else env
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.log = tmp / f"{name}.log"

    async def start(self) -> None:
        """Start (again); the log of start N > 1 is ``NAME-N.log``."""
        self.starts += 1
        if self.starts > 1:
            self.log = self.tmp / f"{self.name}-{self.starts}.log"
        with self.log.open("wb") as err:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "device.cli", "run", "--port", self.port,
                "--journal", str(self.journal), *self._socket(), *self.args,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=err, env=self.env,
            )  # fmt: skip

    def _socket(self) -> list[str]:
        if "--socket" in self.args or "--config" in self.args:
            return []
        return ["--socket", str(self.tmp / f"{self.name}.sock")]

    def stderr(self) -> str:
        """What the current (or last) start wrote to stderr so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    async def kill(self) -> None:
        """SIGKILL (if still running) and reap."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()

    async def terminate(self, timeout: float | None = None) -> int:
        """SIGTERM and wait for the exit status; killed and AssertionError after ``timeout``
        (default: the ``stop_timeout`` given at construction)."""
        assert self.proc is not None
        timeout = self.stop_timeout if timeout is None else timeout
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            await self.kill()
            raise AssertionError(f"agent did not stop within {timeout} s of SIGTERM") from None

    async def cleanup(self) -> None:
        """Kill a child still running (teardown after a failure); no-op otherwise."""
        if self.proc is not None and self.proc.returncode is None:
            await self.kill()


@asynccontextmanager
async def running_agent(
    tmp: Path, port: str, *args: str, **kwargs: Any
) -> AsyncIterator[AgentProcess]:
    """A started :class:`AgentProcess`; on exit SIGTERM and require exit status 0.

    When the body fails, the tail of the agent's stderr goes to the test's stderr.
    """
    agent = AgentProcess(tmp, port, *args, **kwargs)
    await agent.start()
    try:
        yield agent
    except BaseException:
        sys.stderr.write(agent.stderr()[-6000:])
        raise
    finally:
        try:
            code = await agent.terminate()
        finally:
            await agent.cleanup()
    assert code == 0, agent.stderr()[-4000:]


class PtyPeer:
    """One end of a pseudo-terminal, driven by the test on the loop: what arrives is
    buffered (:attr:`buf`, and the size of each read in :attr:`reads`), :meth:`expect`
    and :meth:`exactly` wait for it, :meth:`write` answers.

    :meth:`pair` makes a new raw pty and holds its master: the peer is the modem,
    the code under test opens :attr:`path`. :meth:`open` opens an existing terminal
    (hostsim's) as a TE does: non-blocking, not as controlling terminal. A read
    error (EIO once the other side is gone) counts as no data. ``close`` is idempotent.
    """

    def __init__(self, fd: int, path: str, *, also_close: tuple[int, ...] = ()) -> None:
        self.fd = fd
        self.path = path
        self.buf = bytearray()
        self.reads: list[int] = []
        self._fds = (fd, *also_close)
        self._closed = False
        self._arrived = asyncio.Event()
        asyncio.get_running_loop().add_reader(fd, self._readable)

    @classmethod
    def pair(cls) -> PtyPeer:
        """A new raw pty; the peer holds the master, :attr:`path` names the slave."""
        master, slave = os.openpty()
        tty.setraw(slave, termios.TCSANOW)
        os.set_blocking(master, False)
        return cls(master, os.ttyname(slave), also_close=(slave,))

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> PtyPeer:
        """The TE end of an existing terminal ``path``."""
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        return cls(fd, os.fspath(path))

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 4096)
        except OSError:
            data = b""
        if data:
            self.buf += data
            self.reads.append(len(data))
            self._arrived.set()

    def write(self, data: bytes) -> None:
        os.write(self.fd, data)

    async def expect(self, marker: bytes, timeout: float = 5.0) -> bytes:
        """Everything up to and including ``marker`` (consumed); TimeoutError otherwise."""
        async with asyncio.timeout(timeout):
            while marker not in self.buf:
                self._arrived.clear()
                await self._arrived.wait()
        end = self.buf.index(marker) + len(marker)
        out = bytes(self.buf[:end])
        del self.buf[:end]
        return out

    async def exactly(self, count: int, timeout: float = 5.0) -> bytes:
        """The next ``count`` bytes (consumed); TimeoutError otherwise."""
        async with asyncio.timeout(timeout):
            while len(self.buf) < count:
                self._arrived.clear()
                await self._arrived.wait()
        out = bytes(self.buf[:count])
        del self.buf[:count]
        return out

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        asyncio.get_running_loop().remove_reader(self.fd)
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)


#: How long ``hostsim run`` gets to print its ready line, and to stop on SIGTERM.
HOSTSIM_WAIT = 20.0


@asynccontextmanager
async def running_hostsim(
    tmp: Path, *args: str, wait: float = HOSTSIM_WAIT
) -> AsyncIterator[dict[str, Any]]:
    """``hostsim run --api 127.0.0.1:0 --link TMP/gw ARGS…`` as a child process: yields
    its ready line (``api``, ``account_sid``, ``auth_token``, ``sims`` with each
    ``link``); on exit SIGTERM, and exit status 0 required. Its stderr is ``TMP/hostsim.log``
    (``--log-level DEBUG`` in ``args`` puts the raw AT traffic there)."""
    log = tmp / "hostsim.log"
    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hostsim", "run", "--api", "127.0.0.1:0",
            "--link", str(tmp / "gw"), *args,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=err,
        )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), wait)
        ready: dict[str, Any] = json.loads(line)
        yield ready
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), wait)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise AssertionError("hostsim did not stop on SIGTERM") from None
    assert proc.returncode == 0, log.read_text(errors="replace")[-3000:]


def sdk(ready: dict[str, Any]) -> Client:
    """The official ``twilio`` client, pointed at the API of a :func:`running_hostsim`."""
    client = Client(ready["account_sid"], ready["auth_token"])
    client.supersim.base_url = ready["api"]
    return client


class Listener:
    """A local HTTP endpoint: status callbacks at /status, the fleet webhook at /fleet
    (each request's form lands in its queue)."""

    def __init__(self) -> None:
        self.status: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self.fleet: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self.url = ""

    async def _status(self, request: web.Request) -> web.Response:
        self.status.put_nowait(dict(await request.post()))  # type: ignore[arg-type]
        return web.Response(status=204)

    async def _fleet(self, request: web.Request) -> web.Response:
        self.fleet.put_nowait(dict(await request.post()))  # type: ignore[arg-type]
        return web.Response(status=204)

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[Listener]:
        app = web.Application()
        app.router.add_post("/status", self._status)
        app.router.add_post("/fleet", self._fleet)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        try:
            yield self
        finally:
            await runner.cleanup()
