from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.filters import Command
from aiogram.types import Message
from test_redis_outage import Server, server  # noqa: F401

import aiostep
from aiostep.storage.redis import RedisStateStorage
from aiostep.testing import BotSimulator

pytestmark = pytest.mark.slow


def bot(url: str, name: Any, log: list[str]) -> Dispatcher:
    dp = Dispatcher()
    storage = RedisStateStorage(url, socket_timeout=0.5, pool_timeout=0.5)
    aiostep.setup(dp, storage=storage, step_lease=1.0)
    a, t = name("o.answer"), name("o.timeout")

    async def answer(message: Message) -> None:
        log.append("answer")

    async def too_slow(bot: Bot, chat_id: int) -> None:
        log.append("timeout")
        await bot.send_message(chat_id, "Too slow")

    aiostep.registry.register(answer, a)
    aiostep.registry.register(too_slow, t)

    @dp.message(Command("quiz"))
    async def quiz(message: Message) -> None:
        await aiostep.register_next_step(
            message.from_user.id, a, timeout=timedelta(seconds=60), on_timeout=t
        )

    return dp


async def test_a_deadline_due_while_redis_is_down_fires_once_it_is_back(
    server: Server,  # noqa: F811
) -> None:
    import uuid

    def step_name(label: str) -> str:
        return f"test.{label}.{uuid.uuid4().hex[:8]}"

    log: list[str] = []
    async with BotSimulator(bot(server.url, step_name, log), settle_timeout=20) as sim:
        clock = sim.use_fake_clock()
        talk = sim.chat()
        await talk.send("/quiz")
        server.stop()
        await clock.advance(60)
        assert log == []
        server.start()
        await clock.advance(1)
        assert log == ["timeout"]
        await clock.advance(120)
        assert log == ["timeout"]
