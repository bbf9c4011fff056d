"""``Wizard.forget``: a user's (or, chat-wide, a chat's) wizard conversation is removed from the
storage on request (a GDPR erasure, an admin reset), from outside an update or from a handler
of another conversation, on every backend."""

from __future__ import annotations

from enum import Enum, auto
from typing import TYPE_CHECKING, Any

import pytest
from aiogram import Bot, Dispatcher, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from aiostep_dialogs import Wizard, step, v

if TYPE_CHECKING:
    from conftest import Backend


class Signup(Wizard, name="test-forget-signup"):
    class State(Enum):
        NAME = auto()
        AGE = auto()

    @step(State.NAME, prompt="What is your name?", validate=v.text(min_len=2))
    async def name(self, value: str) -> None:
        self.data["name"] = value

    @step(State.AGE, prompt="How old are you?", validate=v.integer(min=1, max=120))
    async def age(self, value: int) -> None:
        self.data["age"] = value


class Poll(Wizard, name="test-forget-poll"):
    scope = "chat"

    class State(Enum):
        PLACE = auto()
        TIME = auto()

    @step(State.PLACE, prompt="Where do we meet?", validate=v.text(min_len=2))
    async def place(self, value: str) -> None:
        self.data["place"] = value

    @step(State.TIME, prompt="When?", validate=v.text(min_len=2))
    async def time(self, value: str) -> None:
        self.data["time"] = value


def build(dp: Dispatcher, storage: Any) -> None:
    Signup.setup(dp, entry=Command("signup"), storage=storage)
    Poll.setup(dp, entry=Command("meet"))
    handlers = Router()  # after the wizards' routers: the catch-all must not take their commands
    dp.include_router(handlers)

    @handlers.message(Command("forget"))
    async def forget(message: Message, command: CommandObject, bot: Bot) -> None:
        user_id = int(command.args or "0")
        await Signup.forget(user_id, user_id, bot=bot)  # their private chat
        await message.answer(f"Forgot {user_id}.")

    @handlers.message()
    async def other(message: Message) -> None:
        await message.answer(f"(normal handler) {message.text}")


async def test_forget_removes_a_running_wizard_from_outside_an_update(backend: Backend) -> None:
    sim = backend.simulator(build)
    alice, bob = sim.user(), sim.user()
    group = sim.group()
    talk, other = sim.chat(alice, group), sim.chat(bob, group)
    for conversation in (talk, other):
        await conversation.send("/signup")
        await conversation.send("Anna")
    record = await backend.record(talk)
    assert record is not None and record.data == {"name": "Anna"}

    await Signup.forget(group.id, alice.id, bot=sim.bot)

    assert await backend.record(talk) is None
    await talk.send("30")
    talk.assert_last("(normal handler) 30")
    await talk.send("/signup")
    talk.assert_last("What is your name?")  # a fresh start, nothing to resume
    bobs = await backend.record(other)  # Bob's wizard in the same chat was left alone
    assert bobs is not None and bobs.data == {"name": "Anna"}


async def test_forget_from_a_handler_of_another_conversation(backend: Backend) -> None:
    sim = backend.simulator(build)
    user, admin = sim.user(), sim.user()
    talk = sim.chat(user)
    await talk.send("/signup")
    await talk.send("Anna")

    record = await backend.record(talk)
    assert record is not None and record.data == {"name": "Anna"}

    await sim.chat(admin).send(f"/forget {user.id}")

    sim.chat(admin).assert_last(f"Forgot {user.id}.")
    assert await backend.record(talk) is None
    await talk.send("30")
    talk.assert_last("(normal handler) 30")


async def test_forget_a_chat_wide_wizard_needs_no_user(backend: Backend) -> None:
    sim = backend.simulator(build)
    alice, bob = sim.user(), sim.user()
    group = sim.group()
    await sim.chat(alice, group).send("/meet")
    await sim.chat(bob, group).send("Cafe")
    assert bob_record_exists(await backend.storage.read(poll_key(sim, group.id)))

    await Poll.forget(group.id, bot=sim.bot)

    assert await backend.storage.read(poll_key(sim, group.id)) is None
    await sim.chat(alice, group).send("noon")
    sim.chat(alice, group).assert_last("(normal handler) noon")


def poll_key(sim: Any, chat_id: int) -> str:
    from aiostep.keys import ANYONE, ConversationKey, storage_key

    return storage_key(ConversationKey(chat_id, ANYONE, None, sim.bot.id))


def bob_record_exists(record: Any) -> bool:
    return record is not None and record.data == {"place": "Cafe"}


async def test_forget_without_a_user_is_refused_for_a_per_user_wizard() -> None:
    with pytest.raises(ValueError, match=r"Signup\.forget needs the user_id"):
        await Signup.forget(1001, bot=Bot("42:TEST"))
