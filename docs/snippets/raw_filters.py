"""wait_for options: filter=, updates=, allow_commands=, and ending a wait from elsewhere."""

from __future__ import annotations

from aiogram import Dispatcher, F
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

import aiostep


def build() -> Dispatcher:
    dp = Dispatcher()
    aiostep.setup(dp)

    # --8<-- [start:filter]
    @dp.message(Command("avatar"))
    async def avatar(message: Message) -> None:
        await message.answer("Send me a photo (/cancel to stop).")
        try:
            photo = await aiostep.wait_for(message.from_user.id, filter=F.photo, timeout=300)
        except aiostep.WaitCancelled:
            return  # /cancel below ended the wait
        except TimeoutError:
            await message.answer("No photo, never mind.")
            return
        await message.answer(f"Nice photo: {photo.photo[-1].file_id}")

    @dp.message(Command("cancel"))  # commands reach handlers while a wait is pending
    async def cancel(message: Message) -> None:
        await aiostep.unregister_steps(message.from_user.id)  # the wait raises WaitCancelled
        await message.answer("Stopped.")

    # --8<-- [end:filter]

    # --8<-- [start:buttons]
    @dp.message(Command("vote"))
    async def vote(message: Message) -> None:
        buttons = [[InlineKeyboardButton(text=t, callback_data=t) for t in ("red", "blue")]]
        await message.answer("Pick one", reply_markup=InlineKeyboardMarkup(inline_keyboard=buttons))
        query = await aiostep.wait_for(message.from_user.id, updates=["callback_query"])
        await query.answer(f"You picked {query.data}")

    @dp.callback_query()  # see the FAQ: polling asks Telegram only for handled update types
    async def stray(query: CallbackQuery) -> None:
        await query.answer("Nothing is waiting for this button.")

    # --8<-- [end:buttons]

    # --8<-- [start:commands]
    @dp.message(Command("rename"))
    async def rename(message: Message) -> None:
        await message.answer("New name? Anything goes, even /slashes.")
        answer = await aiostep.wait_for(message.from_user.id, allow_commands=True)
        await message.answer(f"Renamed to {answer.text}")

    # --8<-- [end:commands]

    @dp.message()
    async def other(message: Message) -> None:  # e.g. a text while /avatar waits for a photo
        await message.answer(f"(normal handler) {message.text}")

    return dp
