"""run_async: the same answer with or without an event loop already running in the thread."""

from __future__ import annotations

import asyncio
import threading

import pytest

from expirytrack_dagster.async_runner import run_async


async def _where() -> tuple[int, str]:
    await asyncio.sleep(0)
    return 42, threading.current_thread().name


def test_without_a_running_loop_it_runs_in_this_thread() -> None:
    assert run_async(_where()) == (42, threading.current_thread().name)


def test_inside_a_running_loop_it_runs_on_a_worker_thread_instead_of_failing() -> None:
    async def notebook_cell() -> tuple[int, str]:
        return run_async(_where())  # what asyncio.run refuses to do here

    assert asyncio.run(notebook_cell()) == (42, "expirytrack-async")


def test_the_coroutines_exception_reaches_the_caller() -> None:
    async def fails() -> None:
        raise LookupError("no such expiry")

    async def notebook_cell() -> None:
        run_async(fails())

    with pytest.raises(LookupError, match="no such expiry"):
        run_async(fails())
    with pytest.raises(LookupError, match="no such expiry"):
        asyncio.run(notebook_cell())
