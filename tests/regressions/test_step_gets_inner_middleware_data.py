"""A step gets the data of the bot's message middlewares, as the handler it replaces would.

Bug (or gap): ``Listen`` is an *outer* middleware and calls the step itself
(aiostep/middleware.py ``_try_local``/``_try_persisted``), so the ``dp.message`` *inner*
middlewares, aiogram's usual place for per-handler data such as a database session
(``dp.message.middleware(DbSessionMiddleware())``), never run for a step: a step asking for
``session`` gets nothing (here: a ``TypeError`` for the missing argument), while a normal handler
for the same update would get it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Dispatcher
from aiogram.filters import Command
from aiogram.types import Message, TelegramObject

import aiostep
from aiostep.testing import BotSimulator


class DbSession(BaseMiddleware):
    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        data["session"] = "db-session"
        return await handler(event, data)


async def test_a_step_gets_data_from_message_inner_middlewares() -> None:
    sessions: list[str] = []
    dp = Dispatcher()
    aiostep.setup(dp)
    dp.message.middleware(DbSession())

    async def save_name(message: Message, session: str) -> None:
        sessions.append(session)

    @dp.message(Command("start"))
    async def start(message: Message, session: str) -> None:
        assert message.from_user is not None
        sessions.append(session)
        await aiostep.register_next_step(message.from_user.id, save_name)

    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("/start")
        await talk.send("Alice")
        assert sessions == ["db-session", "db-session"]
