"""One-message mode answers a button press when it shows the press's outcome (it edits the
pressed message into the next prompt). When that outcome was another wizard's prompt (the
press made a call, a called wizard's last press returned to its caller, or a step handed over
with ``goto``), the wizard that held the press was not the one showing the prompt: the press
was never answered (the user's button kept spinning) and the pressed message kept buttons
that no longer worked. The press now goes with the conversation to the wizard that shows the
next prompt: answered, and the message edited in place when that wizard edits, else its
buttons taken off."""

from __future__ import annotations

from enum import Enum, auto
from typing import Any

from aiogram import Dispatcher
from aiogram.filters import Command

from aiostep.testing import BotSimulator, Conversation
from aiostep_dialogs import Finish, Wizard, step


class Note(Wizard, name="t_press_across_note"):
    """Sends its prompts as new messages."""

    class State(Enum):
        TEXT = auto()

    @step(State.TEXT, prompt="Your note?")
    async def text(self, value: str) -> Finish:
        return self.finish(value)


class Size(Wizard, name="t_press_across_size"):
    """One-message mode too."""

    ui = "edit"

    class State(Enum):
        SIZE = auto()

    @step(State.SIZE, prompt="Which size?", choices={"s": "Small", "l": "Large"})
    async def size(self, value: str) -> Finish:
        return self.finish(value)


class Order(Wizard, name="t_press_across_order"):
    ui = "edit"

    class State(Enum):
        NEXT = auto()
        CONFIRM = auto()

    @step(State.NEXT, prompt="What next?", choices={"n": "Note", "s": "Size", "j": "Jump"})
    async def next_(self, value: str) -> Any:
        if value == "j":
            return self.goto(Note)
        return self.call(Note if value == "n" else Size, key="got")

    @step(State.CONFIRM, prompt="Got {got}. OK?", choices={"ok": "OK"})
    async def confirm(self, value: str) -> None:
        pass


def build() -> Dispatcher:
    dp = Dispatcher()
    Order.setup(dp, entry=Command("order"))
    Note.setup(dp)
    Size.setup(dp)
    return dp


def buttons_left(talk: Conversation) -> list[str | None]:
    """The texts of the bot's messages here that still show inline buttons."""
    return [
        record.text
        for record in talk.messages
        if record.message.reply_markup is not None and record.message.reply_markup.inline_keyboard
    ]


async def test_a_press_that_calls_a_wizard_that_sends_is_answered_and_loses_its_buttons(
    bot_simulator: Any,
) -> None:
    sim: BotSimulator = bot_simulator(build)
    talk = sim.chat()
    await talk.send("/order")
    await talk.click("Note")
    talk.assert_last("Your note?")
    assert sim.session.unanswered_callbacks() == []
    assert buttons_left(talk) == []
    await talk.send("ring twice")
    talk.assert_last("Got ring twice. OK?", buttons=[["OK"]])


async def test_a_press_that_calls_or_returns_in_one_message_mode_edits_that_message(
    bot_simulator: Any,
) -> None:
    sim: BotSimulator = bot_simulator(build)
    talk = sim.chat()
    await talk.send("/order")
    await talk.click("Size")
    assert [m.text for m in talk.messages] == ["Which size?"]  # the one message, edited
    assert sim.session.unanswered_callbacks() == []
    await talk.click("Large")
    assert [m.text for m in talk.messages] == ["Got l. OK?"]
    assert sim.session.unanswered_callbacks() == []
    talk.assert_last("Got l. OK?", buttons=[["OK"]])


async def test_a_press_that_hands_over_with_goto_is_answered(bot_simulator: Any) -> None:
    sim: BotSimulator = bot_simulator(build)
    talk = sim.chat()
    await talk.send("/order")
    await talk.click("Jump")
    talk.assert_last("Your note?")
    assert sim.session.unanswered_callbacks() == []
    assert buttons_left(talk) == []


async def test_back_from_a_called_wizard_takes_the_buttons_off_its_message(
    bot_simulator: Any,
) -> None:
    sim: BotSimulator = bot_simulator(build)
    talk = sim.chat()
    await talk.send("/order")
    await talk.click("Size")
    await talk.send("/back")
    talk.assert_last("What next?", buttons=[["Note", "Size", "Jump"]])
    assert buttons_left(talk) == ["What next?"]  # not Size's "Which size?" too
