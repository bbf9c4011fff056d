"""A bot with a bit of everything the web playground draws: an inline counter that edits its
message and answers with a toast, a reply keyboard, a wait_for that times out while the user
is idle, and a handler that fails. Used by tests/aiostep_dialogs/test_web_playground.py."""

from __future__ import annotations

from aiogram import Dispatcher, F
from aiogram.filters import Command
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

import aiostep

#: how long /echo waits for an answer (short: the tests wait for the timeout message)
ECHO_TIMEOUT = 0.3


def _counter(n: int) -> InlineKeyboardMarkup:
    button = InlineKeyboardButton(text="+1", callback_data=f"inc:{n}")
    return InlineKeyboardMarkup(inline_keyboard=[[button]])


def build(storage: object = None) -> Dispatcher:
    """The gadgets bot's Dispatcher."""
    dp = Dispatcher()
    aiostep.setup(dp, storage=storage)

    @dp.message(Command("count"))
    async def count(message: Message) -> None:
        await message.answer("Count: 0", reply_markup=_counter(0))

    @dp.callback_query(F.data.startswith("inc:"))
    async def inc(query: CallbackQuery) -> None:
        n = int(str(query.data).split(":")[1]) + 1
        assert isinstance(query.message, Message)
        await query.message.edit_text(f"Count: {n}", reply_markup=_counter(n))
        await query.answer(f"now {n}")

    @dp.message(Command("menu"))
    async def menu(message: Message) -> None:
        keyboard = ReplyKeyboardMarkup(
            keyboard=[[KeyboardButton(text="Tea"), KeyboardButton(text="Coffee")]],
            resize_keyboard=True,
        )
        await message.answer("Tea or coffee?", reply_markup=keyboard)

    @dp.message(Command("where"))
    async def where(message: Message) -> None:
        button = KeyboardButton(text="Send my location", request_location=True)
        await message.answer(
            "Where are you?", reply_markup=ReplyKeyboardMarkup(keyboard=[[button]])
        )

    @dp.message(F.text.in_({"Tea", "Coffee"}))
    async def drink(message: Message) -> None:
        await message.answer(f"{message.text} it is.", reply_markup=ReplyKeyboardRemove())

    @dp.message(Command("echo"))
    async def echo(message: Message) -> None:
        assert message.from_user is not None
        await message.answer("Say something, quickly.")
        try:
            answer = await aiostep.wait_for(message.from_user.id, timeout=ECHO_TIMEOUT)
        except TimeoutError:
            await message.answer("You took too long.")
        else:
            await message.answer(f"You said: {answer.text}")

    @dp.message(Command("boom"))
    async def boom(message: Message) -> None:
        raise RuntimeError("boom")

    return dp
