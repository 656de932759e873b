"""A real Mosquitto broker for the MQTT tests (Debian's ``mosquitto``, tests/mqtt/install).

:class:`Mosquitto` runs ``/usr/sbin/mosquitto`` with a configuration file of its own in a
temporary directory, listening on a free loopback port (the same one again after
:meth:`Mosquitto.stop` / :meth:`Mosquitto.start`, for outage tests), anonymous or with a
password file (``users``). :func:`mosquitto_or_skip` finds the program: missing, the
test is skipped on a developer's machine and fails under CI=true. :class:`Subscriber`
is an independent client (aiomqtt) that collects what the agent publishes. A
:class:`Mosquitto` is a context manager (started, then stopped); the ``broker`` fixture of
tests/conftest.py is an anonymous one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import pytest

INSTALL = "bash tests/mqtt/install"
PROGRAM = "/usr/sbin/mosquitto"
#: Bound of a broker start (it listens within milliseconds) and of a stop.
START_WAIT = 10.0


def mosquitto_or_skip() -> str:
    """The broker's path; skip when it is missing (fail with CI=true)."""
    found = PROGRAM if os.access(PROGRAM, os.X_OK) else shutil.which("mosquitto")
    if found is None:
        reason = f"mosquitto is not installed (`{INSTALL}` as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Mosquitto:
    """One broker process on ``127.0.0.1:<port>`` (see the module docstring)."""

    def __init__(self, directory: Path, *, users: dict[str, str] | None = None) -> None:
        self.program = mosquitto_or_skip()
        self.directory = directory
        self.port = free_port()
        self.users = users
        self.log = directory / "mosquitto.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.conf = self._write_config()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        lines = [
            f"listener {self.port} 127.0.0.1",
            "persistence false",
            f"log_dest file {self.log}",
            "log_type all",
            "connection_messages true",
            # As root, mosquitto would drop to the user "mosquitto", who cannot read this
            # test's directory: stay the user who runs the tests.
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
        ]
        if self.users:
            passwd = self.directory / "passwd"
            passwd.touch(mode=0o600)
            for user, password in self.users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password],
                               check=True, capture_output=True, timeout=10)  # fmt: skip
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        conf = self.directory / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def start(self) -> None:
        """Start the broker and wait (bounded) until it accepts connections."""
        assert self.process is None, "already running"
        command = [self.program, "-c", str(self.conf)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + START_WAIT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"mosquitto exited {self.process.returncode}: {err}")
            with contextlib.suppress(OSError), socket.create_connection(
                ("127.0.0.1", self.port), timeout=0.5
            ):
                return
            time.sleep(0.02)  # poll the condition, bounded by the deadline
        self.stop()
        raise TimeoutError(f"mosquitto did not listen on {self.port} in {START_WAIT} s")

    def __enter__(self) -> Self:
        """Started (:meth:`start`); stopped again when the block ends, however it ends."""
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after START_WAIT) and reap it."""
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=START_WAIT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=START_WAIT)
        if process.stderr is not None:
            process.stderr.close()


@dataclass(frozen=True, slots=True)
class Received:
    """One message as the subscriber got it; ``at`` is the wall clock on arrival."""

    topic: str
    payload: bytes
    retain: bool
    at: float


class Subscriber:
    """An aiomqtt client of the test's own that collects messages on ``filters``."""

    def __init__(self, broker: Mosquitto, *filters: str, **client: Any) -> None:
        self.broker = broker
        self.filters = filters
        self.client_args = client
        self.messages: list[Received] = []
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def __aenter__(self) -> Subscriber:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._ready.wait(), START_WAIT)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        import aiomqtt

        async with aiomqtt.Client("127.0.0.1", self.broker.port, **self.client_args) as client:
            for pattern in self.filters:
                await client.subscribe(pattern, qos=1)
            self._ready.set()
            async for message in client.messages:
                payload = message.payload
                assert isinstance(payload, bytes | bytearray)
                self.messages.append(Received(str(message.topic), bytes(payload),
                                              bool(message.retain), time.time()))  # fmt: skip
                self._arrived.set()

    async def wait_for(self, count: int, timeout: float = START_WAIT,
                       topic: str | None = None) -> list[Received]:  # fmt: skip
        """The messages (on ``topic``, if given) once there are ``count`` of them."""
        deadline = time.monotonic() + timeout
        while True:
            got = [m for m in self.messages if topic is None or m.topic == topic]
            if len(got) >= count:
                return got
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{len(got)} of {count} messages in {timeout} s: {got}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)
