"""wait_for: ask inside a handler and await the answer."""

from __future__ import annotations

from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

import aiostep


# --8<-- [start:echo]
def build() -> Dispatcher:
    dp = Dispatcher()
    aiostep.setup(dp)  # Listen on messages, edited messages and callback queries

    @dp.message(Command("echo"))
    async def echo(message: Message) -> None:
        await message.reply("Please type something:")
        try:
            response = await aiostep.wait_for(message.from_user.id, timeout=25)
        except TimeoutError:
            await message.reply("You took too long to answer.")
        else:
            await message.reply(f"You typed: {response.text}")

    @dp.message()
    async def other(message: Message) -> None:
        await message.answer(f"(normal handler) {message.text}")

    return dp


# --8<-- [end:echo]
