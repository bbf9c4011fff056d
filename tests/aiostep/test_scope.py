"""Which conversation answers a waiter or step: the same user, in the same chat and forum topic."""

from __future__ import annotations

import pytest
from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

import aiostep
from aiostep.testing import BotSimulator


def build() -> Dispatcher:
    """/ask waits for an answer, /step registers a next step; the rest goes to ``normal``."""
    dp = Dispatcher()
    aiostep.setup(dp)

    @dp.message(Command("ask"))
    async def ask(message: Message) -> None:
        assert message.from_user is not None
        await message.answer("Your answer?")
        answer = await aiostep.wait_for(message.from_user.id)
        await message.answer(f"{message.from_user.first_name} answered {answer.text}")

    async def got_step(message: Message) -> None:
        assert message.from_user is not None
        await message.answer(f"step of {message.from_user.first_name} got {message.text}")

    @dp.message(Command("step"))
    async def step(message: Message) -> None:
        assert message.from_user is not None
        await message.answer("Your step?")
        await aiostep.register_next_step(message.from_user.id, got_step)

    @dp.message()
    async def normal(message: Message) -> None:
        await message.answer(f"normal: {message.text}")

    return dp


async def test_a_dm_never_answers_a_wait_opened_in_a_group() -> None:
    async with BotSimulator(build()) as sim:
        alice = sim.user(first_name="Alice")
        in_group, in_dm = sim.chat(alice, sim.group()), sim.chat(alice)
        await in_group.send("/ask")
        await in_dm.send("from the DM")
        in_dm.assert_last("normal: from the DM")
        in_group.assert_last("Your answer?")
        await in_group.send("from the group")
        in_group.assert_last("Alice answered from the group")


async def test_a_dm_never_answers_a_step_registered_in_a_group() -> None:
    async with BotSimulator(build()) as sim:
        alice = sim.user(first_name="Alice")
        in_group, in_dm = sim.chat(alice, sim.group()), sim.chat(alice)
        await in_group.send("/step")
        await in_dm.send("from the DM")
        in_dm.assert_last("normal: from the DM")
        await in_group.send("from the group")
        in_group.assert_last("step of Alice got from the group")


async def test_a_group_never_answers_a_wait_opened_in_a_dm() -> None:
    async with BotSimulator(build()) as sim:
        alice = sim.user(first_name="Alice")
        in_group, in_dm = sim.chat(alice, sim.group()), sim.chat(alice)
        await in_dm.send("/ask")
        await in_group.send("from the group")
        in_group.assert_last("normal: from the group")
        await in_dm.send("from the DM")
        in_dm.assert_last("Alice answered from the DM")


async def test_another_member_of_the_group_does_not_answer_a_users_wait() -> None:
    async with BotSimulator(build()) as sim:
        group = sim.group()
        alice = sim.chat(sim.user(first_name="Alice"), group)
        bob = sim.chat(sim.user(first_name="Bob"), group)
        await alice.send("/ask")
        await bob.send("I am Bob")
        bob.assert_last("normal: I am Bob")
        await alice.send("I am Alice")
        alice.assert_last("Alice answered I am Alice")


async def test_two_users_waiting_in_one_group_each_get_their_own_answer() -> None:
    async with BotSimulator(build()) as sim:
        group = sim.group()
        alice = sim.chat(sim.user(first_name="Alice"), group)
        bob = sim.chat(sim.user(first_name="Bob"), group)
        await alice.send("/ask")
        await bob.send("/ask")
        await bob.send("blue")
        alice.assert_last("Bob answered blue")  # one transcript: the group's
        await alice.send("red")
        alice.assert_last("Alice answered red")
        texts = [record.text for record in alice.messages]
        assert texts == [
            "Your answer?",
            "Your answer?",
            "Bob answered blue",
            "Alice answered red",
        ]


async def test_two_users_with_steps_in_one_group_each_reach_their_own_step() -> None:
    async with BotSimulator(build()) as sim:
        group = sim.group()
        alice = sim.chat(sim.user(first_name="Alice"), group)
        bob = sim.chat(sim.user(first_name="Bob"), group)
        await alice.send("/step")
        await bob.send("/step")
        await alice.send("a")
        alice.assert_last("step of Alice got a")
        await bob.send("b")
        bob.assert_last("step of Bob got b")


async def test_a_forum_topic_is_its_own_conversation() -> None:
    async with BotSimulator(build()) as sim:
        alice = sim.user(first_name="Alice")
        forum = sim.group(forum=True)
        topic7 = sim.chat(alice, forum, thread_id=7)
        topic8 = sim.chat(alice, forum, thread_id=8)
        general = sim.chat(alice, forum)
        await topic7.send("/ask")
        await topic8.send("in topic 8")
        topic8.assert_last("normal: in topic 8")
        await general.send("in general")
        general.assert_last("normal: in general")
        await topic7.send("in topic 7")
        topic7.assert_last("Alice answered in topic 7")


async def test_a_step_in_a_forum_topic_is_reached_only_from_that_topic() -> None:
    async with BotSimulator(build()) as sim:
        alice = sim.user(first_name="Alice")
        forum = sim.group(forum=True)
        topic7 = sim.chat(alice, forum, thread_id=7)
        topic8 = sim.chat(alice, forum, thread_id=8)
        await topic7.send("/step")
        await topic8.send("elsewhere")
        topic8.assert_last("normal: elsewhere")
        await topic7.send("here")
        topic7.assert_last("step of Alice got here")


async def test_a_reply_thread_in_a_plain_supergroup_is_the_same_conversation() -> None:
    # message_thread_id is set on replies in ordinary supergroups too; only forum topics split
    async with BotSimulator(build()) as sim:
        alice = sim.user(first_name="Alice")
        group = sim.group()
        await sim.chat(alice, group).send("/ask")
        reply = sim.chat(alice, group, thread_id=5)
        sent = await reply.send("in a reply thread")
        assert sent.message_thread_id == 5 and not sent.is_topic_message
        sim.chat(alice, group).assert_last("Alice answered in a reply thread")


def build_remote(group_id: int) -> Dispatcher:
    """/remote in a DM waits for the user's answer in the group ``group_id``."""
    dp = Dispatcher()
    aiostep.setup(dp)

    @dp.message(Command("remote"))
    async def remote(message: Message) -> None:
        assert message.from_user is not None
        await message.answer("Answer in the group, please")
        answer = await aiostep.wait_for(message.from_user.id, chat_id=group_id, timeout=1)
        await message.answer(f"the group said {answer.text}")

    @dp.message()
    async def normal(message: Message) -> None:
        await message.answer(f"normal: {message.text}")

    return dp


async def test_wait_for_with_chat_id_is_answered_from_that_chat() -> None:
    async with BotSimulator(lambda: build_remote(-1009999)) as sim:
        alice = sim.user(first_name="Alice")
        group = sim.group(id=-1009999)
        in_dm, in_group = sim.chat(alice), sim.chat(alice, group)
        await in_dm.send("/remote")
        in_dm.assert_last("Answer in the group, please")
        await in_group.send("yes")
        in_dm.assert_last("the group said yes")
        assert in_group.messages == []  # the answer was taken by the waiter, not `normal`


async def test_wait_for_with_chat_id_is_not_answered_by_another_member() -> None:
    async with BotSimulator(lambda: build_remote(-1009999)) as sim:
        alice, bob = sim.user(first_name="Alice"), sim.user(first_name="Bob")
        group = sim.group(id=-1009999)
        await sim.chat(alice).send("/remote")
        await sim.chat(bob, group).send("me")
        sim.chat(bob, group).assert_last("normal: me")
        await sim.chat(alice, group).send("it is me")
        sim.chat(alice).assert_last("the group said it is me")


@pytest.mark.usefixtures("only_this_bot_seen")
async def test_register_next_step_outside_an_update_defaults_to_the_private_chat() -> None:
    got: list[tuple[int, str | None]] = []

    async def reminder_answered(message: Message) -> None:
        got.append((message.chat.id, message.text))
        await message.answer("thanks")

    async with BotSimulator(build()) as sim:
        alice = sim.user(first_name="Alice")
        in_group, in_dm = sim.chat(alice, sim.group()), sim.chat(alice)
        # e.g. a scheduled job asks the user something: no update is being handled
        await aiostep.register_next_step(alice.id, reminder_answered)
        await in_group.send("in the group")
        in_group.assert_last("normal: in the group")
        await in_dm.send("in the DM")
        assert got == [(alice.id, "in the DM")]


@pytest.mark.usefixtures("only_this_bot_seen")
async def test_register_next_step_with_chat_id_outside_an_update_targets_that_chat() -> None:
    got: list[tuple[int, str | None]] = []

    async def answered(message: Message) -> None:
        got.append((message.chat.id, message.text))

    async with BotSimulator(build()) as sim:
        alice = sim.user(first_name="Alice")
        group = sim.group()
        in_group, in_dm = sim.chat(alice, group), sim.chat(alice)
        await aiostep.register_next_step(alice.id, answered, chat_id=group.id)
        await in_dm.send("in the DM")
        in_dm.assert_last("normal: in the DM")
        await in_group.send("in the group")
        assert got == [(group.id, "in the group")]


@pytest.mark.usefixtures("only_this_bot_seen")
async def test_register_next_step_with_chat_and_thread_targets_that_topic() -> None:
    got: list[str | None] = []

    async def answered(message: Message) -> None:
        got.append(message.text)

    async with BotSimulator(build()) as sim:
        alice = sim.user(first_name="Alice")
        forum = sim.group(forum=True)
        await aiostep.register_next_step(alice.id, answered, chat_id=forum.id, thread_id=3)
        await sim.chat(alice, forum, thread_id=4).send("topic 4")
        await sim.chat(alice, forum).send("general")
        assert got == []
        await sim.chat(alice, forum, thread_id=3).send("topic 3")
        assert got == ["topic 3"]
