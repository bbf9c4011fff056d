"""Chat-wide waits: anyone in the chat may answer (aiostep.ANYONE)."""

from __future__ import annotations

from aiogram import Dispatcher, F
from aiogram.filters import Command
from aiogram.types import Message

import aiostep


# --8<-- [start:quiz]
def build() -> Dispatcher:
    dp = Dispatcher()
    aiostep.setup(dp, chat_wide=True)  # also look up a chat's ANYONE waiter for each update

    @dp.message(Command("quiz"))
    async def quiz(message: Message) -> None:
        await message.answer("First to answer wins: 6 x 7?")
        while True:
            try:
                answer = await aiostep.wait_for(aiostep.ANYONE, filter=F.text, timeout=60)
            except TimeoutError:
                await message.answer("Nobody? It was 42.")
                return
            if answer.text.strip() == "42":
                await answer.reply(f"{answer.from_user.first_name} wins!")
                return
            await answer.reply("No.")

    return dp


# --8<-- [end:quiz]
