"""The deadline index is a hint: when the scheduler looks at a conversation before its step is
due (on Redis, another worker that found the step claimed put it back to look at when the
claim's lease ends, over the later deadline the step's owner had just indexed), the step's
own deadline must stay indexed. It was dropped: the timeout never fired."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from aiogram import Bot, Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

import aiostep
from aiostep.keys import ConversationKey, storage_key
from aiostep.testing import BotSimulator

if TYPE_CHECKING:
    from conftest import Backend


async def test_a_deadline_looked_at_early_still_fires_when_due(backend: Backend) -> None:
    log: list[str] = []
    answer_name = f"test.early.answer.{uuid.uuid4().hex[:8]}"
    timeout_name = f"test.early.too_slow.{uuid.uuid4().hex[:8]}"

    def build() -> Dispatcher:
        dp = Dispatcher()
        aiostep.setup(dp, storage=backend.new_storage())

        async def answer(message: Message) -> None:
            log.append("answer")

        async def too_slow(bot: Bot, chat_id: int) -> None:
            log.append("timeout")
            await bot.send_message(chat_id, "Too slow")

        if answer_name not in aiostep.registry:
            aiostep.registry.register(answer, answer_name)
            aiostep.registry.register(too_slow, timeout_name)

        @dp.message(Command("ask"))
        async def ask(message: Message) -> None:
            assert message.from_user is not None
            await aiostep.register_next_step(
                message.from_user.id, answer_name, timeout=60, on_timeout=timeout_name
            )

        return dp

    sim = BotSimulator(build)
    backend.sims.append(sim)
    clock = sim.use_fake_clock()
    talk = sim.chat()
    await talk.send("/ask")
    key = storage_key(ConversationKey(talk.chat.id, talk.user.id, None, sim.bot.id))
    await backend.storage.deadline_later(key, clock.now() + 10)  # a look-again, too early
    listen = next(
        m for m in sim.dispatcher.message.outer_middleware if isinstance(m, aiostep.Listen)
    )
    listen.scheduler.wake_at(clock.now() + 10)
    await clock.advance(10)
    assert log == []  # not due yet
    await clock.advance(50)
    assert log == ["timeout"]
    talk.assert_last("Too slow")
    aiostep.registry.unregister(answer_name)
    aiostep.registry.unregister(timeout_name)
