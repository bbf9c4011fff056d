"""A persisted step registered with a timeout from code outside an update
(``listen.conversation(...).next_step(..., timeout=)``) did not wake the Listen's scheduler: on
Redis (whose deadlines live in Redis, not in a local index that wakes it) the timeout fired
only at the scheduler's next poll of other workers' deadlines, up to ``poll`` seconds late.
The handle now wakes its own Listen's scheduler, as an update's registration does."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from aiogram import Dispatcher

import aiostep

if TYPE_CHECKING:
    from conftest import Backend


async def test_a_timeout_set_from_outside_an_update_fires_on_time(backend: Backend) -> None:
    fired: list[int] = []
    step_name = f"test.outside-deadline.step.{uuid.uuid4().hex[:8]}"
    timeout_name = f"test.outside-deadline.timeout.{uuid.uuid4().hex[:8]}"

    async def step() -> None:
        raise AssertionError("no answer is sent")

    async def expired(chat_id: int) -> None:
        fired.append(chat_id)

    aiostep.registry.register(step, step_name)
    aiostep.registry.register(expired, timeout_name)
    listens: list[aiostep.Listen] = []

    def setup(dp: Dispatcher, storage: Any) -> None:
        # a poll far longer than the test: only the deadline's own wake-up can fire it
        listens.append(aiostep.setup(dp, storage=storage))
        listens[-1].scheduler.poll = 3600

    try:
        sim = backend.simulator(setup)
        clock = sim.use_fake_clock()
        talk = sim.chat()
        await sim.start()
        steps = listens[-1].conversation(sim.bot, talk.chat.id, talk.user.id)
        await steps.next_step(step_name, timeout=5, on_timeout=timeout_name)
        await clock.advance(4)
        assert fired == []
        await clock.advance(1)
        await sim.settle()
        assert fired == [talk.chat.id]
    finally:
        aiostep.registry.unregister(step_name)
        aiostep.registry.unregister(timeout_name)
