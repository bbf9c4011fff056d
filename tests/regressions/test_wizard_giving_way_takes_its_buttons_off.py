"""A one-message wizard ended because the user started another wizard (or started it again,
with ``on_reentry = "restart"``) takes the buttons off its last prompt, whatever its
``on_cancel`` says, as a wizard that ends by ``/cancel`` does ("a wizard that ends always
takes the buttons off its last prompt"). Before, an ``on_cancel`` of its own that did not
edit the message, or a restart, left it with buttons that no longer worked."""

from __future__ import annotations

from enum import Enum, auto
from typing import Any

from aiogram import Dispatcher
from aiogram.filters import Command

from aiostep.testing import BotSimulator, Conversation
from aiostep_dialogs import Wizard, step


class Coffee(Wizard, name="t_giving_way_coffee"):
    ui = "edit"

    class State(Enum):
        SIZE = auto()

    @step(State.SIZE, prompt="Which size?", choices={"s": "Small", "l": "Large"})
    async def size(self, value: str) -> None: ...

    async def on_cancel(self) -> None:
        await self.answer("Coffee order dropped.")


class CoffeeAgain(Coffee, name="t_giving_way_coffee_again"):
    on_reentry = "restart"


class Tea(Wizard, name="t_giving_way_tea"):
    class State(Enum):
        KIND = auto()

    @step(State.KIND, prompt="Which tea?")
    async def kind(self, value: str) -> None: ...


def build() -> Dispatcher:
    dp = Dispatcher()
    Coffee.setup(dp, entry=Command("coffee"))
    Tea.setup(dp, entry=Command("tea"))
    CoffeeAgain.setup(dp, entry=Command("again"))
    return dp


def buttons_left(talk: Conversation) -> list[str | None]:
    return [
        record.text
        for record in talk.messages
        if record.message.reply_markup is not None and record.message.reply_markup.inline_keyboard
    ]


async def test_a_wizard_that_gives_way_to_another_takes_the_buttons_off_its_prompt(
    bot_simulator: Any,
) -> None:
    sim: BotSimulator = bot_simulator(build)
    talk = sim.chat()
    await talk.send("/coffee")
    await talk.send("/tea")
    assert [m.text for m in talk.messages][-2:] == ["Coffee order dropped.", "Which tea?"]
    assert buttons_left(talk) == []


async def test_a_wizard_started_over_takes_the_buttons_off_its_old_prompt(
    bot_simulator: Any,
) -> None:
    sim: BotSimulator = bot_simulator(build)
    talk = sim.chat()
    await talk.send("/again")
    first = talk.last_message
    await talk.send("/again")
    assert talk.last_message is not None and first is not None
    assert talk.last_message.message_id != first.message_id
    assert buttons_left(talk) == ["Which size?"]  # the new prompt's, not the old one's too
