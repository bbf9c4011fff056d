"""With one Dispatcher serving two bots (aiogram's multi-bot polling), a user's message to one
bot never answers a waiter or step opened by the other.

Bug: a conversation key is ``(chat_id, user_id, thread_id)`` (aiostep/keys.py ``key_of``), and
a private chat's id is the user's id whichever bot it is with, so the same user's DMs with bot A
and bot B are one conversation to aiostep: bot B's message is handed to bot A's ``wait_for``
(and a step, in process or persisted as ``"chat:user"``, is run for the wrong bot). aiogram's
own FSM keys include the bot id for this reason.
"""

from __future__ import annotations

from aiogram import Bot, Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

import aiostep
from aiostep import MemoryStateStorage
from aiostep.testing import BotSimulator, RecordingSession


def build(storage: object = None, step: str | None = None) -> Dispatcher:
    dp = Dispatcher()
    aiostep.setup(dp, storage=storage)

    @dp.message(Command("step"))
    async def register(message: Message) -> None:
        assert message.from_user is not None and step is not None
        await aiostep.register_next_step(message.from_user.id, step)

    @dp.message(Command("ask"))
    async def ask(message: Message, bot: Bot) -> None:
        assert message.from_user is not None
        answer = await aiostep.wait_for(message.from_user.id, timeout=1)
        await message.answer(f"bot {bot.id} got {answer.text}")

    @dp.message()
    async def normal(message: Message, bot: Bot) -> None:
        await message.answer(f"bot {bot.id} normal {message.text}")

    return dp


def two_bots(dp: Dispatcher) -> tuple[BotSimulator, BotSimulator]:
    one = BotSimulator(dp, bot=Bot("42:TEST", session=RecordingSession()))
    two = BotSimulator(dp, bot=Bot("43:TEST", session=RecordingSession()))
    return one, two


async def test_a_message_to_another_bot_does_not_answer_a_wait() -> None:
    one, two = two_bots(build())
    async with one, two:
        with_one, with_two = one.chat(), two.chat()
        assert with_one.user.id == with_two.user.id  # the same Telegram user
        await with_one.send("/ask")
        await with_two.send("hello bot two")
        with_two.assert_last("bot 43 normal hello bot two")
        await with_one.send("hello bot one")
        with_one.assert_last("bot 42 got hello bot one")


async def test_a_message_to_another_bot_does_not_reach_a_persisted_step() -> None:
    log: list[str] = []
    name = f"test.multibot.{id(log)}"

    @aiostep.persisted_step(name)
    async def answered(message: Message, bot: Bot) -> None:
        log.append(f"step of bot {bot.id}: {message.text}")

    one, two = two_bots(build(MemoryStateStorage(), step=name))
    try:
        async with one, two:
            await one.chat().send("/step")
            await two.chat().send("to bot two")
            await one.chat().send("to bot one")
            assert log == ["step of bot 42: to bot one"]
    finally:
        aiostep.registry.unregister(name)
