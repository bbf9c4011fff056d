"""The 0.3 README's name/age flow, made to survive restarts on aiostep 0.4."""

from __future__ import annotations

from aiogram import Dispatcher
from aiogram.filters import CommandStart
from aiogram.types import Message

import aiostep


# --8<-- [start:flow]
async def start(message: Message) -> None:
    await aiostep.register_next_step(message.from_user.id, ask_age)  # register first, then ask
    await message.reply("What is your name?")


@aiostep.persisted_step("seed.ask_age")  # new: a persisted step is stored by this name
async def ask_age(msg: Message) -> None:
    await aiostep.register_next_step(msg.from_user.id, confirm_details, kwargs={"name": msg.text})
    await msg.reply("How old are you?")


@aiostep.persisted_step("seed.confirm_details")
async def confirm_details(msg: Message, name: str) -> None:
    try:
        age = int(msg.text or "")
    except ValueError:
        await aiostep.register_next_step(msg.from_user.id, confirm_details, kwargs={"name": name})
        await msg.reply("Please provide a valid age!")
    else:
        await msg.reply(f"Your name is {name} and you're {age} years old. Thanks!")


def build(storage: object) -> Dispatcher:
    dp = Dispatcher()
    aiostep.setup(dp, storage=storage)  # new: FileStateStorage(...) or RedisStateStorage(...)
    dp.message.register(start, CommandStart())
    return dp


# --8<-- [end:flow]
