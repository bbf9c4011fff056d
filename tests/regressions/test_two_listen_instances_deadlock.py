"""Two ``Listen`` instances (the seed's way, one per observer) must not deadlock a conversation.

Bug: when a waiter opened through one ``Listen`` (on ``dp.message``) is answered through another
(on ``dp.callback_query``), ``Listen._try_local`` (aiostep/middleware.py) hands the answering
update's turn over to the parked handler because the conversation keys match, but the turns
belong to two different ``Gates``: the parked handler re-takes nothing and releases its own
(free) gate, while the callback-query gate of that conversation is never released. Every later
button press in that chat then waits forever.
"""

from __future__ import annotations

from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder

import aiostep
from aiostep.testing import BotSimulator


def build() -> tuple[Dispatcher, aiostep.Listen, aiostep.Listen]:
    dp = Dispatcher()
    on_messages, on_buttons = aiostep.Listen(), aiostep.Listen()
    dp.message.outer_middleware(on_messages)
    dp.callback_query.outer_middleware(on_buttons)

    @dp.message(Command("pick"))
    async def pick(message: Message) -> None:
        assert message.from_user is not None
        keyboard = InlineKeyboardBuilder()
        keyboard.button(text="Red", callback_data="red")
        keyboard.button(text="Blue", callback_data="blue")
        await message.answer("Pick a colour", reply_markup=keyboard.as_markup())
        query = await aiostep.wait_for(message.from_user.id, updates=("callback_query",))
        await query.answer()
        await message.answer(f"you picked {query.data}")

    @dp.callback_query()
    async def other_button(query: CallbackQuery) -> None:
        await query.answer(f"normal: {query.data}")

    return dp, on_messages, on_buttons


async def test_a_button_after_an_answered_wait_reaches_the_normal_handler() -> None:
    dp, on_messages, on_buttons = build()
    async with BotSimulator(dp, settle_timeout=1) as sim:
        talk = sim.chat()
        await talk.send("/pick")
        await talk.click("Red")
        talk.assert_last("you picked red")
        await talk.click("Blue")
        assert talk.toasts == ["normal: blue"]
        assert len(on_messages.gates) == 0 and len(on_buttons.gates) == 0
