"""Shared test helpers: bounded asyncio runs, hostsim fixtures."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

#: Upper bound for one asyncio test body; pytest-timeout bounds the whole test too.
ASYNC_TEST_TIMEOUT = 30.0


def run_async(coro: Coroutine[Any, Any, T], timeout: float = ASYNC_TEST_TIMEOUT) -> T:
    """Run ``coro`` on a fresh event loop, bounded by ``timeout`` seconds.

    Fails the test if any task is still pending when the coroutine returns, so
    that no test leaves work behind.
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

    return asyncio.run(bounded())


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
