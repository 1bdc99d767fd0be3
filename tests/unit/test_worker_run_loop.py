"""worker.py's run loop: a stop request drains normally; a worker or bridge task that ends first is fatal."""

from __future__ import annotations

import asyncio

import pytest

from worker import ServiceTaskDied, wait_for_stop_or_death


async def _forever() -> None:
    await asyncio.Event().wait()


async def _fails() -> None:
    raise ConnectionError("stream CIVIL not found")


async def _returns() -> None:
    return None


async def test_returns_when_stop_is_requested() -> None:
    stop = asyncio.Event()
    tasks = {"worker": asyncio.create_task(_forever()), "bridge": asyncio.create_task(_forever())}
    asyncio.get_running_loop().call_soon(stop.set)
    await asyncio.wait_for(wait_for_stop_or_death(tasks, stop), timeout=5)
    assert not any(t.done() for t in tasks.values())
    for t in tasks.values():
        t.cancel()


async def test_a_task_failing_raises_with_its_name_and_error() -> None:
    stop = asyncio.Event()
    tasks = {"worker": asyncio.create_task(_forever()), "bridge": asyncio.create_task(_fails())}
    with pytest.raises(ServiceTaskDied, match="bridge task ended.*ConnectionError: stream CIVIL not found"):
        await asyncio.wait_for(wait_for_stop_or_death(tasks, stop), timeout=5)
    tasks["worker"].cancel()


async def test_a_task_ending_quietly_is_fatal_too() -> None:
    stop = asyncio.Event()
    tasks = {"worker": asyncio.create_task(_returns()), "bridge": asyncio.create_task(_forever())}
    with pytest.raises(ServiceTaskDied, match="^the worker task ended without a stop request$"):
        await asyncio.wait_for(wait_for_stop_or_death(tasks, stop), timeout=5)
    tasks["bridge"].cancel()
