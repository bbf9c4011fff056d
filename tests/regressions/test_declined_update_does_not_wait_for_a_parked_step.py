"""A persisted step that awaits ``steps.wait_for(filter=...)`` gives up its conversation's turn
while parked, so the user's other messages are handled (the raw-layer guide: an update that
fails the filter "goes to your handlers and the wait goes on"). But such an update found the
step claimed by that parked update and waited for it as for a step running elsewhere, up to
``busy_wait`` (30 s), holding the turn: the answer the step waited for queued behind it, and
the wait timed out. Now an update the parked step's waiter declined goes to the handlers at
once."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from aiogram import Dispatcher, F
from aiogram.filters import Command
from aiogram.types import Message

import aiostep

if TYPE_CHECKING:
    from conftest import Backend


async def test_a_message_a_parked_steps_filter_declines_goes_to_the_handlers_at_once(
    backend: Backend,
) -> None:
    log: list[str] = []
    name = f"test.parked-step.photo.{uuid.uuid4().hex[:8]}"

    async def ask_photo(message: Message, steps: aiostep.Steps) -> None:
        log.append(f"step {message.text}")
        await message.answer("Send a photo")
        try:
            await steps.wait_for(filter=F.photo, timeout=3)
        except TimeoutError:
            log.append("timed out")
        else:
            log.append("got the photo")

    aiostep.registry.register(ask_photo, name)

    def setup(dp: Dispatcher, storage: Any) -> None:
        aiostep.setup(dp, storage=storage)

        @dp.message(Command("start"))
        async def start(message: Message, steps: aiostep.Steps) -> None:
            await steps.next_step(name)

        @dp.message()
        async def normal(message: Message) -> None:
            log.append(f"normal {message.text}")

    try:
        sim = backend.simulator(setup)
        talk = sim.chat()
        await talk.send("/start")
        await talk.send("ready")
        await talk.send("not a photo")  # the filter declines it: the handlers, now
        assert log == ["step ready", "normal not a photo"]
        await talk.send_photo()
        assert log == ["step ready", "normal not a photo", "got the photo"]
        await talk.send("after")  # the step is done
        assert log[-1] == "normal after"
    finally:
        aiostep.registry.unregister(name)
