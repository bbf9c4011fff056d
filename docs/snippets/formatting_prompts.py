"""Formatting: user data in prompts of a bot that sends HTML, and the test that proves it."""

from __future__ import annotations

from enum import Enum, auto

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.filters import Command
from aiogram.utils.formatting import Bold, Text

from aiostep.testing import BotSimulator, RecordingSession
from aiostep_dialogs import Finish, Markup, ValidationError, Wizard, escape, step, v
from aiostep_dialogs.formatting import effective_parse_mode


# --8<-- [start:bot]
def make_bot(token: str) -> Bot:
    return Bot(token, default=DefaultBotProperties(parse_mode="HTML"))


# --8<-- [end:bot]


# --8<-- [start:node]
def summary(wizard: Signup) -> Text:
    """A formatting node: text and entities, nothing to escape in any parse mode."""
    return Text(Bold(wizard.data["name"]), ", ", wizard.data["age"], ". Correct?")


# --8<-- [end:node]


# --8<-- [start:wizard]
class Signup(Wizard, name="docs-formatting"):
    class State(Enum):
        NAME = auto()
        AGE = auto()
        CONFIRM = auto()

    @step(State.NAME, prompt="What is your <b>name</b>?", validate=v.text(max_len=50))
    async def name(self, value: str) -> None:
        if value.lower() == "admin":
            # a reason is plain text (it often quotes the input); Markup sends markup
            raise ValidationError(Markup("<b>admin</b> is reserved."))
        self.data["name"] = value

    # the template is HTML; {name} is escaped: "Ada <i" shows as typed
    @step(State.AGE, prompt="How old are you, <i>{name}</i>?", validate=v.integer(min=1))
    async def age(self, value: int) -> None:
        self.data["age"] = value

    @step(State.CONFIRM, prompt=summary, choices={"yes": "Yes", "no": "No"})
    async def confirm(self, value: str) -> Signup.State | Finish:
        return self.State.NAME if value == "no" else self.finish()

    async def on_finish(self) -> None:
        # your own string: escape what came from the user
        name = escape(self.data["name"], effective_parse_mode(self.bot, self.parse_mode))
        await self.answer(f"Welcome, <b>{name}</b>!")


# --8<-- [end:wizard]


def build(storage: object = None) -> Dispatcher:
    dp = Dispatcher()
    Signup.setup(dp, entry=Command("signup"), storage=storage)
    return dp


# --8<-- [start:test]
async def test_a_name_with_markup_shows_as_typed() -> None:
    bot = Bot(
        "42:TEST", session=RecordingSession(), default=DefaultBotProperties(parse_mode="HTML")
    )
    async with BotSimulator(build, bot=bot) as sim:
        talk = sim.chat()
        await talk.send("/signup")
        await talk.send("Ada <i")
        talk.assert_last("How old are you, Ada <i?")  # what the user sees: tags parsed away
        await talk.send("36")
        talk.assert_last("Ada <i, 36. Correct?", buttons=[["Yes", "No"]])
        await talk.click("Yes")
        talk.assert_last("Welcome, Ada <i!")


# --8<-- [end:test]
