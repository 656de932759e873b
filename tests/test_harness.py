"""The test harness itself: the async runner's bound and its leaked-task check."""

from __future__ import annotations

import asyncio

import pytest
from conftest import run_async


def test_a_task_left_running_fails_the_test() -> None:
    async def leaves_a_task() -> None:
        asyncio.get_running_loop().create_task(asyncio.sleep(3600))

    with pytest.raises(AssertionError, match="test left tasks running"):
        run_async(leaves_a_task())


def test_the_bound_holds() -> None:
    with pytest.raises(TimeoutError):
        run_async(asyncio.sleep(3600), timeout=0.01)


@pytest.mark.async_timeout(5)
async def test_an_async_test_runs_on_a_loop_of_its_own() -> None:
    # Collected as an ``async def`` and run by conftest's pytest_pyfunc_call hook.
    assert asyncio.get_running_loop().is_running()
    assert await asyncio.sleep(0, "done") == "done"
