"""The conversation handle: handlers ask for `steps`; a job gets one from `listen.conversation`."""

from __future__ import annotations

from aiogram import Bot, Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

import aiostep
from aiostep import Listen, Steps


# --8<-- [start:handler]
@aiostep.persisted_step("docs-handle.city")
async def save_city(message: Message, name: str) -> None:
    await message.answer(f"{name} lives in {message.text}.")


def build(storage: aiostep.BaseStorage | None = None) -> tuple[Dispatcher, Listen]:
    dp = Dispatcher()
    listen = aiostep.setup(dp, storage=storage)

    @dp.message(Command("hello"))
    async def hello(message: Message, steps: Steps) -> None:
        await message.answer("Your name?")
        try:
            name = await steps.wait_for(timeout=60)  # this conversation, this Listen's store
        except (TimeoutError, aiostep.WaitCancelled):
            return  # no answer in time, or /stop
        await message.answer("Your city?")
        await steps.next_step(save_city, kwargs={"name": name.text})

    @dp.message(Command("stop"))
    async def stop(message: Message, steps: Steps) -> None:
        await steps.cancel()  # ends a wait_for or a next step of this conversation
        await message.answer("Stopped.")

    return dp, listen


# --8<-- [end:handler]


# --8<-- [start:job]
async def remind(bot: Bot, listen: Listen, user_id: int) -> None:
    """A scheduled job, outside any update: ask, and route the answer to a step."""
    await bot.send_message(user_id, "Which city are you in now?")
    steps = listen.conversation(bot, chat_id=user_id, user_id=user_id)
    await steps.next_step(save_city, kwargs={"name": "You"})


# --8<-- [end:job]
