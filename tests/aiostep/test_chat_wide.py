"""Chat-wide waiters and steps: anyone in the chat may answer (aiostep.ANYONE)."""

from __future__ import annotations

from aiogram import Dispatcher, F
from aiogram.filters import Command
from aiogram.types import Message

import aiostep
from aiostep.testing import BotSimulator


def build(chat_wide: bool) -> Dispatcher:
    dp = Dispatcher()
    aiostep.setup(dp, chat_wide=chat_wide)

    @dp.message(Command("poll"))
    async def poll(message: Message) -> None:
        await message.answer("Who wants pizza?")
        try:
            answer = await aiostep.wait_for(aiostep.ANYONE, timeout=1)
        except TimeoutError:
            await message.answer("nobody answered")
            return
        await message.answer(f"{answer.from_user.first_name} said {answer.text}")

    @dp.message()
    async def other(message: Message) -> None:
        await message.answer(f"normal handler: {message.text}")

    return dp


async def test_anyone_in_the_group_answers_a_chat_wide_wait() -> None:
    async with BotSimulator(build(chat_wide=True)) as sim:
        alice, bob = sim.user(first_name="Alice"), sim.user(first_name="Bob")
        group = sim.group()
        await sim.chat(alice, group).send("/poll")
        await sim.chat(bob, group).send("me!")
        assert sim.chat(bob, group).last == "Bob said me!"


async def test_the_asker_can_answer_a_chat_wide_wait_too() -> None:
    async with BotSimulator(build(chat_wide=True)) as sim:
        alice = sim.user(first_name="Alice")
        group = sim.group()
        talk = sim.chat(alice, group)
        await talk.send("/poll")
        await talk.send("me")
        assert talk.last == "Alice said me"


async def test_without_chat_wide_listen_the_wait_is_not_answered() -> None:
    async with BotSimulator(build(chat_wide=False)) as sim:
        alice, bob = sim.user(first_name="Alice"), sim.user(first_name="Bob")
        group = sim.group()
        await sim.chat(alice, group).send("/poll")
        await sim.chat(bob, group).send("me!")
        assert sim.chat(bob, group).last == "normal handler: me!"


async def test_a_chat_wide_wait_is_not_answered_from_another_chat() -> None:
    async with BotSimulator(build(chat_wide=True)) as sim:
        alice, bob = sim.user(first_name="Alice"), sim.user(first_name="Bob")
        group = sim.group()
        await sim.chat(alice, group).send("/poll")
        await sim.chat(bob).send("me!")  # a DM to the bot
        assert sim.chat(bob).last == "normal handler: me!"
        await sim.chat(bob, group).send("now")
        assert sim.chat(bob, group).last == "Bob said now"


# --- route_chat_wide: only named persisted steps, only for senders with nothing of their own ---


@aiostep.persisted_step("test-chat-wide.vote")
async def vote(message: Message) -> None:
    assert message.from_user is not None
    await message.answer(f"vote from {message.from_user.first_name}: {message.text}")


@aiostep.persisted_step("test-chat-wide.own", filter=F.text.isdigit())
async def own(message: Message) -> None:
    await message.answer(f"own: {message.text}")


def build_named() -> Dispatcher:
    dp = Dispatcher()
    listen = aiostep.setup(dp, storage=aiostep.MemoryStateStorage())
    listen.route_chat_wide(["test-chat-wide.vote"])

    @dp.message(Command("vote"))
    async def open_vote(message: Message) -> None:
        await aiostep.register_next_step(aiostep.ANYONE, vote, chat_id=message.chat.id)

    @dp.message(Command("own"))
    async def open_own(message: Message) -> None:
        assert message.from_user is not None
        await aiostep.register_next_step(message.from_user.id, own)

    @dp.message()
    async def other(message: Message) -> None:
        await message.answer(f"normal handler: {message.text}")

    return dp


async def test_route_chat_wide_routes_a_named_step_to_members_with_nothing_of_their_own() -> None:
    async with BotSimulator(build_named()) as sim:
        alice, bob = sim.user(first_name="Alice"), sim.user(first_name="Bob")
        group = sim.group()
        a, b = sim.chat(alice, group), sim.chat(bob, group)
        await a.send("/vote")
        await b.send("/own")
        await b.send("pizza")  # Bob's own step refuses it: not the chat's step's to take
        assert b.last == "normal handler: pizza"
        await a.send("pasta")
        assert a.last == "vote from Alice: pasta"


def test_route_chat_wide_needs_a_storage() -> None:
    listen = aiostep.Listen()
    try:
        listen.route_chat_wide(["x"])
    except ValueError as exc:
        assert "storage" in str(exc)
    else:
        raise AssertionError("route_chat_wide accepted a Listen without storage")
