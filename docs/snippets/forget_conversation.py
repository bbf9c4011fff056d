"""Forget a user's conversation: an erasure request, or an admin resetting someone stuck."""

from __future__ import annotations

from enum import Enum, auto
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

import aiostep
from aiostep_dialogs import Wizard, step, v


class Signup(Wizard, name="forget-signup"):
    class State(Enum):
        NAME = auto()
        PHONE = auto()

    @step(State.NAME, prompt="What is your name?", validate=v.text(min_len=2))
    async def name(self, value: str) -> None:
        self.data["name"] = value

    @step(State.PHONE, prompt="Your phone number?", validate=v.phone())
    async def phone(self, value: str) -> None:
        self.data["phone"] = value

    async def on_finish(self) -> None:
        await self.answer("Thanks, we will call you.")


# --8<-- [start:wizard]
def build(storage: Any = None, admins: frozenset[int] = frozenset()) -> Dispatcher:
    dp = Dispatcher()
    Signup.setup(dp, entry=Command("signup"), storage=storage)

    @dp.message(Command("forgetme"))  # the user asks: in this chat, their own conversation
    async def forget_me(message: Message, bot: Bot) -> None:
        await Signup.forget(message.chat.id, message.from_user.id, bot=bot)
        await message.answer("Done: what you told me here is deleted.")

    @dp.message(Command("reset"))  # an admin: "/reset 12345", that user's private chat
    async def reset(message: Message, command: CommandObject, bot: Bot) -> None:
        if message.from_user.id not in admins or not (command.args or "").isdigit():
            await message.answer("Usage (admins only): /reset USER_ID")
            return
        user_id = int(command.args)
        await Signup.forget(user_id, user_id, bot=bot)
        await message.answer(f"Forgot the sign-up of {user_id}.")

    return dp


# --8<-- [end:wizard]


# --8<-- [start:raw]
async def erase(bot: Bot, storage: Any, user_id: int, chat_id: int) -> None:
    """From a job or a script, outside any update: name the storage and the bot."""
    await aiostep.unregister_steps(
        user_id, chat_id=chat_id, bot_id=bot.id, storage=storage, forget=True
    )


# --8<-- [end:raw]
