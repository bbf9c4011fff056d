"""Chat-wide waiters and steps: anyone in the chat may answer (aiostep.ANYONE)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiogram import Dispatcher, F
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.filters import Command
from aiogram.types import Message

import aiostep
from aiostep.testing import BotSimulator

if TYPE_CHECKING:
    from conftest import Backend


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


@aiostep.persisted_step("test-chat-wide.picky")
async def picky(message: Message) -> None:
    """Bob's own step: "vote ..." is not for his conversation at all, "skip ..." it declines."""
    assert message.from_user is not None and message.text is not None
    if message.text.startswith("vote "):
        raise aiostep.NotThisConversation()
    if message.text.startswith("skip "):
        raise SkipHandler()
    await message.answer(f"picky: {message.text}")
    await aiostep.register_next_step(message.from_user.id, picky)


def build_picky(dp: Dispatcher, storage: Any) -> None:
    listen = aiostep.setup(dp, storage=storage)
    listen.route_chat_wide(["test-chat-wide.vote"])

    @dp.message(Command("vote"))
    async def open_vote(message: Message) -> None:
        await aiostep.register_next_step(aiostep.ANYONE, vote, chat_id=message.chat.id)

    @dp.message(Command("picky"))
    async def open_picky(message: Message) -> None:
        assert message.from_user is not None
        await aiostep.register_next_step(message.from_user.id, picky)

    @dp.message()
    async def other(message: Message) -> None:
        await message.answer(f"normal handler: {message.text}")


async def test_a_step_raising_not_this_conversation_lets_the_chat_wide_step_take_the_update(
    backend: Backend,
) -> None:
    sim = backend.simulator(build_picky)
    alice, bob = sim.user(first_name="Alice"), sim.user(first_name="Bob")
    group = sim.group()
    a, b = sim.chat(alice, group), sim.chat(bob, group)
    await a.send("/vote")
    await b.send("/picky")
    before = await backend.record(b)
    await b.send("skip this")  # SkipHandler: the normal handlers, not the chat's step
    b.assert_last("normal handler: skip this")
    await b.send("vote pizza")  # not his conversation's: as if he had nothing pending
    b.assert_last("vote from Bob: vote pizza")
    after = await backend.record(b)
    assert before is not None and after is not None
    assert (after.callback, after.kwargs, after.data) == (
        before.callback,
        before.kwargs,
        before.data,
    )
    await b.send("hello")  # his own step stayed pending as it was
    b.assert_last("picky: hello")
