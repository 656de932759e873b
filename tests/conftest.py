"""Shared test helpers: bounded asyncio runs (an ``async def test_…`` runs on a fresh
event loop through :func:`pytest_pyfunc_call`), the ``line`` fixture of the in-memory
tier (see ``harness.Line``), bounded subprocess waits, the ``broker`` fixture of the MQTT
tests (a real Mosquitto)."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from harness import Line
from mqtt.broker import Mosquitto

from device.journal.worker import THREAD_NAME
from hostsim.link import BYTES, CHUNKED, WHOLE

T = TypeVar("T")

#: Upper bound for one asyncio test body; pytest-timeout bounds the whole test too.
#: A test that needs longer says so with ``@pytest.mark.async_timeout(seconds)``.
ASYNC_TEST_TIMEOUT = 30.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "async_timeout(seconds): bound of an async test body (default ASYNC_TEST_TIMEOUT)",
    )


def run_async(coro: Coroutine[Any, Any, T], timeout: float = ASYNC_TEST_TIMEOUT) -> T:
    """Run ``coro`` on a fresh event loop, bounded by ``timeout`` seconds.

    Fails the test if any task is still pending when the coroutine returns, so
    that no test leaves work behind. The leftovers are cancelled first, so the
    loop closes cleanly even then. Fails it too when an agent's journal thread
    (:data:`device.journal.worker.THREAD_NAME`) is still running afterwards.
    """

    async def bounded() -> T:
        result = await asyncio.wait_for(coro, timeout)
        current = asyncio.current_task()
        leftovers = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
        for task in leftovers:
            task.cancel()
        if leftovers:
            raise AssertionError(f"test left tasks running: {leftovers!r}")
        return result

    result = asyncio.run(bounded())
    threads = [t.name for t in threading.enumerate() if t.name.startswith(THREAD_NAME)]
    if threads:
        raise AssertionError(f"test left journal threads running: {threads!r}")
    return result


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run an ``async def test_…`` through :func:`run_async`; other tests are left to pytest.

    The bound is ``ASYNC_TEST_TIMEOUT`` unless the test carries an ``async_timeout`` marker.
    Fixtures stay synchronous: only the test body runs on the loop.
    """
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    marker = pyfuncitem.get_closest_marker("async_timeout")
    timeout = float(marker.args[0]) if marker is not None else ASYNC_TEST_TIMEOUT
    names = pyfuncitem._fixtureinfo.argnames
    run_async(pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in names}), timeout)
    return True


@pytest.fixture(params=[pytest.param(v, id=v.name) for v in (WHOLE, BYTES, CHUNKED)])
def line(request: pytest.FixtureRequest) -> Line:
    """The in-memory tier: one run per loopback variant of :mod:`hostsim.link` (whole
    writes, byte at a time, chunked with delays). The noisy variant is left to the
    reliability faults and ``test_link``: a fourth run of every behaviour test would
    cost a quarter more of the tier's time, spent waiting on the same agent timers."""
    return Line.loopback(request.param)


async def communicate(proc: asyncio.subprocess.Process, timeout: float) -> tuple[bytes, bytes]:
    """``proc.communicate()`` bounded by ``timeout``; on expiry the process is killed
    (and reaped) before TimeoutError propagates, so no test leaves a process behind."""
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return out, err


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """An anonymous Mosquitto on a free loopback port (tests/mqtt/broker.py), stopped in
    teardown; skipped where mosquitto is missing (failed with CI=true)."""
    with Mosquitto(tmp_path) as server:
        yield server
