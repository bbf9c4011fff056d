"""A reply keyboard does not outlive the wizard that showed it across a call: a wizard that
uses one removes it with its next prompt without choices and its closing messages (the
buttons guide), and so does the wizard it hands the conversation to. Before, a called
wizard's keyboard stayed on screen after it returned, was cancelled or left with ``/back``
(the caller uses none, so it removed none), and a caller's keyboard stayed over the called
wizard's prompts; pressing a stale button then answered the step shown with its label."""

from __future__ import annotations

from enum import Enum, auto
from typing import Any

from aiogram import Dispatcher
from aiogram.filters import Command

from aiostep_dialogs import Finish, Wizard, step


class Size(Wizard, name="t_reply_call_size"):
    class State(Enum):
        SIZE = auto()

    @step(State.SIZE, prompt="Which size?", choices=["small", "large"], keyboard="reply")
    async def size(self, value: str) -> Finish:
        return self.finish(value)


class Note(Wizard, name="t_reply_call_note"):
    class State(Enum):
        NOTE = auto()

    @step(State.NOTE, prompt="Any note?")
    async def note(self, value: str) -> Finish:
        return self.finish(value)


class Order(Wizard, name="t_reply_call_order"):
    """No reply keyboard of its own: it calls Size, which shows one."""

    class State(Enum):
        NAME = auto()
        SIZE = auto()
        DRINK = auto()

    @step(State.NAME, prompt="Your name?")
    async def name(self, value: str) -> None:
        self.data["name"] = value

    @step(State.SIZE, prompt="Pick a size? (ok)")
    async def size(self, value: str) -> Any:
        return self.call(Size, key="size")

    @step(State.DRINK, prompt="Which drink?")
    async def drink(self, value: str) -> None:
        self.data["drink"] = value


class Survey(Wizard, name="t_reply_call_survey"):
    """A reply keyboard of its own, on the step that calls Note (which shows none)."""

    class State(Enum):
        MORE = auto()
        DONE = auto()

    @step(State.MORE, prompt="Add a note?", choices=["yes", "no"], keyboard="reply")
    async def more(self, value: str) -> Any:
        return self.call(Note, key="note") if value == "yes" else None

    @step(State.DONE, prompt="Thanks! Anything else?")
    async def done(self, value: str) -> None:
        pass


def build() -> Dispatcher:
    dp = Dispatcher()
    Order.setup(dp, entry=Command("order"))
    Size.setup(dp)
    Note.setup(dp)
    Survey.setup(dp, entry=Command("survey"))
    return dp


async def test_a_called_wizards_reply_keyboard_goes_when_it_returns(
    bot_simulator: Any,
) -> None:
    talk = bot_simulator(build).chat()
    await talk.send("/order")
    await talk.send("Ann")
    await talk.send("ok")
    assert talk.keyboard == [["small"], ["large"]]
    await talk.press("small")
    talk.assert_last("Which drink?")
    assert talk.keyboard is None


async def test_a_called_wizards_reply_keyboard_goes_when_it_is_cancelled(
    bot_simulator: Any,
) -> None:
    talk = bot_simulator(build).chat()
    await talk.send("/order")
    await talk.send("Ann")
    await talk.send("ok")
    await talk.send("/cancel")
    talk.assert_last(Order.texts.cancelled)
    assert talk.keyboard is None


async def test_a_called_wizards_reply_keyboard_goes_on_back_to_the_caller(
    bot_simulator: Any,
) -> None:
    talk = bot_simulator(build).chat()
    await talk.send("/order")
    await talk.send("Ann")
    await talk.send("ok")
    await talk.send("/back")
    talk.assert_last("Pick a size? (ok)")
    assert talk.keyboard is None


async def test_a_callers_reply_keyboard_goes_with_the_called_wizards_first_prompt(
    bot_simulator: Any,
) -> None:
    talk = bot_simulator(build).chat()
    await talk.send("/survey")
    await talk.press("yes")
    talk.assert_last("Any note?")
    assert talk.keyboard is None
