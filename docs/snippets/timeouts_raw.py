"""A persisted step whose on_timeout fires with no update, after a restart too."""

from __future__ import annotations

from aiogram import Bot, Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

import aiostep


# --8<-- [start:raw]
@aiostep.persisted_step("quiz.answer")
async def answer(message: Message, question: str) -> None:
    await message.answer(f"{question} {message.text}: noted.")


# on_timeout is stored by name: it must be a registered step
@aiostep.persisted_step("quiz.reminder")
async def remind(bot: Bot, chat_id: int, user_id: int, question: str, reminded: int) -> None:
    if reminded < 2:
        # registered here, this is the timed-out step's outcome: the quiz goes on
        await aiostep.register_next_step(
            user_id,
            answer,
            kwargs={"question": question, "reminded": reminded + 1},
            timeout=60,
            on_timeout=remind,
        )
        await bot.send_message(chat_id, f"Still there? {question}")
        return
    await bot.send_message(chat_id, "Let's leave it for now.")  # registers nothing: it ends


def build(storage: object = None) -> Dispatcher:
    dp = Dispatcher()
    aiostep.setup(dp, storage=storage)  # starts the deadline scheduler with the bot

    @dp.message(Command("quiz"))
    async def quiz(message: Message) -> None:
        question = "2 + 2?"
        await aiostep.register_next_step(
            message.from_user.id,
            answer,
            kwargs={"question": question, "reminded": 0},
            timeout=60,
            on_timeout=remind,
        )
        await message.answer(question)

    return dp


# --8<-- [end:raw]
