"""A ``scope = "chat"`` wizard makes only its own conversations chat-wide. Its ``setup`` used to
turn chat-wide routing on for the whole ``Listen``: then a message another member's raw
conversation let through (its filter refused it) was taken by the group's wizard instead of
reaching the normal handlers, and a raw chat-wide step got routed without ``chat_wide=True``.
"""

from __future__ import annotations

import logging
from enum import Enum, auto
from typing import TYPE_CHECKING, Any

import pytest
from aiogram import Dispatcher, F, Router
from aiogram.filters import Command
from aiogram.types import Message

import aiostep
from aiostep.storage import MemoryStateStorage
from aiostep.testing import BotSimulator
from aiostep_dialogs import Wizard, step

if TYPE_CHECKING:
    from conftest import Backend


class Meeting(Wizard, name="test-chat-scoped-per-user-meeting"):
    scope = "chat"

    class State(Enum):
        PLACE = auto()
        TIME = auto()

    @step(State.PLACE, prompt="Where do we meet?")
    async def place(self, value: str) -> None:
        self.data["place"] = value

    @step(State.TIME, prompt="When, at {place}?")
    async def time(self, value: str) -> None:
        self.data["time"] = value


class Profile(Wizard, name="test-chat-scoped-per-user-profile"):
    class State(Enum):
        NAME = auto()

    @step(State.NAME, prompt="Your name?")
    async def name(self, value: str) -> None:
        self.data["name"] = value


@aiostep.persisted_step("test-chat-scoped-per-user.number", filter=F.text.isdigit())
async def number(message: Message, log: list[str]) -> None:
    log.append(f"step {message.text}")


@aiostep.persisted_step("test-chat-scoped-per-user.anyone")
async def anyone(message: Message, log: list[str]) -> None:
    log.append(f"anyone {message.text}")


def bot(log: list[str]) -> Any:
    def install(dp: Dispatcher, storage: Any) -> None:
        dp["log"] = log  # steps ask for it by name
        Meeting.setup(dp, entry=Command("meet"), storage=storage)
        raw = Router()  # after the wizard's router

        @raw.message(Command("quiz"))
        async def quiz(message: Message) -> None:
            assert message.from_user is not None
            answer = await aiostep.wait_for(
                message.from_user.id, filter=F.text.isdigit(), timeout=5
            )
            log.append(f"wait {answer.text}")

        @raw.message(Command("number"))
        async def ask_number(message: Message) -> None:
            assert message.from_user is not None
            await aiostep.register_next_step(message.from_user.id, number)

        @raw.message(Command("everyone"))
        async def ask_everyone(message: Message) -> None:
            await aiostep.register_next_step(aiostep.ANYONE, anyone, chat_id=message.chat.id)

        @raw.message()
        async def normal(message: Message) -> None:
            log.append(f"normal {message.text}")

        dp.include_router(raw)

    return install


@pytest.mark.parametrize("raw", ["quiz", "number"])
async def test_a_raw_conversation_beside_a_chat_scoped_wizard_keeps_per_user_routing(
    backend: Backend, raw: str
) -> None:
    log: list[str] = []
    sim = backend.simulator(bot(log))
    alice, bob, carol = sim.user(), sim.user(), sim.user()
    group = sim.group()
    a, b, c = sim.chat(alice, group), sim.chat(bob, group), sim.chat(carol, group)
    await a.send("/meet")
    a.assert_last("Where do we meet?")
    await b.send(f"/{raw}")
    await b.send("Cafe")  # Bob's own conversation refuses it: the normal handlers get it
    assert log == ["normal Cafe"]
    assert a.last == "Where do we meet?"  # the group's wizard did not take it
    await b.send("4")
    assert log[-1] == ("wait 4" if raw == "quiz" else "step 4")
    await c.send("Park")  # a member with nothing of their own answers the group's wizard
    c.assert_last("When, at Park?")


async def test_a_raw_chat_wide_step_is_not_routed_without_chat_wide(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    log: list[str] = []
    sim = backend.simulator(bot(log))
    alice, bob = sim.user(), sim.user()
    group = sim.group()
    a, b = sim.chat(alice, group), sim.chat(bob, group)
    await a.send("/everyone")
    with caplog.at_level(logging.WARNING, logger="aiostep"):
        await b.send("hello")
    assert log == ["normal hello"]
    assert "Listen(chat_wide=True)" in caplog.text


async def test_updates_cost_one_lookup_when_no_chat_scoped_wizard_is_installed() -> None:
    claims: list[str] = []
    dp = Dispatcher()
    listen = aiostep.setup(dp, storage=MemoryStateStorage(), updates=("message", "callback_query"))
    Profile.setup(dp, entry=Command("profile"))
    assert listen.storage is not None
    claim = listen.storage.claim
    holds_nothing = listen.storage.holds_nothing

    async def counting(key: Any, **kwargs: Any) -> Any:
        claims.append(str(key))
        return await claim(key, **kwargs)

    def looked_up(key: str) -> bool:
        # the lookup that tells an empty conversation at once (then no claim is made)
        found_nothing = holds_nothing(key)
        if found_nothing:
            claims.append(key)
        return found_nothing

    listen.storage.claim = counting  # type: ignore[method-assign]
    listen.storage.holds_nothing = looked_up  # type: ignore[method-assign]
    async with BotSimulator(dp) as sim:
        talk = sim.chat(sim.user(), sim.group())
        await talk.send("hello")
    assert len(claims) == 1 and not claims[0].split("@")[0].endswith(":0")


def two_wizards(dp: Dispatcher, storage: Any) -> None:
    Meeting.setup(dp, entry=Command("meet"), storage=storage)  # its /cancel is tried first
    Profile.setup(dp, entry=Command("profile"))


async def test_cancel_from_a_member_in_their_own_wizard_cancels_theirs_not_the_groups(
    backend: Backend,
) -> None:
    sim = backend.simulator(two_wizards)
    alice, bob, carol = sim.user(), sim.user(), sim.user()
    group = sim.group()
    a, b, c = sim.chat(alice, group), sim.chat(bob, group), sim.chat(carol, group)
    await a.send("/meet")
    await b.send("/profile")
    b.assert_last("Your name?")
    await b.send("/cancel")
    b.assert_last("Cancelled.")
    assert await backend.record(b) is None
    await c.send("Park")  # the group's wizard still runs
    c.assert_last("When, at Park?")
