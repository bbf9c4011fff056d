"""In a group with several bots, ``/help@other_bot`` is addressed to another bot: aiogram's
``Command`` filters ignore it, and so should the wizard. It asked its question again after
every such command (the re-prompt that follows a command which interrupted a wizard), so a
user in the middle of a wizard got the prompt repeated each time they spoke to another bot.
A command addressed to this bot (``/help@test_bot``, any case) still gets the re-prompt."""

from __future__ import annotations

from enum import Enum, auto
from typing import TYPE_CHECKING

from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

from aiostep_dialogs import Wizard, step

if TYPE_CHECKING:
    from conftest import Backend


class Signup(Wizard, name="t_other_bot_signup"):
    class State(Enum):
        NAME = auto()
        AGE = auto()

    @step(State.NAME, prompt="What is your name?")
    async def name(self, value: str) -> None:
        self.data["name"] = value

    @step(State.AGE, prompt="How old are you?")
    async def age(self, value: str) -> None:
        self.data["age"] = value


def bot(dp: Dispatcher, storage: object) -> None:
    Signup.setup(dp, entry=Command("signup"), storage=storage)

    @dp.message(Command("help"))
    async def help_(message: Message) -> None:
        await message.answer("Help text.")


async def test_a_command_for_another_bot_does_not_repeat_the_prompt(backend: Backend) -> None:
    sim = backend.simulator(bot)
    talk = sim.chat(chat=sim.group())
    await talk.send("/signup")
    before = len(talk.messages)
    await talk.send("/help@other_bot")
    await talk.send("/back@other_bot")
    await talk.send("/whatever@other_bot")
    assert len(talk.messages) == before  # not a word: none of these was for this bot
    await talk.send("/help@Test_Bot")  # this bot's (usernames are case-insensitive)
    assert [m.text for m in talk.messages[before:]] == ["Help text.", "What is your name?"]
    await talk.send("Ann")
    assert talk.last == "How old are you?"
