"""Cancelling an update that queues behind its conversation's turn must end it as cancelled.

Bug: ``Gates.acquire`` (aiostep/ordering.py) handles a cancellation by removing its future from
the gate's queue, but when the holder released the turn first, ``release`` has already popped
that (cancelled) future and maybe dropped the gate, so ``gate.queue.remove(fut)`` raises
``ValueError: <Future cancelled> is not in deque``: the update task ends with a ValueError
instead of ``CancelledError`` (what a shutdown cancelling in-flight updates, or a webhook whose
request is dropped, does).
"""

from __future__ import annotations

import asyncio
import contextlib

from aiogram import Dispatcher
from aiogram.types import Message

import aiostep
from aiostep.testing import BotSimulator


async def test_cancelling_a_busy_and_a_queued_update_cancels_both() -> None:
    started = asyncio.Event()
    dp = Dispatcher()
    listen = aiostep.setup(dp)

    @dp.message()
    async def slow(message: Message) -> None:
        started.set()
        await asyncio.Event().wait()  # busy until cancelled

    sim = BotSimulator(dp, settle_timeout=1)
    await sim.start()
    talk = sim.chat()
    sends = [asyncio.create_task(talk.send("first")), asyncio.create_task(talk.send("second"))]
    await started.wait()
    for _ in range(10):  # let the second update reach the conversation's queue
        await asyncio.sleep(0)
    updates = sim.pending_tasks
    assert len(updates) == 2

    for task in updates:  # the busy one first, as a shutdown cancels them in order
        task.cancel()
    results = await asyncio.gather(*updates, return_exceptions=True)
    await asyncio.gather(*sends, return_exceptions=True)

    try:
        assert [type(result) for result in results] == [asyncio.CancelledError] * 2
        assert len(listen.gates) == 0
    finally:
        # a ValueError recorded by the sim is the failure the assertions above report
        with contextlib.suppress(ValueError):
            await sim.aclose()
