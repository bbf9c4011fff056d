"""Forgetting a user's conversation from outside any update (an admin command, a GDPR request):
``unregister_steps(..., forget=True)`` removes its whole record, on every backend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

import aiostep

if TYPE_CHECKING:
    from conftest import Backend


@aiostep.persisted_step("forget.age")
async def age(message: Message) -> None:
    await message.answer(f"age {message.text}")


def build(dp: Dispatcher, storage: Any) -> None:
    aiostep.setup(dp, storage=storage)

    @dp.message(Command("go"))
    async def go(message: Message, aiostep_storage: Any = None) -> None:
        assert message.from_user is not None
        await aiostep.register_next_step(
            message.from_user.id, age, state="asking", data={"name": "Ann"}
        )
        await message.answer("How old are you?")

    @dp.message()
    async def other(message: Message) -> None:
        await message.answer(f"other {message.text}")


async def test_forget_removes_the_whole_conversation_from_outside_an_update(
    backend: Backend,
) -> None:
    sim = backend.simulator(build)
    talk = sim.chat()
    await talk.send("/go")
    record = await backend.record(talk)
    assert record is not None and record.data == {"name": "Ann"}

    await aiostep.unregister_steps(
        talk.user.id, chat_id=talk.chat.id, bot_id=sim.bot.id, storage=backend.storage, forget=True
    )
    assert await backend.record(talk) is None
    await talk.send("30")
    talk.assert_last("other 30")
